"""The terminal chat: an Errbot-style text backend.

`ConsoleChat` implements the chat seam by printing: cards as boxed text with numbered buttons,
thread posts indented under their card, alerts with their buttons. It remembers the latest
message with buttons so the console's `press` and `tick` know what they act on.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from bot.chat.base import MessageRef
from bot.console.progress import ProgressDisplay
from bot.domain.card import Button, Card
from bot.domain.states import State


@dataclass
class Posted:
    """A message the console showed that has buttons (or a checklist)."""

    ref: MessageRef
    buttons: tuple[Button, ...]
    card: Card | None = None


def render_card(card: Card) -> str:
    """A card as terminal text."""
    lines = [f"┌─ {card.title}", f"│ {card.status_line}"]
    lines.append("│ " + " · ".join(f"{k}: {v}" for k, v in card.fields))
    # the card's lines a terminal shows: CI, the artifacts steps published, what a rollback undoes
    lines.extend(f"│ {line}" for line in card.lines if line.startswith(("CI: ", "📦 ", "↩️ ")))
    lines.extend(f"│ 🔗 {link.text}: {link.url}" for link in card.links)
    if card.warnings:
        lines.extend(f"│ ⚠ {w}" for w in card.warnings)
    if card.changelog or card.changelog_note:
        lines.append("│ Changelog:")
        lines.extend(f"│   {c}" for c in card.changelog)
        if card.changelog_note:
            lines.append(f"│   {card.changelog_note}")
    if card.checklist:
        state = "" if card.checklist_open else " (closed)"
        lines.append(f"│ Checklist{state}:")
        phase: str | None = None
        for i in card.checklist:
            if i.phase is not None and i.phase != phase:
                lines.append(f"│  {i.phase}:")
            phase = i.phase
            lines.append(f"│   [{'x' if i.ticked else ' '}] {i.number}. {i.text}")
    if card.approvals_line:
        lines.append(f"│ {card.approvals_line}")
    if card.footer:
        lines.append(f"│ {card.footer}")
    if card.buttons:
        lines.append("│ " + "  ".join(f"[{n}] {b.label}" for n, b in enumerate(card.buttons, 1)))
    lines.append("└─")
    return "\n".join(lines)


class ConsoleChat:
    """Chat seam over a text stream. Thread-safe: workers print while the prompt waits."""

    def __init__(
        self, out: TextIO | None = None, channel: str = "#deploys", *, terminal: bool | None = None
    ) -> None:
        self.out = out or sys.stdout
        self.channel = channel
        #: Stage progress: in place on a terminal (`terminal`: default, whether `out` is one).
        self.progress = ProgressDisplay(self.out, terminal=terminal)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._last_state: dict[str, str] = {}
        self.latest: Posted | None = None
        self.cards: dict[str, Card] = {}

    def say(self, text: str) -> None:
        """Print a line (or block) atomically."""
        with self._lock:
            self.progress.write(text.rstrip("\n") + "\n")

    def prompt(self, text: str) -> None:
        """Show the prompt (shown again after live progress lines go away)."""
        with self._lock:
            self.progress.prompt = text
            if not self.progress.live:
                self.out.write(text)
                self.out.flush()

    def answered(self) -> None:
        """The prompt was answered: the next output starts on a line of its own."""
        self.progress.prompt = None

    def close(self) -> None:
        """Stop the live progress lines."""
        with self._lock:
            self.progress.close()

    def post_card(self, channel: str, card: Card) -> MessageRef | None:
        """Print the card; it becomes the latest card."""
        ref = MessageRef(channel, f"c{next(self._ids)}")
        self._show(ref, card)
        return ref

    def update_card(self, ref: MessageRef, card: Card) -> None:
        """Reprint the card when its state, checklist or buttons changed; else a progress line."""
        with self._lock:
            previous = self.cards.get(ref.ts)
            if card.stages:
                self.progress.update(ref.ts, card.title.split(":")[0], card.stages)
            if card.state != State.RUNNING:
                self.progress.forget(ref.ts)
            if previous is not None and _same_shape(previous, card):
                self.cards[ref.ts] = card
                if previous.status_line != card.status_line and not self.progress.live:
                    self.say(f"  {card.title.split(':')[0]} · {card.status_line}")
                return
            self._show(ref, card)

    def _show(self, ref: MessageRef, card: Card) -> None:
        with self._lock:
            self.cards[ref.ts] = card
            self.say(render_card(card))
            if card.buttons or card.checklist_open:
                self.latest = Posted(ref, card.buttons, card)
            elif self.latest is not None and self.latest.ref == ref:
                self.latest = Posted(ref, (), card)

    def post_thread(self, ref: MessageRef, text: str, *, deployment_id: int | None = None) -> None:
        """Print thread details indented under the card."""
        self.say("\n".join(f"    │ {line}" for line in text.splitlines()))

    def post_message(
        self,
        channel: str,
        text: str,
        *,
        buttons: Sequence[Button] = (),
        mentions: Sequence[str] = (),
        deployment_id: int | None = None,
    ) -> MessageRef | None:
        """Print a channel message; with buttons it becomes the latest pressable message."""
        ref = MessageRef(channel, f"m{next(self._ids)}")
        with self._lock:
            if buttons:
                self.latest = Posted(ref, tuple(buttons))
            self.say(_message_text(channel, text, buttons, mentions))
        return ref

    def update_message(
        self,
        ref: MessageRef,
        text: str,
        *,
        buttons: Sequence[Button] = (),
        mentions: Sequence[str] = (),
        deployment_id: int | None = None,
    ) -> None:
        """Print the message again, marked updated; its old buttons can no longer be pressed."""
        with self._lock:
            if self.latest is not None and self.latest.ref == ref and self.latest.card is None:
                self.latest = Posted(ref, tuple(buttons)) if buttons else None
            elif buttons:
                self.latest = Posted(ref, tuple(buttons))
            self.say(_message_text(ref.channel, f"(updated) {text}", buttons, mentions))

    def post_ephemeral(self, channel: str, user: str, text: str) -> None:
        """Print a reply meant for one user."""
        self.say(f"(to {user}) {text}")


def _message_text(channel: str, text: str, buttons: Sequence[Button], mentions: Sequence[str]) -> str:
    who = " ".join(f"@{m}" for m in dict.fromkeys(mentions))
    lines = [f"[{channel}] {who + ' ' if who else ''}{text}"]
    if buttons:
        lines.append("  " + "  ".join(f"[{n}] {b.label}" for n, b in enumerate(buttons, 1)))
    return "\n".join(lines)


def _same_shape(a: Card, b: Card) -> bool:
    return (
        a.state == b.state
        and a.buttons == b.buttons
        and a.checklist == b.checklist
        and a.approvals_line == b.approvals_line
        and a.footer == b.footer
    )
