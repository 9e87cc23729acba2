"""The PostgreSQL schema: migrations, in order, each a named function (see `MIGRATIONS`).

Migrations are named functions recorded in `gonogo_migrations`, applied in one transaction under
`pg_advisory_xact_lock`, so replicas starting at the same moment apply them exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from bot.store.base import StoreError
from bot.store.codec import LIVE_SQL
from bot.store.postgres_connection import advisory_key, configure, conninfo, first_line

log = logging.getLogger("gonogo.store.postgres")

#: The unique partial index behind "one active deployment per environment" (the store tells
#: its violation from others by this name).
ONE_ACTIVE = "deployments_one_active"

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
    conn.execute(f"CREATE UNIQUE INDEX {ONE_ACTIVE} ON deployments (env) WHERE active")
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
        f"WHERE NOT dry_run AND state IN {LIVE_SQL}"
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
        f"WHERE state IN {LIVE_SQL} OR (state = 'rolled_back' AND release_id = id)"
    )


def m006_run_queue(conn: psycopg.Connection[Any]) -> None:
    """Runs waiting for a worker of any replica: the state each was queued in, who claimed it when."""
    conn.execute(
        """
        CREATE TABLE run_queue (
            deployment_id BIGINT PRIMARY KEY, state TEXT NOT NULL, queued_at TIMESTAMPTZ NOT NULL,
            claimed_by TEXT, claimed_at TIMESTAMPTZ
        )"""
    )


def m007_deployments_by_creation(conn: psycopg.Connection[Any]) -> None:
    """The DORA figures read one environment's deployments of the last N days: a range of this
    index, not the environment's whole history."""
    conn.execute("CREATE INDEX deployments_env_created ON deployments (env, created_at)")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_initial", m001_initial),
    ("m002_schedules_and_checks", m002_schedules_and_checks),
    ("m003_current_release_index", m003_current_release_index),
    ("m004_schedule_claims", m004_schedule_claims),
    ("m005_live_at", m005_live_at),
    ("m006_run_queue", m006_run_queue),
    ("m007_deployments_by_creation", m007_deployments_by_creation),
]


def migrate(libpq_url: str, schema: str | None, *, where: str) -> None:
    """Apply pending migrations once, whoever else starts at the same time (a StoreError naming
    `where` when the database cannot be reached or migrated)."""
    try:
        with psycopg.connect(conninfo(libpq_url), autocommit=True) as conn:
            configure(conn)
            _apply(conn, schema)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {where}: {first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"cannot migrate PostgreSQL store at {where}: {first_line(exc)}") from exc


def _apply(conn: psycopg.Connection[Any], schema: str | None) -> None:
    """Apply the migrations `conn`'s database (in `schema`, created if missing) has not had yet:
    one transaction under `pg_advisory_xact_lock`, so a replica starting at the same moment
    waits, then finds them applied."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key("gonogo-migrations")])
        if schema:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
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
