"""The stores at size: /status, /deploy history and the DORA figures over 100k deployments and
10M events, SQLite and PostgreSQL in one run, with the query plans.

    python bench/store.py [--deployments 100000] [--events 10000000] [--envs 10] [--runs 50]
                          [--pg-dsn DSN] [--no-write]

For each backend (a fresh SQLite file; a fresh schema on the PostgreSQL at --pg-dsn, else
GONOGO_TEST_PG_DSN, else the local test server) it bulk-loads `--deployments` finished
deployments over `--envs` environments (one every 10 minutes, about two years; live ones with
check results), `--events` event-log lines, an active deployment and a lock on some envs, then
times what the commands really call (the engine's `Queries` over a real config, medians of
`--runs`):

- `/status` (every environment at a glance), `/status <env>` (one in depth: recent history, the
  latest check round), `/deploy history <env>`, `/deploy stats <env>` (the DORA figures, 30 days);
- an event append on the full table, a page of the audit export, and one batch of event-log
  retention (`prune_events` of the oldest day).

Every statement those calls send is captured (SQLite's trace callback; psycopg's execute) and
explained (`EXPLAIN QUERY PLAN`; `EXPLAIN`): a plan that scans a big table without an index is
flagged. Target: every read under 50 ms median on both stores. Writes bench/results/store.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bot.config import Config, parse_config
from bot.domain.deployment import Deployment, EventRecord, Lock, State
from bot.domain.details import Details
from bot.engine.ledger import Ledger
from bot.engine.queries import Queries
from bot.store import CheckRecord, Store, StoreError
from bot.store.codec import deployment_row, pg_deployment_row
from bot.store.postgres import PostgresStore, describe
from bot.store.sqlite import SqliteStore
from bot.timing.clock import FakeClock
from tests.support.pgfixtures import drop_schema, new_schema_name, pg_dsn, schema_url

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 50.0
T0 = datetime(2025, 1, 1, tzinfo=UTC)
EVERY = timedelta(minutes=10)
FINAL = [
    State.SIGNED_OFF,
    State.SUCCEEDED,
    State.FAILED,
    State.ROLLED_BACK,
    State.SIGNED_OFF,
    State.CANCELLED,
]
BIG_TABLES = ("deployments", "events", "check_results")


def config_for(envs: list[str]) -> Config:
    """A real config with these environments (what `Queries` validates names against)."""
    text = "".join(
        f'[environments.{e}]\nbackend = "local"\nhosts = ["h1"]\n'
        f'[[environments.{e}.steps.deploy]]\nname = "ship"\nrun = "true"\n'
        for e in envs
    )
    return parse_config(tomllib.loads(text), environ={})


def history(n: int, envs: list[str]) -> Iterator[Deployment]:
    """n finished deployments, round-robin over envs, `EVERY` apart."""
    for i in range(n):
        at = T0 + EVERY * i
        state = FINAL[i % len(FINAL)]
        live = state in (State.SIGNED_OFF, State.SUCCEEDED, State.ROLLED_BACK)
        yield Deployment(
            env=envs[i % len(envs)], requester=f"user{i % 17}", ref=f"v1.{i}", sha=f"{i:040x}",
            created_at=at, state=state, version=4, reason="bench", checklist=(True, True),
            started_at=at, finished_at=at + timedelta(minutes=3), updated_at=at + timedelta(minutes=3),
            committed_at=at - timedelta(hours=2), live_at=at + timedelta(minutes=2) if live else None,
            release_id=None, details=Details(changelog=(f"{i:07x} change {i}",)),
        )  # fmt: skip


def event_sql(dialect: str, n: int, span: timedelta, envs: int, deployments: int) -> str:
    """One INSERT that makes n event-log lines spread evenly over `span` from T0, in the database
    (10M rows built in Python would take minutes of setup)."""
    step = span.total_seconds() / max(n, 1)
    tail = f"'env' || (i % {envs}), i % {deployments} + 1, 'event ' || i"
    if dialect == "postgres":
        return (
            "INSERT INTO events (at, actor, action, env, deployment_id, detail) SELECT "
            f"TIMESTAMPTZ '{T0.isoformat()}' + make_interval(secs => i * {step}), 'user' || (i % 17), "
            f"(ARRAY['start','tick','approve','succeed'])[i % 4 + 1], {tail} FROM generate_series(0, {n - 1}) AS i"
        )
    return (
        f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {n - 1}) "
        "INSERT INTO events (at, actor, action, env, deployment_id, detail) SELECT "
        f"strftime('%Y-%m-%dT%H:%M:%S+00:00', {T0.timestamp()} + CAST(i * {step} AS INTEGER), 'unixepoch'), "
        "'user' || (i % 17), CASE i % 4 WHEN 0 THEN 'start' WHEN 1 THEN 'tick' WHEN 2 THEN 'approve' "
        f"ELSE 'succeed' END, {tail} FROM n"
    )


def bulk_load(
    store: Store, rows: Iterator[Deployment], evs: Callable[[str], str], checks: list[CheckRecord]
) -> None:
    """Setup only: batch inserts that bypass the per-row transactions."""
    if isinstance(store, SqliteStore):
        with store._tx() as lite:
            first = deployment_row(next(rows))
            cols = list(first)
            insert = f"INSERT INTO deployments ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            lite.execute(insert, list(first.values()))
            lite.executemany(insert, (list(deployment_row(d).values()) for d in rows))
            lite.execute(evs("sqlite"))
        with store._tx():
            pass
        store._rows("ANALYZE")
    elif isinstance(store, PostgresStore):
        with store._tx() as conn:
            first = pg_deployment_row(next(rows))
            with conn.cursor().copy(f"COPY deployments ({', '.join(first)}) FROM STDIN") as copy:
                copy.write_row(list(first.values()))
                for d in rows:
                    copy.write_row(list(pg_deployment_row(d).values()))
            conn.execute(evs("postgres"))
        with store._conn() as conn:
            conn.execute("VACUUM ANALYZE")
    else:
        raise TypeError(type(store))
    for env in {c.env for c in checks}:
        store.record_check_results(None, env or "", [c for c in checks if c.env == env])


# -- capturing and explaining what the calls send ------------------------------------------------
@contextlib.contextmanager
def captured(store: Store) -> Iterator[list[tuple[str, list[Any]]]]:
    """The statements (with parameters) the store sends inside the block."""
    seen: list[tuple[str, list[Any]]] = []
    if isinstance(store, SqliteStore):
        store._conn.set_trace_callback(lambda sql: seen.append((sql, [])))
        try:
            yield seen
        finally:
            store._conn.set_trace_callback(None)
        return
    original = psycopg.Connection.execute

    def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        seen.append((str(query) if isinstance(query, str) else query.as_string(self), list(params or [])))
        return original(self, query, params, **kw)

    psycopg.Connection.execute = execute  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        psycopg.Connection.execute = original  # type: ignore[method-assign]


def explain(store: Store, sql: str, params: list[Any]) -> list[str]:
    """The plan of one statement, as lines (DML only explained, never run)."""
    if isinstance(store, SqliteStore):
        return [r["detail"] for r in store._rows(f"EXPLAIN QUERY PLAN {sql}")]
    assert isinstance(store, PostgresStore)
    with store._conn() as conn:
        return [r["QUERY PLAN"] for r in conn.execute(f"EXPLAIN {sql}", params).fetchall()]


def statement(sql: str) -> bool:
    """A statement worth a plan (not BEGIN, COMMIT, PRAGMA...)."""
    return sql.lstrip().upper().startswith(("SELECT", "DELETE", "UPDATE", "INSERT"))


def full_scan(plan: list[str]) -> bool:
    """Does the plan read a big table whole (no index)?"""
    for line in plan:
        for table in BIG_TABLES:
            if f"Seq Scan on {table}" in line or line.strip() == f"SCAN {table}":
                return True
    return False


# -- timing ---------------------------------------------------------------------------------------
def time_ms(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of `runs` calls in ms (after one warm-up)."""
    fn()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return statistics.median(out)


