"""Staying inside Slack's rate limits when many deploys talk at once.

- `TokenBucket`: `rate` calls a second on average, bursts of `burst`. SlackChat keeps one per
  channel for `chat.postMessage` (Slack allows about 1 message a second per channel, with short
  bursts) and one for `chat.update` across the workspace (Tier 3: about 50 a minute).
- `ThreadBatches`: thread lines that arrive while their channel is out of budget wait, merged
  per thread, and go out as one message when the channel has budget again, oldest thread first.
  Cards and alerts are never held back (they are posted at once and spend the budget).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


class TokenBucket:
    """Tokens refill at `rate` per second up to `burst`; `take` spends one when there is one."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return now

    def take(self, *, force: bool = False) -> bool:
        """Spend a token (True); with `force` spend what there is (a call that cannot wait)."""
        with self._lock:
            self._refill()
            if self._tokens >= 1 or force:
                self._tokens = max(0.0, self._tokens - 1)
                return True
            return False

    def wait(self) -> float:
        """Seconds until a token is there (0: now)."""
        with self._lock:
            self._refill()
            return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate


@dataclass
class _Batch:
    lines: list[str] = field(default_factory=list)
    deployment_id: int | None = None


class ThreadBatches:
    """Held-back thread lines per (channel, thread ts), sent by `send(channel, ts, text, id)`."""

    def __init__(
        self,
        buckets: Callable[[str], TokenBucket],
        send: Callable[[str, str, str, int | None], None],
    ) -> None:
        self._buckets = buckets
        self._send = send
        self._cond = threading.Condition()
        self._held: dict[tuple[str, str], _Batch] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="gonogo-slack-threads", daemon=True)
        self._thread.start()

    def post(self, channel: str, ts: str, text: str, deployment_id: int | None) -> None:
        """Send now if the channel has budget and nothing of this thread waits; else hold it."""
        with self._cond:
            key = (channel, ts)
            if key not in self._held and self._buckets(channel).take():
                now = True
            else:
                batch = self._held.setdefault(key, _Batch(deployment_id=deployment_id))
                batch.lines.append(text)
                self._cond.notify_all()
                now = False
        if now:
            self._send(channel, ts, text, deployment_id)

    def held(self) -> int:
        """Thread lines waiting for budget."""
        with self._cond:
            return sum(len(b.lines) for b in self._held.values())

    def flush(self) -> None:
        """Send everything held now (tests, shutdown), budget or not."""
        with self._cond:
            held, self._held = list(self._held.items()), {}
        for (channel, ts), batch in held:
            self._buckets(channel).take(force=True)
            self._send(channel, ts, "\n".join(batch.lines), batch.deployment_id)

    def close(self) -> None:
        """Send what is held and stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self.flush()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._held:
                    self._cond.wait()
                if self._closed:
                    return
                ready = next(((k, b) for k, b in self._held.items() if self._buckets(k[0]).take()), None)
                if ready is None:
                    self._cond.wait(min(self._buckets(k[0]).wait() for k in self._held) or 0.05)
                    continue
                del self._held[ready[0]]
            (channel, ts), batch = ready
            self._send(channel, ts, "\n".join(batch.lines), batch.deployment_id)


__all__ = ["ThreadBatches", "TokenBucket"]
