"""Verify, monitor, alert, roll back: real demo app over HTTP, real scheduler, real SQLite."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.config import Config, load_config
from bot.domain.deployment import State
from bot.engine import Engine
from bot.store.base import CheckRecord
from bot.store.sqlite import SqliteStore
from tests.conftest import free_port, stop_demo_app, write_demo_config
from tests.support.engines import make_engine, wait_for
from tests.support.healthapp import HealthApp
from tests.support.recording import RecordingChat

CHECKS = """
[[environments.demo.checks]]
name = "health"
type = "http"
url = "http://127.0.0.1:{port}/health"
timeout = 2
"""


def demo(tmp_path: Path, *, monitor: str = "", checks: str = CHECKS) -> Config:
    """The demo config plus `monitor` (scalar keys first, then TOML tables) and `checks`."""
    path = write_demo_config(tmp_path)
    port = load_config(path, environ={}).environments["demo"].vars["port"]
    scalars, _, tables = monitor.partition("[")
    text = path.read_text().replace(
        'description = "The bundled demo app on this machine"',
        'description = "The bundled demo app on this machine"\n' + scalars,
    )
    path.write_text(text + ("\n[" + tables if tables else "") + checks.format(port=port))
    return load_config(path, environ={})


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for e in made:
        e.shutdown(grace=5)
    stop_demo_app(tmp_path / "data")


def start(config: Config, tmp_path: Path, engines: list[Engine], chat: RecordingChat | None = None) -> Engine:
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), chat or RecordingChat())
    e.start()
    engines.append(e)
    return e


def ship(e: Engine, ref: str, requester: str = "alice", approver: str = "bob") -> int:
    d = e.request_deploy(requester, "#deploys", "demo", ref)
    e.tick_all(approver, d.id)
    e.approve(approver, d.id)
    e.wait_idle(60)
    return d.id  # type: ignore[return-value]


def version(config: Config) -> str:
    port = config.environments["demo"].vars["port"]
    return str(httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["version"])


def current_release_dir(config: Config) -> Path:
    return (config.bot.data_dir / "demo" / "current").resolve()


MONITOR = 'auto_rollback = true\n[environments.demo.monitor]\ninterval = "0.3s"\nduration = "0.9s"\nfailure_limit = 2\n'


def test_healthy_deploy_passes_verify_and_its_monitoring_window(
    tmp_path: Path, engines: list[Engine]
) -> None:
    config = demo(tmp_path, monitor=MONITOR)
    chat = RecordingChat()
    e = start(config, tmp_path, engines, chat)
    d = ship(e, "v1")
    assert e.deployment(d).state == State.MONITORING
    wait_for(lambda: e.deployment(d).state == State.SUCCEEDED)
    thread = "\n".join(m.text for m in chat.of_kind("thread"))
    assert "Smoke checks: health ✓" in thread
    assert "Round 3/3: health ✓" in thread and "Monitoring window passed (3 rounds)" in thread
    rounds = {c.round for c in e.store.check_results(deployment_id=d, limit=50)}
    assert rounds == {0, 1, 2, 3}
    assert e.status("demo")[0].checks[0].ok


def test_health_turning_bad_mid_window_alerts_rolls_back_and_locks(
    tmp_path: Path, engines: list[Engine]
) -> None:
    config = demo(tmp_path, monitor=MONITOR.replace('duration = "0.9s"', 'duration = "30s"'))
    chat = RecordingChat()
    e = start(config, tmp_path, engines, chat)
    first = ship(e, "v1")
    e.abort("bob", "demo")  # stop v1's window: it is the good release
    second = ship(e, "v2", requester="carol")
    assert version(config) == "v2" and e.deployment(second).state == State.MONITORING
    (current_release_dir(config) / "UNHEALTHY").touch()  # the app starts answering 503
    wait_for(lambda: e.deployment(second).state == State.ROLLED_BACK)
    e.wait_idle(60)
    # one alert for the incident: posted when the check first failed, then updated in place
    (posted,) = [m for m in chat.of_kind("message") if m.deployment_id == second]
    assert "1 check failing while monitoring" in posted.text and posted.mentions[0] == "carol"
    alert = chat.message(posted.ts or "")
    assert "monitoring: health ✗ expected status 200, got 503" in alert.text
    assert "Rolling back automatically now" in alert.text
    assert "✅ Rolled back by #" in alert.text and "demo runs v1 again" in alert.text
    rollback = e.store.deployments("demo", kind="rollback")[0]
    assert (
        rollback.state == State.SUCCEEDED and rollback.release_id == first and rollback.requester == "gonogo"
    )
    assert version(config) == "v1"
    lock = e.store.get_lock("demo")
    assert lock is not None and lock.automatic
    assert lock.reason.startswith(f"locked by gonogo after rollback of #{second}: monitoring: health")
    # the rollback re-ran the smoke checks on the restored release
    assert any(c.ok for c in e.store.check_results(deployment_id=rollback.id))
    # a human must unlock with a reason before the next deploy
    assert "locked by gonogo" in e.status("demo")[0].lock.reason  # type: ignore[union-attr]


def test_hold_stops_an_automatic_rollback(tmp_path: Path, engines: list[Engine]) -> None:
    config = demo(
        tmp_path,
        monitor=MONITOR.replace(
            "auto_rollback = true", 'auto_rollback = true\nrollback_grace = "1s"'
        ).replace('duration = "0.9s"', 'duration = "30s"'),
    )
    chat = RecordingChat()
    e = start(config, tmp_path, engines, chat)
    ship(e, "v1")
    e.abort("bob", "demo")
    second = ship(e, "v2", requester="carol")
    (current_release_dir(config) / "UNHEALTHY").touch()
    wait_for(lambda: e.deployment(second).state == State.FAILED)
    (posted,) = [m for m in chat.of_kind("message") if m.deployment_id == second]
    # The state is recorded before the alert is updated: wait for the alert, not just the state.
    wait_for(lambda: "unless someone presses Hold" in chat.message(posted.ts or "").text)
    e.hold("bob", second)
    time.sleep(2.0)  # past the grace period: nothing may start
    e.wait_idle(30)
    assert e.store.deployments("demo", kind="rollback") == []
    assert e.deployment(second).state == State.FAILED and version(config) == "v2"
    assert e.store.get_lock("demo") is None


def test_unreachable_or_slow_check_targets_fail_verify_clearly(tmp_path: Path, engines: list[Engine]) -> None:
    closed = free_port()
    with HealthApp() as slow:
        slow.set_delay(0.5)
        checks = (
            CHECKS
            + f"""
