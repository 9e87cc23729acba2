"""Running checks: the clock of one run, and concurrent rounds of mixed kinds."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from runners.checks import Check, CommandCheck, HttpCheck, SqlCheck, run_check, run_checks
from tests.runners.checks.helpers import ENV, closed_port, local_runner
from tests.support.healthapp import HealthApp


def test_clock_is_used_and_made_aware() -> None:
    fixed = datetime(2024, 5, 1, 12, 0)
    res = run_check(CommandCheck("c", "true"), env={}, command_runner=local_runner, clock=lambda: fixed)
    assert res.at == fixed.replace(tzinfo=UTC)


def test_run_checks_keeps_order_and_runs_concurrently(app: HealthApp) -> None:
    app.set_delay(0.3)
    checks = [HttpCheck(f"c{i}", f"{app.health_url}?i={i}", timeout=5) for i in range(20)]
    started = time.perf_counter()
    results = run_checks(checks, env={})
    elapsed = time.perf_counter() - started
    assert [r.name for r in results] == [c.name for c in checks]
    assert all(r.ok for r in results)
    assert elapsed < 3.0, elapsed  # serially this would be >= 6 s


@pytest.mark.postgres
def test_run_checks_mixed_kinds(app: HealthApp) -> None:
    port = closed_port()
    checks: list[Check] = [
        HttpCheck("web", app.health_url),
        SqlCheck("db", "TEST_DB_DSN", "SELECT 1", expect=1),
        CommandCheck("cmd", "true"),
        HttpCheck("down", f"http://127.0.0.1:{port}/"),
        HttpCheck("insecure", app.health_url, verify_tls=False),
    ]
    results = run_checks(checks, env=ENV, command_runner=local_runner)
    assert [(r.name, r.ok) for r in results] == [
        ("web", True),
        ("db", True),
        ("cmd", True),
        ("down", False),
        ("insecure", True),
    ]
    assert run_checks([], env={}) == []


def test_run_checks_rejects_non_checks() -> None:
    with pytest.raises(TypeError):
        run_checks(cast(Any, ["nope"]), env={})
