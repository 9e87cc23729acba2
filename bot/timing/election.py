"""Who runs the scheduler: the `Leadership` seam, and the single process's `AlwaysLeader`
(the PostgreSQL election is `bot.timing.leader`).

Callbacks run on the election thread; they must not block for long.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("gonogo.leader")

Callback = Callable[[], None]
#: What the Engine takes as `leadership=`: callbacks on election and on loss in, a Leadership out.
LeadershipFactory = Callable[[Callback, Callback], "Leadership"]


class Leadership(Protocol):
    """Who runs the scheduler. `on_elected`/`on_lost` are given at construction."""

    #: True when no other process can be using the same store (so no replica can be running).
    single_process: bool

    def is_leader(self) -> bool:
        """True while this process holds leadership."""
        ...

    def start(self) -> None:
        """Begin campaigning; callbacks fire on election and loss."""
        ...

    def stop(self) -> None:
        """Give up leadership (fires `on_lost` if leading) and stop campaigning."""
        ...


def noop() -> None:
    return None


def call(what: str, callback: Callback) -> bool:
    """Run a callback; log (never raise) its failure. True when it succeeded."""
    try:
        callback()
    except Exception:
        log.exception("leader: %s callback failed", what)
        return False
    return True


class AlwaysLeader:
    """The only replica: leader from `start()` until `stop()`."""

    single_process = True

    def __init__(self, on_elected: Callback | None = None, on_lost: Callback | None = None) -> None:
        self._on_elected = on_elected or noop
        self._on_lost = on_lost or noop
        self._leader = False
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        """True between start() and stop()."""
        return self._leader

    def start(self) -> None:
        """Become leader at once."""
        with self._lock:
            if self._leader:
                return
            self._leader = True
        call("on_elected", self._on_elected)

    def stop(self) -> None:
        """Stop leading."""
        with self._lock:
            if not self._leader:
                return
            self._leader = False
        call("on_lost", self._on_lost)


__all__ = ["AlwaysLeader", "Callback", "Leadership", "LeadershipFactory", "call", "noop"]
