"""The bundled demo never reports success when something else answers on its port.

Real console on stdin, real demo scripts, real HTTP: an impostor app holds the demo port,
the health check compares the served version with the ref being deployed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import load_config
from bot.domain.deployment import State
from bot.store.sqlite import SqliteStore
from tests.conftest import ROOT, free_port, stop_demo_app, write_demo_config
from tests.console.test_console_e2e import console, health
from tests.support.healthapp import HealthApp

HEALTH = "python3 {config_dir}/demo/healthcheck.py http://127.0.0.1:{port}/health {ref}"

DEPLOY_V1 = "/deploy demo v1\n/as bob\ntick all\npress go\nwait\n"


def states(config: Path) -> list[State]:
    store = SqliteStore(load_config(config).bot.data_dir / "gonogo.db")
    try:
        return [d.state for d in store.deployments("demo")]
    finally:
        store.close()


def test_an_app_already_on_the_port_fails_the_restart_clearly(demo_config_path: Path) -> None:
    port = int(load_config(demo_config_path).environments["demo"].vars["port"])
    with HealthApp(port=port) as impostor:
        impostor.set_body({"status": "ok", "version": "impostor"})
        out = console(demo_config_path, DEPLOY_V1)
    assert "✗ deploy › restart app: localhost: exit 1" in out, out
    assert f"port {port} is taken by another process (not the demo app gonogo started)" in out
    assert f"cannot listen on 127.0.0.1:{port}" in out  # the app's own log tail
    assert "Deploy #1 of v1 to demo FAILED" in out
    assert states(demo_config_path) == [State.FAILED]


@pytest.fixture
def demo_with_ref_check(tmp_path: Path) -> Iterator[Path]:
    """The demo config, whose health steps (verify and rollback) pass `{ref}`."""
    path = write_demo_config(tmp_path)
    assert path.read_text().count(f'run = "{HEALTH}"') == 2
    yield path
    stop_demo_app(tmp_path / "data")


def test_the_health_check_expects_the_deployed_ref(demo_with_ref_check: Path) -> None:
    out = console(
        demo_with_ref_check,
        DEPLOY_V1 + "/deploy demo v2\n/as carol\ntick all\npress go\nwait\n"
        "/rollback demo\n/as alice\npress go\nwait\n",
    )
    assert "✓ verify › health: localhost" in out and "✓ rollback › health: localhost" in out, out
    assert health(demo_with_ref_check)["version"] == "v1"
    assert states(demo_with_ref_check) == [State.SUCCEEDED, State.ROLLED_BACK, State.SUCCEEDED]


def test_verify_fails_when_another_app_answers_with_200(tmp_path: Path) -> None:
    # no restart at all, and an impostor on the port answering 200: only the version tells
    restart = 'run = "sh {config_dir}/demo/restart.sh {current_dir} {port} {deploy_to}"'
    path = write_demo_config(tmp_path, replace={restart: 'run = "true"'})
    port = int(load_config(path).environments["demo"].vars["port"])
    with HealthApp(port=port) as impostor:
        impostor.set_body({"status": "ok", "version": "impostor"})
        out = console(path, DEPLOY_V1)
    assert "✗ verify › health: localhost: exit 1" in out, out
    assert "expected version 'v1', the app on this port serves 'impostor'" in out
    assert states(path) == [State.FAILED]


def healthcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "demo" / "healthcheck.py"), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthcheck_compares_the_served_version() -> None:
    with HealthApp() as app:
        app.set_body({"status": "ok", "version": "v1"})
        assert healthcheck(app.health_url, "v1").returncode == 0
        assert healthcheck(app.health_url).returncode == 0  # no version asked: 200 is enough
        wrong = healthcheck(app.health_url, "v2")
        assert wrong.returncode == 1
        assert "expected version 'v2', the app on this port serves 'v1'" in wrong.stdout
        app.set_body("plain text")
        silent = healthcheck(app.health_url, "v1")
        assert silent.returncode == 1 and "does not report a version" in silent.stdout
        app.set_body({"status": "failing", "version": "v1"})
        app.set_status(503)
        assert healthcheck(app.health_url, "v1").returncode == 1
    assert healthcheck("http://127.0.0.1:1/health", "v1").returncode == 1
    assert healthcheck().returncode == 2


def test_restart_never_kills_a_process_that_is_not_the_demo_app(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    state = tmp_path / "state"
    state.mkdir()
    (state / "app.pid").write_text(f"{bystander.pid}\n")  # a stale pid file, the pid reused
    app = tmp_path / "app"
    subprocess.run(["cp", "-R", str(ROOT / "demo" / "app"), str(app)], check=True)
    (app / "VERSION").write_text("v5\n")
    port = free_port()
    try:
        proc = subprocess.run(
            ["sh", str(ROOT / "demo" / "restart.sh"), str(app), str(port), str(state)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, proc.stderr
        assert f"demo app v5 listening on 127.0.0.1:{port} (pid " in proc.stdout
        assert bystander.poll() is None  # still running
    finally:
        bystander.kill()
        bystander.wait()
        pid = int((state / "app.pid").read_text())
        if pid != bystander.pid:
            os.kill(pid, signal.SIGTERM)
