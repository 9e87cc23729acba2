"""The watchdog: heartbeats for this process's runs, and the runs of processes that died.

Every `heartbeat_interval` the watchdog writes a heartbeat for each run in flight here (until
the run has really ended: verify and shutdown included, so no replica takes a run over early).
A run whose heartbeat write finds the row no longer `running` here is fenced.

It also looks for running deployments nobody heartbeats (their process died) and declares them
interrupted. A single process (SQLite) trusts its own clock: a heartbeat older than three
intervals is stale. With replicas, a heartbeat counts as stale only once this process has seen
it stand still for that long on its own monotonic clock, so a replica whose wall clock runs
ahead never interrupts a live run elsewhere.
"""

from __future__ import annotations

import logging
import threading
import time as monotonic_time
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.domain.deployment import Deployment, State
from bot.engine.inflight import InFlight
from bot.engine.port import Ledger
from bot.store.base import Store

log = logging.getLogger("gonogo.runs")


class Watchdog:
    """Heartbeats this process's runs and interrupts the runs of dead processes."""

    def __init__(
        self,
        inflight: InFlight,
        ledger: Ledger,
        store: Store,
        *,
        interval: float,
        single_process: bool,
        interrupt: Callable[[Deployment, str], Deployment | None],
    ) -> None:
        self.inflight = inflight
        self.ledger = ledger
        self.store = store
        self.interval = interval
        self.single_process = single_process
        self.interrupt = interrupt
        #: Stop looking for dead processes' runs (shutdown began); heartbeats go on.
        self.stopping = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beats_seen: dict[int, tuple[datetime | None, float]] = {}

    def start(self) -> None:
        """Start the watchdog thread."""
        self._thread = threading.Thread(target=self._watch, name="gonogo-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watchdog thread."""
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()
            if self.stopping.is_set():
                continue
            try:
                self.recover_stale()
            except Exception:
                log.exception("watchdog: recovery scan failed")

    def beat(self) -> None:
        """Heartbeat every run in flight here; fence the runs whose row moved on."""
        now = self.ledger.now()
        for deployment_id, run in list(self.inflight.runs.items()):
            try:
                if not self.store.heartbeat(deployment_id, now) and not run.finishing:
                    self.inflight.fence(deployment_id)
            except Exception:
                log.exception("heartbeat for #%s failed", deployment_id)

    def recover_stale(self) -> list[Deployment]:
        """Interrupt running deployments nobody is heartbeating (their process died)."""
        seconds = max(3 * self.interval, 1)
        now, mono = self.ledger.now(), monotonic_time.monotonic()
        out = []
        running = self.store.deployments(states=[State.RUNNING], limit=500)
        for d in running:
            if d.id is None or d.id in self.inflight.runs:
                continue
            beat = d.heartbeat_at or d.started_at or d.updated_at or d.created_at
            if self.single_process:
                stale = now - beat >= timedelta(seconds=seconds)
            else:
                seen = self._beats_seen.get(d.id)
                if seen is None or seen[0] != beat:
                    self._beats_seen[d.id] = (beat, mono)
                stale = seen is not None and seen[0] == beat and mono - seen[1] >= seconds
            if stale:
                out.append(self.interrupt(d, "its process stopped while it was running"))
        live = {d.id for d in running}
        for gone in [k for k in self._beats_seen if k not in live]:
            del self._beats_seen[gone]
        return [d for d in out if d is not None]


__all__ = ["Watchdog"]
