"""PostgreSQL store: psycopg 3 with a connection pool, for several replicas sharing one database.

Same schema shape and semantics as `bot.store.sqlite` (the reference), with PostgreSQL types:
BIGSERIAL ids, BOOLEAN flags, TIMESTAMPTZ times (read back as aware UTC datetimes), JSON as TEXT
(what `bot.store.codec` reads). The database enforces the rules of `bot.store.base`:

- one active deployment per environment is the unique partial index `deployments_one_active`;
- `transition` is `UPDATE ... WHERE id = %s AND version = %s`: under concurrent updates of one row
  PostgreSQL re-checks the condition after the first writer commits, so exactly one wins;
- idempotency keys are `INSERT ... ON CONFLICT DO NOTHING`; `claim_schedule` is an atomic
  `UPDATE ... WHERE state = 'pending'` (exactly one replica sees a row change).

Pooled connections run in autocommit; writes open an explicit transaction; no session-level
state is left on a pooled connection (no session advisory locks: see `bot.leader`). Beside it:
`postgres_migrations` (the schema), `postgres_connection` (URLs, conninfo), `postgres_queue`
(the run queue), `postgres_upkeep` (retention). Code outside the store imports PostgreSQL things
from here (`PostgresStore`; `advisory_key`, `conninfo`, `describe`, `split_url` for leader
election), so that the `bot.store` face never imports psycopg.

The URL may carry `?schema=NAME` (not a libpq parameter, removed before connecting): the store
then lives in that schema (created if missing) through the connection's `search_path`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors, sql

from bot.domain.deployment import Deployment, EventRecord, Lock, State
from bot.store.base import ActiveDeploymentExists, CheckRecord, Schedule, StaleDeployment
from bot.store.codec import (
    DEQUEUE_SQL,
    LIVE_SQL,
    check_from_row,
    deployment_from_row,
    event_from_row,
    host_result_rows,
    lock_from_row,
    pg_deployment_row,
    schedule_from_row,
    where,
    with_deployment,
)
from bot.store.postgres_connection import (
    advisory_key,
    checked_schema,
    conninfo,
    describe,
    open_pool,
    pooled,
    split_url,
)
from bot.store.postgres_migrations import MIGRATIONS, ONE_ACTIVE, migrate
from bot.store.postgres_queue import PostgresRunQueue
from bot.store.postgres_upkeep import PostgresUpkeep
from runners import HostResult

log = logging.getLogger("gonogo.store.postgres")


class PostgresStore(PostgresRunQueue, PostgresUpkeep):
    """The store for several replicas: one PostgreSQL database (optionally one schema in it).
    Connects once directly (an unreachable server fails fast with a StoreError), applies
    migrations, then opens a pool of `min_size`..`max_size` connections."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        pool_timeout: float = 10.0,
    ) -> None:
        libpq_url, url_schema = split_url(url)
        self.schema = checked_schema(schema or url_schema)
        self.url = url
        self._where = describe(url) + (f" (schema {self.schema})" if self.schema else "")
        self._conninfo = conninfo(libpq_url, self.schema)
        migrate(libpq_url, self.schema, where=self._where)
        self._pool = open_pool(
            self._conninfo, min_size=min_size, max_size=max_size, timeout=pool_timeout, where=self._where
        )

    # -- plumbing ------------------------------------------------------------------------
    def _conn(self) -> AbstractContextManager[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection (autocommit); connection trouble becomes a StoreError."""
        return pooled(self._pool, self._where)

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection inside one transaction (committed at the end, rolled back on error)."""
        with self._conn() as conn, conn.transaction():
            yield conn

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._conn() as conn:
            return conn.execute(query, params).fetchall()

    def _insert_event(self, conn: psycopg.Connection[Any], event: EventRecord) -> int:
        row = conn.execute(
            "INSERT INTO events (at, actor, action, env, deployment_id, detail) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            [event.at, event.actor, event.action, event.env, event.deployment_id, event.detail],
        ).fetchone()
        assert row is not None
        return int(row["id"])

    # -- deployments ---------------------------------------------------------------------
    def create_deployment(self, d: Deployment, event: EventRecord) -> Deployment:
        """Insert `d` and its event atomically; the unique index guards one active per env."""
        row = pg_deployment_row(d)
        query = sql.SQL("INSERT INTO deployments ({}) VALUES ({}) RETURNING *").format(
            sql.SQL(", ").join(map(sql.Identifier, row)), sql.SQL(", ").join(sql.Placeholder() * len(row))
        )
        try:
            with self._tx() as conn:
                created = conn.execute(query, list(row.values())).fetchone()
                assert created is not None
                self._insert_event(conn, with_deployment(event, int(created["id"])))
        except errors.UniqueViolation as exc:
            if exc.diag.constraint_name == ONE_ACTIVE:
                raise ActiveDeploymentExists(self.active(d.env)) from exc
            raise
        return deployment_from_row(created)

    def transition(
        self, d: Deployment, expected_version: int, event: EventRecord | None = None
    ) -> Deployment:
        """Compare-and-set save of `d` plus its event, in one transaction."""
        row = pg_deployment_row(d)
        row["version"] = expected_version + 1
        query = sql.SQL("UPDATE deployments SET {} WHERE id = %s AND version = %s RETURNING *").format(
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(col)) for col in row)
        )
        try:
            with self._tx() as conn:
                saved = conn.execute(query, [*row.values(), d.id, expected_version]).fetchone()
                if saved is None:
                    raise StaleDeployment(f"deployment #{d.id} changed since it was read")
                conn.execute(DEQUEUE_SQL.format(p="%s"), [d.id, row["state"]])
                if event is not None:
                    self._insert_event(conn, with_deployment(event, d.id))
        except errors.UniqueViolation as exc:
            if exc.diag.constraint_name == ONE_ACTIVE:
                raise ActiveDeploymentExists(self.active(d.env)) from exc
            raise
        return deployment_from_row(saved)

    def get(self, deployment_id: int) -> Deployment | None:
        """One deployment by id."""
        rows = self._rows("SELECT * FROM deployments WHERE id = %s", [deployment_id])
        return deployment_from_row(rows[0]) if rows else None

    def active(self, env: str) -> Deployment | None:
        """The active deployment of `env`."""
        rows = self._rows("SELECT * FROM deployments WHERE env = %s AND active", [env])
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
        clause, params = where(
            ("env = %s", env),
            ("state = ANY(%s)", [s.value for s in states] if states else None),
            ("kind = %s", kind),
            ("id < %s", before_id),
            ("created_at >= %s", since),
        )
        rows = self._rows(f"SELECT * FROM deployments {clause} ORDER BY id DESC LIMIT %s", [*params, limit])
        return [deployment_from_row(r) for r in rows]

    def current_release(self, env: str) -> Deployment | None:
        """The newest live deployment of `env` (unfinished first, then by finish time, then id)."""
        rows = self._rows(
            f"SELECT * FROM deployments WHERE env = %s AND NOT dry_run AND state IN {LIVE_SQL} "
            "ORDER BY finished_at IS NULL DESC, finished_at DESC, id DESC LIMIT 1",
            [env],
        )
        return deployment_from_row(rows[0]) if rows else None

    # -- event log -----------------------------------------------------------------------
    def append_event(self, event: EventRecord) -> EventRecord:
        """Append one event."""
        with self._conn() as conn:  # one statement: autocommit is its own transaction
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
            ("deployment_id = %s", deployment_id),
            ("env = %s", env),
            ("at >= %s", since),
            ("id > %s", after_id),
        )
        tail = f" LIMIT {int(limit)}" if limit else ""
        rows = self._rows(f"SELECT * FROM events {clause} ORDER BY id{tail}", params)
        return [event_from_row(r) for r in rows]

    # -- locks ---------------------------------------------------------------------------
    def get_lock(self, env: str) -> Lock | None:
        """The lock on `env`."""
        rows = self._rows("SELECT * FROM locks WHERE env = %s", [env])
        return lock_from_row(rows[0]) if rows else None

    def set_lock(self, lock: Lock, event: EventRecord) -> bool:
        """Lock `env` unless already locked."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO locks (env, owner, reason, at, automatic) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (env) DO NOTHING",
                [lock.env, lock.owner, lock.reason, lock.at, lock.automatic],
            )
            if cur.rowcount != 1:
                return False
            self._insert_event(conn, event)
        return True

    def clear_lock(self, env: str, event: EventRecord) -> Lock | None:
        """Remove the lock on `env`."""
        with self._tx() as conn:
            row = conn.execute("DELETE FROM locks WHERE env = %s RETURNING *", [env]).fetchone()
            if row is None:
                return None
            self._insert_event(conn, event)
        return lock_from_row(row)

    def locks(self) -> list[Lock]:
        """Every lock."""
        return [lock_from_row(r) for r in self._rows("SELECT * FROM locks ORDER BY env")]

    # -- host results and idempotency ----------------------------------------------------
    def record_host_results(self, deployment_id: int, stage: str, results: Sequence[HostResult]) -> None:
        """Store per-host results of one step."""
        if not results:
            return
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO host_results (deployment_id, stage, step, host, status, exit_code, duration, "
                "output, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                host_result_rows(deployment_id, stage, results),
            )

    def host_results(self, deployment_id: int) -> list[dict[str, Any]]:
        """Per-host results in order."""
        return self._rows("SELECT * FROM host_results WHERE deployment_id = %s ORDER BY id", [deployment_id])

    def claim(self, key: str, at: datetime) -> bool:
        """First claim of `key` wins (across every replica)."""
        with self._conn() as conn:
            cur = conn.execute(
                "INSERT INTO idempotency_keys (key, at) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                [key, at],
            )
            return cur.rowcount == 1

    def heartbeat(self, deployment_id: int, at: datetime) -> bool:
        """Touch heartbeat_at of a running deployment without bumping the version."""
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE deployments SET heartbeat_at = %s WHERE id = %s AND state = 'running'",
                [at, deployment_id],
            )
            return cur.rowcount == 1

    # -- schedules -----------------------------------------------------------------------
    def add_schedule(self, s: Schedule) -> Schedule:
        """Insert a schedule (or return the row already holding its key)."""
        with self._tx() as conn:
            row = conn.execute(
                "INSERT INTO schedules (kind, run_at, deployment_id, payload, state, key) "
                "VALUES (%s, %s, %s, %s, 'pending', %s) ON CONFLICT (key) DO NOTHING RETURNING id",
                [s.kind, s.run_at, s.deployment_id, json.dumps(s.payload, default=str), s.key],
            ).fetchone()
            if row is None:
                existing = conn.execute("SELECT * FROM schedules WHERE key = %s", [s.key]).fetchone()
                assert existing is not None
                return schedule_from_row(existing)
        return replace(s, id=int(row["id"]), state="pending")

    def pending_schedules(self, *, due_before: datetime | None = None) -> list[Schedule]:
        """Pending schedules, soonest first."""
        query = "SELECT * FROM schedules WHERE state = 'pending'"
        params: list[Any] = []
        if due_before is not None:
            query += " AND run_at <= %s"
            params.append(due_before)
        return [schedule_from_row(r) for r in self._rows(query + " ORDER BY run_at, id", params)]

    def claim_schedule(self, schedule_id: int, at: datetime, owner: str = "") -> bool:
        """Compare-and-set pending -> claimed: exactly one caller sees True."""
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE schedules SET state = 'claimed', claimed_at = %s, claimed_by = %s "
                "WHERE id = %s AND state = 'pending'",
                [at, owner, schedule_id],
            )
            return cur.rowcount == 1

    def finish_schedule(self, schedule_id: int, at: datetime) -> None:
        """Claimed -> done."""
        with self._conn() as conn:
            conn.execute(
                "UPDATE schedules SET state = 'done', done_at = %s WHERE id = %s AND state = 'claimed'",
                [at, schedule_id],
            )

    def orphaned_schedules(self, owner: str) -> list[Schedule]:
        """Claimed, unfinished rows of other claimers."""
        rows = self._rows(
            "SELECT * FROM schedules WHERE state = 'claimed' AND claimed_by IS DISTINCT FROM %s "
            "ORDER BY run_at, id",
            [owner],
        )
        return [schedule_from_row(r) for r in rows]

    def reclaim_schedule(self, schedule_id: int, at: datetime, owner: str, previous: str | None) -> bool:
        """Compare-and-set the claimer of an orphan."""
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE schedules SET claimed_at = %s, claimed_by = %s "
                "WHERE id = %s AND state = 'claimed' AND claimed_by IS NOT DISTINCT FROM %s",
                [at, owner, schedule_id, previous],
            )
            return cur.rowcount == 1

    def cancel_schedules(self, deployment_id: int, kind: str | None = None) -> int:
        """Cancel pending schedules of a deployment."""
        query = "UPDATE schedules SET state = 'cancelled' WHERE deployment_id = %s AND state = 'pending'"
        params: list[Any] = [deployment_id]
        if kind is not None:
            query += " AND kind = %s"
            params.append(kind)
        with self._conn() as conn:
            return conn.execute(query, params).rowcount

    # -- check results -------------------------------------------------------------------
    def record_check_results(
        self, deployment_id: int | None, env: str, results: Sequence[CheckRecord]
    ) -> None:
        """Store one round of check results."""
        if not results:
            return
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO check_results (deployment_id, env, round, name, kind, ok, at, observed, latency, "
                "error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (deployment_id, env, r.round, r.name, r.kind, r.ok, r.at, r.observed, r.latency, r.error)
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
        clause, params = where(
            ("env = %s", env), ("deployment_id = %s", deployment_id), ("round = %s", round)
        )
        rows = self._rows(f"SELECT * FROM check_results {clause} ORDER BY id DESC LIMIT %s", [*params, limit])
        return [check_from_row(r) for r in rows]

    def close(self) -> None:
        """Stop listening for queued runs (`PostgresRunQueue`) and close the pool."""
        self._stop_listening()
        self._pool.close()


__all__ = ["MIGRATIONS", "PostgresStore", "advisory_key", "conninfo", "describe", "split_url"]
