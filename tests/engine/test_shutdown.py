"""SIGTERM during a running step: the process exits 0 and leaves a resumable record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.config import load_config
from bot.domain.deployment import State
from bot.store.sqlite import SqliteStore
from tests.conftest import stop_demo_app, write_demo_config


def test_sigterm_mid_step_exits_cleanly_and_the_deploy_is_resumable(tmp_path: Path) -> None:
    slow = tmp_path / "slow"
    slow.touch()
    path = write_demo_config(tmp_path)
    text = path.read_text().replace(
        'run = "ln -sfn {release_dir} {deploy_to}/current.tmp && mv -T {deploy_to}/current.tmp {current_dir}"\n',
        f'run = "while [ -e {slow} ]; do sleep 0.1; done; ln -sfn {{release_dir}} {{deploy_to}}/current.tmp && mv -T {{deploy_to}}/current.tmp {{current_dir}}"\n',
        1,
    )
    path.write_text(text)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.app.cli", "console", "--config", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "GONOGO_SHUTDOWN_GRACE": "20"},
    )
    assert proc.stdin is not None
    proc.stdin.write("/deploy demo v1\n/as bob\ntick all\npress go\n")
    proc.stdin.flush()  # stdin stays open: the bot is still "running" when the signal comes
    config = load_config(path, environ={})
    deadline = time.monotonic() + 60
    store = SqliteStore(config.bot.data_dir / "gonogo.db")
    while True:
        d = store.deployments("demo")
        if d and d[0].progress and "switch current" in d[0].progress:
            break
        assert time.monotonic() < deadline, "the deploy never reached the slow step"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    slow.unlink()  # the running step finishes within the grace period
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err
    d = store.get(1)
    assert d is not None and d.state == State.INTERRUPTED, (d, out)
    # the running step (switch current, step 0) finished: a resume starts at the next one
    assert d.details["done_stages"] == ["pre_deploy"] and d.details["cursor"] == {
        "stage": "deploy",
        "batch": 0,
        "step": 1,
    }
    assert "stopping" in out
    store.close()
    stop_demo_app(config.bot.data_dir)
