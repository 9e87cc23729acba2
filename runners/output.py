"""Per-host output buffers: keep a bounded tail so logs never flood memory or chat, and hold
back unfinished lines so output is redacted whole lines at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable

import runners.artifacts as artifacts
from runners.base import CommandOutcome
from runners.redact import Redactor

DEFAULT_TAIL_CHARS = 4000


class TailBuffer:
    """Thread-safe buffer that keeps the last `limit` characters written to it."""

    def __init__(self, limit: int = DEFAULT_TAIL_CHARS) -> None:
        self.limit = limit
        self._parts: list[str] = []
        self._size = 0
        self._dropped = False
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        """Append text, discarding the oldest beyond the limit."""
        with self._lock:
            self._parts.append(text)
            self._size += len(text)
            if self._size > 2 * self.limit:
                joined = "".join(self._parts)[-self.limit :]
                self._parts = [joined]
                self._size = len(joined)
                self._dropped = True

    def text(self) -> str:
        """The retained tail (with a marker when older output was dropped)."""
        with self._lock:
            joined = "".join(self._parts)
            dropped = self._dropped or len(joined) > self.limit
        tail = joined[-self.limit :]
        return ("…" + tail) if dropped else tail


class LineBuffer:
    """Holds back an unfinished line so output is emitted (and redacted) whole lines at a time.

    An unfinished line longer than `MAX_PENDING` is emitted anyway, cut where the redactor says
    no secret can straddle the cut (`Redactor.safe_cut`): whatever the secrets' lengths, and
    even for a secret containing newlines, no piece of one is ever emitted unmasked.
    """

    MAX_PENDING = 8192

    def __init__(self, redactor: Redactor | None = None) -> None:
        self._pending = ""
        self._redactor = redactor if redactor else None
        self._lock = threading.Lock()

    def feed(self, chunk: str) -> str:
        """Add a chunk; return the complete lines now ready (possibly empty)."""
        with self._lock:
            text = self._pending + chunk
            cut = max(text.rfind("\n"), text.rfind("\r")) + 1
            forced = cut == 0 and len(text) > self.MAX_PENDING
            if forced:
                cut = len(text)
            # At a line end no secret can straddle the cut unless a secret holds a line break.
            if cut and self._redactor is not None and (forced or self._redactor.multiline):
                cut = self._redactor.safe_cut(text, cut)
            ready, self._pending = text[:cut], text[cut:]
            return ready

    def flush(self) -> str:
        """Return whatever is left."""
        with self._lock:
            rest, self._pending = self._pending, ""
            return rest


class HostOutput:
    """One host's output for one step: redacted whole lines go to `publish`; a redacted tail is
    kept, and the artifacts the lines publish (`runners.artifacts`) are collected."""

    def __init__(self, redact: Redactor, publish: Callable[[str], None]) -> None:
        self._redact = redact
        self._publish = publish
        self._tail = TailBuffer()
        self._lines = LineBuffer(redact)
        self._artifacts: dict[str, str] = {}
        self._streamed = False

    def artifacts(self, outcome: CommandOutcome | None) -> tuple[tuple[str, str], ...]:
        """What the output published: from the streamed lines, else from the outcome's output."""
        if not self._streamed and outcome is not None:
            self._artifacts.update(artifacts.scan(self._redact(outcome.output)))
        return tuple(self._artifacts.items())

    def sink(self, chunk: str) -> None:
        """The backend's output callback: pass on the lines that are complete."""
        # Redact whole lines: a secret split across two chunks is still masked.
        ready = self._lines.feed(chunk)
        if ready:
            self._emit(ready)

    def flush(self) -> None:
        """Pass on the unfinished last line, once the command is over."""
        rest = self._lines.flush()
        if rest:
            self._emit(rest)

    def text(self, outcome: CommandOutcome | None) -> str:
        """The redacted output to record: the streamed tail, else the outcome's own output."""
        return self._tail.text() or (self._redact(outcome.output) if outcome is not None else "")

    def _emit(self, text: str) -> None:
        text = self._redact(text)
        self._streamed = True
        self._artifacts.update(artifacts.scan(text))
        self._tail.write(text)
        self._publish(text)
