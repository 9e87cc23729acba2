"""The narrow interfaces the engine's parts work through, instead of the whole `Engine`.

Runs, monitoring, failures, sign-off and the request/approval services each receive the few
things they need: the `Ledger` (read and write deployments, compare-and-set, with the event log
and transition hooks), the `Notifier` (cards, threads, alerts), `Timers` (scheduled work) and a
`RunQueue` (hand a deployment to a worker). The engine (`bot.engine.engine`) builds the real
ones and wires them together; tests can give a part fakes of just these.

Only protocols live here, so every part imports this module and none imports another part's
class to type against: the import graph of the engine stays a DAG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import NoReturn, Protocol

from bot.chat.base import MessageRef
from bot.config import Environment
from bot.domain.card import Button, Card
from bot.domain.deployment import Deployment, Event, State
from bot.store.base import Schedule
from runners.base import Backend


class Timer(StrEnum):
    """The kinds of timed work the engine's parts schedule (rows in the schedules table)."""

    APPROVAL_EXPIRY = "approval_expiry"
    SCHEDULED_START = "scheduled_start"
    MONITOR_ROUND = "monitor_round"
    AUTO_ROLLBACK = "auto_rollback"
    SIGNOFF_REMINDER = "signoff_reminder"
    RETENTION = "retention"


#: Backends by environment (and whether it is a dry run): see `bot.app.backends`.
BackendFactory = Callable[[Environment, bool], Backend]
#: A transition hook: called with the deployment before and after a saved state change.
TransitionHook = Callable[[Deployment, Deployment], None]
#: A compare-and-set change: the fresh row in, the row to save out (None: nothing to save).
Change = Callable[[Deployment], Deployment | None]


class Ledger(Protocol):
    """The deployments' record: every read and write of a deployment goes through here."""

    def get(self, deployment_id: int) -> Deployment:
        """The stored deployment; Refused when there is none."""
        ...

    def env(self, name: str | None) -> Environment:
        """The configured environment; Refused when it is unknown."""
        ...

    def now(self) -> datetime:
        """The engine's clock."""
        ...

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
        """Apply `event` to the latest `d` and save it compare-and-set, with an event-log line;
        Refused when the transition is illegal."""
        ...

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
        """The one compare-and-set loop: apply `change` to the fresh row until it saves."""
        ...

    def amend(self, deployment_id: int, change: Callable[[Deployment], Deployment]) -> Deployment:
        """Save a change that is not a transition (progress, details), compare-and-set."""
        ...

    def log(self, actor: str, action: str, d: Deployment, detail: str | None = None) -> None:
        """Append a line about `d` to the event log."""
        ...

    def refuse(
        self, user: str, env: str, action: str, reason: str, deployment_id: int | None = None
    ) -> NoReturn:
        """Record a refused action in the event log, then raise Refused with `reason`."""
        ...

    def record_refusal(
        self, user: str, env: str, action: str, reason: str, deployment_id: int | None = None
    ) -> None:
        """Record a refused action in the event log (the caller raises)."""
        ...

    def on_transition(self, hook: TransitionHook, *, to: State | None = None) -> None:
        """Call `hook(before, after)` after every saved change into state `to` (any state: None)."""
        ...


class Notifier(Protocol):
    """What the engine says in chat about a deployment."""

    def post_card(self, d: Deployment) -> bool:
        """Post the deployment's card and remember where; False when it could not be posted."""
        ...

    def post_card_in(self, channel: str, card: Card) -> MessageRef | None:
        """Post another card of a deployment (its sign-off card); where it went, or None."""
        ...

    def refresh_card(self, d: Deployment) -> None:
        """Update the deployment's card in place from its latest stored state."""
        ...

    def refresh(
        self,
        d: Deployment,
        where: Callable[[Deployment], MessageRef | None],
        render: Callable[[Deployment], Card],
    ) -> None:
        """Update a card of `d` (found on the row by `where`, drawn by `render`) from the latest row."""
        ...

    def thread(self, d: Deployment, text: str) -> None:
        """Post details in the deployment's thread."""
        ...

    def thread_under(self, ref: MessageRef, text: str, *, deployment_id: int | None = None) -> None:
        """Post in the thread of another message of a deployment (its sign-off card)."""
        ...

    def say(self, d: Deployment, text: str) -> None:
        """Post in the deployment's channel."""
        ...

    def alert(self, d: Deployment, text: str, buttons: Sequence[Button], mentions: Sequence[str]) -> None:
        """Post an alert mentioning people, with buttons; remembered so it can be settled."""
        ...

    def settle_alerts(self, deployment_id: int, outcome: str, keep: Sequence[Button] = ()) -> None:
        """Say under each alert what happened; leave only the `keep` buttons."""
        ...

    def incident(
        self, d: Deployment, text: str, *, mentions: Sequence[str] = (), details: Sequence[str] = ()
    ) -> None:
        """Post the incident's one alert, or update it in place; `details` go into its thread."""
        ...

    def end_incident(self, deployment_id: int, note: str, *, replace_text: bool = False) -> None:
        """The incident is over: its alert says `note` (after what it said), without buttons."""
        ...


class Timers(Protocol):
    """Timed work (`bot.timing.scheduler.Scheduler`)."""

    def register(self, kind: str, handler: Callable[[Schedule], None]) -> None:
        """Route schedules of `kind` to `handler`."""
        ...

    def add(
        self,
        kind: str,
        run_at: datetime,
        *,
        deployment_id: int | None = None,
        key: str | None = None,
        **payload: object,
    ) -> Schedule:
        """Schedule work at `run_at`."""
        ...

    def add_in(
        self,
        kind: str,
        seconds: float,
        *,
        deployment_id: int | None = None,
        key: str | None = None,
        **payload: object,
    ) -> Schedule:
        """Schedule work `seconds` from now."""
        ...

    def cancel(self, deployment_id: int, kind: str | None = None) -> int:
        """Cancel a deployment's pending schedules (of `kind`, or all)."""
        ...


class RunQueue(Protocol):
    """Where approved deployments go to be run (`bot.engine.runs.Runs`)."""

    def submit(self, d: Deployment) -> None:
        """Queue `d` for a worker."""
        ...


__all__ = ["BackendFactory", "Change", "Ledger", "Notifier", "RunQueue", "Timer", "Timers", "TransitionHook"]
