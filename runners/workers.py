"""The pipeline's worker threads: a fixed pool, every thread started before work is handed out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


class WorkerPool:
    """A fixed set of worker threads, all started before any work is handed out.

    `ThreadPoolExecutor` starts a thread per submitted task, one at a time; when the first
    tasks are already busy (SSH handshakes are CPU work under the GIL), starting the fiftieth
    thread takes a good part of a second. Here every thread exists before the first task.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="gonogo-host")
        ready = threading.Barrier(size + 1, timeout=60)
        for _ in range(size):
            self._pool.submit(ready.wait)
        ready.wait()

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """`fn` over `items` on the workers (at most `size` at once); results in item order."""
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        """Stop the threads (after the work in hand)."""
        self._pool.shutdown(wait=True)
