"""The engine: the one object commands talk to, composed of small parts over the seams.

`Engine` builds the parts and wires them: the ledger (every write compare-and-set, hooks on
transitions), the notifier (cards, threads, alerts), then the services, each given only the
narrow interfaces of `bot.engine.port` it needs:

    requests → approvals → runs → monitoring → failures → rollbacks → locks
                                                         signoff → rollbacks
    control (abort, Resume, Hold) → runs, failures            queries (status, history, stats)

What follows a state is declared here, Shipit style (`Ledger.on_transition`): an approved
deployment is queued for a worker, and a rollback that ended settles the sign-off it came from.

Public API (what `commands/` may call): `request_deploy`, `request_rollback`, `tick`,
`tick_all`, `set_checklist`, `approve`, `decline`, `cancel`, `abort`, `resume`, `hold`,
`rollback_failed`, `recover`, `gate_go`, `gate_nogo`, `lock`, `unlock`, `status`, `history`, `stats`, `deployment`,
`environments`, `signoff` (and `signoffs` for the sign-off card's buttons), `start`,
`wait_idle`, `shutdown`, `continue_monitoring`, and the error `Refused`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.chat.base import Chat, Directory, StaticDirectory
from bot.config import Config
from bot.domain.card import Card
from bot.domain.deployment import FINAL_STATES, Deployment, Lock, State
from bot.domain.errors import Refused
from bot.domain.stats import Dora
from bot.engine.approvals import Approvals
from bot.engine.control import Control
from bot.engine.failures import Failures
from bot.engine.gates import Gates
from bot.engine.integrations import IntegrationParts, Integrations
from bot.engine.ledger import Ledger
from bot.engine.locks import Locks
from bot.engine.monitoring import Monitoring
from bot.engine.notify import Notifier
from bot.engine.port import BackendFactory, Timer
from bot.engine.queries import EnvStatus, Queries
from bot.engine.requests import Requests
from bot.engine.rollbacks import Rollbacks
from bot.engine.runs import Runs
from bot.engine.signoff import SignOff
from bot.source import NullResolver, RefResolver
from bot.store.base import Schedule, Store
from bot.timing.clock import Clock, SystemClock
from bot.timing.election import LeadershipFactory
from bot.timing.scheduler import Scheduler

log = logging.getLogger("gonogo.engine")


class Engine:
    """Coordinates deployments. Thread-safe; one per process."""

    def __init__(
        self,
        config: Config,
        store: Store,
        chat: Chat,
        *,
        backends: BackendFactory,
        clock: Clock | None = None,
        directory: Directory | None = None,
        resolver: RefResolver | None = None,
        workers: int | None = None,
        leadership: LeadershipFactory | None = None,
        retention_days: float | None = None,
        integrations: Integrations | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.chat = chat
        self.clock = clock or SystemClock()
        self.directory = directory or StaticDirectory()
        self.resolver = resolver or NullResolver()
        self.backends = backends
        self.scheduler = Scheduler(store, self.clock)
        self.retention_days = config.bot.retention_days if retention_days is None else retention_days
        self._leader = (
            leadership(self.scheduler.start_leading, self.scheduler.stop_leading) if leadership else None
        )
        #: No replica can share the store: what this process does not run, nobody runs.
        self._single_process = self._leader is None or bool(getattr(self._leader, "single_process", False))
        self._integrations = integrations
        self._compose(workers or config.bot.workers)

    def _compose(self, workers: int) -> None:
        """Build the parts, each over the narrow interfaces it needs, and declare the hooks."""
        store, timers, directory = self.store, self.scheduler, self.directory
        self.ledger = ledger = Ledger(self.config, store, self.clock)
        self.notify = notify = Notifier(self.chat, ledger, store, single_process=self._single_process)
        ledger.refresh_with(notify.refresh_card)
        self.requests = Requests(ledger, store, notify, timers, self.resolver, directory)
        self.rollbacks = Rollbacks(ledger, store, notify, timers, self.requests, directory)
        self.locks = Locks(ledger, store, directory)
        self.failures = Failures(ledger, store, notify, timers, self.rollbacks, self.locks)
        self.monitoring = Monitoring(
            ledger, store, notify, timers, self.failures, self.backends, self._went_live
        )
        self.gates = Gates(ledger, notify, self.failures, directory)
        self.runs = Runs(
            self.config, ledger, store, notify, timers, backends=self.backends, monitoring=self.monitoring,
            failures=self.failures, gates=self.gates, on_live=self._went_live, workers=workers,
            single_process=self._single_process,
        )  # fmt: skip
        self.approvals = Approvals(ledger, store, notify, timers, self.runs, directory)
        self.control = Control(ledger, store, notify, timers, self.runs, self.failures, directory)
        self.signoffs = SignOff(ledger, store, notify, timers, self.rollbacks, directory)
        self.queries = Queries(ledger, store, list(self.config.environments))
        # CI gate, deployments mirrored to the code host, paging, links to the web view:
        self.integrations = extras = IntegrationParts(
            self.config, ledger, store, notify, timers, self._integrations
        )
        self.approvals.guards.append(extras.before_go)
        notify.decorate_with(extras.decorate)
        # What follows a state, declared once:
        ledger.on_transition(lambda before, after: self.runs.submit(after), to=State.APPROVED)
        ledger.on_transition(self._rollback_ended)
        ledger.on_transition(self.failures.rolled_back, to=State.ROLLED_BACK)
        timers.register(Timer.RETENTION, self._retention)
        timers.every(Timer.RETENTION, 86400, first_in=3600)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, *, run_scheduler: bool = True) -> None:
        """Pick up where the last process left off, and start the timers and the watchdog.

        Pending cards are shown again; approved work is queued; a running deployment whose
        heartbeat is stale (its process died) becomes `interrupted` with Resume / Roll back,
        and (in a single process) one left interrupted before is announced again, so whoever
        is in the channel now can decide.
        """
        envs = self.config.environments
        earlier = (
            [] if not self._single_process else self.store.deployments(states=[State.INTERRUPTED], limit=50)
        )
        for d in self.store.deployments(states=[State.PENDING, State.APPROVED], limit=500):
            if d.env not in envs:
                continue
            if d.state == State.PENDING:
                self.notify.refresh_card(d)
            else:
                self.runs.submit(d)
        self.runs.recover_stale()
        for d in earlier:
            if d.env in envs:
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
        them; then command checks still running are stopped on their hosts and monitoring
        records nothing more (`Monitoring.stop_checks`: the next leader runs the round again);
        then stop the timers."""
        self.runs.shutdown(wait, grace)
        if stopped := self.monitoring.stop_checks():
            log.info("shutdown: stopped the command checks still running: %s", "; ".join(stopped))
        if self._leader is not None:
            self._leader.stop()
        self.scheduler.stop_leading()
        self.runs.close()
        if self._integrations is not None:
            self._integrations.close()

    # -- hooks ------------------------------------------------------------------------------
    def _went_live(self, d: Deployment) -> None:
        """Deploy tags and the sign-off reminder, once a deploy is live."""
        if d.kind != "deploy" or d.dry_run:
            return
        note = self.resolver.after_success(d.env, d.id, d.sha)
        if note:
            self.notify.thread(d, note)
        self.signoffs.schedule_reminder(d)

    def _rollback_ended(self, before: Deployment, after: Deployment) -> None:
        """A rollback ended (done, failed, declined...): a sign-off waiting on it settles now."""
        if after.kind == "rollback" and after.state in FINAL_STATES:
            self.signoffs.on_rollback_finished(after)

    def _retention(self, schedule: Schedule) -> None:
        removed = self.store.prune(self.clock.now() - timedelta(days=self.retention_days))
        log.info("retention: pruned %s old check results and host outputs", removed)
        if keep := self.config.bot.event_retention_days:
            events = self.store.prune_events(self.clock.now() - timedelta(days=keep))
            log.info("retention: pruned %s events older than %g days", events, keep)

    # -- queries --------------------------------------------------------------------------
    def now(self) -> datetime:
        """The engine's clock."""
        return self.clock.now()

    def environments(self) -> list[str]:
        """Configured environment names."""
        return list(self.config.environments)

    def deployment(self, deployment_id: int) -> Deployment:
        """One deployment; Refused when it does not exist."""
        return self.ledger.get(deployment_id)

    def status(self, env: str | None = None, *, recent: int = 5) -> list[EnvStatus]:
        """Status of one or every environment."""
        return self.queries.status(env, recent=recent)

    def history(self, env: str, limit: int = 10) -> list[Deployment]:
        """The newest deployments of an environment (dry runs included, marked)."""
        return self.queries.history(env, limit)

    def stats(self, env: str, days: int = 30) -> Dora:
        """The four DORA figures for `env` over the last `days`, from our own records."""
        return self.queries.stats(env, days)

    def card(self, d: Deployment) -> Card:
        """The card for a deployment as it is now."""
        return self.notify.card(d)

    def refresh_card(self, d: Deployment) -> None:
        """Update the deployment's card in place from its latest stored state."""
        self.notify.refresh_card(d)

    # -- requests, approvals, rollbacks -------------------------------------------------------
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
        d = self.requests.request_deploy(
            user, channel, env_name, ref, reason=reason, dry_run=dry_run, force=force, at=at
        )
        return self.integrations.after_request(d)

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
        return self.rollbacks.request_rollback(
            user, channel, env_name, target_id=target_id, target_ref=target_ref, reason=reason
        )

    def rollback_failed(self, user: str, deployment_id: int, *, automatic: bool = False) -> Deployment:
        """`Roll back now` on a failure alert: put back the environment's last good release."""
        return self.rollbacks.rollback_failed(user, deployment_id, automatic=automatic)

    def tick(self, user: str, deployment_id: int, number: int, ticked: bool = True) -> Deployment:
        """Tick (or untick) checklist item `number` (1-based)."""
        return self.approvals.tick(user, deployment_id, number, ticked)

    def tick_all(self, user: str, deployment_id: int) -> Deployment:
        """Tick every checklist item."""
        return self.approvals.tick_all(user, deployment_id)

    def set_checklist(self, user: str, deployment_id: int, changes: dict[int, bool]) -> Deployment:
        """Set checklist items by number; idempotent."""
        return self.approvals.set_checklist(user, deployment_id, changes)

    def approve(self, user: str, deployment_id: int) -> Deployment:
        """Record `user`'s Go; the last required approval starts (or schedules) the deployment."""
        return self.approvals.approve(user, deployment_id)

    def decline(self, user: str, deployment_id: int, reason: str | None = None) -> Deployment:
        """No-go: an approver declines, or the requester cancels, a pending deployment."""
        return self.approvals.decline(user, deployment_id, reason)

    def cancel(self, user: str, deployment_id: int) -> Deployment:
        """Cancel a pending, approved or scheduled deployment (requester or an operator)."""
        return self.approvals.cancel(user, deployment_id)

    def recover(self, user: str, deployment_id: int, choice: str) -> Deployment:
        """A choice after an irreversible step ran: `undo` or `restore` (its rollback is returned)
        or `hold`; each needs an approver, never the requester."""
        return self.rollbacks.choose(user, deployment_id, choice)

    def gate_go(self, user: str, deployment_id: int) -> Deployment:
        """Go at the gate a deployment waits at; the last Go needed lets it go on."""
        return self.gates.go(user, deployment_id)

    def gate_nogo(self, user: str, deployment_id: int) -> Deployment:
        """No-go at the gate: the deploy stops there and a rollback of what ran is offered."""
        return self.gates.nogo(user, deployment_id)

    # -- locks and in-flight control ------------------------------------------------------------
    def lock(self, user: str, env_name: str, reason: str | None, *, automatic: bool = False) -> Lock:
        """Lock an environment against deploys."""
        return self.locks.lock(user, env_name, reason, automatic=automatic)

    def unlock(self, user: str, env_name: str, reason: str | None) -> Lock:
        """Unlock an environment. A lock the bot set (after a rollback) needs a reason."""
        return self.locks.unlock(user, env_name, reason)

    def abort(self, user: str, env_name: str) -> Deployment:
        """Stop the in-flight deployment of `env` after its current batch (or cancel a pending one)."""
        return self.control.abort(user, env_name)

    def resume(self, user: str, deployment_id: int) -> Deployment:
        """Continue an interrupted deployment from its first unfinished stage and batch."""
        return self.control.resume(user, deployment_id)

    def run_again(self, user: str, deployment_id: int) -> Deployment:
        """Resume, running a step whose hosts' journals are gone a second time (a human's call)."""
        return self.control.run_again(user, deployment_id)

    def hold(self, user: str, deployment_id: int) -> Deployment:
        """Hold: stop an automatic rollback from starting; the deployment stays as it is."""
        return self.control.hold(user, deployment_id)

    def continue_monitoring(self, user: str, deployment_id: int) -> Deployment:
        """Continue a monitoring window that holds on an inconclusive check (its next round runs)."""
        return self.monitoring.resume_window(user, deployment_id, self.directory)

    def signoff(self, user: str, channel: str, env: str) -> Deployment:
        """Post the sign-off card for what `env` runs now."""
        return self.signoffs.request(user, channel, env)


__all__ = ["Engine", "EnvStatus", "Refused"]
