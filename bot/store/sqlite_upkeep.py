"""Retention on SQLite: check results, host output and the rest (`prune`), and the event log in
batches (`prune_events`), each batch its own short write transaction."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime

from bot.store.codec import PRUNE_EVENTS_BATCH, PRUNE_EVENTS_SQL, PRUNE_SQL, ts


class SqliteUpkeep:
    """`prune` and `prune_events` of `SqliteStore`."""

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # SqliteStore's

    def prune(self, older_than: datetime) -> int:
        """Delete old check results and host output; keep deployments and events."""
        cutoff = ts(older_than)
        with self._tx() as conn:
            return sum(conn.execute(q.format(cutoff="?"), [cutoff]).rowcount for q in PRUNE_SQL)

    def prune_events(self, older_than: datetime) -> int:
        """Delete events older than `older_than`, `PRUNE_EVENTS_BATCH` per transaction."""
        removed, cutoff = 0, ts(older_than)
        while True:
            with self._tx() as conn:
                gone = conn.execute(PRUNE_EVENTS_SQL.format(p="?"), [cutoff, PRUNE_EVENTS_BATCH]).rowcount
            removed += gone
            if gone < PRUNE_EVENTS_BATCH:
                return removed


__all__ = ["SqliteUpkeep"]
