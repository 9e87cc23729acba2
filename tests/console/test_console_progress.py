"""Live progress of a rollout over many hosts: in place on a terminal, plain lines on a pipe.

A real `gonogo console` process deploys to six hosts (the local backend, canary 1 then batches
of 2), its stdout a pipe in one test and a pseudo-terminal in the other; the store's record of
the run keeps the per-stage counts.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from bot.config import load_config
from bot.store.sqlite import SqliteStore

FLEET = """
[bot]
data_dir = "{data}"
[environments.fleet]
backend = "local"
hosts = ["h1", "h2", "h3", "h4", "h5", "h6"]
[environments.fleet.strategy]
kind = "canary"
canary = 1
batch_size = 2
max_parallel = 2
[environments.fleet.approvals]
required = 1
[[environments.fleet.steps.deploy]]
name = "install"
run = "sleep 0.3 && test {{host}} != {bad}"
[[environments.fleet.steps.deploy]]
name = "restart"
run = "sleep 0.2"
"""
SCRIPT = "/deploy fleet main\n/as bob\npress go\nwait\n"
ESCAPE = re.compile(r"\x1b\[")


def fleet_config(tmp_path: Path, bad: str = "none") -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET.format(data=tmp_path / "data", bad=bad))
    return path


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "bot.app.cli", "console", "--config", str(config)]


def progress_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("  Deploy #1 · ") and " deploy: " in line]


def test_on_a_pipe_each_stage_gets_plain_lines(tmp_path: Path) -> None:
    config = fleet_config(tmp_path)
    proc = subprocess.run(command(config), input=SCRIPT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not ESCAPE.search(proc.stdout), repr(proc.stdout)  # no escape codes in a log
    lines = progress_lines(proc.stdout)
    shown = [re.sub(r" · \d+:\d\d$", "", line.removeprefix("  Deploy #1 · ")) for line in lines]
    # one line when the stage starts and one per batch, not one per host; then the outcome
    assert shown == [
        "🚀 deploy: 0/6 hosts done · 0 failed",
        "🚀 deploy: 1/6 hosts done · 0 failed",
        "🚀 deploy: 3/6 hosts done · 0 failed",
        "🚀 deploy: 5/6 hosts done · 0 failed",
        "✓ deploy: 6/6 hosts done",
    ], proc.stdout
    assert re.search(r"✓ deploy: 6/6 hosts done · 0:0[1-9]$", lines[-1])  # four batches take a while


def test_a_failing_host_stops_the_stage_and_the_record_keeps_the_counts(tmp_path: Path) -> None:
    config = fleet_config(tmp_path, bad="h4")
    proc = subprocess.run(command(config), input=SCRIPT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = progress_lines(proc.stdout)
    # h4 failed, h5 (its batch) stopped after the failing step, h6 never started
    assert "✗ deploy: 3/6 hosts done · 1 failed · 1 stopped · 1 not started" in lines[-1], proc.stdout
    store = SqliteStore(load_config(config).bot.data_dir / "gonogo.db")
    try:
        (tally,) = store.get(1).details.stages  # type: ignore[union-attr]
    finally:
        store.close()
    assert (tally.stage, tally.hosts, tally.done, tally.failed, tally.stopped, tally.not_started) == (
        "deploy", 6, 3, 1, 1, 1,
    )  # fmt: skip
    assert tally.finished and tally.batches == 4 and tally.elapsed > 0.5


def run_on_a_pty(config: Path, script: str) -> str:
    """Run the console with stdout and stderr on a pseudo-terminal (stdin: the script, piped)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(command(config), stdin=subprocess.PIPE, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    assert proc.stdin is not None
    proc.stdin.write(script.encode())
    proc.stdin.close()
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other side closed: the process ended
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    assert proc.returncode == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_the_stage_line_updates_in_place(tmp_path: Path) -> None:
    out = run_on_a_pty(fleet_config(tmp_path), SCRIPT)
    assert "Traceback" not in out, out
    # rich redraws the live line: cursor movements and line erasing, not one line per update
    assert "\x1b[2K" in out and ("\x1b[1A" in out or "\r" in out), repr(out[-2000:])
    live = re.findall(r"Deploy #1 · 🚀 deploy: (\d)/6 hosts done · (\d) failed · (\d) running", out)
    assert {done for done, _, _ in live} >= {"0", "1", "3", "5"}, repr(out[-3000:])
    assert any(running != "0" for _, _, running in live)  # hosts caught running
    # the elapsed time counts on between events (refreshed 4 times a second)
    clocks = set(re.findall(r"Deploy #1 · 🚀 deploy: [^\r\n\x1b]* running · (0:0\d)", out))
    assert len(clocks) >= 2, clocks
    assert "Deploy #1 · ✓ deploy: 6/6 hosts done" in out
    # the rest of the chat prints as usual, above the live line
    assert "✓ deploy › restart: h1: ok in" in out
    assert "✅ deployed" in out
