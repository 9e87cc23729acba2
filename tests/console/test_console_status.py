"""`/status` through the real console: what runs, in flight, locks, check results, monitoring.

Real engine, scheduler and SQLite; the monitoring check is a real HTTP check against a small
app whose health the test switches.
"""

from __future__ import annotations

import io
import re
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.console.chat import ConsoleChat
from bot.console.repl import Console
from bot.domain.deployment import Deployment, Lock, State
from bot.engine import EnvStatus
from bot.store.sqlite import SqliteStore
from commands import views
from tests.support.engines import make_engine, wait_for
from tests.support.healthapp import HealthApp

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[bot]
data_dir = "{data}"
[environments.demo]
backend = "local"
hosts = ["localhost"]
checklist = ["Changelog reviewed"]
[environments.demo.approvals]
required = 1
[environments.demo.monitor]
interval = "0.2s"
duration = "60s"
failure_limit = 50
[[environments.demo.steps.deploy]]
name = "noop"
run = "true"
[[environments.demo.steps.rollback]]
name = "noop"
run = "true"
[[environments.demo.checks]]
name = "health"
type = "http"
url = "{url}"
timeout = 2
[environments.prod]
backend = "local"
hosts = ["localhost"]
[[environments.prod.steps.deploy]]
name = "noop"
run = "true"
"""


@pytest.fixture
def app() -> Iterator[HealthApp]:
    """The app the monitoring check watches."""
    with HealthApp() as served:
        yield served


@pytest.fixture
def console(tmp_path: Path, app: HealthApp) -> Iterator[Console]:
    """A console over a real engine (with its scheduler), printing into a buffer."""
    text = CONFIG.format(data=tmp_path / "data", url=app.health_url)
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    chat = ConsoleChat(out=io.StringIO(), channel="#deploys")
    engine = make_engine(config, SqliteStore(tmp_path / "gonogo.db"), chat)
    engine.start()
    yield Console(engine, chat, channel="#deploys")
    engine.shutdown(wait=True, grace=5)
    engine.store.close()


def reply(console: Console, line: str) -> str:
    """What the console printed for one line."""
    out = console.chat.out
    assert isinstance(out, io.StringIO)
    before = len(out.getvalue())
    console.execute(line)
    return out.getvalue()[before:]


def rounds_done(console: Console, deployment_id: int) -> int:
    return console.engine.deployment(deployment_id).details.monitor_round


def test_status_shows_runs_in_flight_locks_checks_and_monitoring(console: Console, app: HealthApp) -> None:
    for line in ("/deploy demo v1", "/as bob", "tick all", "press go", "wait runs"):
        console.execute(line)
    assert console.engine.deployment(1).state == State.MONITORING
    wait_for(lambda: rounds_done(console, 1) >= 1)

    overview = reply(console, "/status")
    assert re.search(
        r"\*demo\*: v1 \(\?\) since \d{4}-\d\d-\d\d \d\d:\d\d UTC · deployed by alice, approved by bob \[#1\] · monitoring",
        overview,
    ), overview
    assert re.search(r"checks \(#1, round \d+, [^)]+\): health ✓ 200 \(\d+ ms\)", overview), overview
    assert "*prod*: nothing deployed yet" in overview
    assert "recent:" not in overview and "monitoring #1" not in overview

    detail = reply(console, "/status demo")
    assert re.search(r"monitoring #1: round \d+/\d+ · all checks passing", detail), detail
    assert "👀 #1 deploy v1 (?) monitoring · by alice · approved by bob" in detail

    # health turns bad: the failing count shows, against the failure limit
    app.set_status(503)
    wait_for(lambda: "health" in (console.engine.deployment(1).details.tracker or {}).get("consecutive", {}))
    wait_for(lambda: (console.engine.deployment(1).details.tracker or {})["consecutive"]["health"] >= 2)
    detail = reply(console, "/status demo")
    assert re.search(r"monitoring #1: round \d+/\d+ · health failing \d+/50", detail), detail
    assert re.search(r"health ✗ expected status 200, got 503 \(\d+ ms\)", detail), detail

    # a pending deploy elsewhere is in flight; a lock shows its owner and reason
    for line in ("/as carol", "/deploy prod v9", "/deploy lock demo release freeze"):
        console.execute(line)
    overview = reply(console, "/status")
    assert "in flight: #2 deploy of v9 (?) by carol: ⏳ waiting for approval (approvals 0/1)" in overview
    assert re.search(r"🔒 locked by carol since [^:]+:\d\d UTC: release freeze", overview), overview


def at(minute: int) -> datetime:
    return datetime(2026, 12, 1, 20, minute, tzinfo=UTC)


def test_status_stays_within_slack_limits() -> None:
    reason = "x" * 5000
    statuses = [
        EnvStatus(
            env=f"env{i}",
            current=Deployment(
                env=f"env{i}", requester="alice", ref="r" * 300, sha="a" * 40, created_at=at(1), id=i,
                state=State.SUCCEEDED, finished_at=at(2),
            ),
            active=Deployment(
                env=f"env{i}", requester="bob", ref="v2", sha=None, created_at=at(3), id=1000 + i,
                state=State.RUNNING, progress="p" * 4000,
            ),
            lock=Lock(env=f"env{i}", owner="carol", reason=reason, at=at(4)),
        )
        for i in range(200)
    ]  # fmt: skip
    text = views.status_text(statuses, detailed=False)
    assert len(text) <= views.MAX_CHARS
    assert max(len(line) for line in text.splitlines()) <= 600
    assert text.splitlines()[-1].startswith("…and ") and "(see /status <env>)" in text
    assert "*env0*: " in text and "in flight: #1000 deploy of v2" in text


def test_wait_waits_out_the_monitoring_window(tmp_path: Path, app: HealthApp) -> None:
    # a script can sequence deploy → monitoring → sign-off without sleeping
    text = CONFIG.format(data=tmp_path / "data", url=app.health_url).replace(
        'duration = "60s"', 'duration = "1s"'
    )
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    chat = ConsoleChat(out=io.StringIO(), channel="#deploys")
    engine = make_engine(config, SqliteStore(tmp_path / "gonogo.db"), chat)
    engine.start()
    console = Console(engine, chat, channel="#deploys")
    try:
        for line in ("/deploy demo v1", "/as bob", "tick all", "press go", "wait"):
            console.execute(line)
        d = engine.deployment(1)
        assert d.state == State.SUCCEEDED, d.state
        assert d.details.monitor_round >= 2  # the window's rounds ran before `wait` returned
        signoff = reply(console, "/signoff demo")
        assert "Sign-off #1: v1 in demo" in signoff
    finally:
        engine.shutdown(wait=True, grace=5)
        engine.store.close()


def test_wait_runs_and_help(console: Console) -> None:
    assert "usage: wait | wait runs" in reply(console, "wait for it")
    for line in ("help", "/help"):
        shown = reply(console, line)
        assert "The terminal chat's own words:" in shown, shown
        assert "wait runs" in shown and "/deploy help [topic]" in shown
        assert "unknown" not in shown
    assert reply(console, "/help rollback").startswith("`/rollback <env> [to <#id|ref>]")
