"""Benchmark for the web view: how long each page takes with a long history, against the sign-in
page (a template and no store read) measured in the same run as the baseline.

    python bench/web.py [--deployments 2000] [--runs 30]

Loads `--deployments` finished deployments over 60 days into a fresh SQLite store, serves the web
view under uvicorn on loopback, signs in with a token, and times `--runs` GETs of each page with
httpx (median and p95). Prints a markdown table with ratios to the sign-in page and writes
bench/results/web.md. Never gates CI.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import uvicorn

from bot.app.backends import backend_factory
from bot.config import parse_config
from bot.domain.deployment import Approval, Deployment, EventRecord, State
from bot.engine import Engine
from bot.store.sqlite import SqliteStore
from bot.web import WebAuth, create_web_app
from tests.conftest import free_port
from tests.support.recording import RecordingChat

CONFIG = """
[bot]
data_dir = "{data}"
[web]
token_env = "T"
[environments.prod]
backend = "local"
hosts = ["h1"]
[[environments.prod.steps.deploy]]
name = "noop"
run = "true"
[environments.staging]
backend = "local"
hosts = ["h1"]
[[environments.staging.steps.deploy]]
name = "noop"
run = "true"
"""


def load(store: SqliteStore, count: int) -> int:
    now = datetime.now(UTC)
    last = 0
    for i in range(count):
        at = now - timedelta(days=60) + timedelta(minutes=43 * i)
        env = "prod" if i % 2 else "staging"
        state = State.FAILED if i % 9 == 0 else State.SUCCEEDED
        d = Deployment(env=env, requester="alice", ref=f"v{i}", sha=f"{i:040x}", created_at=at, updated_at=at,
                       state=state, finished_at=at + timedelta(minutes=5), live_at=at + timedelta(minutes=4),
                       committed_at=at - timedelta(hours=3), approvals=(Approval("bob", at),))  # fmt: skip
        last = store.create_deployment(
            d, EventRecord(at=at, actor="alice", action="request_deploy", env=env)
        ).id
    return last


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deployments", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="gonogo-bench-web-"))
    config = parse_config(tomllib.loads(CONFIG.format(data=data)), source=data / "c.toml", environ={})
    store = SqliteStore(data / "db.sqlite")
    last = load(store, args.deployments)
    engine = Engine(config, store, RecordingChat(), backends=backend_factory(config))
    app = create_web_app(engine, WebAuth.from_env(config.integrations.web, {"T": "tok"}, ""))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    pages = {"sign-in (baseline)": "/web/login", "environments": "/web/", "history (50 rows)": "/web/deploys",
             "one deploy": f"/web/deploys/{last}", "DORA (2 envs, 30 days)": "/web/dora"}  # fmt: skip
    rows = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer tok"}) as client:
        for name, path in pages.items():
            assert client.get(path).status_code == 200, path
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                client.get(path)
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            rows.append((name, statistics.median(times), times[int(len(times) * 0.95) - 1]))
    server.should_exit = True
    engine.shutdown()
    base = rows[0][1]
    lines = [f"# Web view pages ({args.deployments} deployments, {args.runs} runs each, SQLite)", "",
             "| Page | median ms | p95 ms | × sign-in |", "| --- | ---: | ---: | ---: |"]  # fmt: skip
    lines += [f"| {n} | {m:.1f} | {p:.1f} | {m / base:.1f} |" for n, m, p in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    (Path(__file__).parent / "results" / "web.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
