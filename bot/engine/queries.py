"""What `/status`, `/deploy history` and `/deploy stats` read: environments at a glance, in
depth, their history and their DORA figures, from the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.domain.deployment import Deployment, Lock, State
from bot.domain.stats import Dora, StatsRecord, compute_dora
from bot.engine.port import Ledger
from bot.store.base import CheckRecord, Store


@dataclass(frozen=True)
class EnvStatus:
    """What `/status` shows for one environment."""

    env: str
    current: Deployment | None
    active: Deployment | None
    lock: Lock | None
    recent: tuple[Deployment, ...] = ()
    checks: tuple[CheckRecord, ...] = ()


class Queries:
    """Reads for status, history and stats."""

    def __init__(self, ledger: Ledger, store: Store, environments: list[str]) -> None:
        self.ledger = ledger
        self.store = store
        self.environments = environments

    def status(self, env: str | None = None, *, recent: int = 5) -> list[EnvStatus]:
        """Status of one or every environment."""
        names = [self.ledger.env(env).name] if env else list(self.environments)
        return [self._status(name, recent if env else 0) for name in names]

    def _status(self, name: str, recent: int) -> EnvStatus:
        current = self.store.current_release(name)
        checks: tuple[CheckRecord, ...] = ()
        if current is not None:
            latest = self.store.check_results(env=name, limit=20)
            if latest:
                newest_round = (latest[0].deployment_id, latest[0].round)
                checks = tuple(c for c in latest if (c.deployment_id, c.round) == newest_round)
        return EnvStatus(
            env=name,
            current=current,
            active=self.store.active(name),
            lock=self.store.get_lock(name),
            recent=tuple(self.store.deployments(name, limit=recent)) if recent else (),
            checks=checks,
        )

    def history(self, env: str, limit: int = 10) -> list[Deployment]:
        """The newest deployments of an environment (dry runs included, marked)."""
        self.ledger.env(env)
        return self.store.deployments(env, limit=limit)

    def stats(self, env: str, days: int = 30) -> Dora:
        """The four DORA figures for `env` over the last `days`, from our own records."""
        self.ledger.env(env)
        since_id = None
        records: list[StatsRecord] = []
        cutoff = self.ledger.now() - timedelta(days=days)
        while True:  # the window only (an index range), 500 at a time
            batch = self.store.deployments(env, limit=500, before_id=since_id, since=cutoff)
            records.extend(stats_record(d) for d in batch if not d.dry_run)
            if len(batch) < 500:
                break
            since_id = batch[-1].id
        return compute_dora(records, now=self.ledger.now(), days=days)


def stats_record(d: Deployment) -> StatsRecord:
    """A deployment as the DORA figures count it."""
    if (d.kind == "deploy" and d.state in (State.SUCCEEDED, State.SIGNED_OFF, State.MONITORING)) or (
        d.kind == "rollback" and d.state in (State.SUCCEEDED, State.SIGNED_OFF)
    ):
        outcome = "success"
    elif d.state == State.ROLLED_BACK:
        outcome = "rolled_back" if d.live_at is not None else "failed"  # undone after it failed
    elif d.state == State.FAILED:
        outcome = "failed"
    elif d.state == State.ABORTED:
        outcome = "aborted"
    else:
        outcome = "other"
    return StatsRecord(
        id=d.id,
        env=d.env,
        kind=d.kind,
        outcome=outcome,  # type: ignore[arg-type]
        requested_at=d.created_at,
        finished_at=d.finished_at,
        committed_at=d.committed_at,
        live_at=d.live_at,
    )


__all__ = ["EnvStatus", "Queries", "stats_record"]
