"""Per-host output buffers: keep a bounded tail so logs never flood memory or chat."""

from __future__ import annotations

import threading

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
