"""The store seam: the small interface the engine needs from persistence.

Rules every implementation keeps:
- at most one *active* deployment per environment, enforced by the database itself
  (a unique partial index), raising `ActiveDeploymentExists`;
- `transition` is compare-and-set on `version`, raising `StaleDeployment` when someone else
  changed the deployment first (that is what makes double clicks harmless);
- a deployment change and its event-log line are written in one transaction;
- the event log is append-only;
- a queued run (`enqueue_run`) is claimed by exactly one caller across replicas (`claim_run`),
  and leaves the queue in the same transaction as the deployment leaves the state it was
  queued in (so a run that started is never claimed again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.domain.deployment import Deployment, EventRecord, Lock, State
from runners import HostResult


@dataclass(frozen=True)
class Schedule:
    """A row of timed work. `kind` names the handler; `payload` is small JSON-able data."""

    kind: str
    run_at: datetime
    deployment_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    state: str = "pending"  # pending | claimed | done | cancelled
    #: Idempotency: a second add with the same key returns the first row instead of a new one.
    key: str | None = None
    #: The scheduler (one per process) that claimed the row; a claimed row whose claimer is gone
    #: is an orphan the next leader fires again (see `bot.scheduler`).
    claimed_by: str | None = None


@dataclass(frozen=True)
class CheckRecord:
    """One stored check result."""

    name: str
    kind: str
    ok: bool
    at: datetime
    observed: str | None = None
    latency: float = 0.0
    error: str | None = None
    round: int = 0
    deployment_id: int | None = None
    env: str | None = None


class StoreError(Exception):
    """The store cannot do what was asked (bad URL, unreachable database...)."""


class ActiveDeploymentExists(StoreError):
    """The environment already has an active deployment."""

    def __init__(self, existing: Deployment | None) -> None:
        who = f"{existing.label} by {existing.requester} ({existing.state.value})" if existing else "another"
        super().__init__(f"{who} is already in progress")
        self.existing = existing


class StaleDeployment(StoreError):
    """The deployment changed since it was read (compare-and-set on version failed)."""


class Store(Protocol):
    """Persistence for the engine. Implementations must be safe to use from several threads."""

    def create_deployment(self, d: Deployment, event: EventRecord) -> Deployment:
        """Insert `d` (id assigned) with its event; ActiveDeploymentExists if the env is taken."""
        ...

    def transition(
        self, d: Deployment, expected_version: int, event: EventRecord | None = None
    ) -> Deployment:
        """Save `d` if the stored version is still `expected_version`; returns it with version+1."""
        ...

    def get(self, deployment_id: int) -> Deployment | None:
        """One deployment by id."""
        ...

    def active(self, env: str) -> Deployment | None:
        """The active deployment of `env`, if any."""
        ...

    def deployments(
        self,
        env: str | None = None,
        *,
        states: Sequence[State] | None = None,
        kind: str | None = None,
        limit: int = 20,
        before_id: int | None = None,
        since: datetime | None = None,
    ) -> list[Deployment]:
        """Deployments, newest first, filtered (`since`: created at or after it)."""
        ...

    def current_release(self, env: str) -> Deployment | None:
        """The newest live deployment of `env` (what it runs now)."""
        ...

    def append_event(self, event: EventRecord) -> EventRecord:
        """Append one line to the event log."""
        ...

    def events(
        self,
        *,
        deployment_id: int | None = None,
        env: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        after_id: int | None = None,
    ) -> list[EventRecord]:
        """Event log lines, oldest first (`after_id`: only those after that line, to page)."""
        ...

    def get_lock(self, env: str) -> Lock | None:
        """The lock on `env`, if any."""
        ...

    def set_lock(self, lock: Lock, event: EventRecord) -> bool:
        """Lock an env; False when it is already locked."""
        ...

    def clear_lock(self, env: str, event: EventRecord) -> Lock | None:
        """Unlock an env; returns the lock that was removed (None if it was not locked)."""
        ...

    def locks(self) -> list[Lock]:
        """Every lock."""
        ...

    def record_host_results(self, deployment_id: int, stage: str, results: Sequence[HostResult]) -> None:
        """Store per-host results of one step."""
        ...

    def host_results(self, deployment_id: int) -> list[dict[str, Any]]:
        """Per-host results of a deployment, in order."""
        ...

    def claim(self, key: str, at: datetime) -> bool:
        """Idempotency: True the first time `key` is claimed, False every time after."""
        ...

    def heartbeat(self, deployment_id: int, at: datetime) -> bool:
        """Record that the process running a deployment is alive (does not bump version).

        False when the deployment is no longer running (another process declared it
        interrupted): the caller's run is fenced off and must stop.
        """
        ...

    # -- schedules: timed work (monitor rounds, expiries, scheduled deploys) ----------------
    def add_schedule(self, s: Schedule) -> Schedule:
        """Insert a schedule row (id assigned); with a `key` already used, return that row instead."""
        ...

    def pending_schedules(self, *, due_before: datetime | None = None) -> list[Schedule]:
        """Schedules not yet claimed or cancelled, soonest first (optionally only those due)."""
        ...

    def claim_schedule(self, schedule_id: int, at: datetime, owner: str = "") -> bool:
        """Mark a pending schedule as taken by `owner`; True for exactly one caller across replicas."""
        ...

    def finish_schedule(self, schedule_id: int, at: datetime) -> None:
        """Mark a claimed schedule as done (its handler returned)."""
        ...

    def orphaned_schedules(self, owner: str) -> list[Schedule]:
        """Schedules claimed by someone other than `owner` and never finished, oldest first."""
        ...

    def reclaim_schedule(self, schedule_id: int, at: datetime, owner: str, previous: str | None) -> bool:
        """Take over an orphan claimed by `previous`; True for exactly one caller."""
        ...

    def cancel_schedules(self, deployment_id: int, kind: str | None = None) -> int:
        """Cancel pending schedules of a deployment (of one kind); returns how many."""
        ...

    # -- the run queue: runs waiting for a worker of any replica --------------------------------
    def enqueue_run(self, deployment_id: int, state: State, at: datetime) -> bool:
        """Queue a run of a deployment that is in `state` now (approved, scheduled, interrupted:
        what the run starts from); False (nothing queued) when it is not. Queuing it again is a no-op."""
        ...

    def claim_run(self, owner: str, at: datetime, stale_before: datetime) -> int | None:
        """Take the oldest queued run whose deployment is still in its queued state and that nobody
        holds (or another owner claimed before `stale_before`, and never started); its id, or None.

        Exactly one caller gets each run, across replicas (the claim is a row lock skipped by the
        others); the row goes when the deployment leaves the queued state (`transition`).
        """
        ...

    def release_run(self, deployment_id: int, owner: str) -> None:
        """Drop `owner`'s claim of a run that ended without starting (a no-op once it started)."""
        ...

    def on_run_queued(self, wake: Callable[[], None]) -> None:
        """Call `wake` when another process may have queued a run: a hint only (it may never
        come), `claim_run` is the truth. Stops at `close()`; a single-process store never calls it."""
        ...

    # -- check results ------------------------------------------------------------------------
    def record_check_results(
        self, deployment_id: int | None, env: str, results: Sequence[CheckRecord]
    ) -> None:
        """Store one round of check results."""
        ...

    def check_results(
        self,
        *,
        env: str | None = None,
        deployment_id: int | None = None,
        round: int | None = None,
        limit: int = 50,
    ) -> list[CheckRecord]:
        """Check results newest first (optionally one monitoring round of a deployment)."""
        ...

    def prune(self, older_than: datetime) -> int:
        """Retention: delete check results, host output of finished deployments, idempotency keys
        and finished schedules older than `older_than`; returns rows removed.

        Deployments and the event log are kept (see `prune_events`).
        """
        ...

    def prune_events(self, older_than: datetime) -> int:
        """Event-log retention: delete events older than `older_than`, in small batches (each its
        own transaction); returns how many. What is newer stays, and exports as before."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
