"""The ledger: every read and write of a deployment, compare-and-set, with hooks on transitions.

A deployment changes in one way only: the fresh row is read, a change is applied to it, and the
result is saved if nobody saved in between (`Store.transition` checks the version); on a race
the change is applied again to the new fresh row (`write`, the one compare-and-set loop). A
change may raise `Refused`, which ends the loop: that is how a double click or a second replica
loses cleanly instead of acting twice.

A saved state change is logged, counted and then handed to the transition hooks registered with
`on_transition` (Shipit's `after_transition`): what must follow a state (an approved deployment
is queued; a finished rollback settles its sign-off) is declared where the engine is composed,
not hard-coded in the save path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import NoReturn

from bot.config import Config, Environment
from bot.domain.deployment import Deployment, Event, EventRecord, IllegalTransition, State, transition
from bot.domain.errors import Refused
from bot.engine.port import Change, TransitionHook
from bot.ops import metrics
from bot.store.base import StaleDeployment, Store
from bot.timing.clock import Clock

log = logging.getLogger("gonogo.engine")

#: Compare-and-set attempts before a write gives up.
MAX_CAS_RETRIES = 20
#: Final states counted in the deployments metric.
_COUNTED = frozenset(
    {State.SUCCEEDED, State.FAILED, State.ABORTED, State.DECLINED, State.CANCELLED, State.EXPIRED,
     State.INTERRUPTED, State.ROLLED_BACK}
)  # fmt: skip


class Ledger:
    """Deployments in the store, read fresh and written compare-and-set (implements `port.Ledger`)."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._hooks: list[tuple[State | None, TransitionHook]] = []
        self._refresh: Callable[[Deployment], None] = lambda d: None

    def refresh_with(self, refresh: Callable[[Deployment], None]) -> None:
        """How a write asked to `refresh` updates the card (the notifier's `refresh_card`)."""
        self._refresh = refresh

    def on_transition(self, hook: TransitionHook, *, to: State | None = None) -> None:
        """Call `hook(before, after)` after every saved change into state `to` (any state: None)."""
        self._hooks.append((to, hook))

    # -- reads ------------------------------------------------------------------------------
    def get(self, deployment_id: int) -> Deployment:
        """The stored deployment; Refused when there is none."""
        d = self.store.get(deployment_id)
        if d is None:
            raise Refused(f"there is no deployment #{deployment_id}")
        return d

    def env(self, name: str | None) -> Environment:
        """The configured environment; Refused when it is unknown."""
        env = self.config.environments.get(name or "")
        if env is None:
            raise Refused(f"unknown environment {name!r}; known: {', '.join(self.config.environments)}")
        return env

    def now(self) -> datetime:
        """The engine's clock."""
        return self.clock.now()

    # -- writes -----------------------------------------------------------------------------
    def write(
        self,
        deployment_id: int,
        change: Change,
        *,
        actor: str | None = None,
        action: str | None = None,
        detail: str | Callable[[Deployment], str | None] | None = None,
        refresh: bool = False,
        first: Deployment | None = None,
    ) -> Deployment:
        """Apply `change` to the fresh row and save it compare-and-set, retrying on races.

        `change` returns the row to save, or None when there is nothing to change (the fresh row
        is returned); it may raise Refused. With `action`, the save carries an event-log line
        (`detail` may be computed from the saved row). `first` is tried before reading.
        """
        d = first
        for attempt in range(MAX_CAS_RETRIES):
            if d is None:
                fresh = self.store.get(deployment_id)
                if fresh is None:
                    lost = attempt > 0 or first is not None  # it was there a moment ago
                    raise Refused(
                        f"#{deployment_id} no longer exists"
                        if lost
                        else f"there is no deployment #{deployment_id}"
                    )
                d = fresh
            new = change(d)
            if new is None:
                return d
            text = detail(new) if callable(detail) else detail
            event = self.event(actor or "gonogo", action, d, text) if action else None
            try:
                saved = self.store.transition(new, d.version, event)
            except StaleDeployment:
                d = None
                continue
            self._saved(d, saved, action=action, actor=actor, detail=text, refresh=refresh)
            return saved
        raise Refused("too many concurrent changes; try again")

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
        """Apply `event` to the latest `d` and save it, with an event-log line; Refused if illegal."""

        def step(cur: Deployment) -> Deployment:
            try:
                return transition(cur, event, at=self.clock.now(), **changes)
            except IllegalTransition as exc:
                raise Refused(str(exc)) from None

        return self.write(
            d.id,  # type: ignore[arg-type]
            step,
            actor=actor,
            action=action,
            detail=detail,
            refresh=refresh,
            first=d,
        )

    def amend(self, deployment_id: int, change: Callable[[Deployment], Deployment]) -> Deployment:
        """Save a change that is not a transition (progress, details), compare-and-set."""
        return self.write(deployment_id, change)

    def _saved(
        self,
        before: Deployment,
        after: Deployment,
        *,
        action: str | None,
        actor: str | None,
        detail: str | None,
        refresh: bool,
    ) -> None:
        moved = after.state != before.state
        if moved:
            log.info(
                "%s %s: %s -> %s (%s by %s)%s", after.label, after.env, before.state.value, after.state.value,
                action, actor or "gonogo", f": {detail}" if detail else "",
                extra={"deployment_id": after.id, "env": after.env},
            )  # fmt: skip
            if after.state in _COUNTED:
                metrics.DEPLOYMENTS.labels(after.env, after.kind, after.state.value).inc()
        if refresh:
            self._refresh(after)
        if moved:
            for to, hook in self._hooks:
                if to is None or to == after.state:
                    try:
                        hook(before, after)
                    except Exception:
                        log.exception("%s: a hook after %s failed", after.label, after.state.value)

    # -- the event log ----------------------------------------------------------------------
    def event(self, actor: str, action: str, d: Deployment, detail: str | None = None) -> EventRecord:
        """An event-log line about `d`."""
        return EventRecord(
            at=self.clock.now(), actor=actor, action=action, env=d.env, deployment_id=d.id, detail=detail
        )

    def log(self, actor: str, action: str, d: Deployment, detail: str | None = None) -> None:
        """Append a line about `d` to the event log."""
        self.store.append_event(self.event(actor, action, d, detail))

    def record_refusal(
        self, user: str, env: str, action: str, reason: str, deployment_id: int | None = None
    ) -> None:
        """Record a refused action in the event log (the caller raises)."""
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

    def refuse(
        self, user: str, env: str, action: str, reason: str, deployment_id: int | None = None
    ) -> NoReturn:
        """Record a refused action in the event log, then raise Refused with `reason`."""
        self.record_refusal(user, env, action, reason, deployment_id)
        raise Refused(reason)

    def refuse_if(
        self, reason: str | None, user: str, env: str, action: str, deployment_id: int | None = None
    ) -> None:
        """`refuse` when a policy check gave a reason; nothing when it gave None."""
        if reason:
            self.refuse(user, env, action, reason, deployment_id)


__all__ = ["MAX_CAS_RETRIES", "Ledger"]
