"""Monitoring on its own: rounds fired by hand on a fixed clock, no sleeps, no HTTP app.

Monitoring gets the engine's narrow interfaces (`bot.engine.port`): a real ledger over an
in-memory SQLite store, the real notifier over a recording chat, the real scheduler fired with
`run_due`, and a stand-in for `Failures` that records what it was told. Its check is a command
check run on this machine (`test -f FLAG`), so a test switches its health with a file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from bot.config import parse_config
from bot.domain.deployment import Deployment, EventRecord, State
from bot.engine.ledger import Ledger
from bot.engine.monitoring import ROUND, Monitoring
from bot.engine.notify import Notifier
from bot.store.base import Schedule
from bot.store.sqlite import SqliteStore
from bot.timing.clock import FakeClock
from bot.timing.scheduler import Scheduler
from runners.backends.local import LocalBackend
from tests.support.demoapp import DemoApp
from tests.support.recording import RecordingChat

CONFIG = """
[bot]
channel = "#deploys"
[environments.web]
backend = "local"
hosts = ["localhost"]
[[environments.web.steps.deploy]]
name = "deploy"
run = "true"
[environments.web.monitor]
interval = "1m"
duration = "3m"
failure_limit = 2
[[environments.web.checks]]
name = "flag"
type = "command"
command = "test -f {flag}"
"""


@dataclass
class FailuresSeen:
    """Stands in for `bot.engine.failures.Failures`: records each failure it is told of."""

    calls: list[tuple[int | None, str]] = field(default_factory=list)

    def on_failure(self, d: Deployment, why: str, *, automatic: bool = True) -> None:
        self.calls.append((d.id, why))


@dataclass
class World:
    monitoring: Monitoring
    store: SqliteStore
    clock: FakeClock
    timers: Scheduler
    chat: RecordingChat
    failures: FailuresSeen
    live: list[int | None]
    flag: Path

    def deployment(self) -> Deployment:
        clock = self.clock
        d = Deployment(env="web", requester="alice", ref="v2", sha=None, created_at=clock.now(),
                       state=State.MONITORING, channel="#deploys")  # fmt: skip
        return self.store.create_deployment(d, EventRecord(at=clock.now(), actor="alice", action="test"))

    def minute(self) -> int:
        """Let a minute pass and fire what is due."""
        self.clock.advance(minutes=1)
        return self.timers.run_due()

    def state(self, d: Deployment) -> State:
        got = self.store.get(d.id)
        assert got is not None
        return got.state


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, CONFIG)


def make_world(tmp_path: Path, text: str) -> World:
    flag = tmp_path / "healthy"
    flag.touch()
    config = parse_config(tomllib.loads(text.replace("{flag}", str(flag))), environ={})
    store = SqliteStore(":memory:")
    clock = FakeClock()
    ledger = Ledger(config, store, clock)
    chat = RecordingChat()
    notify = Notifier(chat, ledger, store, single_process=True)
    timers = Scheduler(store, clock)
    failures = FailuresSeen()
    live: list[int | None] = []
    monitoring = Monitoring(
        ledger, store, notify, timers, failures, lambda env, dry: LocalBackend(cwd=str(tmp_path)),  # type: ignore[arg-type]
        lambda d: live.append(d.id),
    )  # fmt: skip
    return World(monitoring, store, clock, timers, chat, failures, live, flag)


def test_a_healthy_window_passes_after_its_last_round_and_goes_live(world: World) -> None:
    d = world.deployment()
    world.monitoring.start_window(d)
    assert world.minute() == 1 and world.minute() == 1
    assert world.state(d) == State.MONITORING and world.live == []
    assert world.minute() == 1
    assert world.state(d) == State.SUCCEEDED and world.live == [d.id]
    assert "Monitoring window passed (3 rounds). web runs v2." in world.chat.texts()
    assert world.minute() == 0  # nothing scheduled after the window


def test_the_window_fails_after_failure_limit_consecutive_failures_and_hands_over(world: World) -> None:
    d = world.deployment()
    world.monitoring.start_window(d)
    world.flag.unlink()
    world.minute()
    assert world.state(d) == State.MONITORING  # one failure is below the limit of 2
    assert "1 check failing while monitoring #1 (v2), round 1/3: flag (1/2)" in world.chat.texts()
    world.minute()
    assert world.state(d) == State.FAILED
    assert len(world.failures.calls) == 1
    assert world.failures.calls[0][0] == d.id and world.failures.calls[0][1].startswith("monitoring: flag ✗")
    assert world.minute() == 0  # a failed window schedules nothing more


def test_a_check_that_recovers_resets_its_count_and_says_so(world: World) -> None:
    d = world.deployment()
    world.monitoring.start_window(d)
    world.flag.unlink()
    world.minute()
    world.flag.touch()
    world.minute()
    assert "✅ Recovered in round 2: flag passing again" in world.chat.texts()
    world.minute()
    assert world.state(d) == State.SUCCEEDED and world.failures.calls == []


def test_a_replayed_round_is_judged_from_its_stored_results_not_run_again(world: World) -> None:
    d = world.deployment()
    world.monitoring.start_window(d)
    world.minute()
    assert len(world.store.check_results(deployment_id=d.id, round=1, limit=10)) == 1
    # The scheduler fires a round again when the process running it died: replay round 1.
    world.flag.unlink()  # were it run again, it would fail now
    world.monitoring._round(Schedule(kind=ROUND, run_at=world.clock.now(), deployment_id=d.id,
                                     payload={"round": 1, "rounds": 3}))  # fmt: skip
    assert len(world.store.check_results(deployment_id=d.id, round=1, limit=10)) == 1
    assert "failing while monitoring" not in world.chat.texts()
    later = world.clock.now() + timedelta(minutes=5)
    assert len(world.store.pending_schedules(due_before=later)) == 1  # round 2, added once


def test_a_round_after_the_deployment_left_monitoring_does_nothing(world: World) -> None:
    d = world.deployment()
    world.monitoring.start_window(d)
    fresh = world.store.get(d.id)
    assert fresh is not None
    world.store.transition(replace(fresh, state=State.SUCCEEDED), fresh.version)
    assert world.minute() == 1
    assert world.store.check_results(deployment_id=d.id, limit=10) == []


def test_a_check_s_own_limit_can_count_every_failure_in_the_window(tmp_path: Path) -> None:
    world = make_world(tmp_path, CONFIG + "failure_limit = 2\nconsecutive = false\n")
    d = world.deployment()
    world.monitoring.start_window(d)
    world.flag.unlink()
    world.minute()
    world.flag.touch()
    world.minute()  # a pass between: consecutive failures would start over
    assert world.state(d) == State.MONITORING
    world.flag.unlink()
    world.minute()
    assert world.state(d) == State.FAILED and world.failures.calls[0][1].startswith("monitoring: flag ✗")


def test_a_rate_check_compares_with_the_reading_kept_from_the_round_before(tmp_path: Path) -> None:
    with DemoApp(tmp_path / "app") as app:
        text = (
            CONFIG.replace('duration = "3m"', 'duration = "4m"')
            + f"""
[[environments.web.checks]]
name = "failure-rate"
type = "metrics"
url = "{app.url}/metrics"
metric = "demo_http_request_failures"
per = "demo_http_requests"
labels = {{ path = "/health" }}
rate = true
condition = "result < 0.25"
"""
        )
        world = make_world(tmp_path, text)
        d = world.deployment()
        world.monitoring.start_window(d)
        for _ in range(8):
            httpx.get(f"{app.url}/health", timeout=5)
        world.minute()  # the baseline
        app.fault("FAIL_RATE", "0.5")
        for _ in range(8):
            httpx.get(f"{app.url}/health", timeout=5)
        world.minute()
        stored = world.store.get(d.id)
        assert stored is not None and stored.details.tracker is not None
        assert stored.details.tracker["samples"]["failure-rate"]["per"] == 16.0
        (second,) = [
            r
            for r in world.store.check_results(deployment_id=d.id, round=2, limit=10)
            if r.name == "failure-rate"
        ]
        assert not second.ok and second.error == "result 0.5: not result < 0.25"
