"""The run queue on SQLite: one process, every write already serialised (`BEGIN IMMEDIATE`),
so a claim is one `UPDATE ... RETURNING` of the oldest claimable row."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from bot.domain.deployment import State
from bot.store.codec import CLAIMABLE_RUN, ts


class SqliteRunQueue:
    """`enqueue_run`, `claim_run`, `release_run` and `on_run_queued` of `SqliteStore`."""

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # SqliteStore's

    def enqueue_run(self, deployment_id: int, state: State, at: datetime) -> bool:
        """Queue a run of a deployment that is in `state` now; False when it is not."""
        with self._tx() as conn:
            row = conn.execute("SELECT state FROM deployments WHERE id = ?", [deployment_id]).fetchone()
            if row is None or row["state"] != state.value:
                return False
            conn.execute(
                "INSERT INTO run_queue (deployment_id, state, queued_at) VALUES (?, ?, ?) "
                "ON CONFLICT (deployment_id) DO UPDATE SET state = excluded.state, "
                "queued_at = excluded.queued_at, claimed_by = NULL, claimed_at = NULL "
                "WHERE run_queue.state <> excluded.state",
                [deployment_id, state.value, ts(at)],
            )
        return True

    def claim_run(self, owner: str, at: datetime, stale_before: datetime) -> int | None:
        """The oldest claimable run, now claimed by `owner` (None: nothing to claim)."""
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE run_queue SET claimed_by = ?, claimed_at = ? WHERE deployment_id = ("
                f"SELECT q.deployment_id FROM {CLAIMABLE_RUN.format(p='?')} LIMIT 1) RETURNING deployment_id",
                [owner, ts(at), owner, ts(stale_before)],
            ).fetchone()
        return int(row["deployment_id"]) if row else None

    def release_run(self, deployment_id: int, owner: str) -> None:
        """Drop `owner`'s claim (the run never started)."""
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM run_queue WHERE deployment_id = ? AND claimed_by = ?", [deployment_id, owner]
            )

    def on_run_queued(self, wake: Callable[[], None]) -> None:
        """One process: nobody else queues runs, so there is nothing to listen to."""


__all__ = ["SqliteRunQueue"]
