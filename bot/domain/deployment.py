"""The deployment and the other records: `Deployment`, `Approval`, `EventRecord`, `Lock`.

Pure: no I/O, no Slack, no database. `transition()` is the only way a deployment changes
state (through the table of `bot.domain.states`); an event that the table does not allow raises
`IllegalTransition` and nothing is persisted. Rollback is a deployment of kind `rollback`
(Shipit's `Rollback < Deploy`); what differs between the kinds is `bot.domain.kinds`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.domain.details import Details
from bot.domain.kinds import Kind, KindRules, rules_for
from bot.domain.states import (
    ACTIVE_STATES,
    FINAL_STATES,
    LIVE_STATES,
    STATE_ICON,
    TRANSITIONS,
    Event,
    IllegalTransition,
    State,
)

#: The id of a deployment the store has not saved yet (stores number deployments from 1).
UNSAVED = 0


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
    #: Assigned by the store when the deployment is first saved; `UNSAVED` until then.
    id: int = 0
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
    details: Details = field(default_factory=Details)

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
        return f"#{self.id}" if self.id != UNSAVED else "#?"

    @property
    def rules(self) -> KindRules:
        """What this kind of deployment does and how it is named (deploy or rollback)."""
        return rules_for(self.kind)

    def with_details(self, **changes: Any) -> Deployment:
        """A copy whose details have `changes`."""
        return replace(self, details=replace(self.details, **changes))

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


__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "LIVE_STATES",
    "STATE_ICON",
    "TRANSITIONS",
    "UNSAVED",
    "Approval",
    "Deployment",
    "Event",
    "EventRecord",
    "IllegalTransition",
    "Kind",
    "Lock",
    "State",
    "transition",
]
