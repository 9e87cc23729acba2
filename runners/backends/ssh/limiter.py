"""Bounds on connecting: handshakes in flight per gateway (process-wide), and the slot that
keeps one shared connection per jump host."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from fabric import Connection

from runners.backends.ssh.plan import Endpoint


class HandshakeLimiter:
    """Handshakes in flight per group (a gateway, or `direct`), shared by every backend.

    Each caller passes its own limit and waits while the group has that many in flight, so two
    deploys through one jump host together stay within its bound.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, tuple[threading.Condition, list[int]]] = {}

    @contextlib.contextmanager
    def slot(self, group: str, limit: int) -> Iterator[None]:
        """Hold one handshake slot of `group` (waiting while `limit` are in flight)."""
        with self._lock:
            cond, count = self._groups.setdefault(group, (threading.Condition(), [0]))
        with cond:
            while count[0] >= limit:
                cond.wait()
            count[0] += 1
        try:
            yield
        finally:
            with cond:
                count[0] -= 1
                cond.notify_all()


#: The process-wide handshake bound used by every SSHBackend.
HANDSHAKES = HandshakeLimiter()


@dataclass
class GatewaySlot:
    """One jump host's shared connection: opened once under `lock`; `error` makes later hosts fail fast."""

    lock: threading.Lock
    endpoint: Endpoint
    conn: Connection | None = None
    error: str | None = None
