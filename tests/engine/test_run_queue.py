"""Runs spread over replicas on one real PostgreSQL: queued runs are claimed by whichever replica
has a free worker, each exactly once, none lost; a replica that dies hands its runs over.

The engines are real replicas (each its own PostgresStore pool, leader election, watchdog and
dispatcher); the dying replica is a separate process killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Config, parse_config
from bot.domain.deployment import State
from bot.engine import Engine
from bot.store.postgres import PostgresStore
from bot.timing.leader import leadership_for
from tests.support.engines import make_engine, wait_for
from tests.support.pgfixtures import DisposablePostgresStore
from tests.support.recording import RecordingChat

pytestmark = pytest.mark.postgres

ENVS = [f"e{i}" for i in range(1, 7)]
HEADER = """
[bot]
data_dir = "{data}"
heartbeat_interval = "0.2s"
workers = {workers}
"""
#: One host per environment; the step logs when it starts and ends (with the time), and h2's
#: step hangs until the file `hang` is gone, if it exists when the step starts.
ENV = """
[environments.{env}]
backend = "local"
hosts = ["h1", "h2"]
[environments.{env}.strategy]
kind = "sequential"
[[environments.{env}.steps.deploy]]
name = "ship"
run = "echo {env}-{{host}}-start-$(date +%s.%N) >> {data}/log; if [ {{host}} = h2 ] && [ -e {data}/hang ]; then touch {data}/{env}-hung; while [ -e {data}/hang ]; do sleep 0.1; done; fi; sleep {pause}; echo {env}-{{host}}-end-$(date +%s.%N) >> {data}/log"
"""


def config_text(tmp_path: Path, *, workers: int = 1, pause: float = 0.4) -> str:
    return HEADER.format(data=tmp_path, workers=workers) + "".join(
        ENV.format(env=env, data=tmp_path, pause=pause) for env in ENVS
    )


def parse(text: str, tmp_path: Path) -> Config:
    return parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})


def log(tmp_path: Path) -> list[tuple[str, str, str, float]]:
    """(env, host, start|end, time) per logged line."""
    path = tmp_path / "log"
    lines = path.read_text().split() if path.exists() else []
    return [(env, host, what, float(at)) for env, host, what, at in (line.split("-") for line in lines)]


def most_at_once(entries: list[tuple[str, str, str, float]]) -> int:
    """The most steps running at the same moment, from their start and end times."""
    edges = sorted((at, 1 if what == "start" else -1) for _, _, what, at in entries)
    running = peak = 0
    for _, delta in edges:
        running += delta
        peak = max(peak, running)
    return peak


@pytest.fixture
def schema() -> Iterator[DisposablePostgresStore]:
    store = DisposablePostgresStore()
    yield store
    store.close()


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for e in made:
        e.shutdown(grace=5)
        e.store.close()


def replica(config: Config, url: str, engines: list[Engine]) -> Engine:
    e = make_engine(
        config, PostgresStore(url), RecordingChat(), leadership=leadership_for(url, retry_interval=0.2)
    )
    engines.append(e)
    return e


def queue_all(e: Engine) -> list[int]:
    """Request and approve a deploy in every environment, all on replica `e`."""
    ids = []
    for env in ENVS:
        d = e.request_deploy("alice", "#d", env, "v1")
        e.approve("bob", d.id)
        ids.append(d.id)
    return ids


def test_queued_runs_go_to_every_replica_with_a_free_worker_and_run_once(
    tmp_path: Path, schema: DisposablePostgresStore, engines: list[Engine]
) -> None:
    config = parse(config_text(tmp_path, workers=1), tmp_path)
    a, b, c = (replica(config, schema.schema_url, engines) for _ in range(3))
    for e in (a, b, c):
        e.start()
    ids = queue_all(a)  # one replica received every Go
    wait_for(lambda: all(a.deployment(i).state == State.SUCCEEDED for i in ids), 60, "every deploy succeeded")
    entries = log(tmp_path)
    for env in ENVS:  # every host of every env deployed exactly once
        assert sorted(h for e, h, what, _ in entries if e == env and what == "start") == ["h1", "h2"]
    for i in ids:
        assert [ev.action for ev in a.store.events(deployment_id=i)].count("start") == 1
    # one worker per replica: three runs at once means the other two replicas took a share
    assert most_at_once(entries) == 3


def test_a_run_claimed_by_a_replica_that_died_before_starting_it_is_taken_over(
    tmp_path: Path, schema: DisposablePostgresStore, engines: list[Engine]
) -> None:
    config = parse(config_text(tmp_path, workers=1, pause=0), tmp_path)
    a = replica(config, schema.schema_url, engines)  # not started: it claims only what it queues
    d = a.request_deploy("alice", "#d", "e1", "v1")
    a.runs.queue.stop_claiming()  # the Go lands here, but this replica takes no run (it dies)
    a.approve("bob", d.id)
    now = a.now()
    assert a.store.claim_run("dead-replica", now, now) == d.id  # claimed, then the claimer died
    b = replica(config, schema.schema_url, engines)
    b.start()
    wait_for(lambda: b.deployment(d.id).state == State.SUCCEEDED, 30, "the orphaned run ran")
    assert [ev.action for ev in b.store.events(deployment_id=d.id)].count("start") == 1
    waited = b.deployment(d.id).started_at - now  # type: ignore[operator]
    assert waited >= timedelta(seconds=0.6)  # not before the claim was 3 heartbeats old


CHILD = """
import sys, time, tomllib
from pathlib import Path
from bot.config import parse_config
from bot.store.postgres import PostgresStore
from bot.timing.leader import leadership_for
from tests.support.engines import make_engine
from tests.support.recording import RecordingChat

