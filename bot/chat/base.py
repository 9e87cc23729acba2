"""The chat seam: how the engine talks to people. Adapters implement `Chat`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.card import Button, Card


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


class Directory(Protocol):
    """Resolves user groups to members (Slack user groups; static in the console).

    A lookup that fails yields no members (fail closed: nobody gets in through a group that
    could not be checked), and `problem(group)` then says why, so a refusal can tell the user
    the group could not be checked rather than that they are not in it.
    """

    def members(self, group: str) -> frozenset[str]:
        """The user ids in `group` (empty when unknown or when the lookup failed)."""
        ...

    def problem(self, group: str) -> str | None:
        """Why the latest lookup of `group` failed ("could not check group S…: <reason>");
        None when it succeeded or was not tried."""
        ...


class StaticDirectory:
    """A directory from a fixed mapping (console, tests)."""

    def __init__(self, groups: dict[str, Sequence[str]] | None = None) -> None:
        self._groups = {k: frozenset(v) for k, v in (groups or {}).items()}

    def members(self, group: str) -> frozenset[str]:
        """Members of `group`."""
        return self._groups.get(group, frozenset())

    def problem(self, group: str) -> str | None:
        """Never any: the mapping is always there."""
        return None
