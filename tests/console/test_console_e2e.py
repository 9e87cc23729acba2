"""The walking skeleton, end to end: a script on stdin drives `gonogo console` in a subprocess.

Real subprocess, real SQLite file, real local backend deploying the bundled demo app, real HTTP
health checks. Asserts on what the bot printed and on what the store holds afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from bot.config import load_config
from bot.domain.deployment import State
from bot.store.sqlite import SqliteStore


def console(config: Path, script: str, *, timeout: float = 120, keep_running: bool = False) -> str:
    """What `gonogo console` printed for `script`; with `keep_running` the demo app stays up."""
    keep = ["--keep-running"] if keep_running else []
    proc = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "console", "--config", str(config), *keep],
        input=script,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.stdout


def health(config: Path) -> dict[str, str]:
    port = load_config(config).environments["demo"].vars["port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_deploy_approve_status_rollback_history(demo_config_path: Path) -> None:
    out = console(
        demo_config_path,
        """
/deploy demo v1 --reason first release
press go
/as bob
press go
tick all
press go
wait
/status
/deploy demo v2
/as carol
tick all
press go
wait
/rollback demo
/as alice
press go
wait
/deploy history demo
""",
        keep_running=True,
    )
    # the card: the commit and its changelog (the demo's git history), checklist, Go/No-go
    assert "Deploy #1: v1 to demo" in out
    assert "Commit: 9a647f9" in out and "First deploy of demo: 1 commit(s) in history" in out
    assert "[ ] 1. Changelog reviewed" in out
    assert "[1] Go  [2] No-go" in out
    # alice's own Go is refused with the reason; bob's Go before ticking is refused too
    assert "(to alice) Refused: you requested this deployment; someone else must approve it" in out
    assert "(to bob) Refused: tick every checklist item before Go (open: 1, 2)" in out
    # stages ran and showed progress
    assert "✓ pre_deploy › prepare release: localhost" in out
    assert "✓ verify › health: localhost" in out
    # status shows the new release
    assert "*demo*: v1 (9a647f9) since" in out
    # rollback and history
    assert "Rollback #3: v1 to demo" in out
    assert "✓ rollback › switch current back" in out
    history = out[out.index("History of demo") :]
    assert "#3 rollback v1 (9a647f9) succeeded · by carol · approved by alice" in history
    assert "#2 deploy v2 (d304d2c) rolled_back · by bob · approved by carol" in history
    assert "#1 deploy v1 (9a647f9) succeeded · by alice · approved by bob" in history
    # the app really runs the rolled-back-to release
    assert health(demo_config_path)["version"] == "v1"
    # and the store agrees
    config = load_config(demo_config_path)
    store = SqliteStore(config.bot.data_dir / "gonogo.db")
    assert [d.state for d in store.deployments("demo")] == [
        State.SUCCEEDED,
        State.ROLLED_BACK,
        State.SUCCEEDED,
    ]
    assert store.current_release("demo").id == 3
    actions = [e.action for e in store.events(deployment_id=1)]
    assert actions[0] == "request_deploy" and "refused_approve" in actions and "approve" in actions
    store.close()


def test_restart_keeps_the_pending_deployment(demo_config_path: Path) -> None:
    first = console(demo_config_path, "/deploy demo v3\n/as bob\ntick all\n")
    assert "Deploy #1: v3 to demo" in first
    second = console(demo_config_path, "/as bob\npress go\nwait\n/status demo\n", keep_running=True)
    # the pending card is shown again at start-up, and Go continues the deployment
    assert "Deploy #1: v3 to demo" in second.split("bob> press go")[0]
    assert "✓ verify › health" in second
    assert "*demo*: v3 (06283ec)" in second
    assert health(demo_config_path)["version"] == "v3"


def test_bad_lines_are_refused_and_the_script_goes_on(demo_config_path: Path) -> None:
    out = console(
        demo_config_path,
        "/deploy\n/deploy nosuchenv\n/frobnicate\npress go\ntick 3\n/as\n\x00\x01junk\n/status\n",
    )
    assert "unknown environment 'nosuchenv'" in out
    assert "unknown command '/frobnicate'" in out
    assert "there is no button to press" in out
    assert "*demo*: nothing deployed yet" in out
