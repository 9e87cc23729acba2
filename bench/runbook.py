"""Benchmark for the runbook record: what recording every step's run (`details.ran`, artifacts)
costs, SQLite and PostgreSQL in one run.

    python bench/runbook.py [--hosts 50] [--steps 10] [--writes 200] [--pg-dsn DSN]

1. One bookkeeping write (`Store.transition` of a deployment, as the progress reporter does per
   step) with the record a deploy of `--hosts` hosts x `--steps` steps leaves when run host by
   host (sequential: one `StepRun` per host and step, the worst case), against the same write
   with an empty record (the baseline): medians of `--writes`.
2. That whole sequential deploy through the engine on the local backend (store writes, the
   record, cards to a recording chat), against the bare pipeline running the same steps on the
   same hosts (the baseline), and the compensation of it (a rollback running one undo per host
   and step) against the deploy itself.

Prints a markdown table with the ratios and writes bench/results/runbook.md. Never gates CI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import parse_config
from bot.domain.deployment import Deployment, EventRecord, State
from bot.domain.details import Details, StepRun
from bot.store import Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from runners import Host, Pipeline, Step, Strategy
from runners.backends.local import LocalBackend
from tests.support.engines import make_engine
from tests.support.pgfixtures import drop_schema, new_schema_name, pg_dsn, schema_url
from tests.support.recording import RecordingChat

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(hosts: int, steps: int) -> Details:
    """The record of a sequential deploy: each step finished on every host, batch by batch, plus an artifact."""
    ran = tuple(
        StepRun("deploy", f"step {s}", s, tuple(f"app{h}" for h in range(hosts)), tuple(range(hosts)))
        for s in range(steps)
    )
    return Details(ran=ran, artifacts={"backup_path": {"app0": "/var/backups/shop-1.sql"}})


def write_cost(store: Store, details: Details, writes: int) -> float:
    """Median milliseconds of one compare-and-set write of a running deployment with `details`."""
    d = Deployment(env="prod", requester="alice", ref="v1", sha=None, created_at=T0, state=State.RUNNING)
    d = store.create_deployment(d, EventRecord(at=T0, actor="alice", action="request"))
    samples = []
    for i in range(writes):
        changed = replace(d, details=details.but(monitor_round=i), progress=f"step {i}")
        started = time.perf_counter()
        d = store.transition(changed, d.version)
        samples.append((time.perf_counter() - started) * 1000)
    store.transition(replace(d, state=State.FAILED), d.version)
    return statistics.median(samples)


CONFIG = """
[bot]
data_dir = "{data}"
[environments.prod]
backend = "local"
hosts = [{hosts}]
auto_rollback = true
lock_after_rollback = false
[environments.prod.strategy]
kind = "sequential"
[environments.prod.approvals]
rollback_required = 0
{steps}
[[environments.prod.steps.rollback]]
name = "back"
run = "true"
"""


def engine_deploy(tmp: Path, hosts: int, steps: int) -> tuple[float, float]:
    """Seconds of a sequential deploy through the engine, and of the compensation of it."""
    step_text = "".join(
        f'[[environments.prod.steps.deploy]]\nname = "step {s}"\nrun = "true"\nundo = "true"\n'
        for s in range(steps)
    )
    last = (  # fails on the last host only: everything before it is compensated
        f'[[environments.prod.steps.deploy]]\nname = "fail"\nrun = "test {{ref}} != bad -o {{host}} != app{hosts - 1}"\n'
    )
    names = ", ".join(f'"app{i}"' for i in range(hosts))
    text = CONFIG.format(data=tmp, hosts=names, steps=step_text + last)
    config = parse_config(tomllib.loads(text), source=tmp / "c.toml", environ={})
    engine = make_engine(config, SqliteStore(tmp / "db.sqlite"), RecordingChat())
    engine.start(run_scheduler=False)
    try:
        first = engine.request_deploy("alice", "#d", "prod", "v1")
        engine.approve("bob", first.id)
        engine.wait_idle(600)
        started = time.perf_counter()
        d = engine.request_deploy("alice", "#d", "prod", "v2")
        engine.approve("bob", d.id)
        engine.wait_idle(600)
        deploy = time.perf_counter() - started
        assert engine.deployment(d.id).state == State.SUCCEEDED
        bad = engine.request_deploy("alice", "#d", "prod", "bad")
        engine.approve("bob", bad.id)
        engine.wait_idle(600)  # the deploy (failing on its last host), then its rollback
        assert engine.deployment(bad.id).state == State.ROLLED_BACK
        rb = engine.store.deployments("prod", kind="rollback", limit=1)[0]
        assert rb.started_at is not None and rb.finished_at is not None
        return deploy, (rb.finished_at - rb.started_at).total_seconds()
    finally:
        engine.shutdown(grace=10)
        engine.store.close()


def bare_pipeline(hosts: int, steps: int) -> float:
    """Seconds of the same steps on the same hosts through the bare pipeline (no engine)."""
    pipeline = Pipeline(
        LocalBackend(), [Host(f"app{i}") for i in range(hosts)], Strategy("sequential"), {"ref": "v2"}
    )
    try:
        started = time.perf_counter()
        result = pipeline.run_stage("deploy", [Step(f"step {s}", "true") for s in range(steps + 1)])
        assert result.ok
        return time.perf_counter() - started
    finally:
        pipeline.close()


def main(argv: list[str] | None = None) -> int:
    """Run both measures and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--pg-dsn", default=None)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    big, empty = record(args.hosts, args.steps), Details()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteStore(Path(tmp) / "w.sqlite")
        rows.append(("SQLite", write_cost(sqlite, empty, args.writes), write_cost(sqlite, big, args.writes)))
        sqlite.close()
        schema = new_schema_name()
        try:
            pg = PostgresStore(schema_url(args.pg_dsn or pg_dsn(), schema))
            rows.append(("PostgreSQL", write_cost(pg, empty, args.writes), write_cost(pg, big, args.writes)))
            pg.close()
        except Exception as exc:  # no server: the SQLite figures still stand
            print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        finally:
            try:
                drop_schema(schema)
            except Exception:
                pass
        bare = bare_pipeline(args.hosts, args.steps)
        deploy, compensation = engine_deploy(Path(tmp), args.hosts, args.steps)
    n = args.hosts * args.steps
    lines = [
        f"## Runbook record: {args.hosts} hosts x {args.steps} steps, sequential ({n} step runs recorded)",
        "",
        "| store | write, empty record | write, full record | ratio |",
        "|---|---|---|---|",
        *(f"| {name} | {a:.3f} ms | {b:.3f} ms | {b / a:.1f}x |" for name, a, b in rows),
        "",
        "| run | seconds | ratio |",
        "|---|---|---|",
        f"| bare pipeline (baseline) | {bare:.2f} s | 1.0x |",
        f"| the deploy through the engine (store, record, cards) | {deploy:.2f} s | {deploy / bare:.1f}x |",
        f"| its compensation ({n} undo steps, then the rollback steps) | {compensation:.2f} s | "
        f"{compensation / deploy:.1f}x of the deploy |",
        "",
        "A write is one compare-and-set `Store.transition` (what the progress reporter does per step); "
        "medians of " + str(args.writes) + " writes. The deploy's record is one entry per step (hosts and "
        "batches as two flat lists), so it grows with hosts x steps in names, not in records. "
        f"1-minute load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores (above the core count, every figure is skewed: rerun on a quiet machine).",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    (ROOT / "bench" / "results" / "runbook.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
