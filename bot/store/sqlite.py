"""SQLite store: sqlite-utils for schema migrations (`bot.store.sqlite_migrations`), plain SQL for the rest.

One connection opened with `check_same_thread=False` (sqlite-utils' own `Database(path)` would
bind it to the creating thread), WAL on, and every write serialised by a lock, so the engine's
worker threads can share it. One active deployment per environment is a unique partial index.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.domain.deployment import Deployment, EventRecord, Lock, State
from bot.store.base import ActiveDeploymentExists, CheckRecord, Schedule, StaleDeployment, StoreError
from bot.store.codec import (
    DEPLOYMENT_COLUMNS,
    DEQUEUE_SQL,
    LIVE_SQL,
    check_from_row,
    deployment_from_row,
    deployment_row,
    event_from_row,
    event_row,
    host_result_rows,
    lock_from_row,
    schedule_from_row,
    ts,
    where,
    with_deployment,
)
from bot.store.sqlite_migrations import migrations
from bot.store.sqlite_queue import SqliteRunQueue
from bot.store.sqlite_upkeep import SqliteUpkeep
from runners import HostResult


class SqliteStore(SqliteRunQueue, SqliteUpkeep):
    """The default store: one SQLite file (or `:memory:`); its run queue is `SqliteRunQueue`."""

    def __init__(self, path: str | Path) -> None:
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            migrations.apply(sqlite_utils.Database(self._conn))
        self.path = path

    # -- plumbing ------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

    def _insert_event(self, conn: sqlite3.Connection, event: EventRecord) -> int:
        row = event_row(event)
        cur = conn.execute(
            f"INSERT INTO events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    # -- deployments ---------------------------------------------------------------------
    def create_deployment(self, d: Deployment, event: EventRecord) -> Deployment:
        """Insert `d` and its event atomically; the unique index guards one active per env."""
        row = deployment_row(d)
        try:
            with self._tx() as conn:
                cur = conn.execute(
                    f"INSERT INTO deployments ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    list(row.values()),
                )
                new_id = cur.lastrowid
                assert new_id is not None
                self._insert_event(conn, with_deployment(event, new_id))
        except sqlite3.IntegrityError as exc:
            if "deployments" in str(exc) and "env" in str(exc):
                raise ActiveDeploymentExists(self.active(d.env)) from exc
            raise
        created = self.get(new_id)
        assert created is not None
        return created

    def transition(
        self, d: Deployment, expected_version: int, event: EventRecord | None = None
    ) -> Deployment:
        """Compare-and-set save of `d` plus its event, in one transaction."""
        row = deployment_row(d)
        row["version"] = expected_version + 1
        sets = ", ".join(f"{col} = ?" for col in row)
        with self._lock:  # read back what *this* write stored, before any other writer
            try:
                with self._tx() as conn:
                    cur = conn.execute(
                        f"UPDATE deployments SET {sets} WHERE id = ? AND version = ?",
                        [*row.values(), d.id, expected_version],
                    )
                    if cur.rowcount != 1:
                        raise StaleDeployment(f"deployment #{d.id} changed since it was read")
                    conn.execute(DEQUEUE_SQL.format(p="?"), [d.id, row["state"]])
                    if event is not None:
                        self._insert_event(conn, with_deployment(event, d.id))
            except sqlite3.IntegrityError as exc:
                raise ActiveDeploymentExists(self.active(d.env)) from exc
            saved = self.get(d.id)
        assert saved is not None
        return saved

    def get(self, deployment_id: int) -> Deployment | None:
        """One deployment by id."""
        rows = self._rows("SELECT * FROM deployments WHERE id = ?", [deployment_id])
        return deployment_from_row(rows[0]) if rows else None

    def active(self, env: str) -> Deployment | None:
        """The active deployment of `env`."""
        rows = self._rows("SELECT * FROM deployments WHERE env = ? AND active = 1", [env])
        return deployment_from_row(rows[0]) if rows else None

    def deployments(
        self,
        env: str | None = None,
        *,
        states: Sequence[State] | None = None,
        kind: str | None = None,
        limit: int = 20,
        before_id: int | None = None,
        since: datetime | None = None,
    ) -> list[Deployment]:
        """Deployments newest first."""
        where, params = _deployment_filter(env, states, kind, before_id, since)
        sql = f"SELECT * FROM deployments {where} ORDER BY id DESC LIMIT ?"
        return [deployment_from_row(r) for r in self._rows(sql, [*params, limit])]

    def current_release(self, env: str) -> Deployment | None:
        """The newest live deployment of `env` (served by the deployments_live index)."""
        rows = self._rows(
            f"SELECT * FROM deployments WHERE env = ? AND dry_run = 0 AND state IN {LIVE_SQL} "
            "ORDER BY finished_at IS NULL DESC, finished_at DESC, id DESC LIMIT 1",
            [env],
        )
        return deployment_from_row(rows[0]) if rows else None

    # -- event log -----------------------------------------------------------------------
    def append_event(self, event: EventRecord) -> EventRecord:
        """Append one event."""
        with self._tx() as conn:
            new_id = self._insert_event(conn, event)
        return replace(event, id=new_id)

    def events(
        self,
        *,
        deployment_id: int | None = None,
        env: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        after_id: int | None = None,
    ) -> list[EventRecord]:
        """Events oldest first."""
        clause, params = where(
            ("deployment_id = ?", deployment_id),
            ("env = ?", env),
            ("at >= ?", ts(since)),
            ("id > ?", after_id),
        )
        tail = f" LIMIT {int(limit)}" if limit else ""
        return [
            event_from_row(r) for r in self._rows(f"SELECT * FROM events {clause} ORDER BY id{tail}", params)
        ]

    # -- locks ---------------------------------------------------------------------------
    def get_lock(self, env: str) -> Lock | None:
        """The lock on `env`."""
        rows = self._rows("SELECT * FROM locks WHERE env = ?", [env])
        return lock_from_row(rows[0]) if rows else None

    def set_lock(self, lock: Lock, event: EventRecord) -> bool:
        """Lock `env` unless already locked."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO locks (env, owner, reason, at, automatic) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (env) DO NOTHING",
                [lock.env, lock.owner, lock.reason, ts(lock.at), int(lock.automatic)],
            )
            if cur.rowcount != 1:
                return False
            self._insert_event(conn, event)
        return True

    def clear_lock(self, env: str, event: EventRecord) -> Lock | None:
        """Remove the lock on `env`."""
        with self._tx() as conn:
            rows = [dict(r) for r in conn.execute("SELECT * FROM locks WHERE env = ?", [env]).fetchall()]
            if not rows:
                return None
            conn.execute("DELETE FROM locks WHERE env = ?", [env])
            self._insert_event(conn, event)
        return lock_from_row(rows[0])

    def locks(self) -> list[Lock]:
        """Every lock."""
        return [lock_from_row(r) for r in self._rows("SELECT * FROM locks ORDER BY env")]

    # -- host results and idempotency ----------------------------------------------------
    def record_host_results(self, deployment_id: int, stage: str, results: Sequence[HostResult]) -> None:
        """Store per-host results of one step."""
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO host_results (deployment_id, stage, step, host, status, exit_code, duration, "
                "output, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                host_result_rows(deployment_id, stage, results),
            )

    def host_results(self, deployment_id: int) -> list[dict[str, Any]]:
        """Per-host results in order."""
        return self._rows("SELECT * FROM host_results WHERE deployment_id = ? ORDER BY id", [deployment_id])

    def claim(self, key: str, at: datetime) -> bool:
        """First claim of `key` wins."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO idempotency_keys (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                [key, ts(at)],
            )
            return cur.rowcount == 1

    def heartbeat(self, deployment_id: int, at: datetime) -> bool:
        """Touch heartbeat_at of a running deployment without bumping the version."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE deployments SET heartbeat_at = ? WHERE id = ? AND state = 'running'",
                [ts(at), deployment_id],
            )
            return cur.rowcount == 1

    # -- schedules -----------------------------------------------------------------------
    def add_schedule(self, s: Schedule) -> Schedule:
        """Insert a schedule (or return the row already holding its key)."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO schedules (kind, run_at, deployment_id, payload, state, key) "
                "VALUES (?, ?, ?, ?, 'pending', ?) ON CONFLICT (key) DO NOTHING",
                [s.kind, ts(s.run_at), s.deployment_id, json.dumps(s.payload, default=str), s.key],
            )
            if cur.rowcount == 0:
                row = conn.execute("SELECT * FROM schedules WHERE key = ?", [s.key]).fetchone()
                return schedule_from_row(dict(row))
        return replace(s, id=cur.lastrowid, state="pending")

    def pending_schedules(self, *, due_before: datetime | None = None) -> list[Schedule]:
        """Pending schedules, soonest first."""
        sql = "SELECT * FROM schedules WHERE state = 'pending'"
        params: list[Any] = []
        if due_before is not None:
            sql += " AND run_at <= ?"
            params.append(ts(due_before))
        return [schedule_from_row(r) for r in self._rows(sql + " ORDER BY run_at, id", params)]

    def claim_schedule(self, schedule_id: int, at: datetime, owner: str = "") -> bool:
        """Compare-and-set pending -> claimed."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE schedules SET state = 'claimed', claimed_at = ?, claimed_by = ? "
                "WHERE id = ? AND state = 'pending'",
                [ts(at), owner, schedule_id],
            )
            return cur.rowcount == 1

    def finish_schedule(self, schedule_id: int, at: datetime) -> None:
        """Claimed -> done."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE schedules SET state = 'done', done_at = ? WHERE id = ? AND state = 'claimed'",
                [ts(at), schedule_id],
            )

    def orphaned_schedules(self, owner: str) -> list[Schedule]:
        """Claimed, unfinished rows of other claimers."""
        rows = self._rows(
            "SELECT * FROM schedules WHERE state = 'claimed' AND claimed_by IS NOT ? ORDER BY run_at, id",
            [owner],
        )
        return [schedule_from_row(r) for r in rows]

    def reclaim_schedule(self, schedule_id: int, at: datetime, owner: str, previous: str | None) -> bool:
        """Compare-and-set the claimer of an orphan."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE schedules SET claimed_at = ?, claimed_by = ? "
                "WHERE id = ? AND state = 'claimed' AND claimed_by IS ?",
                [ts(at), owner, schedule_id, previous],
            )
            return cur.rowcount == 1

    def cancel_schedules(self, deployment_id: int, kind: str | None = None) -> int:
        """Cancel pending schedules of a deployment."""
        sql = "UPDATE schedules SET state = 'cancelled' WHERE deployment_id = ? AND state = 'pending'"
        params: list[Any] = [deployment_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        with self._tx() as conn:
            return conn.execute(sql, params).rowcount

    # -- check results -------------------------------------------------------------------
    def record_check_results(
        self, deployment_id: int | None, env: str, results: Sequence[CheckRecord]
    ) -> None:
        """Store one round of check results."""
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO check_results (deployment_id, env, round, name, kind, ok, at, observed, latency, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        deployment_id,
                        env,
                        r.round,
                        r.name,
                        r.kind,
                        int(r.ok),
                        ts(r.at),
                        r.observed,
                        r.latency,
                        r.error,
                    )
                    for r in results
                ],
            )

    def check_results(
        self,
        *,
        env: str | None = None,
        deployment_id: int | None = None,
        round: int | None = None,
        limit: int = 50,
    ) -> list[CheckRecord]:
        """Check results newest first."""
        clause, params = where(("env = ?", env), ("deployment_id = ?", deployment_id), ("round = ?", round))
        rows = self._rows(f"SELECT * FROM check_results {clause} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [check_from_row(r) for r in rows]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def _deployment_filter(
    env: str | None,
    states: Sequence[State] | None,
    kind: str | None,
    before_id: int | None,
    since: datetime | None = None,
) -> tuple[str, list[Any]]:
    clause, params = where(
        ("env = ?", env), ("kind = ?", kind), ("id < ?", before_id), ("created_at >= ?", ts(since))
    )
    if states:
        in_states = f"state IN ({', '.join('?' * len(states))})"
        clause = f"{clause} AND {in_states}" if clause else f"WHERE {in_states}"
        params += [s.value for s in states]
    return clause, params


__all__ = ["DEPLOYMENT_COLUMNS", "SqliteStore"]