def measure(
    name: str, store: Store, args: argparse.Namespace
) -> tuple[dict[str, float], dict[str, list[str]], float]:
    """Load the store, then time and explain each call."""
    envs = [f"env{i}" for i in range(args.envs)]
    span = EVERY * args.deployments
    now = T0 + span
    checks = [
        CheckRecord(name=f"check{k}", kind="http", ok=True, at=now - timedelta(minutes=r), round=r, env=env)
        for env in envs for r in range(50) for k in range(3)
    ]  # fmt: skip
    started = time.perf_counter()
    evs = functools.partial(event_sql, n=args.events, span=span, envs=args.envs, deployments=args.deployments)
    bulk_load(store, history(args.deployments, envs), lambda dialect: evs(dialect), checks)
    load_s = time.perf_counter() - started
    print(f"{name}: loaded in {load_s:.0f} s", file=sys.stderr, flush=True)
    for i, env in enumerate(envs):
        if i % 2 == 0:
            active = Deployment(env=env, requester="alice", ref="main", sha="f" * 40, created_at=now)
            store.create_deployment(active, EventRecord(at=now, actor="alice", action="request", env=env))
        if i % 3 == 0:
            store.set_lock(
                Lock(env=env, owner="bob", reason="incident", at=now),
                EventRecord(at=now, actor="bob", action="lock", env=env),
            )
    queries = Queries(Ledger(config_for(envs), store, FakeClock(now)), store, envs)
    first_id = store.events(limit=1)[0].id
    calls: dict[str, Callable[[], object]] = {
        "/status": lambda: queries.status(),
        "/status <env>": lambda: queries.status(envs[1]),
        "/deploy history <env>": lambda: queries.history(envs[1], 10),
        "/deploy stats <env> (DORA, 30 days)": lambda: queries.stats(envs[1], 30),
        "event append": lambda: store.append_event(
            EventRecord(at=now, actor="bench", action="note", env=envs[0])
        ),
        "audit export page (10,000 events)": lambda: store.events(
            limit=10_000, after_id=first_id + args.events // 2
        ),
    }
    timings = {label: time_ms(fn, args.runs) for label, fn in calls.items()}
    stats = queries.stats(envs[1], 30)
    print(f"{name}: DORA over {stats.attempts} attempts", file=sys.stderr)
    plans: dict[str, list[str]] = {}
    for fn in calls.values():
        with captured(store) as seen:
            fn()
        for sql, params in seen:
            if statement(sql) and sql not in plans:
                plans[sql] = explain(store, sql, params)
    cutoff = T0 + timedelta(days=1)
    started = time.perf_counter()
    with captured(store) as seen:
        store.prune_events(cutoff)
    prune_ms = (time.perf_counter() - started) * 1000
    for sql, params in [q for q in seen if statement(q[0])][:1]:
        plans[sql] = explain(store, sql, params)
    return timings, plans, prune_ms


