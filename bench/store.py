"""Benchmark for the stores: event appends and /status-like reads, SQLite and PostgreSQL in one run.

    python bench/store.py [--events 10000] [--deployments 10000] [--envs 5] [--runs 50] [--pg-dsn DSN]

For each backend (a fresh SQLite file; a fresh schema on the PostgreSQL at --pg-dsn, else
GONOGO_TEST_PG_DSN, else the local test server):

- append `--events` events one by one (each its own transaction): median and p99 per append;
- load `--deployments` finished deployments across `--envs` environments (batch insert), plus
  one active deployment and a lock on some envs, then time one /status (for every env:
  `current_release`, `active`, `get_lock`) and one /deploy history (`deployments(env, limit=10)`),
  median of `--runs`.

Targets: append < 2 ms median; /status < 50 ms. Prints a markdown table (with PostgreSQL/SQLite
ratios, SQLite being the baseline) and writes bench/results/store.md. Never gates CI.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.deployment import Deployment, EventRecord, Lock, State
from bot.domain.details import Details
from bot.store import Store, StoreError
from bot.store.codec import deployment_row, pg_deployment_row
from bot.store.postgres import PostgresStore, describe
from bot.store.sqlite import SqliteStore
from tests.support.pgfixtures import drop_schema, new_schema_name, pg_dsn, schema_url

ROOT = Path(__file__).resolve().parent.parent
APPEND_TARGET_MS = 2.0
STATUS_TARGET_MS = 50.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FINAL = [State.SIGNED_OFF, State.SUCCEEDED, State.FAILED, State.ROLLED_BACK, State.DECLINED, State.CANCELLED]


@dataclass
class Result:
    """One backend's figures (milliseconds)."""

    backend: str
    append_median: float
    append_p99: float
    status_median: float
    history_median: float


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def finished_deployments(n: int, envs: list[str]) -> Iterator[Deployment]:
    """n finished deployments, round-robin over envs, one minute apart."""
    for i in range(n):
        at = T0 + timedelta(minutes=i)
        state = FINAL[i % len(FINAL)]
        yield Deployment(
            env=envs[i % len(envs)],
            requester=f"user{i % 17}",
            ref=f"v1.{i}",
            sha=f"{i:040x}",
            created_at=at,
            state=state,
            version=4,
            reason="bench",
            checklist=(True, True),
            started_at=at,
            finished_at=at + timedelta(seconds=30),
            updated_at=at + timedelta(seconds=30),
            details=Details(changelog=(f"{i:07x} change {i}",)),
        )


def bulk_load(store: Store, rows: list[Deployment]) -> None:
    """Batch-insert deployments (setup only: bypasses the per-row event)."""
    if isinstance(store, SqliteStore):
        converted = [deployment_row(d) for d in rows]
        cols = list(converted[0])
        with store._tx() as lite:
            lite.executemany(
                f"INSERT INTO deployments ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [list(r.values()) for r in converted],
            )
    elif isinstance(store, PostgresStore):
        converted = [pg_deployment_row(d) for d in rows]
        cols = list(converted[0])
        with store._tx() as conn:
            cur = conn.cursor()
            with cur.copy(f"COPY deployments ({', '.join(cols)}) FROM STDIN") as copy:
                for r in converted:
                    copy.write_row(list(r.values()))
        with store._conn() as conn:
            conn.execute("ANALYZE deployments")
    else:
        raise TypeError(type(store))


def time_ms(fn: Callable[[], object], runs: int) -> list[float]:
    """Wall times of `runs` calls, in ms (after one warm-up call)."""
    fn()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def measure(name: str, store: Store, args: argparse.Namespace) -> Result:
    """Run both measurements on an empty store."""
    envs = [f"env{i}" for i in range(args.envs)]
    appends = []
    for i in range(args.events):
        event = EventRecord(
            at=T0 + timedelta(seconds=i), actor="bench", action="note", env=envs[i % len(envs)],
            deployment_id=i % 500 + 1, detail=f"event {i}",
        )  # fmt: skip
        started = time.perf_counter()
        store.append_event(event)
        appends.append((time.perf_counter() - started) * 1000)
    print(f"{name}: {args.events} appends done", file=sys.stderr, flush=True)

    bulk_load(store, list(finished_deployments(args.deployments, envs)))
    now = T0 + timedelta(days=30)
    for i, env in enumerate(envs):
        if i % 2 == 0:  # half the envs have a deployment in progress, some are locked
            active = Deployment(env=env, requester="alice", ref="main", sha="f" * 40, created_at=now)
            store.create_deployment(active, EventRecord(at=now, actor="alice", action="request", env=env))
        if i % 3 == 0:
            store.set_lock(
                Lock(env=env, owner="bob", reason="incident", at=now),
                EventRecord(at=now, actor="bob", action="lock", env=env),
            )

    def status() -> None:
        for env in envs:
            store.current_release(env)
            store.active(env)
            store.get_lock(env)

    def history() -> None:
        assert len(store.deployments(envs[0], limit=10)) == 10

    status_ms = time_ms(status, args.runs)
    history_ms = time_ms(history, args.runs)
    return Result(
        backend=name,
        append_median=statistics.median(appends),
        append_p99=percentile(appends, 99),
        status_median=statistics.median(status_ms),
        history_median=statistics.median(history_ms),
    )


