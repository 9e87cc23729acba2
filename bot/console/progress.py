"""The terminal chat's live progress: one line per running stage, in place on a terminal.

On a terminal the running stages' lines (`Deploy #3 · 🚀 deploy: 12/50 hosts done · 1 failed ·
10 running · batch 2/4 · 0:42`) stay at the bottom and update in place, their elapsed time
counting on between updates (rich's `Live`); everything else the chat prints goes above them.
When a stage of several hosts ends its final line stays. On a pipe (a script, a log) the same
lines are plain lines, one when a stage starts, a batch ends, a host fails and a stage ends:
never escape codes, never a line per host.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from bot.domain.tally import StageTally


@dataclass(frozen=True)
class _Shown:
    """A running stage's line as last received, and when (to count its elapsed time on)."""

    title: str
    tally: StageTally
    at: float

    def line(self) -> str:
        return f"  {self.title} · {self.tally.line(self.tally.elapsed + time.monotonic() - self.at)}"


def _coarse(t: StageTally) -> tuple[object, ...]:
    """What a plain line is printed for: not every host, only the start, a batch done, a failure
    and the end."""
    return (t.stage, t.done, t.failed, t.finished)


class ProgressDisplay:
    """Stage lines of the cards being shown, live on a terminal, plain on a pipe."""

    def __init__(self, out: TextIO, *, terminal: bool | None = None) -> None:
        self.out = out
        live = out.isatty() if terminal is None else terminal
        self._console = Console(file=out, force_terminal=True, highlight=False, emoji=False) if live else None
        self._live: Live | None = None
        self._lock = threading.RLock()
        #: card key -> its running stage; read without a lock by rich's refresh thread.
        self._running: dict[str, _Shown] = {}
        self._printed: dict[tuple[str, str], tuple[object, ...]] = {}
        self.prompt: str | None = None  # shown again when the live lines go

    @property
    def live(self) -> bool:
        """Are lines being updated in place right now?"""
        return self._live is not None

    def write(self, text: str) -> None:
        """Print `text` (a line or block, newline-terminated), above the live lines if any."""
        with self._lock:
            if self._live is not None and self._console is not None:
                self._console.print(Text(text.rstrip("\n")), markup=False, soft_wrap=True)
            else:
                self.out.write(text)
                self.out.flush()

    def update(self, key: str, title: str, stages: tuple[StageTally, ...]) -> None:
        """The stages of card `key` (titled `title`) as they are now."""
        with self._lock:
            for tally in stages:
                if self._console is None:
                    self._plain(key, title, tally)
                else:
                    self._in_place(key, title, tally)

    def _plain(self, key: str, title: str, tally: StageTally) -> None:
        if tally.hosts < 2 or (tally.done == tally.hosts and not tally.finished):
            return  # one host: its step lines say it all; all done: the end's line follows
        coarse = _coarse(tally)
        if self._printed.get((key, tally.stage)) != coarse:
            self._printed[(key, tally.stage)] = coarse
            self.write(f"  {title} · {tally.line(brief=True)}\n")

    def _in_place(self, key: str, title: str, tally: StageTally) -> None:
        shown = self._running.get(key)
        if tally.finished:
            if shown is not None and shown.tally.stage == tally.stage:
                self._running = {k: v for k, v in self._running.items() if k != key}
            if tally.hosts > 1 and self._printed.get((key, tally.stage)) != _coarse(tally):
                self._printed[(key, tally.stage)] = _coarse(tally)
                self.write(f"  {title} · {tally.line()}\n")
        else:
            self._running = {**self._running, key: _Shown(title, tally, time.monotonic())}
        self._follow()

    def forget(self, key: str) -> None:
        """Card `key` no longer runs: drop its live line."""
        with self._lock:
            if key in self._running:
                self._running = {k: v for k, v in self._running.items() if k != key}
                self._follow()

    def _follow(self) -> None:
        """Start the live lines when a stage runs, stop them when none does."""
        if self._running and self._live is None and self._console is not None:
            if self.prompt is not None:
                self.out.write("\n")  # leave the prompt's line as it is
            self._live = Live(
                console=self._console,
                get_renderable=self._render,
                refresh_per_second=4,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        elif not self._running and self._live is not None:
            live, self._live = self._live, None
            live.stop()
            if self.prompt is not None:
                self.out.write(self.prompt)
                self.out.flush()

    def _render(self) -> Text:
        lines = [shown.line() for shown in list(self._running.values())]
        return Text("\n".join(lines), no_wrap=True, overflow="ellipsis")

    def close(self) -> None:
        """Stop the live lines (at exit)."""
        with self._lock:
            self._running = {}
            self._follow()


__all__ = ["ProgressDisplay"]
