"""The run queue on PostgreSQL: runs claimed by whichever replica has a free worker.

- `enqueue_run` locks the deployment row (`FOR SHARE`) while it checks the state and inserts, so
  it serialises with a transition of that row: a run is never queued for a state its deployment
  has just left (the transition's own delete would have missed it).
- `claim_run` is the classic job-queue claim: the oldest claimable row is locked with
  `FOR UPDATE SKIP LOCKED` and marked with the claimer in one statement, so concurrent replicas
  each take a different run and none waits on another; a row claimed meanwhile fails the
  re-check under the lock and is skipped.
- Queuing sends `NOTIFY` on a channel of this store's schema (delivered at commit). Replicas
  listen on a dedicated autocommit connection and take it as a hint to claim now; a missed
  notification only means the next poll finds the run (tables first).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from bot.domain.deployment import State
from bot.store.codec import CLAIMABLE_RUN

log = logging.getLogger("gonogo.store.postgres")

#: Seconds between checks of the listener's stop flag, and before it reconnects after an error.
LISTEN_TICK = 1.0


def queue_channel(schema: str | None) -> str:
    """The NOTIFY channel of one store (one per schema, so installations never wake each other)."""
    return "gonogo_runs_" + hashlib.blake2b((schema or "").encode(), digest_size=6).hexdigest()


class PostgresRunQueue:
    """`enqueue_run`, `claim_run`, `release_run` and `on_run_queued` of `PostgresStore`."""

    schema: str | None
    _conninfo: str
    _listener: RunListener | None = None

    def _conn(self) -> AbstractContextManager[psycopg.Connection[dict[str, Any]]]:
        raise NotImplementedError  # PostgresStore's

    def _tx(self) -> AbstractContextManager[psycopg.Connection[dict[str, Any]]]:
        raise NotImplementedError  # PostgresStore's

    def enqueue_run(self, deployment_id: int, state: State, at: datetime) -> bool:
        """Queue a run of a deployment that is in `state` now (and wake the replicas); False when not."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT state FROM deployments WHERE id = %s FOR SHARE", [deployment_id]
            ).fetchone()
            if row is None or row["state"] != state.value:
                return False
            conn.execute(
                "INSERT INTO run_queue (deployment_id, state, queued_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (deployment_id) DO UPDATE SET state = excluded.state, "
                "queued_at = excluded.queued_at, claimed_by = NULL, claimed_at = NULL "
                "WHERE run_queue.state <> excluded.state",
                [deployment_id, state.value, at],
            )
            conn.execute("SELECT pg_notify(%s, '')", [queue_channel(self.schema)])
        return True

    def claim_run(self, owner: str, at: datetime, stale_before: datetime) -> int | None:
        """The oldest claimable run, now claimed by `owner`; other replicas skip the locked row."""
        with self._conn() as conn:
            row = conn.execute(
                "WITH next AS (SELECT q.deployment_id FROM "
                f"{CLAIMABLE_RUN.format(p='%s')} LIMIT 1 FOR UPDATE OF q SKIP LOCKED) "
                "UPDATE run_queue r SET claimed_by = %s, claimed_at = %s FROM next "
                "WHERE r.deployment_id = next.deployment_id RETURNING r.deployment_id",
                [owner, stale_before, owner, at],
            ).fetchone()
        return int(row["deployment_id"]) if row else None

    def release_run(self, deployment_id: int, owner: str) -> None:
        """Drop `owner`'s claim (the run never started)."""
        with self._conn() as conn:
            conn.execute(
                "DELETE FROM run_queue WHERE deployment_id = %s AND claimed_by = %s", [deployment_id, owner]
            )

    def on_run_queued(self, wake: Callable[[], None]) -> None:
        """Call `wake` on each NOTIFY of this store's channel, from a listener thread."""
        if self._listener is None:
            self._listener = RunListener(self._conninfo, queue_channel(self.schema))
            self._listener.start()
        self._listener.wakes.append(wake)

    def _stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None


class RunListener:
    """A thread on its own autocommit connection, LISTENing for queued runs; reconnects on errors."""

    def __init__(self, conninfo: str, channel: str) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.wakes: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="gonogo-run-listener", daemon=True)

    def start(self) -> None:
        """Start listening."""
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and close the connection."""
        self._stop.set()
        self._thread.join(timeout=LISTEN_TICK * 3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._wake()  # anything queued while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=LISTEN_TICK, stop_after=1):
                            self._wake()
            except psycopg.Error as exc:
                log.warning("run queue listener: %s; polling until it reconnects", exc)
                self._stop.wait(LISTEN_TICK)

    def _wake(self) -> None:
        for wake in list(self.wakes):
            with contextlib.suppress(Exception):
                wake()


__all__ = ["PostgresRunQueue", "RunListener", "queue_channel"]
