"""Metric thresholds end to end: the demo app deployed for real, scraped by a real Prometheus,
judged by `type = "prometheus"` checks in the monitoring window.

A breach rolls back; no data follows `on_no_data`; an inconclusive result holds the window and
asks with Continue / Roll back.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.config import Config, load_config
from bot.domain.actions import Action
from bot.domain.deployment import State
from bot.engine import Engine
from bot.store.sqlite import SqliteStore
from commands.handlers import Context, handle_action
from tests.conftest import stop_demo_app, write_demo_config
from tests.support.engines import make_engine, wait_for
from tests.support.prometheus import PrometheusServer, Slot
from tests.support.recording import RecordingChat

SCALARS = """auto_rollback = true
prometheus_url = "{prometheus}"
smoke_checks = ["health"]
"""
WINDOW = """[environments.demo.monitor]
interval = "0.3s"
duration = "{duration}"
failure_limit = 2
checks = ["{watched}"]
"""
HEALTH = """
[[environments.demo.checks]]
name = "health"
type = "http"
url = "http://127.0.0.1:{port}/health"
timeout = 2
"""
ERROR_RATIO = """
[[environments.demo.checks]]
name = "error-ratio"
type = "prometheus"
query = 'sum(rate(demo_http_request_failures_total{{job="{job}"}}[2s])) / sum(rate(demo_http_requests_total{{job="{job}"}}[2s]))'
condition = "result < 0.1"
on_no_data = "pass"
"""
NO_DATA = """
[[environments.demo.checks]]
name = "latency"
type = "prometheus"
query = 'histogram_quantile(0.99, sum by (le) (rate(demo_nothing_bucket{{job="{job}"}}[2s])))'
condition = "result < 0.5"
on_no_data = "{on_no_data}"
"""


def config(tmp_path: Path, slot: Slot, prometheus: PrometheusServer, checks: str, **fmt: str) -> Config:
    """The demo on the slot's port (Prometheus scrapes it), with a window and `checks`."""
    path = write_demo_config(tmp_path)
    text = re.sub(r'port = "\d+"', f'port = "{slot.port}"', path.read_text(), count=1)
    text = text.replace(
        'description = "The bundled demo app on this machine"',
        'description = "The bundled demo app on this machine"\n' + SCALARS.format(prometheus=prometheus.url),
    )
    checks = (WINDOW + HEALTH + checks).format(port=slot.port, job=slot.job, **fmt)
    path.write_text(text + "\n" + checks)
    return load_config(path, environ={})


@pytest.fixture
def slot(prometheus: PrometheusServer, tmp_path: Path) -> Iterator[Slot]:
    with prometheus.slot() as leased:
        yield leased
        stop_demo_app(tmp_path / "data")


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for e in made:
        e.shutdown(grace=5)


def start(config: Config, tmp_path: Path, engines: list[Engine], chat: RecordingChat) -> Engine:
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), chat)
    e.start()
    engines.append(e)
    return e


def ship(e: Engine, ref: str, requester: str = "alice") -> int:
    d = e.request_deploy(requester, "#deploys", "demo", ref)
    e.tick_all("bob", d.id)
    e.approve("bob", d.id)
    e.wait_idle(60)
    return d.id


