"""The outbox: deliveries to other tools that never fail a deploy, are retried, and survive restarts.

A delivery (a GitHub deployment status, a page) is a row in the schedules table the scheduler
already persists (`kind = "deliver"`), so a restart loses none: the next leader arms what is
pending and fires again what a dead process had claimed. A failed delivery is logged and tried
again later with a growing delay (5 s doubling, at most 15 min) for up to `MAX_AGE`; one the
other side refuses for good (a 422) is given up at once. The first failure, and giving up, are
said in the deployment's thread and written to its event log.

Deliveries of one *stream* (the statuses of one deployment, the pages of one incident) keep
their order: one waits while an earlier one of its stream is still pending, so GitHub never
sees `in_progress` after `success`, nor PagerDuty a resolve before its trigger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.engine.port import Ledger, Notifier, Timers
from bot.integrations import IntegrationError
from bot.store.base import Schedule, Store

log = logging.getLogger("gonogo.integrations")

DELIVER = "deliver"
FIRST_DELAY = 5.0
MAX_DELAY = 15 * 60.0
MAX_AGE = timedelta(days=3)
#: Delivers one body for a deployment (or raises IntegrationError).
Sink = Callable[[Mapping[str, Any], int | None], None]


class Outbox:
    """Named sinks, and deliveries to them through the schedules table."""

    def __init__(self, ledger: Ledger, store: Store, notify: Notifier, timers: Timers) -> None:
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.timers = timers
        self._sinks: dict[str, tuple[Sink, str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        timers.register(DELIVER, self._deliver)

    def sink(self, name: str, deliver: Sink, *, label: str) -> None:
        """Route deliveries for `name` to `deliver`; `label` names it for people ("GitHub")."""
        self._sinks[name] = (deliver, label)

    def send(self, sink: str, stream: str, body: Mapping[str, Any], *, deployment_id: int | None) -> None:
        """Queue a delivery (due now); it is tried on the scheduler's thread, never the caller's."""
        seq = time.time_ns()
        self.timers.add_in(
            DELIVER, 0, deployment_id=deployment_id, key=f"{DELIVER}:{sink}:{stream}:{seq}:1",
            sink=sink, stream=stream, seq=seq, attempt=1, body=dict(body), first=self.ledger.now().isoformat(),
        )  # fmt: skip

    def _lock(self, stream: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(stream, threading.Lock())

    def _deliver(self, row: Schedule) -> None:
        p = row.payload
        sink, stream, seq = str(p.get("sink")), str(p.get("stream")), int(p.get("seq") or 0)
        target = self._sinks.get(sink)
        if target is None:
            log.error("outbox: no sink %s for a delivery of deployment %s: dropped", sink, row.deployment_id)
            return
        deliver, label = target
        with self._lock(f"{sink}:{stream}"):
            earlier = [
                s for s in self.store.pending_schedules()
                if s.kind == DELIVER and s.payload.get("sink") == sink and s.payload.get("stream") == stream
                and int(s.payload.get("seq") or 0) < seq
            ]  # fmt: skip
            if earlier:
                self._again(row, max(s.run_at for s in earlier) + timedelta(seconds=1), same_attempt=True)
                return
            try:
                deliver(p.get("body") or {}, row.deployment_id)
            except IntegrationError as exc:
                self._failed(row, label, str(exc), retry=exc.retry)
            except Exception as exc:  # a bug or an odd answer: logged, kept, tried again
                log.exception("outbox: delivery to %s failed", label)
                self._failed(row, label, f"{type(exc).__name__}: {exc}", retry=True)
            else:
                if int(p.get("attempt") or 1) > 1:
                    log.info("outbox: delivered to %s after %s attempts", label, p.get("attempt"))

    def _failed(self, row: Schedule, label: str, why: str, *, retry: bool) -> None:
        p = row.payload
        attempt = int(p.get("attempt") or 1)
        first = _instant(p.get("first")) or self.ledger.now()
        d = self.store.get(row.deployment_id) if row.deployment_id else None
        if not retry or self.ledger.now() - first > MAX_AGE:
            log.error("outbox: gave up delivering to %s after %s attempts: %s", label, attempt, why)
            if d is not None:
                self.ledger.log(
                    "gonogo", "delivery_failed", d, f"{label}: gave up after {attempt} attempts: {why}"
                )
                self.notify.thread(d, f"⚠️ Gave up telling {label} after {attempt} attempts: {why}")
            return
        delay = min(FIRST_DELAY * 2 ** (attempt - 1), MAX_DELAY)
        log.warning(
            "outbox: delivery to %s failed (attempt %s), retrying in %gs: %s", label, attempt, delay, why
        )
        if attempt == 1 and d is not None:
            self.ledger.log("gonogo", "delivery_retry", d, f"{label}: {why}")
            self.notify.thread(d, f"⚠️ Could not tell {label}: {why}. The deploy goes on; retrying.")
        self._again(row, self.ledger.now() + timedelta(seconds=delay), same_attempt=False)

    def _again(self, row: Schedule, at: datetime, *, same_attempt: bool) -> None:
        p = dict(row.payload)
        if not same_attempt:
            p["attempt"] = int(p.get("attempt") or 1) + 1
        p["waits"] = int(p.get("waits") or 0) + (1 if same_attempt else 0)
        key = f"{DELIVER}:{p['sink']}:{p['stream']}:{p['seq']}:{p['attempt']}:{p['waits']}"
        self.timers.add(DELIVER, at, deployment_id=row.deployment_id, key=key, **p)


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


__all__ = ["DELIVER", "Outbox", "Sink"]
