"""In-flight control: abort, Resume and Hold.

- **Abort** cancels what has not started, stops a running deployment after its current batch,
  ends a monitoring window early (keeping the release and offering a rollback), and gives up an
  interrupted run (offering a rollback).
- **Resume** continues an interrupted deployment from its resume cursor.
- **Hold** stops a waiting automatic rollback from starting.
"""

from __future__ import annotations

from typing import Protocol

from bot.chat.base import Directory
from bot.domain.actions import Action
from bot.domain.card import Button
from bot.domain.deployment import Deployment, Event, State
from bot.domain.errors import Refused
from bot.engine.failures import Failures
from bot.engine.journal import unsure_steps
from bot.engine.policy import may_operate
from bot.engine.port import Ledger, Notifier, RunQueue, Timer, Timers
from bot.store.base import Store


class Stoppable(RunQueue, Protocol):
    """The runs: queue a deployment, or stop one running here after its batch."""

    def stop_after_batch(self, deployment_id: int) -> bool:
        """Stop the run after its current batch; False when it does not run here."""
        ...


class Control:
    """Abort, Resume and Hold."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        timers: Timers,
        runs: Stoppable,
        failures: Failures,
        directory: Directory,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.timers = timers
        self.runs = runs
        self.failures = failures
        self.directory = directory

    def _may_operate(self, user: str, env: str, action: str, deployment_id: int | None = None) -> None:
        if why := may_operate(self.ledger.env(env), user, self.directory):
            self.ledger.refuse(user, env, action, why, deployment_id)

    def abort(self, user: str, env_name: str) -> Deployment:
        """Stop the in-flight deployment of `env` after its current batch (or cancel a pending one)."""
        env = self.ledger.env(env_name)
        self._may_operate(user, env.name, "abort")
        d = self.store.active(env.name)
        if d is None:
            raise Refused(f"nothing is in flight in {env.name}")
        if d.state in (State.PENDING, State.SCHEDULED, State.APPROVED):
            self.timers.cancel(d.id)
            return self.ledger.save(d, Event.CANCEL, user, "abort", refresh=True)
        if d.state == State.MONITORING:
            return self._stop_monitoring(user, d)
        if d.state == State.GATED:
            why = f"aborted by {user} at the gate"
            d = self.ledger.save(d, Event.ABORT, user, "abort", error=why, refresh=True)
            self.failures.on_failure(d, why, automatic=False)
            return d
        if d.state == State.INTERRUPTED:
            d = self.ledger.save(d, Event.FAIL, user, "give_up", error=f"given up by {user}", refresh=True)
            self.notify.settle_alerts(d.id, f"🛑 Given up by {user}.")
            self.failures.on_failure(d, f"interrupted run given up by {user}", automatic=False)
            return d
        if d.state != State.RUNNING:
            raise Refused(f"{d.label} is {d.state.value}; nothing to abort")
        if not self.runs.stop_after_batch(d.id):
            raise Refused(f"{d.label} is not running in this process")
        self.ledger.log(user, "abort_requested", d)
        return d

    def _stop_monitoring(self, user: str, d: Deployment) -> Deployment:
        """Abort during the window: it ends, the release stays, a rollback is offered."""
        self.timers.cancel(d.id)
        d = self.ledger.save(
            d, Event.SUCCEED, user, "monitoring_stopped", detail="aborted by " + user, refresh=True
        )
        self.notify.alert(
            d,
            f"Monitoring of {d.label} stopped by {user}; {d.env} keeps {d.ref}. Roll it back?",
            (Button("Roll back", Action.ROLLBACK_NOW, str(d.id), "danger"),),
            [],
        )
        return d

    def resume(self, user: str, deployment_id: int) -> Deployment:
        """Continue an interrupted deployment from its first unfinished stage and batch."""
        d = self.ledger.get(deployment_id)
        self._may_operate(user, d.env, "resume", d.id)
        if d.state != State.INTERRUPTED:
            raise Refused(f"{d.label} is {d.state.value}; only an interrupted deployment can be resumed")
        self.ledger.log(user, "resume_requested", d)
        self.notify.settle_alerts(deployment_id, f"▶️ Resumed by {user}.")
        self.runs.submit(d)
        return d

    def run_again(self, user: str, deployment_id: int) -> Deployment:
        """Resume, allowing the steps whose hosts' journals are gone (or lost them) to run a
        second time: a human's call, never the bot's."""
        d = self.ledger.get(deployment_id)
        self._may_operate(user, d.env, "resume", d.id)
        if d.state != State.INTERRUPTED:
            raise Refused(f"{d.label} is {d.state.value}; only an interrupted deployment can be resumed")
        allowed = tuple(sorted(unsure_steps(d)))
        d = self.ledger.amend(
            deployment_id, lambda cur: cur.with_details(rerun=(*cur.details.rerun, *allowed))
        )
        self.ledger.log(user, "run_again_requested", d, "; ".join(allowed))
        self.notify.settle_alerts(deployment_id, f"▶️ {user} runs the step again and resumes.")
        self.runs.submit(d)
        return d

    def hold(self, user: str, deployment_id: int) -> Deployment:
        """Hold: stop an automatic rollback from starting; the deployment stays as it is."""
        d = self.ledger.get(deployment_id)
        self._may_operate(user, d.env, "hold", d.id)
        if not self.timers.cancel(deployment_id, Timer.AUTO_ROLLBACK):
            raise Refused(f"no automatic rollback of {d.label} is waiting: nothing to hold")
        d = self.ledger.amend(deployment_id, lambda cur: cur.with_details(hold=user))
        self.ledger.log(user, "hold", d)
        self.notify.settle_alerts(
            deployment_id,
            f"✋ Held by {user}: no automatic rollback.",
            keep=(Button("Roll back now", Action.ROLLBACK_NOW, str(d.id), "danger"),),
        )
        return d


__all__ = ["Control"]
