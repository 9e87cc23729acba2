"""The engine: requests, approvals, policies, locks, rollbacks and alerts, over the seams.

Every state change goes through `bot.domain.transition` and is saved compare-and-set
(`Store.transition`), so a double click or a second replica loses the race cleanly instead of
acting twice. Work (SSH, HTTP) never runs on the caller's thread: approved deployments go to
the engine's runs (`bot.runs.Runs`: its own worker pool, heartbeats, recovery); timed work
(monitoring rounds, expiries, scheduled deploys) goes through `bot.scheduler.Scheduler`.

Public API (what `commands/` may call): `request_deploy`, `request_rollback`, `tick`,
`tick_all`, `set_checklist`, `approve`, `decline`, `cancel`, `abort`, `resume`, `hold`,
`rollback_failed`, `lock`, `unlock`, `status`, `history`, `stats`, `deployment`,
`environments`, `signoff`, `start`, `wait_idle`, `shutdown`, and the error `Refused`.
`bot.monitoring` and `bot.signoff` also use `env`, `save`, `update`, `thread`, `say`,
`alert`, `refresh_card`, `event`, `record_refusal` and `after_success`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.chat.base import Chat, Directory, MessageRef, StaticDirectory
from bot.config import Config, Environment
from bot.domain.card import Button, Card, build_card
from bot.domain.deployment import (
    FINAL_STATES,
    Approval,
    Deployment,
    Event,
    EventRecord,
    IllegalTransition,
    Lock,
    State,
    transition,
)
from bot.domain.errors import Refused
from bot.domain.stats import Dora, StatsRecord, compute_dora
from bot.domain.windows import check_window, format_next_open
from bot.engine.monitoring import Monitoring
from bot.engine.policy import may_approve, may_force, may_operate, may_request
from bot.engine.runs import MAX_CAS_RETRIES, Runs
from bot.ops import metrics
from bot.source.base import NullResolver, RefError, RefResolver
from bot.store.base import ActiveDeploymentExists, CheckRecord, Schedule, StaleDeployment, Store
from bot.timing.clock import Clock, SystemClock
from bot.timing.scheduler import Scheduler
from runners.base import Backend

log = logging.getLogger("gonogo.engine")
_COUNTED = frozenset(
    {State.SUCCEEDED, State.FAILED, State.ABORTED, State.DECLINED, State.CANCELLED, State.EXPIRED,
     State.INTERRUPTED, State.ROLLED_BACK}
)  # fmt: skip

BackendFactory = Callable[[Environment, bool], Backend]
EXPIRY = "approval_expiry"
SCHEDULED_START = "scheduled_start"
RETENTION = "retention"


class Leadership(Protocol):
    """Leader election (see `bot.leader`): only the leader runs the scheduler."""

    #: True when this process is the only one using the store (no replicas can be running).
    single_process: bool

    def start(self) -> None:
        """Begin campaigning; callbacks fire on election and loss."""
        ...

    def stop(self) -> None:
        """Give up leadership."""
        ...


@dataclass(frozen=True)
class EnvStatus:
    """What `/status` shows for one environment."""

    env: str
    current: Deployment | None
    active: Deployment | None
    lock: Lock | None
    recent: tuple[Deployment, ...] = ()
    checks: tuple[CheckRecord, ...] = ()


def default_backend_factory(config: Config) -> BackendFactory:
    """Backends by environment: printer for dry runs, local, or SSH (Fabric)."""

    def make(env: Environment, dry_run: bool) -> Backend:
        from runners.backends.local import LocalBackend

        if dry_run:  # prints exactly what the env's real backend would run, where
            from bot.app.backends import printer_backend_for

            return printer_backend_for(config, env)
        if env.backend == "local":
            return LocalBackend(cwd=str(config.config_dir))
        from bot.app.backends import ssh_backend_for  # Fabric is only loaded when used

        return ssh_backend_for(config, env)

    return make


class Engine:
    """Coordinates deployments. Thread-safe; one per process."""

    def __init__(
        self,
        config: Config,
        store: Store,
        chat: Chat,
        *,
        clock: Clock | None = None,
        directory: Directory | None = None,
        resolver: RefResolver | None = None,
        backends: BackendFactory | None = None,
        workers: int | None = None,
        leadership: Callable[[Callable[[], None], Callable[[], None]], Leadership] | None = None,
        retention_days: float | None = None,
    ) -> None:
        from bot.engine.signoff import SignOff

        self.config = config
        self.store = store
        self.chat = chat
        self.clock = clock or SystemClock()
        self.directory = directory or StaticDirectory()
        self.resolver = resolver or NullResolver()
        self.backends = backends or default_backend_factory(config)
        self.scheduler = Scheduler(store, self.clock)
        self.monitoring = Monitoring(self)
        self.signoffs = SignOff(self)
        self.retention_days = config.bot.retention_days if retention_days is None else retention_days
        self._card_lock = threading.Lock()
        self._leader = (
            leadership(self.scheduler.start_leading, self.scheduler.stop_leading) if leadership else None
        )
        #: No replica can share the store: what this process does not run, nobody runs.
        self._single_process = self._leader is None or bool(getattr(self._leader, "single_process", False))
        self.runs = Runs(self, workers=workers or config.bot.workers, single_process=self._single_process)
        self.scheduler.register(EXPIRY, self._expire)
        self.scheduler.register(SCHEDULED_START, self._scheduled_start)
        self.scheduler.register(RETENTION, self._retention)
        self.scheduler.every(RETENTION, 86400, first_in=3600)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, *, run_scheduler: bool = True) -> None:
        """Pick up where the last process left off, and start the timers and the watchdog.

        Pending cards are shown again; approved work is queued; a running deployment whose
        heartbeat is stale (its process died) becomes `interrupted` with Resume / Roll back,
        and (in a single process) one left interrupted before is announced again, so whoever
        is in the channel now can decide.
        """
        earlier = (
            [] if not self._single_process else self.store.deployments(states=[State.INTERRUPTED], limit=50)
        )
        for d in self.store.deployments(states=[State.PENDING, State.APPROVED], limit=500):
            if self._env_or_none(d.env) is None:
                continue
            if d.state == State.PENDING:
                self.refresh_card(d)
            else:
                self.runs.submit(d)
        self.runs.recover_stale()
        for d in earlier:
            if self._env_or_none(d.env) is not None:
                self.runs.announce_interrupted(d, d.error or "its run stopped before it finished", again=True)
        if run_scheduler:
            if self._leader is not None:
                self._leader.start()
            else:
                self.scheduler.start_leading()
        self.runs.start_watchdog()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no work is in flight; False on timeout."""
        return self.runs.wait_idle(timeout)

    def shutdown(self, wait: bool = True, *, grace: float = 30.0) -> None:
        """Stop taking work; running deployments stop after their current step (up to `grace`
        seconds, see `Runs.shutdown`) and are recorded as `interrupted` so a restart can resume
        them; then stop the timers."""
        self.runs.shutdown(wait, grace)
        if self._leader is not None:
            self._leader.stop()
        self.scheduler.stop_leading()
        self.runs.close()

    # -- queries --------------------------------------------------------------------------
    def environments(self) -> list[str]:
        """Configured environment names."""
        return list(self.config.environments)

    def deployment(self, deployment_id: int) -> Deployment:
        """One deployment; Refused when it does not exist."""
        d = self.store.get(deployment_id)
        if d is None:
            raise Refused(f"there is no deployment #{deployment_id}")
        return d

    def status(self, env: str | None = None, *, recent: int = 5) -> list[EnvStatus]:
        """Status of one or every environment."""
        names = [self.env(env).name] if env else list(self.config.environments)
        out = []
        for name in names:
            current = self.store.current_release(name)
            checks: tuple[CheckRecord, ...] = ()
            if current is not None:
                latest = self.store.check_results(env=name, limit=20)
                if latest:
                    newest_round = (latest[0].deployment_id, latest[0].round)
                    checks = tuple(c for c in latest if (c.deployment_id, c.round) == newest_round)
            out.append(
                EnvStatus(
                    env=name,
                    current=current,
                    active=self.store.active(name),
                    lock=self.store.get_lock(name),
                    recent=tuple(self.store.deployments(name, limit=recent)) if env else (),
                    checks=checks,
                )
            )
        return out

    def history(self, env: str, limit: int = 10) -> list[Deployment]:
        """The newest deployments of an environment (dry runs included, marked)."""
        self.env(env)
        return self.store.deployments(env, limit=limit)

    def stats(self, env: str, days: int = 30) -> Dora:
        """The four DORA figures for `env` over the last `days`, from our own records."""
        self.env(env)
        since_id = None
        records: list[StatsRecord] = []
        cutoff = self.clock.now() - timedelta(days=days)
        while True:
            batch = self.store.deployments(env, limit=500, before_id=since_id)
            for d in batch:
                if not d.dry_run:
                    records.append(_stats_record(d))
            if len(batch) < 500 or batch[-1].created_at < cutoff:
                break
            since_id = batch[-1].id
        return compute_dora(records, now=self.clock.now(), days=days)

    def card(self, d: Deployment) -> Card:
        """The card for a deployment as it is now."""
        return build_card(d, self.env(d.env), self.store.get_lock(d.env))

    # -- requests -------------------------------------------------------------------------
    def request_deploy(
        self,
        user: str,
        channel: str,
        env_name: str,
        ref: str | None = None,
        *,
        reason: str | None = None,
        dry_run: bool = False,
        force: bool = False,
        at: str | None = None,
    ) -> Deployment:
        """Create a pending deployment and post its card; Refused with the reason otherwise."""
        env = self.env(env_name)
        self._refuse_if(may_request(env, user, self.directory), user, env.name, "deploy")
        if force:
            self._refuse_if(may_force(env, user, self.directory), user, env.name, "force")
        now = self.clock.now()
        scheduled_at = self._parse_at(env, at, now) if at else None
        ignored: list[str] = []
        if not dry_run:
            self._refuse_if_locked(env.name, user)
            self._refuse_if_active(env.name, user)
            window = self._window_refusal(env, scheduled_at or now)
            if window and not force:
                self._record_refusal(user, env.name, "deploy", window)
                raise Refused(
                    window
                    + (
                        " (the break-glass group may use --force)"
                        if env.break_glass or env.break_glass_groups
                        else ""
                    )
                )
            if window:
                ignored.append("deploy window")
        current = self.store.current_release(env.name)
        try:
            resolution = self.resolver.resolve(
                env.name, ref or env.default_ref, current.sha if current else None, force=force
            )
        except RefError as exc:
            raise Refused(str(exc)) from None
        if resolution.behind:
            if not force:
                raise Refused(
                    f"{resolution.ref} is behind what {env.name} runs now: that is a rollback. "
                    "Use /rollback, or /deploy with --force."
                )
            ignored.append("target is behind what runs")
        details: dict[str, object] = {
            "changelog": list(resolution.changelog),
            "changelog_note": resolution.changelog_note,
            "warnings": list(resolution.warnings),
        }
        if ignored:
            details["ignored_safeties"] = ignored
        d = Deployment(
            env=env.name,
            requester=user,
            ref=resolution.ref,
            sha=resolution.sha,
            committed_at=resolution.committed_at,
            created_at=now,
            updated_at=now,
            reason=reason,
            dry_run=dry_run,
            force=force,
            scheduled_at=scheduled_at,
            checklist=tuple(False for _ in env.checklist),
            # --force asks for one more approval, when it really set a safety aside
            required_approvals=0 if dry_run else env.approvals.required + (1 if ignored else 0),
            channel=env.channel or channel,
            details=details,
        )
        action = "request_dry_run" if dry_run else "request_deploy"
        detail = "; ".join(
            x for x in (reason, f"--force ignoring {', '.join(ignored)}" if ignored else None) if x
        )
        d = self._create(
            d, EventRecord(at=now, actor=user, action=action, env=env.name, detail=detail or None)
        )
        d = self._post_card_or_cancel(d, user)
        if dry_run:
            return self._approve_and_submit(d, user)
        if env.approval_ttl:
            self.scheduler.add_in(EXPIRY, env.approval_ttl, deployment_id=d.id)
        return d

    def _window_refusal(self, env: Environment, when: datetime) -> str | None:
        if not env.deploy_windows and not env.freeze_periods:
            return None
        tz = ZoneInfo(env.timezone)
        decision = check_window(when, env.deploy_windows, env.freeze_periods, tz)
        if decision.open:
            return None
        nxt = f"; next window opens {format_next_open(decision.next_open)}" if decision.next_open else ""
        return f"{env.name}: {decision.reason}{nxt}"

    def _parse_at(self, env: Environment, at: str, now: datetime) -> datetime:
        tz = ZoneInfo(env.timezone)
        local_now = now.astimezone(tz)
        try:
            if len(at) <= 5 and ":" in at:
                hh, mm = (int(x) for x in at.split(":"))
                when = datetime.combine(local_now.date(), time(hh, mm), tzinfo=tz)
                if timedelta(0) <= local_now - when < timedelta(minutes=1):
                    raise Refused(f"--at {at} is now: leave out --at to deploy at once")
                if when <= local_now:
                    when += timedelta(days=1)
            else:
                when = datetime.fromisoformat(at)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=tz)
        except ValueError:
            raise Refused(f"--at {at!r} is not a time (HH:MM or an ISO date-time)") from None
        if when <= now:
            raise Refused(f"--at {at} is in the past")
        if when - now > timedelta(days=30):
            raise Refused("--at can be at most 30 days ahead")
        return when.astimezone(now.tzinfo)

    def request_rollback(
        self,
        user: str,
        channel: str,
        env_name: str,
        *,
        target_id: int | None = None,
        target_ref: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Create a rollback to the previous good release (or the given one)."""
        env = self.env(env_name)
        self._refuse_if(may_request(env, user, self.directory), user, env.name, "rollback")
        current = self.store.current_release(env.name)
        if current is None:
            raise Refused(f"{env.name} has no successful deployment to roll back from")
        active = self.store.active(env.name)
        if active is not None and active.state == State.INTERRUPTED and target_id is None and not target_ref:
            # What runs is still the last good release: put it back on every host.
            return self.rollback_failed(user, active.id)  # type: ignore[arg-type]
        target = self.rollback_target(env.name, current, target_id, target_ref)
        if active is not None:
            if active.state != State.MONITORING:
                raise Refused(self._busy_message(active))
            self.scheduler.cancel(active.id)  # type: ignore[arg-type]
            self.save(
                active, Event.SUCCEED, user, "monitoring_stopped", detail="rollback requested", refresh=True
            )
        return self._start_rollback(
            user,
            env,
            target,
            undoes=current,
            reason=reason,
            required=env.approvals.rollback_required,
            channel=env.channel or channel,
            detail=f"to {target.label}: {reason or ''}",
        )

    def rollback_target(
        self, env: str, current: Deployment, target_id: int | None = None, target_ref: str | None = None
    ) -> Deployment:
        """What a rollback from `current` puts back: the given deploy (`target_id`), the newest
        earlier one of `target_ref`, or by default the previous good release; Refused otherwise."""
        # A release that was rolled back is not "good" by default; named explicitly, one that
        # went live (its release is its own) may be put back.
        good = [State.SUCCEEDED, State.SIGNED_OFF, State.MONITORING]
        if target_id is not None:
            target = self.store.get(target_id)
            if target is None or target.env != env or target.dry_run:
                raise Refused(f"#{target_id} is not a deployment of {env}")
            went_live = target.state == State.ROLLED_BACK and target.release_id == target.id
            if (target.state not in good and not went_live) or target.kind != "deploy":
                raise Refused(f"#{target_id} is not a successful deploy of {env} ({target.state.value})")
            if (target.release_id or target.id) == (current.release_id or current.id):
                raise Refused(f"{env} already runs the release of #{target_id}")
            return target
        current_release = current.release_id or current.id
        assert current_release is not None
        candidates = self.store.deployments(
            env, states=good, kind="deploy", before_id=current_release, limit=200
        )
        candidates = [c for c in candidates if not c.dry_run]
        if target_ref is not None:
            for c in candidates:
                if c.ref == target_ref or (c.sha and len(target_ref) >= 4 and c.sha.startswith(target_ref)):
                    return c
            raise Refused(f"no earlier successful deploy of {target_ref!r} in {env}'s history")
        if not candidates:
            raise Refused(f"{env} has no earlier successful release to roll back to")
        return candidates[0]

    # -- checklist and approvals ----------------------------------------------------------
    def tick(self, user: str, deployment_id: int, number: int, ticked: bool = True) -> Deployment:
        """Tick (or untick) checklist item `number` (1-based)."""
        return self.set_checklist(user, deployment_id, {number: ticked})

    def tick_all(self, user: str, deployment_id: int) -> Deployment:
        """Tick every checklist item."""
        d = self.deployment(deployment_id)
        return self.set_checklist(user, deployment_id, {i + 1: True for i in range(len(d.checklist))})

    def set_checklist(self, user: str, deployment_id: int, changes: dict[int, bool]) -> Deployment:
        """Set checklist items by number; idempotent."""
        for _ in range(MAX_CAS_RETRIES):
            d = self.deployment(deployment_id)
            env = self.env(d.env)
            if d.state != State.PENDING:
                raise Refused(f"{d.label} is {d.state.value}; its checklist is closed")
            self._refuse_if(may_operate(env, user, self.directory), user, env.name, "tick", d.id)
            items = list(d.checklist)
            for number in changes:
                if not 1 <= number <= len(items):
                    raise Refused(
                        f"the checklist has items 1 to {len(items)}" if items else "there is no checklist"
                    )
            for number, value in changes.items():
                items[number - 1] = value
            if tuple(items) == d.checklist:
                return d
            detail = ", ".join(f"{'ticked' if v else 'unticked'} {n}" for n, v in sorted(changes.items()))
            new = replace(d, checklist=tuple(items), updated_at=self.clock.now())
            try:
                saved = self.store.transition(new, d.version, self.event(user, "checklist", d, detail))
            except StaleDeployment:
                continue
            self.refresh_card(saved)
            return saved
        raise Refused("too many concurrent changes; try again")

    def approve(self, user: str, deployment_id: int) -> Deployment:
        """Record `user`'s Go; the last required approval starts (or schedules) the deployment."""
        for _ in range(MAX_CAS_RETRIES):
            d = self.deployment(deployment_id)
            env = self.env(d.env)
            if d.state != State.PENDING:
                raise Refused(f"{d.label} is already {d.state.value}")
            reason = may_approve(env, d, user, self.directory)
            if reason:
                self._record_refusal(user, d.env, "approve", reason, d.id)
                raise Refused(reason)
            if user in d.approvers():
                raise Refused(f"you already approved {d.label}")
            if not d.checklist_done():
                open_items = [str(i + 1) for i, v in enumerate(d.checklist) if not v]
                why = f"tick every checklist item before Go (open: {', '.join(open_items)})"
                self._record_refusal(user, d.env, "approve", why, d.id)
                raise Refused(why)
            lock = self.store.get_lock(d.env)
            if lock is not None and d.kind == "deploy":
                why = f"{d.env} is locked by {lock.owner}: {lock.reason}"
                self._record_refusal(user, d.env, "approve", why, d.id)
                raise Refused(why)
            now = self.clock.now()
            approvals = (*d.approvals, Approval(user, now))
            new = replace(d, approvals=approvals, updated_at=now)
            done = len(approvals) >= d.required_approvals
            later = done and d.scheduled_at is not None and d.scheduled_at > now
            if done and not later and d.kind == "deploy" and not d.force and not d.dry_run:
                # The window was open when the card was posted; it must still be open at Go.
                window = self._window_refusal(env, now)
                if window:
                    self._record_refusal(user, d.env, "approve", window, d.id)
                    raise Refused(f"{window}. Go again then, or request it with --at.")
            try:
                if done:
                    new = transition(new, Event.SCHEDULE if later else Event.APPROVE, at=now)
                saved = self.store.transition(
                    new, d.version, self.event(user, "approve", d, f"{len(approvals)}/{d.required_approvals}")
                )
            except StaleDeployment:
                continue
            if done:
                self.scheduler.cancel(saved.id, EXPIRY)  # type: ignore[arg-type]
                if later:
                    self.scheduler.add(SCHEDULED_START, saved.scheduled_at, deployment_id=saved.id)  # type: ignore[arg-type]
                else:
                    self.runs.submit(saved)
            self.refresh_card(saved)
            return saved
        raise Refused("too many concurrent changes; try again")

    def decline(self, user: str, deployment_id: int, reason: str | None = None) -> Deployment:
        """No-go: an approver declines, or the requester cancels, a pending deployment."""
        d = self.deployment(deployment_id)
        env = self.env(d.env)
        if d.state not in (State.PENDING, State.SCHEDULED):
            raise Refused(f"{d.label} is already {d.state.value}")
        if user == d.requester:
            self.scheduler.cancel(d.id)  # type: ignore[arg-type]
            return self.save(d, Event.CANCEL, user, "cancel", detail=reason, refresh=True)
        refusal = may_approve(env, d, user, self.directory)
        if refusal:
            self._record_refusal(user, d.env, "decline", refusal, d.id)
            raise Refused(refusal)
        self.scheduler.cancel(d.id)  # type: ignore[arg-type]
        if d.state == State.SCHEDULED:
            return self.save(d, Event.CANCEL, user, "decline", detail=reason, refresh=True)
        return self.save(d, Event.DECLINE, user, "decline", detail=reason, refresh=True)

    def cancel(self, user: str, deployment_id: int) -> Deployment:
        """Cancel a pending, approved or scheduled deployment (requester or an operator)."""
        d = self.deployment(deployment_id)
        if user != d.requester:
            self._refuse_if(may_operate(self.env(d.env), user, self.directory), user, d.env, "cancel", d.id)
        if d.state not in (State.PENDING, State.SCHEDULED, State.APPROVED):
            raise Refused(
                f"{d.label} is {d.state.value}; only a pending or scheduled deployment can be cancelled"
            )
        self.scheduler.cancel(d.id)  # type: ignore[arg-type]
        return self.save(d, Event.CANCEL, user, "cancel", refresh=True)

    def _expire(self, schedule: Schedule) -> None:
        d = self.store.get(schedule.deployment_id or 0)
        if d is None or d.state != State.PENDING:
            return
        try:
            d = self.save(d, Event.EXPIRE, "gonogo", "expire", detail="not approved in time", refresh=True)
        except Refused:
            return
        self.thread(d, f"⌛ {d.label} expired: it was not approved in time.")

    def _scheduled_start(self, schedule: Schedule) -> None:
        d = self.store.get(schedule.deployment_id or 0)
        if d is None or d.state != State.SCHEDULED:
            return
        env = self.env(d.env)
        window = self._window_refusal(env, self.clock.now())
        lock = self.store.get_lock(d.env)
        if (window and not d.force) or lock is not None:
            why = window or f"{d.env} is locked by {lock.owner}: {lock.reason}"  # type: ignore[union-attr]
            d = self.save(d, Event.CANCEL, "gonogo", "cancel", detail=why, error=why, refresh=True)
            self.say(d, f"Scheduled {d.label} did not start: {why}")
            return
        self.runs.submit(d)

    # -- locks ----------------------------------------------------------------------------
    def lock(self, user: str, env_name: str, reason: str | None, *, automatic: bool = False) -> Lock:
        """Lock an environment against deploys."""
        env = self.env(env_name)
        if not automatic:
            self._refuse_if(may_operate(env, user, self.directory), user, env.name, "lock")
        now = self.clock.now()
        lock = Lock(env=env.name, owner=user, reason=reason or "no reason given", at=now, automatic=automatic)
        event = EventRecord(at=now, actor=user, action="lock", env=env.name, detail=lock.reason)
        if not self.store.set_lock(lock, event):
            existing = self.store.get_lock(env.name)
            who = f"{existing.owner}: {existing.reason}" if existing else "someone"
            raise Refused(f"{env.name} is already locked by {who}")
        return lock

    def unlock(self, user: str, env_name: str, reason: str | None) -> Lock:
        """Unlock an environment. A lock the bot set (after a rollback) needs a reason."""
        env = self.env(env_name)
        self._refuse_if(may_operate(env, user, self.directory), user, env.name, "unlock")
        existing = self.store.get_lock(env.name)
        if existing is None:
            raise Refused(f"{env.name} is not locked")
        if existing.automatic and not reason:
            raise Refused(f"{env.name} was locked by gonogo ({existing.reason}); unlock it with a reason")
        now = self.clock.now()
        removed = self.store.clear_lock(
            env.name, EventRecord(at=now, actor=user, action="unlock", env=env.name, detail=reason)
        )
        if removed is None:
            raise Refused(f"{env.name} is not locked")
        return removed

    # -- in-flight control ------------------------------------------------------------------
    def abort(self, user: str, env_name: str) -> Deployment:
        """Stop the in-flight deployment of `env` after its current batch (or cancel a pending one)."""
        env = self.env(env_name)
        self._refuse_if(may_operate(env, user, self.directory), user, env.name, "abort")
        d = self.store.active(env.name)
        if d is None:
            raise Refused(f"nothing is in flight in {env.name}")
        if d.state in (State.PENDING, State.SCHEDULED, State.APPROVED):
            self.scheduler.cancel(d.id)  # type: ignore[arg-type]
            return self.save(d, Event.CANCEL, user, "abort", refresh=True)
        if d.state == State.MONITORING:
            self.scheduler.cancel(d.id)  # type: ignore[arg-type]
            d = self.save(
                d, Event.SUCCEED, user, "monitoring_stopped", detail="aborted by " + user, refresh=True
            )
            self.alert(
                d,
                f"Monitoring of {d.label} stopped by {user}; {d.env} keeps {d.ref}. Roll it back?",
                (Button("Roll back", "rollback_now", str(d.id), "danger"),),
                [],
            )
            return d
        if d.state == State.INTERRUPTED:
            d = self.save(d, Event.FAIL, user, "give_up", error=f"given up by {user}", refresh=True)
            self.settle_alerts(d.id, f"🛑 Given up by {user}.")  # type: ignore[arg-type]
            self.monitoring.on_failure(d, f"interrupted run given up by {user}", automatic=False)
            return d
        if d.state != State.RUNNING:
            raise Refused(f"{d.label} is {d.state.value}; nothing to abort")
        if not self.runs.stop_after_batch(d.id):  # type: ignore[arg-type]
            raise Refused(f"{d.label} is not running in this process")
        self.store.append_event(self.event(user, "abort_requested", d, None))
        return d

    def resume(self, user: str, deployment_id: int) -> Deployment:
        """Continue an interrupted deployment from its first unfinished stage and batch."""
        d = self.deployment(deployment_id)
        self._refuse_if(may_operate(self.env(d.env), user, self.directory), user, d.env, "resume", d.id)
        if d.state != State.INTERRUPTED:
            raise Refused(f"{d.label} is {d.state.value}; only an interrupted deployment can be resumed")
        self.store.append_event(self.event(user, "resume_requested", d, None))
        self.settle_alerts(d.id, f"▶️ Resumed by {user}.")  # type: ignore[arg-type]
        self.runs.submit(d)
        return d

    def hold(self, user: str, deployment_id: int) -> Deployment:
        """Hold: stop an automatic rollback from starting; the deployment stays as it is."""
        d = self.deployment(deployment_id)
        self._refuse_if(may_operate(self.env(d.env), user, self.directory), user, d.env, "hold", d.id)
        if not self.scheduler.cancel(d.id, "auto_rollback"):  # type: ignore[arg-type]
            raise Refused(f"no automatic rollback of {d.label} is waiting: nothing to hold")
        d = self.update(d.id, lambda cur: replace(cur, details={**cur.details, "hold": user}))  # type: ignore[arg-type]
        self.store.append_event(self.event(user, "hold", d, None))
        self.settle_alerts(
            d.id,  # type: ignore[arg-type]
            f"✋ Held by {user}: no automatic rollback.",
            keep=(Button("Roll back now", "rollback_now", str(d.id), "danger"),),
        )
        return d

    def rollback_failed(self, user: str, deployment_id: int, *, automatic: bool = False) -> Deployment:
        """`Roll back now` on a failure alert: put back the environment's last good release."""
        d = self.deployment(deployment_id)
        env = self.env(d.env)
        if not automatic:
            self._refuse_if(may_request(env, user, self.directory), user, d.env, "rollback", d.id)
        if d.state == State.INTERRUPTED:
            d = self.save(
                d, Event.FAIL, user, "give_up", error="rolled back after interruption", refresh=True
            )
        if d.state == State.MONITORING:
            self.scheduler.cancel(d.id)  # type: ignore[arg-type]
            d = self.save(d, Event.FAIL, user, "fail", error="rolled back by " + user, refresh=True)
        current = self.store.current_release(d.env)  # after the failure: never the failed one
        if current is None:
            raise Refused(f"{d.env} has no good release to roll back to")
        active = self.store.active(env.name)
        if active is not None:
            raise Refused(self._busy_message(active))
        if d.state == State.ROLLED_BACK or (
            d.kind == "deploy" and d.state not in (State.FAILED, State.ABORTED, State.INTERRUPTED)
        ):
            raise Refused(f"{d.label} is {d.state.value}; use /rollback {d.env}")
        if not automatic:
            self.scheduler.cancel(d.id, "auto_rollback")  # type: ignore[arg-type]  # a human was faster
        rollback = self._start_rollback(
            user,
            env,
            current,
            undoes=d,
            reason=f"after failed {d.label}",
            required=0,
            channel=d.channel,
            automatic=automatic,
        )
        who = "automatically" if automatic else f"by {user}"
        self.settle_alerts(d.id, f"↩️ Rollback {rollback.label} to {current.label} started {who}.")  # type: ignore[arg-type]
        return rollback

    def _start_rollback(
        self,
        user: str,
        env: Environment,
        target: Deployment,
        *,
        undoes: Deployment,
        reason: str | None,
        required: int,
        channel: str | None,
        automatic: bool = False,
        detail: str | None = None,
    ) -> Deployment:
        """Create a rollback to `target`'s release, post its card, and start it when no approval is due."""
        now = self.clock.now()
        rb = Deployment(
            env=env.name,
            kind="rollback",
            requester=user,
            ref=target.ref,
            sha=target.sha,
            committed_at=target.committed_at,
            created_at=now,
            updated_at=now,
            reason=reason,
            release_id=target.release_id or target.id,
            rollback_of=undoes.id,
            required_approvals=required,
            channel=channel,
            details={
                "changelog_note": f"Back to {target.label} ({target.ref} {target.short_sha})",
                "automatic": automatic,
            },
        )
        event = EventRecord(
            at=now, actor=user, action="request_rollback", env=env.name, detail=detail or reason
        )
        rb = self._create(rb, event)
        if automatic:  # a rollback the bot decided goes ahead even when its card cannot be shown
            self._post_card(rb)
            rb = self.store.get(rb.id) or rb  # type: ignore[arg-type]
        else:
            rb = self._post_card_or_cancel(rb, user)
        return self._approve_and_submit(rb, user) if required == 0 else rb

    # -- sign-off ---------------------------------------------------------------------------
    def signoff(self, user: str, channel: str, env: str) -> Deployment:
        """Post the sign-off card for what `env` runs now."""
        return self.signoffs.request(user, channel, env)

    # -- the run ------------------------------------------------------------------------------
    def _approve_and_submit(self, d: Deployment, user: str) -> Deployment:
        saved = self.save(d, Event.APPROVE, user, "auto_approve", detail="no approval required")
        self.runs.submit(saved)
        return saved

    def after_success(self, d: Deployment) -> None:
        """Deploy tags and the sign-off reminder, once a deploy is live."""
        if d.kind != "deploy" or d.dry_run:
            return
        note = self.resolver.after_success(d.env, d.id, d.sha)  # type: ignore[arg-type]
        if note:
            self.thread(d, note)
        self.signoffs.schedule_reminder(d)

    def _retention(self, schedule: Schedule) -> None:
        removed = self.store.prune(self.clock.now() - timedelta(days=self.retention_days))
        log.info("retention: pruned %s old check results and host outputs", removed)

    # -- helpers for bot/ modules ---------------------------------------------------------
    def env(self, name: str | None) -> Environment:
        """The environment named `name`; Refused when there is none."""
        env = self._env_or_none(name)
        if env is None:
            raise Refused(f"unknown environment {name!r}; known: {', '.join(self.config.environments)}")
        return env

    def _env_or_none(self, name: str | None) -> Environment | None:
        return self.config.environments.get(name or "")

    def save(
        self,
        d: Deployment,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: str | None = None,
        refresh: bool = False,
        **changes: object,
    ) -> Deployment:
        """Apply a transition compare-and-set, retrying on version races; Refused if illegal."""
        for _ in range(MAX_CAS_RETRIES):
            try:
                new = transition(d, event, at=self.clock.now(), **changes)
            except IllegalTransition as exc:
                raise Refused(str(exc)) from None
            try:
                saved = self.store.transition(new, d.version, self.event(actor, action, d, detail))
            except StaleDeployment:
                fresh = self.store.get(d.id)  # type: ignore[arg-type]
                if fresh is None:
                    raise Refused(f"{d.label} no longer exists") from None
                d = fresh
                continue
            if saved.state != d.state:
                log.info(
                    "%s %s: %s -> %s (%s by %s)%s", saved.label, saved.env, d.state.value, saved.state.value,
                    action, actor, f": {detail}" if detail else "",
                    extra={"deployment_id": saved.id, "env": saved.env},
                )  # fmt: skip
            if saved.state in _COUNTED and saved.state != d.state:
                metrics.DEPLOYMENTS.labels(saved.env, saved.kind, saved.state.value).inc()
            if refresh:
                self.refresh_card(saved)
            if saved.kind == "rollback" and saved.state in FINAL_STATES and saved.state != d.state:
                self._rollback_finished(saved)
            return saved
        raise Refused("too many concurrent changes; try again")

    def _rollback_finished(self, rollback: Deployment) -> None:
        """A rollback ended (done, failed, declined...): a sign-off waiting on it settles now."""
        try:
            self.signoffs.on_rollback_finished(rollback)
        except Exception:
            log.exception("%s: settling the sign-off after the rollback failed", rollback.label)

    def update(self, deployment_id: int, change: Callable[[Deployment], Deployment]) -> Deployment:
        """Save a non-state change compare-and-set (progress, details), retrying on races;
        Refused when it keeps losing them."""
        for _ in range(MAX_CAS_RETRIES):
            d = self.deployment(deployment_id)
            try:
                return self.store.transition(change(d), d.version)
            except StaleDeployment:
                continue
        raise Refused("too many concurrent changes; try again")

    def event(self, actor: str, action: str, d: Deployment, detail: str | None) -> EventRecord:
        """An event-log line about `d`."""
        return EventRecord(
            at=self.clock.now(), actor=actor, action=action, env=d.env, deployment_id=d.id, detail=detail
        )

    def record_refusal(
        self, user: str, env: str, action: str, reason: str, deployment_id: int | None = None
    ) -> None:
        """Write a refused action to the event log."""
        self._record_refusal(user, env, action, reason, deployment_id)

    def _create(self, d: Deployment, event: EventRecord) -> Deployment:
        try:
            return self.store.create_deployment(d, event)
        except ActiveDeploymentExists as exc:
            raise Refused(self._busy_message(exc.existing)) from None

    def _busy_message(self, active: Deployment | None) -> str:
        if active is None:
            return "another deployment is in progress"
        verb = "rollback" if active.kind == "rollback" else "deployment"
        return f"{active.env} is busy: {verb} {active.label} of {active.ref} by {active.requester} is {active.state.value}"

    def _refuse_if_active(self, env: str, user: str) -> None:
        active = self.store.active(env)
        if active is not None:
            why = self._busy_message(active)
            self._record_refusal(user, env, "deploy", why)
            raise Refused(why)

    def _refuse_if_locked(self, env: str, user: str) -> None:
        lock = self.store.get_lock(env)
        if lock is not None:
            self._record_refusal(user, env, "deploy", f"locked by {lock.owner}")
            raise Refused(f"{env} is locked by {lock.owner}: {lock.reason}")

    def _refuse_if(
        self, reason: str | None, user: str, env: str, action: str, deployment_id: int | None = None
    ) -> None:
        if reason:
            self._record_refusal(user, env, action, reason, deployment_id)
            raise Refused(reason)

    def _record_refusal(
        self, user: str, env: str, action: str, reason: str, deployment_id: int | None = None
    ) -> None:
        self.store.append_event(
            EventRecord(
                at=self.clock.now(),
                actor=user,
                action=f"refused_{action}",
                env=env,
                deployment_id=deployment_id,
                detail=reason,
            )
        )

    # -- chat ---------------------------------------------------------------------------------
    def _post_card(self, d: Deployment) -> bool:
        if not d.channel:
            return False
        ref = self.chat.post_card(d.channel, self.card(d))
        if ref is not None:
            self.update(d.id, lambda cur: replace(cur, channel=ref.channel, message_ts=ref.ts))  # type: ignore[arg-type]
        return ref is not None

    def _post_card_or_cancel(self, d: Deployment, user: str) -> Deployment:
        """Post the card of a human request; without a card nobody could approve it, so cancel it."""
        if self._post_card(d):
            return self.store.get(d.id) or d  # type: ignore[arg-type]
        why = f"could not post the card in {d.channel} (is the bot invited to this channel?)"
        self.save(d, Event.CANCEL, "gonogo", "cancel", detail=why, error=why)
        raise Refused(f"{why}; {d.label} was cancelled, nothing ran")

    def refresh_card(self, d: Deployment) -> None:
        """Update the deployment's card in place, always with its latest stored state.

        Threads race to refresh (the approver's thread and the worker it started): reading the
        store and handing the card to the chat under one lock keeps updates in state order, so
        a slow thread can never put an older card over a newer one.
        """
        with self._card_lock:
            fresh = self.store.get(d.id) if d.id is not None else None
            d = fresh or d
            if d.channel and d.message_ts:
                self.chat.update_card(MessageRef(d.channel, d.message_ts), self.card(d))
                if fresh is not None and not self._single_process:
                    # Another replica may have written (and sent its card) meanwhile, and ours
                    # could land after it: send again when the row moved on.
                    again = self.store.get(fresh.id)  # type: ignore[arg-type]
                    if again is not None and again.version != fresh.version:
                        self.chat.update_card(MessageRef(d.channel, d.message_ts), self.card(again))

    def thread(self, d: Deployment, text: str) -> None:
        """Post details in the deployment's thread."""
        if d.channel and d.message_ts:
            self.chat.post_thread(MessageRef(d.channel, d.message_ts), text, deployment_id=d.id)
        elif d.channel:
            self.chat.post_message(d.channel, text, deployment_id=d.id)

    def say(self, d: Deployment, text: str) -> None:
        """Post in the deployment's channel."""
        if d.channel:
            self.chat.post_message(d.channel, text, deployment_id=d.id)

    def alert(self, d: Deployment, text: str, buttons: Sequence[Button], mentions: Sequence[str]) -> None:
        """Post an alert in the channel, mentioning people, with buttons.

        An alert with buttons is remembered on the deployment, so that once someone acts on it
        (`settle_alerts`) its buttons go and it says what happened.
        """
        if not d.channel:
            return
        people = list(dict.fromkeys(mentions))
        ref = self.chat.post_message(d.channel, text, buttons=buttons, mentions=people, deployment_id=d.id)
        if ref is not None and buttons and d.id is not None:
            alert = {"channel": ref.channel, "ts": ref.ts, "text": text, "mentions": people}
            self.update(d.id, lambda cur: replace(cur, details={**cur.details, "alerts": [
                *cur.details.get("alerts", []), alert]}))  # fmt: skip

    def settle_alerts(self, deployment_id: int, outcome: str, keep: Sequence[Button] = ()) -> None:
        """Someone acted on the deployment's alerts: say what happened under each, and leave only
        the `keep` buttons (those still meaning something)."""
        d = self.store.get(deployment_id)
        alerts = list(d.details.get("alerts", [])) if d is not None else []
        if not alerts:
            return
        for alert in alerts:
            self.chat.update_message(
                MessageRef(alert["channel"], alert["ts"]),
                f"{alert['text']}\n{outcome}",
                buttons=keep,
                mentions=alert.get("mentions", ()),
                deployment_id=deployment_id,
            )
        if not keep:
            self.update(deployment_id, lambda cur: replace(cur, details={**cur.details, "alerts": []}))

    def now(self) -> datetime:
        """The engine's clock."""
        return self.clock.now()


def _stats_record(d: Deployment) -> StatsRecord:
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
    assert d.id is not None
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
