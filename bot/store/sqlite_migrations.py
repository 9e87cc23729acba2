"""The SQLite schema: sqlite-utils migrations, in order (`migrations.apply(db)`)."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

from bot.store.codec import LIVE_SQL

migrations = Migrations("gonogo")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    """Deployments, the event log, locks, per-host step results, idempotency keys."""
    db.execute(
        """
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            env TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
            active INTEGER NOT NULL, version INTEGER NOT NULL,
            requester TEXT NOT NULL, ref TEXT NOT NULL, sha TEXT, reason TEXT,
            dry_run INTEGER NOT NULL DEFAULT 0, force INTEGER NOT NULL DEFAULT 0,
            checklist TEXT NOT NULL DEFAULT '[]', approvals TEXT NOT NULL DEFAULT '[]',
            required_approvals INTEGER NOT NULL DEFAULT 1,
            channel TEXT, message_ts TEXT, release_id INTEGER, rollback_of INTEGER,
            committed_at TEXT, scheduled_at TEXT, started_at TEXT, finished_at TEXT,
            heartbeat_at TEXT, created_at TEXT NOT NULL, updated_at TEXT,
            error TEXT, progress TEXT, details TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    db.execute("CREATE UNIQUE INDEX deployments_one_active ON deployments (env) WHERE active = 1")
    db.execute("CREATE INDEX deployments_env_id ON deployments (env, id)")
    db.execute("CREATE INDEX deployments_state ON deployments (state)")
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
            env TEXT, deployment_id INTEGER, detail TEXT
        )"""
    )
    db.execute("CREATE INDEX events_deployment ON events (deployment_id, id)")
    db.execute("CREATE INDEX events_at ON events (at)")
    db.execute(
        """
        CREATE TABLE locks (
            env TEXT PRIMARY KEY, owner TEXT NOT NULL, reason TEXT NOT NULL,
            at TEXT NOT NULL, automatic INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute(
        """
        CREATE TABLE host_results (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            deployment_id INTEGER NOT NULL, stage TEXT NOT NULL, step TEXT NOT NULL,
            host TEXT NOT NULL, status TEXT NOT NULL, exit_code INTEGER,
            duration REAL NOT NULL, output TEXT NOT NULL, error TEXT
        )"""
    )
    db.execute("CREATE INDEX host_results_deployment ON host_results (deployment_id, id)")
    db.execute("CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, at TEXT NOT NULL)")


@migrations()
def m002_schedules_and_checks(db: sqlite_utils.Database) -> None:
    """Timed work rows (rebuilt into APScheduler jobs by the leader) and check results."""
    db.execute(
        """
        CREATE TABLE schedules (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL, run_at TEXT NOT NULL, deployment_id INTEGER,
            payload TEXT NOT NULL DEFAULT '{}', state TEXT NOT NULL DEFAULT 'pending',
            claimed_at TEXT
        )"""
    )
    db.execute("CREATE INDEX schedules_pending ON schedules (state, run_at)")
    db.execute(
        """
        CREATE TABLE check_results (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            deployment_id INTEGER, env TEXT NOT NULL, round INTEGER NOT NULL DEFAULT 0,
            name TEXT NOT NULL, kind TEXT NOT NULL, ok INTEGER NOT NULL, at TEXT NOT NULL,
            observed TEXT, latency REAL NOT NULL DEFAULT 0, error TEXT
        )"""
    )
    db.execute("CREATE INDEX check_results_deployment ON check_results (deployment_id, id)")
    db.execute("CREATE INDEX check_results_env ON check_results (env, id)")
    db.execute("CREATE INDEX check_results_at ON check_results (at)")
    db.execute("ALTER TABLE host_results ADD COLUMN at TEXT")


@migrations()
def m003_current_release_index(db: sqlite_utils.Database) -> None:
    """`current_release` (behind every /status) reads one index entry instead of sorting an
    environment's whole history: a partial index in exactly its ORDER BY."""
    db.execute(
        "CREATE INDEX deployments_live ON deployments "
        "(env, finished_at IS NULL DESC, finished_at DESC, id DESC) "
        f"WHERE dry_run = 0 AND state IN {LIVE_SQL}"
    )


@migrations()
def m004_schedule_claims(db: sqlite_utils.Database) -> None:
    """Who claimed a schedule and when it finished (orphans of a dead process are fired again),
    and idempotency keys for schedules a handler may add twice when it is replayed."""
    db.execute("ALTER TABLE schedules ADD COLUMN claimed_by TEXT")
    db.execute("ALTER TABLE schedules ADD COLUMN done_at TEXT")
    db.execute("ALTER TABLE schedules ADD COLUMN key TEXT")
    db.execute("CREATE UNIQUE INDEX schedules_key ON schedules (key)")


@migrations()
def m005_live_at(db: sqlite_utils.Database) -> None:
    """When a deployment's release went live (lead time and time to restore end there)."""
    db.execute("ALTER TABLE deployments ADD COLUMN live_at TEXT")
    db.execute(
        "UPDATE deployments SET live_at = COALESCE(finished_at, updated_at) "
        f"WHERE state IN {LIVE_SQL} OR (state = 'rolled_back' AND release_id = id)"
    )


@migrations()
def m006_run_queue(db: sqlite_utils.Database) -> None:
    """Runs waiting for a worker: the state each was queued in, and who claimed it when."""
    db.execute(
        """
        CREATE TABLE run_queue (
            deployment_id INTEGER PRIMARY KEY, state TEXT NOT NULL, queued_at TEXT NOT NULL,
            claimed_by TEXT, claimed_at TEXT
        )"""
    )


@migrations()
def m007_deployments_by_creation(db: sqlite_utils.Database) -> None:
    """The DORA figures read one environment's deployments of the last N days: a range of this
    index, not the environment's whole history."""
    db.execute("CREATE INDEX deployments_env_created ON deployments (env, created_at)")
