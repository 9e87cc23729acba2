"""Runs spread over replicas: 30 queued deploys on 1, 2 and 3 `gonogo serve` replicas sharing one
PostgreSQL database; the speed-up from more replicas.

    python bench/replicas.py [--deploys 30] [--workers 4] [--step "sleep 1"] [--pg-dsn DSN]

For each replica count, on a fresh schema: starts that many `gonogo serve --mode http` processes
(uvicorn, Bolt, the PostgreSQL store, leader election; a fake Slack Web API in another process),
waits until each answers, then queues `--deploys` deploys (30 environments, each one host
running `--step` with the local backend: work that waits, as remote steps do, rather than burning
the bench machine's CPU). The deploys are requested and approved by an engine in this process
that claims no run itself (as a replica taking Slack requests behind a load balancer but with no
free worker), so every run is claimed from the queue by whichever replica has a free worker.
Times from the moment all are queued (steps wait for a go file until then) to the last deploy finished (the database's own records), checks that
every deploy started exactly once and succeeded, and counts which replica process ran each
(the step records its parent's pid). Writes bench/results/replicas.md and replicas.png.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from plots import draw  # noqa: E402

from bot.config import parse_config  # noqa: E402
from bot.domain.deployment import State  # noqa: E402
from bot.store.postgres import PostgresStore  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.support.engines import make_engine  # noqa: E402
from tests.support.pgfixtures import drop_schema, new_schema_name, pg_dsn, schema_url  # noqa: E402
from tests.support.recording import RecordingChat  # noqa: E402
from tests.support.slackapi import BOT_TOKEN  # noqa: E402
from tests.support.slacksign import SIGNING_SECRET  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def config_text(data: Path, url: str, deploys: int, workers: int, step: str) -> str:
    head = f'[bot]\ndata_dir = "{data}"\nstore = "{url}"\nworkers = {workers}\nheartbeat_interval = "1s"\n'
    return head + "".join(
        f'[environments.e{i}]\nbackend = "local"\nhosts = ["h1"]\n'
        f'[[environments.e{i}.steps.deploy]]\nname = "ship"\nrun = "while [ ! -e {data}/go ]; do sleep 0.1; done; echo e{i} $PPID >> {data}/ran; {step}"\n'
        for i in range(deploys)
    )


def serve(config: Path, url: str, port: int, api_url: str) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GONOGO_"))},
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": api_url,
        "PORT": str(port), "HOST": "127.0.0.1", "GONOGO_STORE_URL": url,
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "bot.app.cli", "serve", "--mode", "http", "--config", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a replica exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/livez")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"replica on port {port} never answered")


def one_count(replicas: int, args: argparse.Namespace, api_url: str, dsn: str) -> dict[str, object]:
    schema = new_schema_name()
    url = schema_url(dsn, schema)
    work = Path(tempfile.mkdtemp(prefix="gonogo-replicas-"))
    text = config_text(work, url, args.deploys, args.workers, args.step)
    path = work / "gonogo.toml"
    path.write_text(text)
    store = PostgresStore(url)  # migrates the schema before the replicas start
    procs = []
    try:
        ports = [free_port() for _ in range(replicas)]
        procs = [serve(path, url, port, api_url) for port in ports]
        for port, proc in zip(ports, procs, strict=True):
            wait_ready(port, proc)
        config = parse_config(tomllib.loads(text), source=path, environ={})
        front = make_engine(config, store, RecordingChat())  # takes requests, runs nothing
        front.runs.queue.stop_claiming()
        pending = [front.request_deploy("alice", "#d", f"e{i}", "v1") for i in range(args.deploys)]
        for d in pending:
            front.approve("bob", d.id)
        busy = min(args.deploys, replicas * args.workers)  # every free worker has claimed a run
        while sum(1 for d in pending if (x := store.get(d.id)) and x.state == State.RUNNING) < busy:
            time.sleep(0.05)
        first_go = front.now()  # all queued: the steps may go
        (work / "go").touch()
        deadline = time.monotonic() + 600
        while True:
            done = [store.get(d.id) for d in pending]
            if all(x is not None and x.state != State.RUNNING and x.state != State.APPROVED for x in done):
                break
            if time.monotonic() > deadline:
                raise SystemExit("the deploys did not finish in 10 minutes")
            time.sleep(0.1)
        ok = sum(1 for x in done if x is not None and x.state == State.SUCCEEDED)
        last = max(x.finished_at for x in done if x is not None and x.finished_at)
        starts = collections.Counter(
            e.deployment_id for e in store.events() if e.action == "start" and e.deployment_id
        )
        ran = collections.Counter(line.split()[1] for line in (work / "ran").read_text().splitlines())
        return {
            "replicas": replicas,
            "seconds": (last - first_go).total_seconds(),
            "succeeded": ok,
            "started_once": sum(1 for d in pending if starts[d.id] == 1),
            "per_replica": sorted(ran.values(), reverse=True),
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        store.close()
        drop_schema(schema)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploys", type=int, default=30)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--step", default="sleep 1")
    parser.add_argument("--counts", default="1,2,3")
    parser.add_argument("--pg-dsn", default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    fake = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "ack_latency.py"), "--child", "fake"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert fake.stdout is not None
    api_url = fake.stdout.readline().strip()
    try:
        rows = [one_count(int(n), args, api_url, args.pg_dsn or pg_dsn()) for n in args.counts.split(",")]
    finally:
        os.killpg(fake.pid, signal.SIGTERM)
    base = float(rows[0]["seconds"])  # type: ignore[arg-type]
    ideal = args.deploys / args.workers  # waves of 1-replica work, each about one step long
    lines = [
        f"## {args.deploys} queued deploys on 1, 2 and 3 `gonogo serve` replicas (one PostgreSQL, "
        f"`bot.workers = {args.workers}` each, step `{args.step}`)",
        "",
        "| replicas | all queued to last deploy done | speed-up vs 1 replica | ideal | succeeded | started exactly once | runs per replica |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        n = int(r["replicas"])  # type: ignore[call-overload]
        waves = -(-args.deploys // (args.workers * n))
        lines.append(
            f"| {n} | {r['seconds']:.2f} s | {base / float(r['seconds']):.2f}x | "  # type: ignore[arg-type]
            f"{-(-args.deploys // args.workers) / waves:.2f}x | {r['succeeded']}/{args.deploys} | "
            f"{r['started_once']}/{args.deploys} | {', '.join(map(str, r['per_replica']))} |"  # type: ignore[call-overload]
        )
    lines += [
        "",
        f"Ideal = the ratio of waves ({args.deploys} runs over {args.workers} workers per replica; about "
        f"{ideal:.1f} step lengths on one replica). The deploys are queued by an engine that claims nothing, so "
        "every run was claimed from the database (`FOR UPDATE SKIP LOCKED`) by a replica with a free worker, "
        "woken by NOTIFY. Timed from the moment all are queued (every free worker holding a claimed run, the steps held back until then) to the last `finished_at` in the database. Machine: "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}; 1-minute load {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after (shared machine).",
    ]
    text = "\n".join(lines) + "\n"
    note = f"{os.cpu_count()} cores; load {load_before:.1f} before"
    problem = draw([{
        "out": str(RESULTS / "replicas.png"), "title": f"{args.deploys} queued deploys: time by replica count",
        "xlabel": "replicas", "ylabel": "seconds",
        "series": [{"label": "gonogo serve replicas", "x": [r["replicas"] for r in rows], "y": [r["seconds"] for r in rows]}],
        "note": note,
    }])  # fmt: skip
    if problem:
        text += f"\n({problem})\n"
    print(text)
    (RESULTS / "replicas.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
