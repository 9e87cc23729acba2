"""Failures: the alert in the channel, Hold, and the automatic rollback with the lock after it.

A failed deploy (a step, a smoke check, a monitoring round, or an abort) posts one alert that
mentions the requester and on-call. With `auto_rollback` the environment's last good release is
put back: at once, or after `rollback_grace` unless someone presses Hold; then, with
`lock_after_rollback`, the environment is locked until a human unlocks it with a reason. A
failed rollback only alerts: nothing more is tried automatically.

After an irreversible step ran, nothing is rolled back by itself: the alert names the step and
offers the choices its `on_failure` names (Undo, Restore, Hold), each for an approver to press.
"""

from __future__ import annotations

import logging

from bot.domain.actions import Action
from bot.domain.card import Button
from bot.domain.deployment import Deployment
from bot.domain.durations import format_duration
from bot.domain.errors import Refused
from bot.engine.compensation import CHOICE_LABELS, choices, irreversible_ran
from bot.engine.locks import Locks
from bot.engine.port import Ledger, Notifier, Timer, Timers
from bot.engine.rollbacks import Rollbacks
from bot.store.base import Schedule, Store

log = logging.getLogger("gonogo.monitoring")


class Failures:
    """What happens when a deployment fails."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        timers: Timers,
        rollbacks: Rollbacks,
        locks: Locks,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.timers = timers
        self.rollbacks = rollbacks
        self.locks = locks
        timers.register(Timer.AUTO_ROLLBACK, self._auto_rollback)

    def on_failure(self, d: Deployment, why: str, *, automatic: bool = True) -> None:
        """Alert the channel; roll back automatically (after the grace period) when the env says so.

        `automatic=False` (a human abort) only offers the buttons.
        """
        env = self.ledger.env(d.env)
        mentions = self._mentions(d)
        if d.kind == "rollback":
            self.notify.alert(d, f"🚨 Rollback {d.label} of {d.env} FAILED: {why}", (), mentions)
            return
        verb = f"Deploy {d.label} of {d.ref} to {d.env}"
        if self.store.current_release(d.env) is None:
            self.notify.alert(
                d, f"🚨 {verb} FAILED: {why}. There is no earlier release to roll back to.", (), mentions
            )
            return
        roll_back_now = Button("Roll back now", Action.ROLLBACK_NOW, str(d.id), "danger")
        if irreversible := irreversible_ran(env, d):
            ran = ", ".join(i.describe() for i in irreversible)
            self.notify.alert(
                d,
                f"🚨 {verb} FAILED: {why}. Irreversible step {ran} ran, so gonogo does not roll back "
                "by itself: choose what to do (an approver, not the requester).",
                self.rollback_buttons(d, roll_back_now),
                mentions,
            )
        elif env.auto_rollback and automatic and env.rollback_grace:
            # Hold is offered only while there is an automatic rollback to hold: the timer first.
            grace = env.rollback_grace
            self.timers.add_in(Timer.AUTO_ROLLBACK, grace, deployment_id=d.id, why=why)
            self.notify.alert(
                d,
                f"🚨 {verb} FAILED: {why}. Rolling back automatically in {format_duration(grace, exact=True)} "
                "unless someone presses Hold.",
                (roll_back_now, Button("Hold", Action.HOLD, str(d.id))),
                mentions,
            )
        elif env.auto_rollback and automatic:
            self.notify.alert(d, f"🚨 {verb} FAILED: {why}. Rolling back automatically now.", (), mentions)
            self.roll_back_automatically(d, why)
        else:
            self.notify.alert(d, f"🚨 {verb} FAILED: {why}. Roll back?", (roll_back_now,), mentions)

    def rollback_buttons(self, d: Deployment, plain: Button) -> tuple[Button, ...]:
        """How `d` may be rolled back: `plain`, or after an irreversible step the choices it offers."""
        found = irreversible_ran(self.ledger.env(d.env), d)
        if not found:
            return (plain,)
        return tuple(
            Button(CHOICE_LABELS[c], Action.RECOVER, f"{d.id}:{c}", None if c == "hold" else "danger")
            for c in choices(found)
        )

    def _mentions(self, d: Deployment) -> list[str]:
        """Who an alert about `d` mentions: its requester and on-call (for an automatic rollback,
        whose requester is gonogo, the requester of what it undid)."""
        mentions = [d.requester, *self.ledger.env(d.env).on_call]
        if d.kind == "rollback" and d.rollback_of is not None:
            undone = self.store.get(d.rollback_of)
            mentions = [m for m in (undone.requester if undone else None, *mentions) if m and m != "gonogo"]
        return mentions

    def _auto_rollback(self, schedule: Schedule) -> None:
        if schedule.deployment_id is None:
            return
        d = self.store.get(schedule.deployment_id)
        if d is None or d.details.hold:
            return
        self.roll_back_automatically(d, str(schedule.payload.get("why", "check failed")))

    def roll_back_automatically(self, d: Deployment, why: str) -> None:
        """Start the automatic rollback and lock the environment until a human unlocks it."""
        if d.details.hold:
            return
        env = self.ledger.env(d.env)
        try:
            rollback = self.rollbacks.rollback_failed("gonogo", d.id, automatic=True)
        except Exception as exc:  # Refused or a store problem: tell people, never crash the scheduler
            self.notify.say(d, f"Automatic rollback of {d.label} could not start: {exc}")
            return
        if env.lock_after_rollback:
            try:
                self.locks.lock(
                    "gonogo", d.env, f"locked by gonogo after rollback of {d.label}: {why}", automatic=True
                )
            except Refused:
                pass  # already locked: keep the human's lock
        log.info("%s: automatic rollback %s started", d.label, rollback.label)


__all__ = ["Failures"]
