"""A recording chat adapter for tests: implements the chat seam and keeps every call."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.chat.base import MessageRef
from bot.domain.card import Button, Card


@dataclass
class Message:
    """One thing the bot said."""

    kind: str  # card | update | thread | message | message_update | ephemeral
    channel: str
    text: str = ""
    ts: str | None = None
    card: Card | None = None
    buttons: tuple[Button, ...] = ()
    mentions: tuple[str, ...] = ()
    user: str | None = None
    deployment_id: int | None = None  # what the engine said the message is about, if anything


@dataclass
class RecordingChat:
    """Implements `bot.chat.base.Chat` by recording."""

    messages: list[Message] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _add(self, m: Message) -> None:
        with self._lock:
            self.messages.append(m)

    def post_card(self, channel: str, card: Card) -> MessageRef | None:
        ts = f"1700000000.{next(self._ids):06d}"
        self._add(Message("card", channel, card.title, ts, card, card.buttons))
        return MessageRef(channel, ts)

    def update_card(self, ref: MessageRef, card: Card) -> None:
        self._add(Message("update", ref.channel, card.title, ref.ts, card, card.buttons))

    def post_thread(self, ref: MessageRef, text: str, *, deployment_id: int | None = None) -> None:
        self._add(Message("thread", ref.channel, text, ref.ts, deployment_id=deployment_id))

    def post_message(
        self,
        channel: str,
        text: str,
        *,
        buttons: Sequence[Button] = (),
        mentions: Sequence[str] = (),
        deployment_id: int | None = None,
    ) -> MessageRef | None:
        ts = f"1700000000.{next(self._ids):06d}"
        self._add(
            Message(
                "message",
                channel,
                text,
                ts,
                buttons=tuple(buttons),
                mentions=tuple(mentions),
                deployment_id=deployment_id,
            )
        )
        return MessageRef(channel, ts)

    def update_message(
        self,
        ref: MessageRef,
        text: str,
        *,
        buttons: Sequence[Button] = (),
        mentions: Sequence[str] = (),
        deployment_id: int | None = None,
    ) -> None:
        self._add(
            Message(
                "message_update",
                ref.channel,
                text,
                ref.ts,
                buttons=tuple(buttons),
                mentions=tuple(mentions),
                deployment_id=deployment_id,
            )
        )

    def message(self, ts: str) -> Message:
        """The latest version of the message posted at `ts` (after any `update_message`)."""
        with self._lock:
            for m in reversed(self.messages):
                if m.ts == ts and m.kind in ("message", "message_update"):
                    return m
        raise AssertionError(f"no message at {ts}")

    def post_ephemeral(self, channel: str, user: str, text: str) -> None:
        self._add(Message("ephemeral", channel, text, user=user))

    def of_kind(self, kind: str) -> list[Message]:
        """Messages of one kind, in order."""
        with self._lock:
            return [m for m in self.messages if m.kind == kind]

    def last_card(self, deployment_id: int) -> Card:
        """The latest card (posted or updated) for a deployment."""
        with self._lock:
            for m in reversed(self.messages):
                if m.card is not None and m.card.deployment_id == deployment_id:
                    return m.card
        raise AssertionError(f"no card for #{deployment_id}")

    def texts(self) -> str:
        """Every text said, one per line."""
        with self._lock:
            return "\n".join(m.text for m in self.messages)
