"""PostgreSQL store: psycopg 3 with a connection pool, for several replicas sharing one database.

Same schema shape and semantics as `bot.store.sqlite` (the reference), with PostgreSQL types:
BIGSERIAL ids, BOOLEAN flags, TIMESTAMPTZ times (read back as aware UTC datetimes), JSON as TEXT
(what `bot.store.codec` reads). The database enforces the rules of `bot.store.base`:

- one active deployment per environment is the unique partial index `deployments_one_active`;
- `transition` is `UPDATE ... WHERE id = %s AND version = %s`: under concurrent updates of one row
  PostgreSQL re-checks the condition after the first writer commits, so exactly one wins;
- idempotency keys are `INSERT ... ON CONFLICT DO NOTHING`; `claim_schedule` is an atomic
  `UPDATE ... WHERE state = 'pending'` (exactly one replica sees a row change).

Pooled connections run in autocommit; writes open an explicit transaction. No session-level
state is left on a pooled connection (no session advisory locks: see `bot.leader`).

Migrations are named functions recorded in `gonogo_migrations`, applied in one transaction under
`pg_advisory_xact_lock`, so replicas starting at the same moment apply them exactly once.

The URL may carry `?schema=NAME` (not a libpq parameter, removed before connecting): the store
then lives in that schema (created if missing) through the connection's `search_path`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.domain.deployment import Deployment, EventRecord, Lock, State
from bot.store.base import ActiveDeploymentExists, CheckRecord, Schedule, StaleDeployment, StoreError
from bot.store.codec import (
    DEPLOYMENT_COLUMNS,
    check_from_row,
    deployment_from_row,
    deployment_row,
    event_from_row,
    lock_from_row,
    schedule_from_row,
)
from runners import HostResult

log = logging.getLogger("gonogo.store.postgres")

#: Connection defaults a URL may override: fail fast when the server is unreachable, notice dead peers.
CONNECT_DEFAULTS: dict[str, str] = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "application_name": "gonogo",
}
_ONE_ACTIVE = "deployments_one_active"
_BOOL_COLUMNS = ("active", "dry_run", "force")
_TIME_COLUMNS = (
    "committed_at", "scheduled_at", "started_at", "finished_at", "heartbeat_at", "created_at", "updated_at",
    "live_at",
)  # fmt: skip
_LIVE = ("monitoring", "succeeded", "signed_off")
#: Literal, not a parameter, so the planner matches the partial index `deployments_live`.
_LIVE_SQL = "(" + ", ".join(f"'{s}'" for s in _LIVE) + ")"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

Migration = Callable[[psycopg.Connection[Any]], None]


def m001_initial(conn: psycopg.Connection[Any]) -> None:
    """Deployments, the event log, locks, per-host step results, idempotency keys."""
    conn.execute(
        """
        CREATE TABLE deployments (
            id BIGSERIAL PRIMARY KEY,
            env TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
            active BOOLEAN NOT NULL, version INTEGER NOT NULL,
            requester TEXT NOT NULL, ref TEXT NOT NULL, sha TEXT, reason TEXT,
            dry_run BOOLEAN NOT NULL DEFAULT FALSE, force BOOLEAN NOT NULL DEFAULT FALSE,
            checklist TEXT NOT NULL DEFAULT '[]', approvals TEXT NOT NULL DEFAULT '[]',
            required_approvals INTEGER NOT NULL DEFAULT 1,
            channel TEXT, message_ts TEXT, release_id BIGINT, rollback_of BIGINT,
            committed_at TIMESTAMPTZ, scheduled_at TIMESTAMPTZ, started_at TIMESTAMPTZ,
            finished_at TIMESTAMPTZ, heartbeat_at TIMESTAMPTZ, created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ,
            error TEXT, progress TEXT, details TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    conn.execute(f"CREATE UNIQUE INDEX {_ONE_ACTIVE} ON deployments (env) WHERE active")
    conn.execute("CREATE INDEX deployments_env_id ON deployments (env, id)")
    conn.execute("CREATE INDEX deployments_state ON deployments (state)")
    conn.execute(
        """
        CREATE TABLE events (
            id BIGSERIAL PRIMARY KEY,
            at TIMESTAMPTZ NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
            env TEXT, deployment_id BIGINT, detail TEXT
        )"""
    )
    conn.execute("CREATE INDEX events_deployment ON events (deployment_id, id)")
    conn.execute("CREATE INDEX events_at ON events (at)")
    conn.execute(
        """
        CREATE TABLE locks (
            env TEXT PRIMARY KEY, owner TEXT NOT NULL, reason TEXT NOT NULL,
            at TIMESTAMPTZ NOT NULL, automatic BOOLEAN NOT NULL DEFAULT FALSE
        )"""
    )
    conn.execute(
        """
        CREATE TABLE host_results (
            id BIGSERIAL PRIMARY KEY,
            deployment_id BIGINT NOT NULL, stage TEXT NOT NULL, step TEXT NOT NULL,
            host TEXT NOT NULL, status TEXT NOT NULL, exit_code INTEGER,
            duration DOUBLE PRECISION NOT NULL, output TEXT NOT NULL, error TEXT
        )"""
    )
    conn.execute("CREATE INDEX host_results_deployment ON host_results (deployment_id, id)")
    conn.execute("CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, at TIMESTAMPTZ NOT NULL)")


def m002_schedules_and_checks(conn: psycopg.Connection[Any]) -> None:
    """Timed work rows (rebuilt into APScheduler jobs by the leader) and check results."""
    conn.execute(
        """
        CREATE TABLE schedules (
            id BIGSERIAL PRIMARY KEY,
            kind TEXT NOT NULL, run_at TIMESTAMPTZ NOT NULL, deployment_id BIGINT,
            payload TEXT NOT NULL DEFAULT '{}', state TEXT NOT NULL DEFAULT 'pending',
            claimed_at TIMESTAMPTZ
        )"""
    )
    conn.execute("CREATE INDEX schedules_pending ON schedules (state, run_at)")
    conn.execute("CREATE INDEX schedules_deployment ON schedules (deployment_id) WHERE state = 'pending'")
    conn.execute(
        """
        CREATE TABLE check_results (
            id BIGSERIAL PRIMARY KEY,
            deployment_id BIGINT, env TEXT NOT NULL, round INTEGER NOT NULL DEFAULT 0,
            name TEXT NOT NULL, kind TEXT NOT NULL, ok BOOLEAN NOT NULL, at TIMESTAMPTZ NOT NULL,
            observed TEXT, latency DOUBLE PRECISION NOT NULL DEFAULT 0, error TEXT
        )"""
    )
    conn.execute("CREATE INDEX check_results_deployment ON check_results (deployment_id, id)")
    conn.execute("CREATE INDEX check_results_env ON check_results (env, id)")
    conn.execute("CREATE INDEX check_results_at ON check_results (at)")
    conn.execute("ALTER TABLE host_results ADD COLUMN at TIMESTAMPTZ")


def m003_current_release_index(conn: psycopg.Connection[Any]) -> None:
    """`current_release` (3 of the queries behind every /status) reads one index entry instead of
    sorting an environment's whole history: a partial index in exactly its ORDER BY."""
    conn.execute(
        "CREATE INDEX deployments_live ON deployments "
        "(env, (finished_at IS NULL) DESC, finished_at DESC, id DESC) "
        f"WHERE NOT dry_run AND state IN {_LIVE_SQL}"
    )


def m004_schedule_claims(conn: psycopg.Connection[Any]) -> None:
    """Who claimed a schedule and when it finished (orphans of a dead leader are fired again),
    and idempotency keys for schedules a handler may add twice when it is replayed."""
    conn.execute("ALTER TABLE schedules ADD COLUMN claimed_by TEXT")
    conn.execute("ALTER TABLE schedules ADD COLUMN done_at TIMESTAMPTZ")
    conn.execute("ALTER TABLE schedules ADD COLUMN key TEXT")
    conn.execute("CREATE UNIQUE INDEX schedules_key ON schedules (key)")
    conn.execute("CREATE INDEX schedules_claimed ON schedules (id) WHERE state = 'claimed'")


def m005_live_at(conn: psycopg.Connection[Any]) -> None:
    """When a deployment's release went live (lead time and time to restore end there)."""
    conn.execute("ALTER TABLE deployments ADD COLUMN live_at TIMESTAMPTZ")
    conn.execute(
        "UPDATE deployments SET live_at = COALESCE(finished_at, updated_at) "
        f"WHERE state IN {_LIVE_SQL} OR (state = 'rolled_back' AND release_id = id)"
    )


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_initial", m001_initial),
    ("m002_schedules_and_checks", m002_schedules_and_checks),
    ("m003_current_release_index", m003_current_release_index),
    ("m004_schedule_claims", m004_schedule_claims),
    ("m005_live_at", m005_live_at),
]


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_advisory_lock` derived from `name` (same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def split_url(url: str) -> tuple[str, str | None]:
    """`(libpq URL, schema)`: removes gonogo's own `schema` query parameter from a postgresql:// URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = [(k, v) for k, v in query if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode(rest))), (schema or None)


def conninfo(url: str, schema: str | None = None, *, extra_options: str = "", **overrides: str) -> str:
    """A libpq conninfo for `url`: CONNECT_DEFAULTS (overridable by the URL), then `overrides`.

    `extra_options` (server settings such as `-c name=value`) and, with `schema`, its
    `search_path` are appended to the URL's own `options`.
    """
    try:
        params: dict[str, Any] = {**CONNECT_DEFAULTS, **conninfo_to_dict(url), **overrides}
    except psycopg.ProgrammingError as exc:
        raise StoreError(f"invalid PostgreSQL URL {describe(url)}: {_first_line(exc)}") from exc
    options = [str(params.get("options") or ""), extra_options]
    if schema:
        options.append(f"-c search_path={schema}")
    params["options"] = " ".join(o.strip() for o in options if o.strip()) or None
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


def describe(url: str) -> str:
    """The URL for messages: user@host:port/dbname, never the password."""
    try:
        p = conninfo_to_dict(split_url(url)[0])
    except (psycopg.Error, ValueError):
        try:
            parts = urlsplit(url)
            p = {"user": parts.username, "host": parts.hostname, "port": parts.port, "dbname": parts.path[1:]}
        except ValueError:
            return "<unparseable URL>"
    user = f"{p['user']}@" if p.get("user") else ""
    port = f":{p['port']}" if p.get("port") else ""
    return f"{user}{p.get('host') or 'localhost'}{port}/{p.get('dbname') or ''}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


class PostgresStore:
    """The store for several replicas: one PostgreSQL database (optionally one schema in it).

    `PostgresStore(url)` connects once directly (so an unreachable server fails fast with a
    StoreError), applies migrations, then opens a pool of `min_size`..`max_size` connections.
    """

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
        self.schema = schema or url_schema
        if self.schema is not None and not _SCHEMA_NAME.fullmatch(self.schema):
            raise StoreError(f"invalid schema name {self.schema!r} (use lowercase letters, digits and _)")
        self.url = url
        self._where = describe(url) + (f" (schema {self.schema})" if self.schema else "")
        self._conninfo = conninfo(libpq_url, self.schema)
        self._migrate(libpq_url)
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            self._conninfo,
            open=True,
            min_size=min_size,
            max_size=max_size,
            timeout=pool_timeout,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=_configure,
            check=ConnectionPool.check_connection,  # a server restart costs no failed request
            name="gonogo-store",
        )
        try:
            self._pool.wait(timeout=pool_timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            self._pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {self._where}: {_first_line(exc)}") from exc

    # -- plumbing ------------------------------------------------------------------------
    def _migrate(self, libpq_url: str) -> None:
        """Apply pending migrations once, whoever else starts at the same time."""
        try:
            with psycopg.connect(conninfo(libpq_url), autocommit=True) as conn:
                _configure(conn)
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key("gonogo-migrations")])
                    if self.schema:
                        conn.execute(
                            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                        )
                        conn.execute(
                            sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(self.schema))
                        )
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS gonogo_migrations "
                        "(name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                    )
                    done = {r[0] for r in conn.execute("SELECT name FROM gonogo_migrations").fetchall()}
                    for name, migration in MIGRATIONS:
                        if name in done:
                            continue
                        log.info("store: applying migration %s", name)
                        migration(conn)
                        conn.execute("INSERT INTO gonogo_migrations (name) VALUES (%s)", [name])
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self._where}: {_first_line(exc)}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"cannot migrate PostgreSQL store at {self._where}: {_first_line(exc)}") from exc

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection (autocommit); connection trouble becomes a StoreError."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreError(f"PostgreSQL at {self._where} is unavailable: {_first_line(exc)}") from exc
        except psycopg.OperationalError as exc:
            raise StoreError(f"PostgreSQL at {self._where} failed: {_first_line(exc)}") from exc

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
        row = _pg_deployment_row(d)
        query = sql.SQL("INSERT INTO deployments ({}) VALUES ({}) RETURNING *").format(
            sql.SQL(", ").join(map(sql.Identifier, row)), sql.SQL(", ").join(sql.Placeholder() * len(row))
        )
        try:
            with self._tx() as conn:
                created = conn.execute(query, list(row.values())).fetchone()
                assert created is not None
                self._insert_event(conn, _with_deployment(event, int(created["id"])))
        except errors.UniqueViolation as exc:
            if exc.diag.constraint_name == _ONE_ACTIVE:
                raise ActiveDeploymentExists(self.active(d.env)) from exc
            raise
        return deployment_from_row(created)

    def transition(
        self, d: Deployment, expected_version: int, event: EventRecord | None = None
    ) -> Deployment:
        """Compare-and-set save of `d` plus its event, in one transaction."""
        assert d.id is not None
        row = _pg_deployment_row(d)
        row["version"] = expected_version + 1
        query = sql.SQL("UPDATE deployments SET {} WHERE id = %s AND version = %s RETURNING *").format(
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(col)) for col in row)
        )
        try:
            with self._tx() as conn:
                saved = conn.execute(query, [*row.values(), d.id, expected_version]).fetchone()
                if saved is None:
                    raise StaleDeployment(f"deployment #{d.id} changed since it was read")
                if event is not None:
                    self._insert_event(conn, _with_deployment(event, d.id))
        except errors.UniqueViolation as exc:
            if exc.diag.constraint_name == _ONE_ACTIVE:
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
    ) -> list[Deployment]:
        """Deployments newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if env is not None:
            clauses.append("env = %s")
            params.append(env)
        if states:
            clauses.append("state = ANY(%s)")
            params.append([s.value for s in states])
        if kind is not None:
            clauses.append("kind = %s")
            params.append(kind)
        if before_id is not None:
            clauses.append("id < %s")
            params.append(before_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(f"SELECT * FROM deployments {where} ORDER BY id DESC LIMIT %s", [*params, limit])
        return [deployment_from_row(r) for r in rows]

    def current_release(self, env: str) -> Deployment | None:
        """The newest live deployment of `env` (unfinished first, then by finish time, then id)."""
        rows = self._rows(
            f"SELECT * FROM deployments WHERE env = %s AND NOT dry_run AND state IN {_LIVE_SQL} "
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
    ) -> list[EventRecord]:
        """Events oldest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if deployment_id is not None:
            clauses.append("deployment_id = %s")
            params.append(deployment_id)
        if env is not None:
            clauses.append("env = %s")
            params.append(env)
        if since is not None:
            clauses.append("at >= %s")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = f" LIMIT {int(limit)}" if limit else ""
        rows = self._rows(f"SELECT * FROM events {where} ORDER BY id{tail}", params)
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
                [
                    (
                        deployment_id,
                        stage,
                        r.step,
                        r.host,
                        r.status,
                        r.exit_code,
                        r.duration,
                        r.output,
                        r.error,
                    )
                    for r in results
                ],
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
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("env", env), ("deployment_id", deployment_id), ("round", round)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(f"SELECT * FROM check_results {where} ORDER BY id DESC LIMIT %s", [*params, limit])
        return [check_from_row(r) for r in rows]

    def prune(self, older_than: datetime) -> int:
        """Delete old check results and host output; keep deployments and events."""
        with self._tx() as conn:
            removed = conn.execute("DELETE FROM check_results WHERE at < %s", [older_than]).rowcount
            removed += conn.execute(
                "DELETE FROM host_results WHERE deployment_id IN "
                "(SELECT id FROM deployments WHERE finished_at IS NOT NULL AND finished_at < %s)",
                [older_than],
            ).rowcount
            removed += conn.execute("DELETE FROM idempotency_keys WHERE at < %s", [older_than]).rowcount
            removed += conn.execute(
                "DELETE FROM schedules WHERE state IN ('done', 'cancelled') AND run_at < %s", [older_than]
            ).rowcount
        return removed

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Per-connection settings: times come back in UTC."""
    conn.execute("SET TIME ZONE 'UTC'")


def _pg_deployment_row(d: Deployment) -> dict[str, Any]:
    """`codec.deployment_row` with PostgreSQL types: booleans and datetimes, not 0/1 and text."""
    row = deployment_row(d)
    for col in _BOOL_COLUMNS:
        row[col] = bool(row[col])
    for col in _TIME_COLUMNS:
        row[col] = getattr(d, col)
    assert tuple(row) == DEPLOYMENT_COLUMNS
    return row


def _with_deployment(event: EventRecord, deployment_id: int) -> EventRecord:
    if event.deployment_id == deployment_id:
        return event
    return replace(event, deployment_id=deployment_id)


__all__ = ["MIGRATIONS", "PostgresStore", "advisory_key", "conninfo", "describe", "split_url"]
