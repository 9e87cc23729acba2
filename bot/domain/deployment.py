"""The deployment domain: states, named events, the transition table, and the records.

Pure: no I/O, no Slack, no database. `transition()` is the only way a deployment changes
state; an event that the table does not allow raises `IllegalTransition` and nothing is
persisted. Rollback is a deployment of kind `rollback` (Shipit's `Rollback < Deploy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

Kind = Literal["deploy", "rollback"]


class State(StrEnum):
    """Where a deployment is in its life."""

    PENDING = "pending"  # card posted; checklist and approvals outstanding
    SCHEDULED = "scheduled"  # approved; waits for its start time
    APPROVED = "approved"  # approved; queued for the worker
    RUNNING = "running"  # stages executing
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
ACTIVE_STATES = frozenset({S.PENDING, S.SCHEDULED, S.APPROVED, S.RUNNING, S.MONITORING, S.INTERRUPTED})
#: States in which a deployment's release is what the environment runs.
LIVE_STATES = frozenset({S.MONITORING, S.SUCCEEDED, S.SIGNED_OFF})
#: States from which nothing but a rollback mark can happen.
FINAL_STATES = frozenset(
    {S.SIGNED_OFF, S.FAILED, S.DECLINED, S.CANCELLED, S.EXPIRED, S.ABORTED, S.ROLLED_BACK, S.SUCCEEDED}
)


#: One icon per state, as cards, status and history show it.
STATE_ICON = {
    State.PENDING: "⏳", State.SCHEDULED: "🕒", State.APPROVED: "✅", State.RUNNING: "🚀",
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


@dataclass(frozen=True)
class Approval:
    """One approver's Go."""

    user: str
    at: datetime


@dataclass(frozen=True)
class Deployment:
    """A deployment (or rollback) of one ref to one environment."""

    env: str
    requester: str
    ref: str
    sha: str | None
    created_at: datetime
    kind: Kind = "deploy"
    state: State = State.PENDING
    id: int | None = None
    version: int = 0
    reason: str | None = None
    dry_run: bool = False
    force: bool = False
    checklist: tuple[bool, ...] = ()
    approvals: tuple[Approval, ...] = ()
    required_approvals: int = 1
    channel: str | None = None
    message_ts: str | None = None
    release_id: int | None = None  # the deployment whose release directory this one runs
    rollback_of: int | None = None  # for a rollback: the deployment it undoes
    committed_at: datetime | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: When its release went live (verify passed): the time lead time and restores are measured to.
    live_at: datetime | None = None
    heartbeat_at: datetime | None = None
    updated_at: datetime | None = None
    error: str | None = None
    progress: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # changelog, warnings, resume cursor

    @property
    def active(self) -> bool:
        """True while the deployment holds its environment."""
        return self.state in ACTIVE_STATES

    @property
    def short_sha(self) -> str:
        """The first 7 characters of the sha, or `?` when it is unknown."""
        return self.sha[:7] if self.sha else "?"

    @property
    def label(self) -> str:
        """`#12`, the way people refer to a deployment."""
        return f"#{self.id}" if self.id is not None else "#?"

    def approvers(self) -> list[str]:
        """Users who have approved, in order."""
        return [a.user for a in self.approvals]

    def checklist_done(self) -> bool:
        """True when every checklist item is ticked (an empty checklist is done)."""
        return all(self.checklist)


def transition(d: Deployment, event: Event, *, at: datetime, **changes: Any) -> Deployment:
    """Apply `event` to `d`, returning the new deployment; raise IllegalTransition if not allowed.

    `changes` are other fields to set in the same step (error, progress, finished_at...).
    """
    target = TRANSITIONS.get((d.state, event))
    if target is None:
        raise IllegalTransition(d.state, event, d.id)
    stamps: dict[str, Any] = {"state": target, "updated_at": at}
    if target == State.RUNNING and d.started_at is None:
        stamps["started_at"] = at
    if target in FINAL_STATES and target != State.ROLLED_BACK and d.finished_at is None:
        stamps["finished_at"] = at
    if target in LIVE_STATES and d.live_at is None:
        stamps["live_at"] = at
    return replace(d, **{**stamps, **changes})


@dataclass(frozen=True)
class EventRecord:
    """One line of the append-only event log: who did what, when, to which deployment."""

    at: datetime
    actor: str
    action: str
    env: str | None = None
    deployment_id: int | None = None
    detail: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class Lock:
    """An environment lock: no deploys until someone unlocks it with a reason."""

    env: str
    owner: str
    reason: str
    at: datetime
    automatic: bool = False
