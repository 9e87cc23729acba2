"""Acks before work: how the adapter's pool yields to the requests in hand (`AckGate`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class AckGate:
    """Acks before work: queued work waits out a burst of requests (bounded).

    Python threads have no priorities, and the work after an ack (store writes, Web API calls)
    shares the GIL with the next request's ack. So in a burst, work yields: a job starts once
    no request is in hand and none started for `quiet` seconds, or after `max_wait` seconds at
    the latest; and jobs start one at a time, `pace` seconds apart, so a backlog released at
    once cannot stall the next acks. A lone command's work starts `quiet` (20 ms) after its ack.
    Measured with 20 concurrent clients in bench/ack_latency.py.
    """

    def __init__(self, max_wait: float = 0.5, quiet: float = 0.02, pace: float = 0.004) -> None:
        self.max_wait = max_wait
        self.quiet = quiet
        self.pace = pace
        self._busy = 0
        self._last = float("-inf")  # when the latest request started
        self._next = float("-inf")  # the earliest the next job may start
        self._cond = threading.Condition()

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Mark one request as being answered."""
        with self._cond:
            self._busy += 1
            self._last = time.monotonic()
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                if not self._busy:
                    self._cond.notify_all()

    def wait_quiet(self) -> None:
        """Wait for a calm moment (at most about `max_wait`), then take the next start slot."""
        deadline = time.monotonic() + self.max_wait
        with self._cond:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    wait = self._next - now  # past the deadline: only keep the pace
                elif self._busy:
                    wait = deadline - now
                else:
                    wait = max(self._last + self.quiet, self._next) - now
                if wait <= 0:
                    self._next = now + self.pace
                    return
                self._cond.wait(wait)
