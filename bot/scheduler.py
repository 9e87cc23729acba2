"""Timed work: rows in our own `schedules` table, fired by APScheduler on the leader only.

Schedules (monitoring rounds, approval expiries, scheduled deploys, sign-off reminders,
retention) live in the store, never in an APScheduler job store, so any replica can rebuild
them after a restart. Only the replica that holds leadership runs APScheduler: it arms one
`date` job per pending row and re-syncs the table every `poll_interval` (rows other replicas
added). A row fires through `Store.claim_schedule`, a compare-and-set, so it runs exactly once
even if two schedulers ever overlap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from bot.clock import Clock
from bot.store.base import Schedule, Store

log = logging.getLogger("gonogo.scheduler")

Handler = Callable[[Schedule], None]
_SYNC_JOB = "gonogo-sync"


class Scheduler:
    """Registers handlers by schedule kind and fires due rows exactly once."""

    def __init__(
        self, store: Store, clock: Clock, *, poll_interval: float = 2.0, misfire_grace_time: int = 3600
    ) -> None:
        self.store = store
        self.clock = clock
        self.poll_interval = poll_interval
        self._handlers: dict[str, Handler] = {}
        self._aps: BackgroundScheduler | None = None
        self._misfire = misfire_grace_time
        self._lock = threading.Lock()

    def register(self, kind: str, handler: Handler) -> None:
        """Route schedules of `kind` to `handler`."""
        self._handlers[kind] = handler

    @property
    def leading(self) -> bool:
        """True while this process runs the timers."""
        return self._aps is not None

    def add(
        self, kind: str, run_at: datetime, *, deployment_id: int | None = None, **payload: object
    ) -> Schedule:
        """Persist a schedule; arm it at once when this replica leads."""
        row = self.store.add_schedule(
            Schedule(kind=kind, run_at=run_at, deployment_id=deployment_id, payload=payload)
        )
        self._arm(row)
        return row

    def add_in(
        self, kind: str, seconds: float, *, deployment_id: int | None = None, **payload: object
    ) -> Schedule:
        """Persist a schedule `seconds` from now."""
        return self.add(
            kind, self.clock.now() + timedelta(seconds=seconds), deployment_id=deployment_id, **payload
        )

    def cancel(self, deployment_id: int, kind: str | None = None) -> int:
        """Cancel a deployment's pending schedules (the armed jobs find them cancelled and skip)."""
        return self.store.cancel_schedules(deployment_id, kind)

    # -- leadership ------------------------------------------------------------------------
    def start_leading(self) -> None:
        """Start APScheduler and arm every pending row (called when elected)."""
        with self._lock:
            if self._aps is not None:
                return
            aps = BackgroundScheduler(
                timezone=UTC,
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": self._misfire},
            )
            aps.start()
            self._aps = aps
            aps.add_job(
                self.sync, "interval", seconds=self.poll_interval, id=_SYNC_JOB, replace_existing=True
            )
        self.sync()
        log.info("scheduler: leading")

    def stop_leading(self, wait: bool = False) -> None:
        """Stop firing (called when leadership is lost and at shutdown)."""
        with self._lock:
            aps, self._aps = self._aps, None
        if aps is not None:
            aps.shutdown(wait=wait)
            log.info("scheduler: stopped leading")

    def sync(self) -> None:
        """Arm pending rows that have no job yet (rows added by other replicas, or after a restart)."""
        try:
            rows = self.store.pending_schedules()
        except Exception:
            log.exception("scheduler: could not read schedules")
            return
        for row in rows:
            self._arm(row)

    def _arm(self, row: Schedule) -> None:
        aps = self._aps
        if aps is None or row.id is None:
            return
        job_id = f"schedule-{row.id}"
        if aps.get_job(job_id) is not None:
            return
        run_at = max(row.run_at, datetime.now(UTC))
        try:
            aps.add_job(self._fire, "date", run_date=run_at, id=job_id, args=[row], replace_existing=False)
        except Exception:  # a concurrent sync armed it first
            log.debug("scheduler: %s already armed", job_id)

    # -- firing ----------------------------------------------------------------------------
    def run_due(self, now: datetime | None = None) -> int:
        """Fire every pending row due by `now` (the clock's time by default); returns how many ran.

        Used by tests with a fixed clock and by anything that wants to catch up synchronously.
        """
        fired = 0
        for row in self.store.pending_schedules(due_before=now or self.clock.now()):
            fired += self._fire(row)
        return fired

    def _fire(self, row: Schedule) -> int:
        assert row.id is not None
        if self._aps is not None:
            try:
                self._aps.remove_job(f"schedule-{row.id}")
            except JobLookupError:
                pass
        if not self.store.claim_schedule(row.id, self.clock.now()):
            return 0  # cancelled, or another scheduler took it
        handler = self._handlers.get(row.kind)
        if handler is None:
            log.error("scheduler: no handler for %s (schedule %s)", row.kind, row.id)
            return 0
        try:
            handler(row)
        except Exception:
            log.exception("scheduler: %s for deployment %s failed", row.kind, row.deployment_id)
        return 1