data, text, url = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
config = parse_config(tomllib.loads(text), source=data / "c.toml", environ={{}})
engine = make_engine(config, PostgresStore(url), RecordingChat(), leadership=leadership_for(url, retry_interval=0.2))
engine.start()
for env in {envs!r}:
    d = engine.request_deploy("alice", "#d", env, "v1")
    engine.approve("bob", d.id)
print("approved", flush=True)
time.sleep(120)
"""


def test_a_replica_killed_mid_run_hands_its_runs_over_interrupted_and_resumable(
    tmp_path: Path, schema: DisposablePostgresStore, engines: list[Engine]
) -> None:
    text = config_text(tmp_path, workers=3, pause=0)
    (tmp_path / "hang").touch()
    mine = ENVS[:3]
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(CHILD.format(envs=mine)),
            str(tmp_path),
            text,
            schema.schema_url,
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: child.poll() is None and all((tmp_path / f"{env}-hung").exists() for env in mine),
            60,
            "the doomed replica ran all three runs to h2",
        )
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the replica; its steps run on under the journal wrapper
        child.wait()
    chat = RecordingChat()
    survivor = make_engine(
        parse(text, tmp_path),
        PostgresStore(schema.schema_url),
        chat,
        leadership=leadership_for(schema.schema_url, retry_interval=0.2),
    )
    engines.append(survivor)
    survivor.start()
    ids = [survivor.store.active(env).id for env in mine]  # type: ignore[union-attr]
    wait_for(
        lambda: all(survivor.deployment(i).state == State.INTERRUPTED for i in ids),
        30,
        "the survivor's watchdog declared the dead replica's runs interrupted",
    )

    def alerts() -> list[str]:
        return [m.text for m in chat.of_kind("message") if "was interrupted" in m.text]

    # The state is recorded before the alert goes out: wait for the alerts, then count them.
    wait_for(lambda: len(alerts()) >= 3, 30, "the interrupted runs announced")
    assert len(alerts()) == 3  # each announced once, with Resume / Roll back
    (tmp_path / "hang").unlink()
    for i in ids:
        survivor.resume("bob", i)
    wait_for(
        lambda: all(survivor.deployment(i).state == State.SUCCEEDED for i in ids), 60, "every resume finished"
    )
    entries = log(tmp_path)
    for env in mine:
        starts = [h for e, h, what, _ in entries if e == env and what == "start"]
        # h1 finished before the kill; h2 outlived it and the survivor's Resume reattached, never reran it
        assert starts == ["h1", "h2"]
        assert [h for e, h, what, _ in entries if e == env and what == "end"] == ["h1", "h2"]
