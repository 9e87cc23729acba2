"""The CLI fails with one clear line, never a traceback: bad options, bad environment
variables, and a reader that closes the pipe early (`gonogo audit export | head`)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import load_config
from bot.domain.deployment import EventRecord
from bot.store.sqlite import SqliteStore


def gonogo(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot.cli ARGS` with extra environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "bot.app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def no_traceback(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert nothing in the output is a traceback; return stderr."""
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.stderr


def test_an_unknown_log_level_is_a_usage_error(demo_config_path: Path) -> None:
    proc = gonogo("--log-level", "foo", "config", "check", str(demo_config_path))
    assert proc.returncode == 2
    assert "invalid choice" in no_traceback(proc)
    ok = gonogo("config", "check", "--log-level", "debug", str(demo_config_path))
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(("name", "value"), [("GONOGO_LOG_LEVEL", "foo"), ("GONOGO_LOG_FORMAT", "yaml")])
def test_bad_log_settings_in_the_environment_are_one_clear_line(
    demo_config_path: Path, name: str, value: str
) -> None:
    proc = gonogo("config", "check", str(demo_config_path), env={name: value})
    assert proc.returncode == 2
    assert no_traceback(proc).strip() == no_traceback(proc).strip().splitlines()[0]
    assert f"gonogo: {name}='{value}' is not one of" in proc.stderr


def test_a_bad_shutdown_grace_only_stops_what_needs_it(demo_config_path: Path) -> None:
    # every subcommand used to crash at import; now only the console, which needs it, refuses
    check = gonogo("config", "check", str(demo_config_path), env={"GONOGO_SHUTDOWN_GRACE": "abc"})
    assert check.returncode == 0, check.stderr
    no_traceback(check)
    for bad in ("abc", "-5", "nan", "inf"):
        proc = gonogo("console", "--config", str(demo_config_path), env={"GONOGO_SHUTDOWN_GRACE": bad})
        assert proc.returncode == 2, (bad, proc.stdout, proc.stderr)
        assert f"gonogo: GONOGO_SHUTDOWN_GRACE='{bad}' is not a number of seconds" in no_traceback(proc)
    ok = gonogo(
        "console", "--config", str(demo_config_path), env={"GONOGO_SHUTDOWN_GRACE": "2.5"}, stdin="/status\n"
    )
    assert ok.returncode == 0 and "nothing deployed yet" in ok.stdout, ok.stderr


def closed_pipe_run(*args: str) -> tuple[int, str]:
    """Run the CLI with stdout a pipe whose reader is already gone; (status, stderr)."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bot.app.cli", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    return proc.returncode, proc.stderr


def test_config_check_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[environments.prod.approvals]\nrequired = 0\n")
    status, err = closed_pipe_run("config", "check", str(bad))
    assert err == "" and status == 141, err


def test_audit_export_into_a_closed_pipe_is_quiet(demo_config_path: Path) -> None:
    config = load_config(demo_config_path)
    store = SqliteStore(config.bot.data_dir / "gonogo.db")
    start = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    for i in range(3000):  # more than a pipe buffer holds
        store.append_event(
            EventRecord(at=start + timedelta(seconds=i), actor="alice", action="note", env="demo")
        )
    store.close()
    for fmt in ("jsonl", "csv"):
        status, err = closed_pipe_run("audit", "export", "--config", str(demo_config_path), "--format", fmt)
        assert err == "" and status == 141, err
