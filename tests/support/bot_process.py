"""A bot in a process of its own, for tests that kill it (SIGKILL) or stop it (SIGTERM) mid-run
(over each store: the `store_url` fixture of tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# argv: the data dir, the config's text, the store URL. It deploys v1 to prod, approved, and on
# SIGTERM shuts down as `gonogo console` does (within GONOGO_SHUTDOWN_GRACE).
BOT = """
import sys, time, tomllib
from pathlib import Path
from bot.app.cli import shutdown_grace, stop_on_signals
from bot.config import parse_config
from bot.store import open_store
from tests.support.engines import make_engine
from tests.support.recording import RecordingChat

data = Path(sys.argv[1])
config = parse_config(tomllib.loads(sys.argv[2]), source=data / "c.toml", environ={})
engine = make_engine(config, open_store(sys.argv[3]), RecordingChat())
engine.start()
stop_on_signals()
try:
    d = engine.request_deploy("alice", "#d", "prod", "v1")
    engine.approve("bob", d.id)
    print("approved", flush=True)
    time.sleep(300)
except KeyboardInterrupt:
    pass
finally:
    engine.shutdown(wait=True, grace=shutdown_grace())
    engine.store.close()
print("exited", flush=True)
"""


def start_bot(tmp_path: Path, text: str, store_url: str, **env: str) -> subprocess.Popen[str]:
    """Start the bot process (its own session: `os.killpg` kills it and what it started in its
    session) with the config `text` on `store_url`; `env` is added to its environment."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(BOT), str(tmp_path), text, store_url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_bot(child: subprocess.Popen[str]) -> None:
    """SIGKILL the bot process and what runs in its session (not the steps: they have their own)."""
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def shut_down_bot(child: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """SIGTERM the bot, as an operator's stop does, and assert it shut down cleanly (exit 0, no
    traceback) within `timeout` seconds; killed otherwise."""
    try:
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=timeout)
    finally:
        kill_bot(child)
    assert child.returncode == 0 and "exited" in out, err
    assert "Traceback" not in err, err