@contextlib.contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        try:
            yield store
        finally:
            store.close()


@contextlib.contextmanager
def postgres_store(dsn: str) -> Iterator[Store]:
    schema = new_schema_name()
    store = PostgresStore(schema_url(dsn, schema))
    try:
        yield store
    finally:
        store.close()
        drop_schema(schema)


def report(
    results: dict[str, tuple[dict[str, float], dict[str, list[str]], float]],
    args: argparse.Namespace,
    notes: list[str],
) -> str:
    names = list(results)
    labels = list(next(iter(results.values()))[0])
    lines = [
        f"## Stores at size: {args.deployments:,} deployments, {args.events:,} events, {args.envs} environments",
        "",
        "| call | "
        + " | ".join(f"{n} median" for n in names)
        + " | "
        + " | ".join(f"{n} < {TARGET_MS:g} ms" for n in names)
        + " |",
        "|---|" + "---|" * (2 * len(names)),
    ]
    for label in labels:
        values = [results[n][0][label] for n in names]
        verdicts = ["ok" if v < TARGET_MS else "**missed**" for v in values]
        lines.append(
            f"| {label} | " + " | ".join(f"{v:.2f} ms" for v in values) + " | " + " | ".join(verdicts) + " |"
        )
    lines.append(
        "| event-log retention, one day (`prune_events`, batches of 5000) | "
        + " | ".join(f"{results[n][2]:.0f} ms" for n in names)
        + " | "
        + " | ".join("-" for _ in names)
        + " |"
    )
    if len(names) == 2:
        a, b = names
        worst = max(results[b][0][label] / results[a][0][label] for label in labels)
        lines += ["", f"{b} / {a}: at most {worst:.1f}x on any call."]
    for name in names:
        plans = results[name][1]
        scans = [sql for sql, plan in plans.items() if full_scan(plan)]
        lines += [
            "",
            f"### {name}: the plan of every statement the calls sent ({len(plans)}; "
            f"{'no full scan of ' + ', '.join(BIG_TABLES) if not scans else f'**{len(scans)} full scans**'})",
            "",
            "```",
        ]
        for sql, plan in plans.items():
            lines.append(("FULL SCAN  " if full_scan(plan) else "") + " ".join(sql.split())[:300])
            lines += [f"    {p}" for p in plan]
        lines.append("```")
    lines += ["", *notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--envs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--pg-dsn", default=None)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    results = {}
    notes = []
    with sqlite_store() as store:
        results["SQLite"] = measure("SQLite", store, args)
    dsn = args.pg_dsn or pg_dsn()
    try:
        with postgres_store(dsn) as store:
            results["PostgreSQL"] = measure("PostgreSQL", store, args)
            with store._conn() as conn:  # type: ignore[attr-defined]
                version = conn.execute("SHOW server_version").fetchone()["server_version"]
            notes.append(f"PostgreSQL {version} at {describe(dsn)}.")
    except StoreError as exc:
        notes.append(f"PostgreSQL not measured: {exc}")
    notes.append(
        f"Medians of {args.runs} calls of the engine's own `Queries` over a real config. Machine: {os.cpu_count()} "
        f"cores, Python {sys.version.split()[0]}; 1-minute load {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        "(the machine is shared)."
    )
    text = report(results, args, notes)
    print(text)
    if not args.no_write:
        (ROOT / "bench" / "results" / "store.md").write_text(text)
    ok = all(v < TARGET_MS for r in results.values() for k, v in r[0].items())
    return 0 if ok and len(results) == 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
