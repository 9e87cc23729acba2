"""Timed work: rows in our own `schedules` table, fired by APScheduler on the leader only.

Schedules (monitoring rounds, approval expiries, scheduled deploys, sign-off reminders,
retention) live in the store, never in an APScheduler job store, so any replica can rebuild
them after a restart. Only the replica that holds leadership runs APScheduler: it arms one
`date` job per pending row and re-syncs the table every `poll_interval` (rows other replicas
added). A row fires through `Store.claim_schedule`, a compare-and-set naming this scheduler, so
two schedulers that ever overlap never both start it; it is marked done when its handler
returns.

A row claimed by a process that died before its handler finished (a leader SIGKILLed in the
middle of a monitoring round, say) would otherwise be lost, and with it everything that handler
would have scheduled next. So a scheduler that starts leading fires such orphans again: timed
work is at-least-once, and handlers are written to be replayed (they check the deployment's
state first, and what they schedule next carries a `key`, so a replay adds nothing twice).

A handler that must not complete its row now (a monitoring round cut short by shutdown) raises
`bot.domain.errors.Deferred`: the row stays claimed and unfinished, an orphan the next leader fires again.

Recurring work (`every`) is kept alive by the leader's sync: whenever no row of that kind is
pending, one is added.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from bot.domain.errors import Deferred
from bot.store.base import Schedule, Store
from bot.timing.clock import Clock

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
        self._recurring: dict[str, tuple[float, float]] = {}
        #: Names this scheduler's claims: rows claimed under another name and unfinished are orphans.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def register(self, kind: str, handler: Handler) -> None:
        """Route schedules of `kind` to `handler`."""
        self._handlers[kind] = handler

    @property
    def leading(self) -> bool:
        """True while this process runs the timers."""
        return self._aps is not None

    def every(self, kind: str, interval: float, *, first_in: float | None = None) -> None:
        """Keep one pending `kind` row at all times: the first `first_in` seconds after this
        replica starts leading (default `interval`), each next one `interval` after the last ran."""
        self._recurring[kind] = (interval, interval if first_in is None else first_in)

    def add(
        self,
        kind: str,
        run_at: datetime,
        *,
        deployment_id: int | None = None,
        key: str | None = None,
        **payload: object,
    ) -> Schedule:
        """Persist a schedule; arm it at once when this replica leads. With a `key` that was
        used before, nothing is added and the earlier row is returned."""
        row = self.store.add_schedule(
            Schedule(kind=kind, run_at=run_at, deployment_id=deployment_id, payload=payload, key=key)
        )
        if row.state == "pending":
            self._arm(row)
        return row

    def add_in(
        self,
        kind: str,
        seconds: float,
        *,
        deployment_id: int | None = None,
        key: str | None = None,
        **payload: object,
    ) -> Schedule:
        """Persist a schedule `seconds` from now."""
        return self.add(
            kind,
            self.clock.now() + timedelta(seconds=seconds),
            deployment_id=deployment_id,
            key=key,
            **payload,
        )

    def cancel(self, deployment_id: int, kind: str | None = None) -> int:
        """Cancel a deployment's pending schedules (the armed jobs find them cancelled and skip)."""
        return self.store.cancel_schedules(deployment_id, kind)

    # -- leadership ------------------------------------------------------------------------
    def start_leading(self) -> None:
        """Start APScheduler, fire orphans again and arm every pending row (called when elected)."""
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
        self._adopt_orphans()
        self.sync(first=True)
        log.info("scheduler: leading")

    def stop_leading(self, wait: bool = False) -> None:
        """Stop firing (called when leadership is lost and at shutdown)."""
        with self._lock:
            aps, self._aps = self._aps, None
        if aps is not None:
            aps.shutdown(wait=wait)
            log.info("scheduler: stopped leading")

    def sync(self, first: bool = False) -> None:
        """Arm pending rows that have no job yet (rows added by other replicas, or after a
        restart), and add the next row of recurring work that has none pending."""
        try:
            rows = self.store.pending_schedules()
            kinds = {row.kind for row in rows}
            for kind, (interval, first_in) in self._recurring.items():
                if kind not in kinds and self._aps is not None:
                    run_at = self.clock.now() + timedelta(seconds=first_in if first else interval)
                    rows.append(self.store.add_schedule(Schedule(kind=kind, run_at=run_at)))
        except Exception:
            log.exception("scheduler: could not read schedules")
            return
        for row in rows:
            self._arm(row)

    def _adopt_orphans(self) -> None:
        """Fire again the rows a dead claimer took but never finished (at-least-once)."""
        try:
            orphans = self.store.orphaned_schedules(self.owner)
        except Exception:
            log.exception("scheduler: could not read orphaned schedules")
            return
        aps = self._aps
        for row in orphans:
            assert row.id is not None
            if aps is None or not self.store.reclaim_schedule(
                row.id, self.clock.now(), self.owner, row.claimed_by
            ):
                continue
            log.warning(
                "scheduler: %s (schedule %s) was claimed by %s, which never finished it: running it again",
                row.kind,
                row.id,
                row.claimed_by,
            )
            aps.add_job(self._handle, "date", run_date=datetime.now(UTC), args=[row], id=f"orphan-{row.id}")

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
        if not self.store.claim_schedule(row.id, self.clock.now(), self.owner):
            return 0  # cancelled, or another scheduler took it
        return self._handle(row)

    def _handle(self, row: Schedule) -> int:
        """Run a claimed row's handler, then mark it done (also when the handler failed: a
        failure is logged, not retried), unless the handler `Deferred` it."""
        assert row.id is not None
        handler = self._handlers.get(row.kind)
        if handler is None:
            log.error("scheduler: no handler for %s (schedule %s)", row.kind, row.id)
            return 0
        try:
            handler(row)
        except Deferred as exc:
            log.info("scheduler: %s (schedule %s) left for the next leader: %s", row.kind, row.id, exc)
            return 1
        except Exception:
            log.exception("scheduler: %s for deployment %s failed", row.kind, row.deployment_id)
        try:
            self.store.finish_schedule(row.id, self.clock.now())
        except Exception:
            log.exception("scheduler: could not mark schedule %s done", row.id)
        return 1