class Traffic:
    """Users of the app: a request every 20 ms while the test runs."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self.stop.wait(0.02):
                try:
                    client.get(self.url)
                except httpx.HTTPError:
                    pass  # the app restarting

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def current_release(config: Config) -> Path:
    return (config.bot.data_dir / "demo" / "current").resolve()


def test_a_prometheus_threshold_breach_rolls_back(
    tmp_path: Path, slot: Slot, prometheus: PrometheusServer, engines: list[Engine]
) -> None:
    cfg = config(tmp_path, slot, prometheus, ERROR_RATIO, duration="60s", watched="error-ratio")
    chat = RecordingChat()
    e = start(cfg, tmp_path, engines, chat)
    traffic = Traffic(slot.port)
    try:
        first = ship(e, "v1")
        e.abort("bob", "demo")  # v1 is the good release
        second = ship(e, "v2", requester="carol")
        assert e.deployment(second).state == State.MONITORING
        prometheus.wait_for(f'demo_http_requests_total{{job="{slot.job}",path="/"}} > 5')
        assert e.deployment(second).state == State.MONITORING  # healthy traffic: the window goes on
        (current_release(cfg) / "FAIL_RATE").write_text("1")  # every request now answers 500
        wait_for(lambda: e.deployment(second).state == State.ROLLED_BACK, timeout=60, what="the rollback")
        e.wait_idle(60)
    finally:
        traffic.close()
    failed = [c for c in e.store.check_results(deployment_id=second, limit=500) if not c.ok]
    assert failed and all(c.name == "error-ratio" and "not result < 0.1" in (c.error or "") for c in failed)
    (posted,) = [m for m in chat.of_kind("message") if m.deployment_id == second]
    alert = chat.message(posted.ts or "").text
    assert re.search(r"monitoring: error-ratio ✗ result [01][.0-9]*: not result < 0\.1", alert), alert
    assert "Rolling back automatically now" in alert and "Rolled back by #" in alert
    rollback = e.store.deployments("demo", kind="rollback")[0]
    assert rollback.release_id == first and rollback.state == State.SUCCEEDED
    assert httpx.get(f"http://127.0.0.1:{slot.port}/health", timeout=5).json()["version"] == "v1"


@pytest.mark.parametrize("on_no_data", ["fail", "pass"])
def test_no_data_from_prometheus_follows_on_no_data(
    tmp_path: Path, slot: Slot, prometheus: PrometheusServer, engines: list[Engine], on_no_data: str
) -> None:
    cfg = config(
        tmp_path, slot, prometheus, NO_DATA, duration="1.2s", watched="latency", on_no_data=on_no_data
    )
    e = start(cfg, tmp_path, engines, RecordingChat())
    ship(e, "v1")
    e.abort("bob", "demo")
    second = ship(e, "v2")
    want = State.ROLLED_BACK if on_no_data == "fail" else State.SUCCEEDED
    wait_for(lambda: e.deployment(second).state == want, timeout=60, what=f"{want.value} after no data")
    e.wait_idle(60)
    latency = [c for c in e.store.check_results(deployment_id=second, limit=100) if c.name == "latency"]
    assert latency and all(c.observed == "no data" and c.ok == (on_no_data == "pass") for c in latency)
    if on_no_data == "fail":
        assert "monitoring: latency ✗ the query returned no data" in (e.deployment(second).error or "")


def test_an_inconclusive_result_holds_the_window_and_asks(
    tmp_path: Path, slot: Slot, prometheus: PrometheusServer, engines: list[Engine]
) -> None:
    cfg = config(
        tmp_path, slot, prometheus, NO_DATA, duration="60s", watched="latency", on_no_data="inconclusive"
    )
    chat = RecordingChat()
    e = start(cfg, tmp_path, engines, chat)
    ship(e, "v1")
    e.abort("bob", "demo")
    second = ship(e, "v2", requester="carol")
    wait_for(lambda: e.deployment(second).details.paused, timeout=30, what="the window to hold")
    d = e.deployment(second)
    assert d.state == State.MONITORING and "latency ? inconclusive: the query returned no data" in (
        d.details.paused or ""
    )
    rounds = len(e.store.check_results(deployment_id=second, limit=100))
    time.sleep(1.2)  # four intervals: no round runs while it holds, nothing rolls back
    assert len(e.store.check_results(deployment_id=second, limit=100)) == rounds
    assert e.deployment(second).state == State.MONITORING and not e.store.deployments("demo", kind="rollback")
    ask = next(m for m in chat.of_kind("message") if m.deployment_id == second and m.buttons)
    assert "holds: latency ? inconclusive" in ask.text and ask.mentions[0] == "carol"
    assert [b.action for b in ask.buttons] == [Action.CONTINUE_MONITORING, Action.ROLLBACK_NOW]
    assert "⏸ Monitoring holds" in "\n".join(chat.last_card(second).lines)

    reply = handle_action(e, Action.CONTINUE_MONITORING, str(second), Context(user="bob", channel="#deploys"))
    assert reply is not None and "continued the monitoring window" in reply.text
    assert "▶️ Continued by bob" in chat.message(ask.ts or "").text and not chat.message(ask.ts or "").buttons
    wait_for(
        lambda: len(e.store.check_results(deployment_id=second, limit=100)) > rounds, what="the next round"
    )
    wait_for(lambda: e.deployment(second).details.paused, timeout=30, what="holding again (still no data)")
    again = handle_action(e, Action.CONTINUE_MONITORING, str(second), Context(user="bob", channel="#deploys"))
    assert again is not None and "continued" in again.text
    twice = handle_action(e, Action.CONTINUE_MONITORING, str(second), Context(user="bob", channel="#deploys"))
    assert twice is not None and twice.text.startswith("Refused:") and "not holding" in twice.text

    wait_for(lambda: e.deployment(second).details.paused, timeout=30, what="holding a third time")
    handle_action(e, Action.ROLLBACK_NOW, str(second), Context(user="bob", channel="#deploys"))
    wait_for(lambda: e.deployment(second).state == State.ROLLED_BACK, timeout=60, what="the human's rollback")