@contextmanager
def sqlite_store() -> Iterator[Store]:
    """A fresh SQLite store in a temp dir."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        try:
            yield store
        finally:
            store.close()


@contextmanager
def postgres_store(dsn: str) -> Iterator[Store]:
    """A PostgresStore on a fresh schema, dropped afterwards."""
    schema = new_schema_name()
    store = PostgresStore(schema_url(dsn, schema))
    try:
        yield store
    finally:
        store.close()
        drop_schema(schema)


def verdict(value: float, target: float) -> str:
    """ok / missed against a target."""
    return "ok" if value < target else "**missed**"


def report(results: list[Result], args: argparse.Namespace, notes: list[str]) -> str:
    """The markdown report."""
    lines = [
        f"## Stores: {args.events:,} event appends; /status over {args.deployments:,} deployments "
        f"in {args.envs} envs",
        "",
        "| backend | append median | append p99 | /status median | /deploy history median "
        f"| append < {APPEND_TARGET_MS:g} ms | /status < {STATUS_TARGET_MS:g} ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.append_median:.3f} ms | {r.append_p99:.3f} ms | {r.status_median:.2f} ms "
            f"| {r.history_median:.2f} ms | {verdict(r.append_median, APPEND_TARGET_MS)} "
            f"| {verdict(r.status_median, STATUS_TARGET_MS)} |"
        )
    if len(results) == 2:
        base, pg = results
        lines += [
            "",
            f"PostgreSQL / SQLite: append {pg.append_median / base.append_median:.1f}x, "
            f"/status {pg.status_median / base.status_median:.1f}x, "
            f"history {pg.history_median / base.history_median:.1f}x.",
        ]
    lines += [
        "",
        f"/status = `current_release`, `active`, `get_lock` for each of the {args.envs} envs "
        f"({3 * args.envs} queries); history = `deployments(env, limit=10)`; medians of {args.runs} runs. "
        "Each append is its own committed transaction (SQLite WAL with synchronous=NORMAL; "
        "PostgreSQL with its default synchronous_commit=on, so one WAL flush per append).",
        *notes,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write bench/results/store.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--envs", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--pg-dsn", default=None, help="PostgreSQL server (default: the test server)")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results/store.md")
    args = parser.parse_args(argv)

    results: list[Result] = []
    notes: list[str] = []
    with sqlite_store() as store:
        results.append(measure("SQLite", store, args))
        if not _sqlite_has_live_index(store):
            notes.append(
                "SQLite has no `deployments_live` partial index yet: its `current_release` sorts an "
                "environment's whole history (EXPLAIN: USE TEMP B-TREE FOR ORDER BY), which is most of its "
                "/status time and grows with history. PostgreSQL has it (migration m003)."
            )
    dsn = args.pg_dsn or pg_dsn()
    try:
        with postgres_store(dsn) as store:
            results.append(measure("PostgreSQL", store, args))
            notes.append(f"PostgreSQL: {_server_version(store)} at {describe(dsn)}.")
    except StoreError as exc:
        notes.append(f"PostgreSQL not measured: {exc}")
    text = report(results, args, notes)
    print(text)
    if not args.no_write:
        out = ROOT / "bench" / "results" / "store.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return 0 if len(results) == 2 else 1


def _sqlite_has_live_index(store: Store) -> bool:
    assert isinstance(store, SqliteStore)
    rows = store._rows("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'deployments_live'")
    return bool(rows)


def _server_version(store: Store) -> Any:
    assert isinstance(store, PostgresStore)
    with store._conn() as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row['server_version'] if row else '?'}"


if __name__ == "__main__":
    raise SystemExit(main())
