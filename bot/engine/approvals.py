"""The pending card: checklist ticks, Go, No-go, cancel, approval expiry and scheduled starts.

Every change is a compare-and-set write on the fresh row (`Ledger.write`), so two people
ticking at once both count, and two Go clicks (or two approvers racing) approve once. The last
required Go moves the deployment to `approved` (the transition hook queues it) or, with
`--at`, to `scheduled` with a `scheduled_start` timer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.chat.base import Directory
from bot.domain.deployment import Approval, Deployment, Event, State, transition
from bot.domain.errors import Refused
from bot.engine.policy import may_approve, may_operate, window_refusal
from bot.engine.port import Ledger, Notifier, RunQueue, Timer, Timers
from bot.store.base import Schedule, Store


class Approvals:
    """What people do to a pending (or scheduled) deployment, and its timers."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        timers: Timers,
        queue: RunQueue,
        directory: Directory,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.timers = timers
        self.queue = queue
        self.directory = directory
        #: Checks before a Go counts, beyond the policy (the CI gate); each may raise Refused.
        self.guards: list[Callable[[str, Deployment], None]] = []
        timers.register(Timer.APPROVAL_EXPIRY, self._expire)
        timers.register(Timer.SCHEDULED_START, self._scheduled_start)

    # -- the checklist ----------------------------------------------------------------------
    def set_checklist(self, user: str, deployment_id: int, changes: dict[int, bool]) -> Deployment:
        """Set checklist items by number (1-based); idempotent."""

        def tick(d: Deployment) -> Deployment | None:
            env = self.ledger.env(d.env)
            if d.state != State.PENDING:
                raise Refused(f"{d.label} is {d.state.value}; its checklist is closed")
            if why := may_operate(env, user, self.directory):
                self.ledger.refuse(user, env.name, "tick", why, d.id)
            items = list(d.checklist)
            if any(not 1 <= number <= len(items) for number in changes):
                raise Refused(
                    f"the checklist has items 1 to {len(items)}" if items else "there is no checklist"
                )
            for number, value in changes.items():
                items[number - 1] = value
            if tuple(items) == d.checklist:
                return None
            return replace(d, checklist=tuple(items), updated_at=self.ledger.now())

        before = self.ledger.get(deployment_id)
        detail = ", ".join(f"{'ticked' if v else 'unticked'} {n}" for n, v in sorted(changes.items()))
        saved = self.ledger.write(
            deployment_id, tick, actor=user, action="checklist", detail=detail, first=before
        )
        if saved.version != before.version:
            self.notify.refresh_card(saved)
        return saved

    def tick(self, user: str, deployment_id: int, number: int, ticked: bool = True) -> Deployment:
        """Tick (or untick) checklist item `number` (1-based)."""
        return self.set_checklist(user, deployment_id, {number: ticked})

    def tick_all(self, user: str, deployment_id: int) -> Deployment:
        """Tick every checklist item."""
        d = self.ledger.get(deployment_id)
        return self.set_checklist(user, deployment_id, {i + 1: True for i in range(len(d.checklist))})

    # -- Go and No-go -----------------------------------------------------------------------
    def approve(self, user: str, deployment_id: int) -> Deployment:
        """Record `user`'s Go; the last required approval starts (or schedules) the deployment."""
        if self.guards:
            current = self.ledger.get(deployment_id)
            for guard in self.guards:
                guard(user, current)

        def go(d: Deployment) -> Deployment:
            self._refuse_go(user, d)
            now = self.ledger.now()
            new = replace(d, approvals=(*d.approvals, Approval(user, now)), updated_at=now)
            if len(new.approvals) < d.required_approvals:
                return new
            later = d.scheduled_at is not None and d.scheduled_at > now
            # The window was open when the card was posted; it must still be open at Go.
            checked = not later and d.kind == "deploy" and not d.force and not d.dry_run
            if checked and (window := window_refusal(self.ledger.env(d.env), now)):
                self.ledger.record_refusal(user, d.env, "approve", window, d.id)
                raise Refused(f"{window}. Go again then, or request it with --at.")
            return transition(new, Event.SCHEDULE if later else Event.APPROVE, at=now)

        saved = self.ledger.write(
            deployment_id,
            go,
            actor=user,
            action="approve",
            detail=lambda new: f"{len(new.approvals)}/{new.required_approvals}",
        )
        if saved.state in (State.APPROVED, State.SCHEDULED):
            self.timers.cancel(saved.id, Timer.APPROVAL_EXPIRY)
        if saved.state == State.SCHEDULED:
            self.timers.add(Timer.SCHEDULED_START, saved.scheduled_at, deployment_id=saved.id)  # type: ignore[arg-type]
        self.notify.refresh_card(saved)
        return saved

    def _refuse_go(self, user: str, d: Deployment) -> None:
        """Refuse (and record) a Go that may not count: wrong state, not an approver, twice,
        an open checklist, or a locked environment."""
        if d.state != State.PENDING:
            raise Refused(f"{d.label} is already {d.state.value}")
        if reason := may_approve(self.ledger.env(d.env), d, user, self.directory):
            self.ledger.refuse(user, d.env, "approve", reason, d.id)
        if user in d.approvers():
            raise Refused(f"you already approved {d.label}")
        if not d.checklist_done():
            open_items = [str(i + 1) for i, v in enumerate(d.checklist) if not v]
            why = f"tick every checklist item before Go (open: {', '.join(open_items)})"
            self.ledger.refuse(user, d.env, "approve", why, d.id)
        lock = self.store.get_lock(d.env)
        if lock is not None and d.kind == "deploy":
            self.ledger.refuse(
                user, d.env, "approve", f"{d.env} is locked by {lock.owner}: {lock.reason}", d.id
            )

    def decline(self, user: str, deployment_id: int, reason: str | None = None) -> Deployment:
        """No-go: an approver declines, or the requester cancels, a pending deployment."""
        d = self.ledger.get(deployment_id)
        if d.state not in (State.PENDING, State.SCHEDULED):
            raise Refused(f"{d.label} is already {d.state.value}")
        if user == d.requester:
            self.timers.cancel(deployment_id)
            return self.ledger.save(d, Event.CANCEL, user, "cancel", detail=reason, refresh=True)
        if refusal := may_approve(self.ledger.env(d.env), d, user, self.directory):
            self.ledger.refuse(user, d.env, "decline", refusal, d.id)
        self.timers.cancel(deployment_id)
        event = Event.CANCEL if d.state == State.SCHEDULED else Event.DECLINE
        return self.ledger.save(d, event, user, "decline", detail=reason, refresh=True)

    def cancel(self, user: str, deployment_id: int) -> Deployment:
        """Cancel a pending, approved or scheduled deployment (requester or an operator)."""
        d = self.ledger.get(deployment_id)
        if user != d.requester and (why := may_operate(self.ledger.env(d.env), user, self.directory)):
            self.ledger.refuse(user, d.env, "cancel", why, d.id)
        if d.state not in (State.PENDING, State.SCHEDULED, State.APPROVED):
            raise Refused(
                f"{d.label} is {d.state.value}; only a pending or scheduled deployment can be cancelled"
            )
        self.timers.cancel(deployment_id)
        return self.ledger.save(d, Event.CANCEL, user, "cancel", refresh=True)

    # -- timers -----------------------------------------------------------------------------
    def _expire(self, schedule: Schedule) -> None:
        d = self.store.get(schedule.deployment_id or 0)
        if d is None or d.state != State.PENDING:
            return
        try:
            d = self.ledger.save(
                d, Event.EXPIRE, "gonogo", "expire", detail="not approved in time", refresh=True
            )
        except Refused:
            return
        self.notify.thread(d, f"⌛ {d.label} expired: it was not approved in time.")

    def _scheduled_start(self, schedule: Schedule) -> None:
        d = self.store.get(schedule.deployment_id or 0)
        if d is None or d.state != State.SCHEDULED:
            return
        window = window_refusal(self.ledger.env(d.env), self.ledger.now())
        lock = self.store.get_lock(d.env)
        if (window and not d.force) or lock is not None:
            why = window or f"{d.env} is locked by {lock.owner}: {lock.reason}"  # type: ignore[union-attr]
            d = self.ledger.save(d, Event.CANCEL, "gonogo", "cancel", detail=why, error=why, refresh=True)
            self.notify.say(d, f"Scheduled {d.label} did not start: {why}")
            return
        self.queue.submit(d)


__all__ = ["Approvals"]
