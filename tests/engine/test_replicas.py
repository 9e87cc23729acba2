"""Several replicas on one real PostgreSQL: no double deploys, one run per Go, one scheduler.

Each engine has its own PostgresStore (its own pool), as separate replicas would; the leader
test kills a real leader process with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Config, parse_config
from bot.domain.deployment import State
from bot.engine import Engine, Refused
from bot.store.postgres import PostgresStore
from bot.timing.leader import leadership_for
from tests.support.engines import make_engine, wait_for
from tests.support.healthapp import HealthApp
from tests.support.pgfixtures import DisposablePostgresStore
from tests.support.recording import RecordingChat

CONFIG = """
[bot]
data_dir = "{data}"
store = "{url}"
[environments.prod]
backend = "local"
hosts = ["h1", "h2"]
[[environments.prod.steps.deploy]]
name = "ship"
run = "echo {{host}} >> {data}/shipped"
"""

MONITORED = """
[environments.prod.monitor]
interval = "0.5s"
duration = "60s"
failure_limit = 100
[[environments.prod.checks]]
name = "health"
type = "http"
url = "{health}"
"""


@pytest.fixture
def primary() -> Iterator[DisposablePostgresStore]:
    store = DisposablePostgresStore()
    yield store
    store.close()


def make_config(tmp_path: Path, url: str, extra: str = "") -> tuple[str, Config]:
    text = CONFIG.format(data=tmp_path, url=url) + extra
    return text, parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})


def replica(config: Config, url: str, *, leader: bool = False) -> Engine:
    kwargs = {"leadership": leadership_for(url, retry_interval=0.3)} if leader else {}
    return make_engine(config, PostgresStore(url), RecordingChat(), **kwargs)  # type: ignore[arg-type]


def race(*calls: object) -> list[object]:
    barrier = threading.Barrier(len(calls))
    out: list[object] = [None] * len(calls)

    def run(i: int, call: object) -> None:
        barrier.wait()
        try:
            out[i] = call()  # type: ignore[operator]
        except Refused as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_deploy_requests_and_go_clicks_on_two_replicas(
    primary: DisposablePostgresStore, tmp_path: Path
) -> None:
    _, config = make_config(tmp_path, primary.schema_url)
    a, b = replica(config, primary.schema_url), replica(config, primary.schema_url)
    try:
        results = race(
            *(
                lambda e=e, u=u: e.request_deploy(u, "#d", "prod", "v1")
                for e, u in [(a, "alice"), (b, "bob")] * 3
            )
        )
        created = [r for r in results if not isinstance(r, Refused)]
        refused = [r for r in results if isinstance(r, Refused)]
        assert len(created) == 1 and len(refused) == 5
        winner = created[0]
        assert all(f"by {winner.requester} is pending" in str(r) for r in refused)  # type: ignore[attr-defined]
        clicks = race(*(lambda e=e: e.approve("carol", winner.id) for e in (a, b, a, b)))  # type: ignore[attr-defined]
        assert sum(not isinstance(c, Refused) for c in clicks) == 1
        a.wait_idle(30)
        b.wait_idle(30)
        final = a.deployment(winner.id)  # type: ignore[attr-defined]
        assert final.state == State.SUCCEEDED and final.approvers() == ["carol"]
        starts = [e for e in a.store.events(deployment_id=final.id) if e.action == "start"]
        assert len(starts) == 1
        assert sorted((tmp_path / "shipped").read_text().split()) == ["h1", "h2"]  # ran once
    finally:
        for e in (a, b):
            e.shutdown()
            e.store.close()


LEADER = """
import sys, time, tomllib
from pathlib import Path
from bot.config import parse_config
from bot.timing.leader import leadership_for
from bot.store.postgres import PostgresStore
from tests.support.engines import make_engine
from tests.support.recording import RecordingChat

text, url = sys.argv[1], sys.argv[2]
config = parse_config(tomllib.loads(text), source=Path("c.toml"), environ={})
engine = make_engine(config, PostgresStore(url), RecordingChat(), leadership=leadership_for(url, retry_interval=0.3))
engine.start()
while not engine.scheduler.leading:
    time.sleep(0.05)
print("leading", flush=True)
time.sleep(300)
"""


def test_killing_the_leader_hands_the_monitoring_rounds_to_a_follower(
    primary: DisposablePostgresStore, tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[2]
    with HealthApp() as app:
        text, config = make_config(tmp_path, primary.schema_url, MONITORED.format(health=app.health_url))
        leader = subprocess.Popen(
            [sys.executable, "-c", LEADER, text, primary.schema_url],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        follower = replica(config, primary.schema_url, leader=True)
        try:
            assert leader.stdout is not None and leader.stdout.readline().strip() == "leading"
            follower.start()
            assert not follower.scheduler.leading
            d = follower.request_deploy("alice", "#d", "prod", "v1")
            follower.approve("bob", d.id)
            # Either replica's worker may claim the run from the queue: wait for its state, not
            # for this replica to be idle.
            wait_for(lambda: follower.deployment(d.id).state == State.MONITORING, 30, "monitoring")

            def rounds() -> set[int]:
                return {c.round for c in follower.store.check_results(deployment_id=d.id, limit=500)}

            deadline = time.monotonic() + 20
            while max(rounds()) < 2:  # the leader process runs the rounds
                assert time.monotonic() < deadline, "the leader never ran a round"
                time.sleep(0.1)
            assert not follower.scheduler.leading
            os.killpg(leader.pid, signal.SIGKILL)
            leader.wait()
            killed_at, before = time.monotonic(), max(rounds())
            while max(rounds()) < before + 2:  # the follower takes over and goes on
                assert time.monotonic() - killed_at < 15, "no takeover within the bound"
                time.sleep(0.1)
            assert follower.scheduler.leading
            # rounds were never run twice
            results = follower.store.check_results(deployment_id=d.id, limit=500)
            assert len(results) == len({c.round for c in results})
        finally:
            if leader.poll() is None:
                os.killpg(leader.pid, signal.SIGKILL)
                leader.wait()
            follower.shutdown(grace=5)
            follower.store.close()
