"""The chat seam: how the engine talks to people. Adapters implement `Chat`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.domain.card import Button, Card


@dataclass(frozen=True)
class MessageRef:
    """Where a message lives: its channel and timestamp (Slack's message id)."""

    channel: str
    ts: str


class Chat(Protocol):
    """What the engine needs from a chat platform. Implementations never raise on send failures.

    `deployment_id`, where a method takes it, says which deployment a message is about; it is
    optional and only names the deployment in the log when a send fails (adapters may also
    know it from the card a message hangs under, or from a message's buttons).
    """

    def post_card(self, channel: str, card: Card) -> MessageRef | None:
        """Post a deploy card; None when it could not be posted."""
        ...

    def update_card(self, ref: MessageRef, card: Card) -> None:
        """Replace a posted card in place."""
        ...

    def post_thread(self, ref: MessageRef, text: str, *, deployment_id: int | None = None) -> None:
        """Post details in the card's thread."""
        ...

    def post_message(
        self,
        channel: str,
        text: str,
        *,
        buttons: Sequence[Button] = (),
        mentions: Sequence[str] = (),
        deployment_id: int | None = None,
    ) -> MessageRef | None:
        """Post a message (an alert, a sign-off request) in a channel, optionally with buttons."""
        ...

    def update_message(
        self,
        ref: MessageRef,
        text: str,
        *,
        buttons: Sequence[Button] = (),
        mentions: Sequence[str] = (),
        deployment_id: int | None = None,
    ) -> None:
        """Replace a posted message's text and buttons, e.g. drop an alert's buttons once it
        was acted on (no buttons: none left). Never raises."""
        ...

    def post_ephemeral(self, channel: str, user: str, text: str) -> None:
        """Tell one user something only they see."""
        ...


@dataclass(frozen=True)
class GroupLookup:
    """One lookup of a user group: its members, and why the lookup failed if it did.

    A failed lookup has no members (fail closed: nobody gets in through a group that could not
    be checked), and `problem` says why ("could not check group S…: <reason>"), so a refusal
    can say so rather than claim the user is not in the group.
    """

    members: frozenset[str]
    problem: str | None = None


class Directory(Protocol):
    """Resolves user groups to members (Slack user groups; static in the console)."""

    def lookup(self, group: str) -> GroupLookup:
        """The members of `group` (none when unknown), with the problem when the lookup failed."""
        ...


class StaticDirectory:
    """A directory from a fixed mapping (console, tests)."""

    def __init__(self, groups: dict[str, Sequence[str]] | None = None) -> None:
        self._groups = {k: frozenset(v) for k, v in (groups or {}).items()}

    def lookup(self, group: str) -> GroupLookup:
        """Members of `group`; the mapping is always there, so never a problem."""
        return GroupLookup(self._groups.get(group, frozenset()))
