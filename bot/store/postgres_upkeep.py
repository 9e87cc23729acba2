"""Retention on PostgreSQL: check results, host output and the rest (`prune`), and the event log
in batches (`prune_events`), each batch its own short transaction."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import psycopg

from bot.store.codec import PRUNE_EVENTS_BATCH, PRUNE_EVENTS_SQL, PRUNE_SQL


class PostgresUpkeep:
    """`prune` and `prune_events` of `PostgresStore`."""

    def _tx(self) -> AbstractContextManager[psycopg.Connection[dict[str, Any]]]:
        raise NotImplementedError  # PostgresStore's

    def prune(self, older_than: datetime) -> int:
        """Delete old check results and host output; keep deployments and events."""
        with self._tx() as conn:
            return sum(conn.execute(q.format(cutoff="%s"), [older_than]).rowcount for q in PRUNE_SQL)

    def prune_events(self, older_than: datetime) -> int:
        """Delete events older than `older_than`, `PRUNE_EVENTS_BATCH` per transaction."""
        removed = 0
        while True:
            with self._tx() as conn:
                gone = conn.execute(
                    PRUNE_EVENTS_SQL.format(p="%s"), [older_than, PRUNE_EVENTS_BATCH]
                ).rowcount
            removed += gone
            if gone < PRUNE_EVENTS_BATCH:
                return removed


__all__ = ["PostgresUpkeep"]
