"""What live progress costs as the fleet grows: record writes and card updates of one deploy.

    python bench/progress.py

A real engine (SQLite, the local backend) deploys one step to 1, 10, 50 and 200 hosts (canary
1, then batches of 25%, 20 hosts at once) through a recording chat. The per-stage host counts
(`details.stages`) are saved at most once per `LIVE_INTERVAL` and at once when a stage starts,
a batch or a stage ends, so record writes and card updates grow with batches and time, not
with hosts: the table gives them per deploy and as a ratio to the 1-host deploy measured in
the same run (the events the pipeline reported, which do grow with hosts, for comparison).
The Slack adapter coalesces those card updates again (one `chat.update` per window).
"""

from __future__ import annotations

import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import parse_config  # noqa: E402
from bot.engine import progress  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from tests.support.engines import make_engine, wait_for  # noqa: E402
from tests.support.recording import RecordingChat  # noqa: E402

CONFIG = """
[bot]
data_dir = "{data}"
[environments.fleet]
backend = "local"
hosts = [{hosts}]
[environments.fleet.strategy]
kind = "canary"
canary = 1
batch_size = "25%"
max_parallel = 20
[environments.fleet.approvals]
required = 1
[[environments.fleet.steps.deploy]]
name = "install"
run = "sleep 0.02"
"""
SIZES = (1, 10, 50, 200)


def deploy(hosts: int, tmp: Path) -> tuple[int, int, int, float]:
    """(record writes, card updates, pipeline events, seconds) of one deploy to `hosts` hosts."""
    names = ", ".join(f'"h{i}"' for i in range(1, hosts + 1))
    text = CONFIG.format(data=tmp / f"data{hosts}", hosts=names)
    config = parse_config(tomllib.loads(text), source=tmp / "c.toml", environ={})
    chat = RecordingChat()
    store = SqliteStore(tmp / f"g{hosts}.db")
    engine = make_engine(config, store, chat)
    events = [0]
    seen = progress.ProgressReporter.__call__

    def counting(self: progress.ProgressReporter, event: object) -> None:
        events[0] += 1
        seen(self, event)  # type: ignore[arg-type]

    progress.ProgressReporter.__call__ = counting  # type: ignore[method-assign]
    try:
        engine.start(run_scheduler=False)
        d = engine.request_deploy("alice", "#d", "fleet", "v1")
        started = time.monotonic()
        engine.approve("bob", d.id)
        wait_for(lambda: engine.deployment(d.id).state.value == "succeeded", timeout=300)
        took = time.monotonic() - started
        final = engine.deployment(d.id)
        updates = sum(1 for m in chat.messages if m.kind == "update" and m.ts == final.message_ts)
        return final.version, updates, events[0], took
    finally:
        progress.ProgressReporter.__call__ = seen  # type: ignore[method-assign]
        engine.shutdown(wait=True, grace=5)
        store.close()


def main() -> int:
    """Print the table."""
    with tempfile.TemporaryDirectory(prefix="gonogo-bench-progress-") as tmp:
        rows = [(n, *deploy(n, Path(tmp))) for n in SIZES]
    base_writes, base_updates = rows[0][1], rows[0][2]
    print("## Live progress: record writes and card updates per deploy\n")
    print("| hosts | pipeline events | record writes | vs 1 host | card updates | vs 1 host | deploy took |")
    print("|---|---|---|---|---|---|---|")
    for n, writes, updates, events, took in rows:
        print(
            f"| {n} | {events} | {writes} | {writes / base_writes:.1f}x | {updates} | "
            f"{updates / base_updates:.1f}x | {took:.2f} s |"
        )
    print(f"\n(`LIVE_INTERVAL` {progress.ProgressReporter.LIVE_INTERVAL:g} s; one step of 20 ms per host.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
