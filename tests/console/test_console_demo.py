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
        keep_running=True,
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


# -- the demo's git history ------------------------------------------------------------------
V1, V2, V3 = "9a647f9", "d304d2c", "06283ec"
BETWEEN_V1_AND_V3 = [
    "`06283ec` Keep request logs out of the terminal (Carol)",
    "`e0a35c2` Refuse to start when the port is already taken (Bob)",
    "`c913ef9` Say which port the app listens on at start (Alice)",
    "`d304d2c` Report failing health while UNHEALTHY is present (Carol)",
    "`b28c6e3` Answer /version with the release name (Bob)",
]


def changelog_of(out: str, title: str) -> list[str]:
    """The changelog lines of the first card titled `title` in the console's output."""
    card = out[out.index(f"┌─ {title}") :]
    card = card[: card.index("└─")]
    lines = card.split("│ Changelog:\n", 1)[1].split("│ Checklist", 1)[0].splitlines()
    return [line.removeprefix("│   ") for line in lines]


def test_the_demo_cards_show_the_commit_and_what_ships(demo_config_path: Path) -> None:
    out = console(demo_config_path, DEPLOY_V1 + "/deploy demo v3\n")
    assert f"Ref: v1 · Commit: {V1} ·" in out
    assert changelog_of(out, "Deploy #1: v1 to demo") == [
        f"`{V1}` Serve /health with the running version (Alice)",
        "First deploy of demo: 1 commit(s) in history",
    ]
    assert f"Ref: v3 · Commit: {V3} ·" in out
    # exactly the commits between what runs (v1) and v3, newest first
    assert changelog_of(out, "Deploy #2: v3 to demo") == [*BETWEEN_V1_AND_V3, "5 commit(s)"]
    store = SqliteStore(load_config(demo_config_path).bot.data_dir / "gonogo.db")
    try:
        assert [d.sha[:7] for d in store.deployments("demo") if d.sha] == [V3, V1]
    finally:
        store.close()


def test_the_demo_history_is_made_once_the_same_everywhere(tmp_path: Path) -> None:
    from demo.history import ensure_demo_repo, main

    repo = tmp_path / "var" / "demo-repo.git"
    assert ensure_demo_repo(repo) is True
    assert ensure_demo_repo(repo) is False  # idempotent: there already
    tags = subprocess.run(
        ["git", f"--git-dir={repo}", "rev-parse", "v1", "v2", "v3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    tags = [sha[:7] for sha in tags]
    assert tags == [V1, V2, V3]  # fixed authors and dates: the same shas as in README
    assert not [p for p in repo.parent.iterdir() if p.name != "demo-repo.git"]  # no leftovers
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my own files\n")
    with pytest.raises(RuntimeError, match="exists and is not the demo repository"):
        ensure_demo_repo(foreign)
    assert (foreign / "notes.txt").read_text() == "my own files\n"
    assert main([str(foreign)]) == 1 and main([]) == 2


def test_run_sh_makes_the_demo_history_where_the_config_says(tmp_path: Path) -> None:
    config = write_demo_config(tmp_path)
    repo = load_config(config).repo.url
    assert repo == str(tmp_path / "data" / "demo-repo.git")
    subprocess.run(["rm", "-rf", repo], check=True)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "history.py"), "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"Created the demo's git history (tags v1, v2, v3) at {repo}" in proc.stderr
    assert 'demo/history.py --config "$config"' in (ROOT / "scripts" / "run.sh").read_text()