[[environments.demo.checks]]
name = "gone"
type = "http"
url = "http://127.0.0.1:{closed}/health"
timeout = 2
[[environments.demo.checks]]
name = "latency"
type = "http"
url = "{slow.url}/health"
max_latency = 0.2
"""
        )
        config = demo(tmp_path, checks=checks)
        chat = RecordingChat()
        e = start(config, tmp_path, engines, chat)
        d = ship(e, "v1")
    failed = e.deployment(d)
    assert failed.state == State.FAILED
    assert "gone ✗" in (failed.error or "") and "refused" in (failed.error or "")
    assert "latency ✗" in (failed.error or "") and "over" in (failed.error or "")
    (alert,) = [m for m in chat.of_kind("message") if m.deployment_id == d]  # one alert, updated
    assert "smoke checks of #1 (v1) failed: gone, latency" in alert.text
    assert "FAILED" in chat.message(alert.ts or "").text


def stop_after_the_first_round(tmp_path: Path, engines: list[Engine]) -> tuple[Config, Engine, int]:
    """Deploy v1 with a four-round window (0.5 s rounds) and stop the bot after round 1."""
    config = demo(
        tmp_path,
        monitor=MONITOR.replace('interval = "0.3s"', 'interval = "0.5s"').replace(
            'duration = "0.9s"', 'duration = "2s"'
        ),
    )
    # No timers in the first bot: round 1 is fired by hand, so nothing else can run meanwhile.
    first = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    first.start(run_scheduler=False)
    d = ship(first, "v1")
    assert first.scheduler.run_due(datetime.now(UTC) + timedelta(seconds=0.6)) == 1
    assert {c.round for c in first.store.check_results(deployment_id=d)} == {0, 1}
    first.shutdown(grace=5)
    return config, first, d


def test_a_restart_mid_window_resumes_the_window(tmp_path: Path, engines: list[Engine]) -> None:
    config, first, d = stop_after_the_first_round(tmp_path, engines)
    rounds_before = {c.round for c in first.store.check_results(deployment_id=d)}
    assert max(rounds_before) < 4
    second = start(config, tmp_path, engines)
    wait_for(lambda: second.deployment(d).state == State.SUCCEEDED)
    assert {c.round for c in second.store.check_results(deployment_id=d)} >= {1, 2, 3, 4}


def test_a_round_orphaned_by_a_dead_process_is_finished_by_the_next_one(
    tmp_path: Path, engines: list[Engine]
) -> None:
    config, _, d = stop_after_the_first_round(tmp_path, engines)
    # What a process SIGKILLed in the middle of the next round leaves: the round's row claimed
    # and never finished, its checks run and stored, but not judged and no next round added.
    store = SqliteStore(tmp_path / "db.sqlite")
    (row,) = [s for s in store.pending_schedules() if s.deployment_id == d]
    assert row.id is not None and store.claim_schedule(row.id, row.run_at, "dead-process")
    round_no = int(row.payload["round"])
    store.record_check_results(
        d, "demo", [CheckRecord("health", "http", True, row.run_at, "200", 0.01, None, round_no, d, "demo")]
    )
    store.close()

    second = start(config, tmp_path, engines)
    wait_for(lambda: second.deployment(d).state == State.SUCCEEDED)
    results = second.store.check_results(deployment_id=d, limit=100)
    assert sorted(c.round for c in results if c.round) == [1, 2, 3, 4]  # every round, none twice
    assert second.store.orphaned_schedules(second.scheduler.owner) == []
