"""The deploy card as neutral data: what every chat adapter renders (Block Kit, terminal text).

`bot.engine.cards` builds cards from deployments. Buttons carry an `action` (what the handler
does) and a `value` (which deployment), never free text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.domain.actions import Action
from bot.domain.states import State
from bot.domain.tally import StageTally

ButtonStyle = Literal["primary", "danger"] | None


@dataclass(frozen=True)
class Button:
    """A button: `action` names the handler, `value` the deployment it acts on."""

    label: str
    action: Action
    value: str
    style: ButtonStyle = None


@dataclass(frozen=True)
class ChecklistItem:
    """One checklist line (1-based `number` as people refer to it), in its named `phase` if the
    checklist has phases (items of a phase are consecutive)."""

    number: int
    text: str
    ticked: bool
    phase: str | None = None


@dataclass(frozen=True)
class Link:
    """A link a card shows: `text` people read, `url` it leads to (the web view, a CI run)."""

    text: str
    url: str


@dataclass(frozen=True)
class Card:
    """Everything a deploy card shows."""

    deployment_id: int
    title: str
    state: State
    status_line: str
    fields: tuple[tuple[str, str], ...]
    changelog: tuple[str, ...] = ()
    changelog_note: str | None = None
    warnings: tuple[str, ...] = ()
    checklist: tuple[ChecklistItem, ...] = ()
    checklist_open: bool = False
    approvals_line: str | None = None
    buttons: tuple[Button, ...] = ()
    footer: str | None = None
    kind: Literal["deploy", "signoff"] = "deploy"
    lines: tuple[str, ...] = ()  # extra lines (stage progress, monitoring, checks)
    links: tuple[Link, ...] = ()  # the web view, failing CI contexts
    #: The run's stages so far, hosts done / failed / running (also in `lines`, as text): a
    #: terminal can show the running one in place, counting its elapsed time on.
    stages: tuple[StageTally, ...] = ()
