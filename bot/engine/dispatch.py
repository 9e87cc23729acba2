"""The run queue's worker side: runs claimed from the store by whichever process has a free worker.

`submit` queues a run in the store (`Store.enqueue_run`: the table is the queue) and wakes this
process's dispatcher; the dispatcher thread claims queued runs (`Store.claim_run`) while a
worker is free and hands each to the worker pool. So with several replicas on one PostgreSQL
database a run is taken by any replica with a free worker, whichever replica queued it, and
exactly one of them takes it. What wakes a dispatcher: a local submit, a worker coming free, a
hint that another process queued something (`Store.on_run_queued`: PostgreSQL NOTIFY), and,
as the fallback for hints that never come, a poll every `poll` seconds.

A claim another process took and never started (it died in between) is taken over once it is
older than `lease` (a single process owns every claim, so any left by an earlier process is
stale at once). A claim never runs anything twice on its own: the run's start is the ledger's
compare-and-set, which one worker wins and the others lose.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from bot.domain.deployment import Deployment
from bot.store.base import Store

log = logging.getLogger("gonogo.runs")


class Dispatcher:
    """Claims queued runs for `workers` worker threads and runs each with `run(deployment_id)`."""

    def __init__(
        self,
        store: Store,
        now: Callable[[], datetime],
        run: Callable[[int], None],
        *,
        workers: int,
        poll: float,
        lease: float | None,
    ) -> None:
        self.store = store
        self.now = now
        self.run = run
        self.workers = workers
        self.poll = poll
        #: Seconds after which another process's unstarted claim is taken over; None: at once.
        self.lease = lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gonogo-work")
        self._cond = threading.Condition()
        self._busy = 0
        self._wanted = False
        self._submitted = 0  # local submits so far
        self._settled = 0  # submits seen by a claim round that found the queue empty
        self._accepting = True
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- the queue ------------------------------------------------------------------------------
    def submit(self, d: Deployment) -> None:
        """Queue a run of `d` from its current state, for any process's worker (this one's first)."""
        if not self.store.enqueue_run(d.id, d.state, self.now()):
            log.info("%s is no longer %s: not queued", d.label, d.state.value)
            return
        with self._cond:
            if self._accepting:
                self._submitted += 1
        self.wake()

    def wake(self) -> None:
        """Claim now (something may have been queued, or a worker came free)."""
        with self._cond:
            self._wanted = True
            self._cond.notify_all()
        self._ensure_thread()

    def start(self) -> None:
        """Start claiming, listening for runs other processes queue."""
        self.store.on_run_queued(self.wake)
        self.wake()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no run is in flight here and this process's submits have been claimed."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._settled >= self._submitted, timeout)

    def stop_claiming(self) -> None:
        """Take no more runs (shutdown): what is queued stays queued for another process."""
        with self._cond:
            self._accepting = False
            self._settled = self._submitted
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the dispatcher thread and the workers (after `stop_claiming`)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- claiming ---------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._cond:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._loop, name="gonogo-dispatch", daemon=True)
        self._thread.start()

    def _ready(self) -> bool:
        return self._closed or (self._accepting and self._wanted and self._busy < self.workers)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._ready, timeout=self.poll)
                if self._closed:
                    return
                if not self._accepting or self._busy >= self.workers:
                    continue
                self._wanted = False
                seen, free = self._submitted, self.workers - self._busy
            drained = self._claim(free)
            with self._cond:
                if drained:
                    self._settled = max(self._settled, seen)
                self._cond.notify_all()

    def _claim(self, free: int) -> bool:
        """Claim up to `free` runs for the pool; True when the queue had no more to give."""
        for _ in range(free):
            now = self.now()
            stale = now - timedelta(seconds=self.lease) if self.lease is not None else now
            try:
                deployment_id = self.store.claim_run(self.owner, now, stale)
            except Exception:
                log.exception("run queue: claiming failed; trying again in %ss", self.poll)
                return False
            if deployment_id is None:
                return True
            with self._cond:
                self._busy += 1
            try:
                self._pool.submit(self._work, deployment_id)
            except RuntimeError:  # the pool shut down meanwhile: the claim goes stale for another process
                self._done(deployment_id, release=False)
                return True
        return False

    def _work(self, deployment_id: int) -> None:
        try:
            self.run(deployment_id)
        finally:
            self._done(deployment_id)

    def _done(self, deployment_id: int, *, release: bool = True) -> None:
        try:
            if release:  # a started run has left the queue already; this drops one that never started
                self.store.release_run(deployment_id, self.owner)
        except Exception:
            log.exception("run queue: releasing #%s failed", deployment_id)
        with self._cond:
            self._busy -= 1
            self._wanted = True
            self._cond.notify_all()


__all__ = ["Dispatcher"]
