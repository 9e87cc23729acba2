"""Ops endpoints, metrics and structured logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.engine.engine import Engine
from bot.ops.http import OpsServer, ops_response
from bot.ops.logs import JsonFormatter, RedactingFilter
from bot.store.sqlite import SqliteStore
from tests.support.recording import RecordingChat

CONFIG = """
[bot]
data_dir = "{data}"
[environments.staging]
backend = "local"
hosts = ["h1"]
secrets = ["GONOGO_TEST_SECRET"]
[[environments.staging.steps.deploy]]
name = "echo"
run = "echo token=$GONOGO_TEST_SECRET"
"""


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    config = parse_config(tomllib.loads(CONFIG.format(data=tmp_path)), source=tmp_path / "c.toml", environ={})
    e = Engine(config, SqliteStore(tmp_path / "db"), RecordingChat())
    yield e
    e.shutdown()


def test_endpoints_answer_and_readyz_turns_503_when_the_store_is_gone(engine: Engine) -> None:
    d = engine.request_deploy("alice", "#d", "staging", "v1")
    engine.approve("bob", d.id)  # type: ignore[arg-type]
    engine.wait_idle(30)
    server = OpsServer(engine, port=0, host="127.0.0.1").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert urllib.request.urlopen(f"{base}/livez").read() == b"ok\n"
        ready = json.loads(urllib.request.urlopen(f"{base}/readyz").read())
        assert ready["ready"] and ready["store"] == "ok"
        metrics = urllib.request.urlopen(f"{base}/metrics").read().decode()
        assert 'gonogo_deployments_total{env="staging",kind="deploy",outcome="succeeded"}' in metrics
        assert "gonogo_step_duration_seconds_bucket" in metrics
        status = json.loads(urllib.request.urlopen(f"{base}/status.json").read())
        current = status["environments"][0]["current"]
        assert current["ref"] == "v1" and current["approvers"] == ["bob"]
        engine.store.close()
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{base}/readyz")
        assert info.value.code == 503
        assert json.loads(info.value.read())["store"].startswith("unreachable")
        assert urllib.request.urlopen(f"{base}/livez").status == 200
    finally:
        server.close()
    assert ops_response(engine, "/nope")[0] == 404


def test_secrets_are_redacted_from_step_output_and_logs(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GONOGO_TEST_SECRET", "hunter2-very-secret")
    d = engine.request_deploy("alice", "#d", "staging", "v1")
    engine.approve("bob", d.id)  # type: ignore[arg-type]
    engine.wait_idle(30)
    outputs = [r["output"] for r in engine.store.host_results(d.id)]  # type: ignore[arg-type]
    assert outputs and "token=[redacted]" in outputs[0] and "hunter2" not in outputs[0]

    record = logging.LogRecord(
        "gonogo.engine", logging.ERROR, __file__, 1, "#%s failed: %s", (12, "pw hunter2-very-secret"), None
    )
    assert RedactingFilter(["hunter2-very-secret"]).filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line == {**line, "level": "error", "deployment_id": 12, "message": "#12 failed: pw [redacted]"}


def test_json_logs_from_the_cli_parse_and_carry_no_secret(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": "xoxb-not-a-real-token-1234",
        "GONOGO_DATA_DIR": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "console", "--log-format", "json", "--log-level", "debug",
         "--config", str(root / "config.example.toml")],
        input="/status\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    assert "xoxb-not-a-real-token-1234" not in proc.stderr
