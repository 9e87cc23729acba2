"""Idle memory (RSS) of `gonogo serve` after start-up, with an empty store and with 1,000
deployments in it. Baseline in the same run: a bare Python interpreter that imports nothing.

    python bench/memory.py        (target: under 150 MB)

`gonogo serve` runs for real in HTTP mode against the local fake Slack Web API (tests/slackapi.py),
with the example config and its own data directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.domain.deployment import Deployment, Event, EventRecord, transition  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from tests.support.slackapi import start_fake_slack, stop_fake_slack  # noqa: E402

TARGET_MB = 150.0


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def seed(db: Path, n: int) -> None:
    """Write `n` finished deployments (and their events) into a SQLite store."""
    store = SqliteStore(db)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        env = ("demo", "prod")[i % 2]
        d = Deployment(env=env, requester="alice", ref=f"v{i}", sha=f"{i:040x}", created_at=t0)
        d = store.create_deployment(d, EventRecord(at=t0, actor="alice", action="request_deploy", env=env))
        done = transition(
            transition(transition(d, Event.APPROVE, at=t0), Event.START, at=t0), Event.SUCCEED, at=t0
        )
        store.transition(done, d.version, EventRecord(at=t0, actor="gonogo", action="succeed", env=env))
    store.close()


def measure(data_dir: Path, api_url: str) -> float:
    """Start `gonogo serve`, wait until /readyz answers, settle, and return its RSS."""
    port = _free_port()
    env = {
        **os.environ,
        "GONOGO_DATA_DIR": str(data_dir),
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": "bench-secret",
        "SLACK_API_URL": api_url,
        "PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.app.cli", "serve", "--config", str(ROOT / "config.example.toml")],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
                urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"gonogo serve did not start: {proc.stderr.read() if proc.stderr else ''}"
                    ) from None
                time.sleep(0.2)
        time.sleep(2.0)  # idle: the scheduler and pools settle
        return rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    """Print the table; exit 1 when a row is over the target."""
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    time.sleep(0.5)
    baseline = rss_mb(bare.pid)
    bare.kill()
    bare.wait()
    fake = start_fake_slack()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as full:
            rows.append(("empty store", measure(Path(empty), fake.api_url)))
            seed(Path(full) / "gonogo.db", 1000)
            rows.append(("1,000 deployments", measure(Path(full), fake.api_url)))
    finally:
        stop_fake_slack(fake)
    print("## Idle memory of `gonogo serve` (HTTP mode, example config)\n")
    print(f"| store | RSS | vs bare Python ({baseline:.1f} MB) | target < {TARGET_MB:.0f} MB |")
    print("|---|---|---|---|")
    missed = False
    for name, mb in rows:
        ok = mb < TARGET_MB
        missed = missed or not ok
        print(f"| {name} | {mb:.1f} MB | {mb / baseline:.1f}x | {'ok' if ok else 'missed'} |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
