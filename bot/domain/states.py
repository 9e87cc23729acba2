"""The deployment state machine: states, named events and the transition table.

Pure: `bot.domain.deployment.transition()` applies an event to a deployment through this table;
an event the table does not allow raises `IllegalTransition`.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a deployment is in its life."""

    PENDING = "pending"  # card posted; checklist and approvals outstanding
    SCHEDULED = "scheduled"  # approved; waits for its start time
    APPROVED = "approved"  # approved; queued for the worker
    RUNNING = "running"  # stages executing
    GATED = "gated"  # stopped before a stage; waits for a human Go at its gate (no worker held)
    MONITORING = "monitoring"  # deployed and verified; monitoring window open
    SUCCEEDED = "succeeded"  # live; awaiting sign-off
    SIGNED_OFF = "signed_off"  # live and closed by a sign-off
    FAILED = "failed"
    DECLINED = "declined"  # a No-go
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # not approved in time
    ABORTED = "aborted"  # stopped by a human mid-rollout
    INTERRUPTED = "interrupted"  # its process died mid-run; waits for Resume or Roll back
    ROLLED_BACK = "rolled_back"  # was live, then undone by a rollback


class Event(StrEnum):
    """Named events that move a deployment between states."""

    APPROVE = "approve"
    SCHEDULE = "schedule"
    START = "start"
    MONITOR = "monitor"
    SUCCEED = "succeed"
    FAIL = "fail"
    DECLINE = "decline"
    CANCEL = "cancel"
    EXPIRE = "expire"
    ABORT = "abort"
    INTERRUPT = "interrupt"
    RESUME = "resume"
    GATE = "gate"
    SIGN_OFF = "sign_off"
    ROLL_BACK = "roll_back"


S, E = State, Event
TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.PENDING, E.APPROVE): S.APPROVED,
    (S.PENDING, E.SCHEDULE): S.SCHEDULED,
    (S.PENDING, E.DECLINE): S.DECLINED,
    (S.PENDING, E.CANCEL): S.CANCELLED,
    (S.PENDING, E.EXPIRE): S.EXPIRED,
    (S.SCHEDULED, E.START): S.RUNNING,
    (S.SCHEDULED, E.CANCEL): S.CANCELLED,
    (S.APPROVED, E.START): S.RUNNING,
    (S.APPROVED, E.CANCEL): S.CANCELLED,
    (S.APPROVED, E.INTERRUPT): S.INTERRUPTED,
    (S.RUNNING, E.MONITOR): S.MONITORING,
    (S.RUNNING, E.SUCCEED): S.SUCCEEDED,
    (S.RUNNING, E.FAIL): S.FAILED,
    (S.RUNNING, E.ABORT): S.ABORTED,
    (S.RUNNING, E.INTERRUPT): S.INTERRUPTED,
    (S.RUNNING, E.GATE): S.GATED,
    (S.GATED, E.APPROVE): S.APPROVED,  # the gate's last Go: queued again, from where it stopped
    (S.GATED, E.ABORT): S.ABORTED,  # No-go at the gate (or /deploy abort)
    (S.INTERRUPTED, E.RESUME): S.RUNNING,
    (S.INTERRUPTED, E.FAIL): S.FAILED,
    (S.MONITORING, E.SUCCEED): S.SUCCEEDED,
    (S.MONITORING, E.FAIL): S.FAILED,
    (S.MONITORING, E.INTERRUPT): S.INTERRUPTED,
    (S.MONITORING, E.ROLL_BACK): S.ROLLED_BACK,
    (S.SUCCEEDED, E.SIGN_OFF): S.SIGNED_OFF,
    (S.SUCCEEDED, E.ROLL_BACK): S.ROLLED_BACK,
    (S.SIGNED_OFF, E.ROLL_BACK): S.ROLLED_BACK,
    (S.FAILED, E.ROLL_BACK): S.ROLLED_BACK,
    (S.ABORTED, E.ROLL_BACK): S.ROLLED_BACK,
}

#: States in which a deployment holds its environment (at most one per environment).
ACTIVE_STATES = frozenset(
    {S.PENDING, S.SCHEDULED, S.APPROVED, S.RUNNING, S.GATED, S.MONITORING, S.INTERRUPTED}
)
#: States in which a deployment's release is what the environment runs.
LIVE_STATES = frozenset({S.MONITORING, S.SUCCEEDED, S.SIGNED_OFF})
#: States from which nothing but a rollback mark can happen.
FINAL_STATES = frozenset(
    {S.SIGNED_OFF, S.FAILED, S.DECLINED, S.CANCELLED, S.EXPIRED, S.ABORTED, S.ROLLED_BACK, S.SUCCEEDED}
)


#: One icon per state, as cards, status and history show it.
STATE_ICON = {
    State.PENDING: "⏳", State.SCHEDULED: "🕒", State.APPROVED: "✅", State.RUNNING: "🚀", State.GATED: "🚦",
    State.MONITORING: "👀", State.SUCCEEDED: "✅", State.SIGNED_OFF: "🏁", State.FAILED: "❌",
    State.DECLINED: "⛔", State.CANCELLED: "🚫", State.EXPIRED: "⌛", State.ABORTED: "🛑",
    State.INTERRUPTED: "⚠️", State.ROLLED_BACK: "↩️",
}  # fmt: skip


class IllegalTransition(Exception):
    """An event that the transition table does not allow from the current state."""

    def __init__(self, state: State, event: Event, deployment_id: int | None) -> None:
        super().__init__(f"deployment #{deployment_id} is {state.value}; cannot {event.value}")
        self.state = state
        self.event = event


__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "LIVE_STATES",
    "STATE_ICON",
    "TRANSITIONS",
    "Event",
    "IllegalTransition",
    "State",
]
