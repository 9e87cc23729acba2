"""Tests for runners.checks against a real local HTTP app and the real PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest

from bot.config.checks import parse_check
from runners.checks.core import (
    Check,
    CheckResult,
    CommandCheck,
    FailureTracker,
    HttpCheck,
    SqlCheck,
    compare,
    run_check,
    run_checks,
)
from tests.support.healthapp import HealthApp

DSN = "postgresql://postgres@127.0.0.1:5432/test"
ENV = {"TEST_DB_DSN": DSN}


@pytest.fixture
def app() -> Iterator[HealthApp]:
    with HealthApp() as served:
        yield served


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def local_runner(command: str, on: str, timeout: float) -> Sequence[tuple[str, int | None, str]]:
    """Runs the command locally; "all" pretends there are two hosts."""
    hosts = ["web-1", "web-2"] if on == "all" else ["web-1"]
    out: list[tuple[str, int | None, str]] = []
    for host in hosts:
        try:
            proc = subprocess.run(
                command, shell=True, capture_output=True, text=True, timeout=timeout, env={"HOST": host}
            )
        except subprocess.TimeoutExpired:
            out.append((host, None, f"timed out after {timeout}s"))
            continue
        out.append((host, proc.returncode, proc.stdout + proc.stderr))
    return out


def result(name: str, ok: bool) -> CheckResult:
    return CheckResult(
        name, "http", ok, "200" if ok else "503", 0.01, None if ok else "boom", datetime.now(UTC)
    )


# --------------------------------------------------------------------------- HTTP


def test_healthy_http_check(app: HealthApp) -> None:
    res = run_check(HttpCheck("health", app.health_url), env={})
    assert res.ok and res.observed == "200" and res.error is None
    assert res.kind == "http" and res.name == "health"
    assert res.at.tzinfo is not None and res.at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert res.summary().startswith("health ✓ 200 (") and res.summary().endswith(" ms)")
    assert app.hits == 1


def test_503_fails_with_observed_status(app: HealthApp) -> None:
    app.set_status(503)
    res = run_check(HttpCheck("health", app.health_url), env={})
    assert not res.ok
    assert res.observed == "503"
    assert res.error == "expected status 200, got 503"
    assert "✗" in res.summary() and "503" in res.summary()
    assert run_check(HttpCheck("maint", app.health_url, expect_status=503), env={}).ok


def test_body_contains_and_json_field(app: HealthApp) -> None:
    app.set_body({"status": "ok", "db": {"ok": False, "lag": 3}, "items": [{"up": True}]})
    assert run_check(HttpCheck("b", app.health_url, body_contains='"status": "ok"'), env={}).ok
    res = run_check(HttpCheck("b", app.health_url, body_contains="healthy"), env={})
    assert not res.ok and res.error == "body does not contain 'healthy'"

    assert run_check(HttpCheck("j", app.health_url, json_field="status", json_equals="ok"), env={}).ok
    assert run_check(HttpCheck("j", app.health_url, json_field="db.lag", json_equals=3.0), env={}).ok
    assert run_check(HttpCheck("j", app.health_url, json_field="items.0.up"), env={}).ok
    res = run_check(HttpCheck("j", app.health_url, json_field="db.ok"), env={})
    assert not res.ok and res.observed == "db.ok=false" and "expected a true value" in (res.error or "")
    res = run_check(HttpCheck("j", app.health_url, json_field="db.ok", json_equals=True), env={})
    assert not res.ok and res.error == "JSON db.ok=false, expected true"
    assert res.summary().startswith("j ✗ JSON db.ok=false, expected true (")
    res = run_check(HttpCheck("j", app.health_url, json_field="db.missing"), env={})
    assert not res.ok and res.error == "JSON field db.missing is missing"
    assert not run_check(HttpCheck("j", app.health_url, json_field="db.lag", json_equals="3"), env={}).ok

    app.set_body("not json at all")
    res = run_check(HttpCheck("j", app.health_url, json_field="status"), env={})
    assert not res.ok and res.error == "response body is not valid JSON"


def test_slow_response_fails_max_latency(app: HealthApp) -> None:
    app.set_delay(0.3)
    res = run_check(HttpCheck("slow", app.health_url, max_latency=0.1), env={})
    assert not res.ok
    assert res.observed is not None and res.observed.startswith("latency 0.")
    assert res.error is not None and "over limit 0.10s" in res.error
    assert res.latency >= 0.3
    assert run_check(HttpCheck("slow", app.health_url, max_latency=5), env={}).ok


def test_unreachable_target_is_a_failure_not_a_crash() -> None:
    port = closed_port()
    res = run_check(HttpCheck("down", f"http://127.0.0.1:{port}/health", timeout=2), env={})
    assert not res.ok and res.observed is None
    assert res.error == f"connection refused to 127.0.0.1:{port}"
    assert "connection refused" in res.summary()


def test_timeout(app: HealthApp) -> None:
    app.set_delay(2)
    started = time.perf_counter()
    res = run_check(HttpCheck("hang", app.health_url, timeout=0.3), env={})
    assert time.perf_counter() - started < 1.5
    assert not res.ok and res.error == f"timeout after 0.3s waiting for 127.0.0.1:{app.port}"


def test_tls_error_and_bad_urls(app: HealthApp) -> None:
    res = run_check(HttpCheck("tls", f"https://127.0.0.1:{app.port}/health", timeout=2), env={})
    assert not res.ok and (res.error or "").startswith(f"TLS error with 127.0.0.1:{app.port}")
    res = run_check(HttpCheck("bad", "ftp://example.com/x"), env={})
    assert not res.ok and (res.error or "").startswith("invalid URL")
    res = run_check(HttpCheck("dns", "http://no-such-host.invalid/health", timeout=3), env={})
    assert not res.ok and res.error  # "DNS lookup failed for no-such-host.invalid" where DNS answers


def test_header_values_and_url_password_are_redacted(app: HealthApp) -> None:
    token = "s3cr3t-token-value"
    check = HttpCheck("h", app.health_url, headers={"Authorization": f"Bearer {token}"})
    assert token not in repr(check)
    assert run_check(check, env={}).ok
    bad = HttpCheck("h", app.health_url, headers={"X-Token": "bad\nvalue-secret"})
    res = run_check(bad, env={})
    assert not res.ok and "value-secret" not in str(res)
    port = closed_port()
    res = run_check(HttpCheck("p", f"http://user:hunter2pw@127.0.0.1:{port}/"), env={})
    assert not res.ok and "hunter2pw" not in str(res)


def test_given_client_is_used(app: HealthApp) -> None:
    with httpx.Client() as client:
        assert run_check(HttpCheck("c", app.health_url), env={}, http_client=client).ok


def test_clock_is_used_and_made_aware() -> None:
    fixed = datetime(2024, 5, 1, 12, 0)
    res = run_check(CommandCheck("c", "true"), env={}, command_runner=local_runner, clock=lambda: fixed)
    assert res.at == fixed.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- SQL


@pytest.fixture
def table() -> Iterator[str]:
    import psycopg

    name = f"checks_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int, state text)")
        conn.execute(f"INSERT INTO {name} VALUES (1, 'ok'), (2, 'ok'), (3, 'bad')")
    yield name
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def sql(query: str, op: str = "==", expect: object = 2, **kw: object) -> CheckResult:
    return run_check(SqlCheck("db", "TEST_DB_DSN", query, op, expect=expect, **kw), env=ENV)  # type: ignore[arg-type]


@pytest.mark.postgres
def test_sql_comparisons(table: str) -> None:
    count2 = "SELECT count(*) FROM (VALUES (1),(2)) t"
    res = sql(count2, "==", 2)
    assert res.ok and res.observed == "value 2" and res.kind == "sql"
    assert sql(count2, ">=", 2).ok
    assert sql(count2, "<", 2.5).ok
    assert sql(count2, "==", "2").ok  # numeric string compares numerically
    res = sql(count2, ">=", 4)
    assert not res.ok and res.error == "value 2 is not >= 4"
    assert sql(f"SELECT count(*) FROM {table} WHERE state = 'ok'", "==", 2).ok
    assert sql(f"SELECT state FROM {table} WHERE id = 3", "==", "bad").ok
    assert sql(f"SELECT state FROM {table} WHERE id = 3", "!=", "ok").ok
    assert sql("SELECT 0.1 + 0.2", "==", 0.3).ok  # numeric, not float
    assert sql("SELECT true", "==", "true").ok
    res = sql("SELECT NULL::int", "==", 1)
    assert not res.ok and res.error == "query returned NULL"


@pytest.mark.postgres
def test_sql_shape_errors(table: str) -> None:
    res = sql(f"SELECT id FROM {table} WHERE id > 100")
    assert not res.ok and res.error == "query returned no row"
    res = sql("SELECT 1, 2")
    assert not res.ok and res.error == "query returned 2 columns, expected exactly one"
    res = sql(f"SELECT id FROM {table}")
    assert not res.ok and res.error == "query returned more than one row"
    res = sql("SELEC 1")
    assert not res.ok and (res.error or "").startswith("SQL error: syntax error")


@pytest.mark.postgres
def test_sql_is_read_only(table: str) -> None:
    res = sql(f"INSERT INTO {table} VALUES (9, 'x') RETURNING id", "==", 9)
    assert not res.ok and (res.error or "").startswith("refused, checks are read-only")
    assert "INSERT" in (res.error or "")
    # No escaping the read-only transaction with a second statement.
    res = sql(f"COMMIT; SET default_transaction_read_only = off; DELETE FROM {table}")
    assert not res.ok and "SQL error" in (res.error or "")
    assert sql(f"SELECT count(*) FROM {table}", "==", 3).ok


@pytest.mark.postgres
def test_sql_timeout_and_connection_problems() -> None:
    res = sql("SELECT pg_sleep(2)", timeout=0.3)
    assert not res.ok and res.error == "query timed out after 0.3s"
    res = run_check(SqlCheck("db", "PROD_DB_DSN", "SELECT 1", expect=1), env={})
    assert not res.ok and res.error == "DSN env var PROD_DB_DSN is not set"
    port = closed_port()
    secret_dsn = f"postgresql://postgres:topsecretpw@127.0.0.1:{port}/test"
    res = run_check(SqlCheck("db", "X_DSN", "SELECT 1", expect=1), env={"X_DSN": secret_dsn})
    assert not res.ok and res.error == f"connection refused to 127.0.0.1:{port}"
    assert "topsecretpw" not in str(res)
    res = run_check(
        SqlCheck("db", "X_DSN", "SELECT 1", expect=1), env={"X_DSN": "host=db.invalid password=pw9999"}
    )
    assert not res.ok and res.error == "DNS lookup failed for db.invalid" and "pw9999" not in str(res)
    res = run_check(SqlCheck("db", "X_DSN", "SELECT 1", expect=1), env={"X_DSN": "not a dsn topsecretpw"})
    assert not res.ok and "topsecretpw" not in str(res)
    res = run_check(
        SqlCheck("db", "X_DSN", "SELECT 1", expect=1),
        env={"X_DSN": "postgresql://nosuchuser:topsecretpw@127.0.0.1:5432/no_such_db"},
    )
    assert not res.ok and res.error and "topsecretpw" not in str(res)


def test_compare() -> None:
    assert compare(3, ">=", 2) and compare("10", ">", 9) and compare("10", ">", "9")  # numeric strings
    assert compare("abc", "<", "abd") and not compare("b", "<", "a")  # text
    assert compare(True, "==", "true")
    assert compare(float("nan"), "==", 1) is False
    assert compare("abc", "~", "abc") is None


# --------------------------------------------------------------------------- commands


def test_command_checks() -> None:
    res = run_check(CommandCheck("ok", "echo ready"), env={}, command_runner=local_runner)
    assert res.ok and res.observed == "exit 0" and res.kind == "command"
    res = run_check(
        CommandCheck("ok", "echo ready", output_contains="ready"), env={}, command_runner=local_runner
    )
    assert res.ok
    res = run_check(
        CommandCheck("c", "echo nope", output_contains="ready"), env={}, command_runner=local_runner
    )
    assert not res.ok and res.error == "web-1: output does not contain 'ready'"
    res = run_check(CommandCheck("c", "exit 3"), env={}, command_runner=local_runner)
    assert not res.ok and res.error == "web-1: exit 3, expected 0" and res.observed == "exit 3"
    assert run_check(CommandCheck("c", "exit 3", expect_exit=3), env={}, command_runner=local_runner).ok
    res = run_check(CommandCheck("c", 'test "$HOST" = web-1', on="all"), env={}, command_runner=local_runner)
    assert not res.ok and res.observed == "1/2 hosts ok" and res.error == "web-2: exit 1, expected 0"
    res = run_check(CommandCheck("c", "exit 1", on="all"), env={}, command_runner=local_runner)
    assert res.error == "web-1: exit 1, expected 0 (and 1 more)"
    res = run_check(CommandCheck("c", "sleep 5", timeout=0.2), env={}, command_runner=local_runner)
    assert not res.ok and (res.error or "").startswith("web-1: could not run (timed out")


def test_command_runner_problems() -> None:
    res = run_check(CommandCheck("c", "true"), env={})
    assert not res.ok and res.error == "no command runner configured"

    def broken(command: str, on: str, timeout: float) -> Sequence[tuple[str, int | None, str]]:
        raise OSError("ssh: connect to host web-1 port 22: Connection refused")

    res = run_check(CommandCheck("c", "true"), env={}, command_runner=broken)
    assert (
        not res.ok
        and res.error == "command runner failed: ssh: connect to host web-1 port 22: Connection refused"
    )
    res = run_check(CommandCheck("c", "true"), env={}, command_runner=lambda c, o, t: [])
    assert not res.ok and res.error == "command ran on no host"


# --------------------------------------------------------------------------- rounds


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


# --------------------------------------------------------------------------- tracker


def test_failure_tracker_consecutive_and_transitions() -> None:
    tracker = FailureTracker(failure_limit=3)
    v = tracker.record([result("a", True), result("b", True)])
    assert not v.failed and v.transitions == ()  # first success is not news

    v = tracker.record([result("a", False), result("b", True)])
    assert [(t.name, t.failing) for t in v.transitions] == [("a", True)]
    assert v.newly_failing[0].result.error == "boom" and not v.failed

    v = tracker.record([result("a", False), result("b", True)])
    assert v.transitions == () and not v.failed and v.consecutive["a"] == 2

    v = tracker.record([result("a", False)])  # b absent: keeps its count
    assert v.failed and v.failed_checks == ("a",) and v.newly_failed_checks == ("a",)

    v = tracker.record([result("a", False)])
    assert v.failed and v.newly_failed_checks == () and v.consecutive["a"] == 4

    v = tracker.record([result("a", True)])
    assert not v.failed and [(t.name, t.failing, t.consecutive_failures) for t in v.recovered] == [
        ("a", False, 4)
    ]

    # A success in between resets the streak.
    tracker.record([result("a", False)])
    tracker.record([result("a", True)])
    v = tracker.record([result("a", False)])
    assert v.consecutive["a"] == 1 and not v.failed

    # Duplicate names in one round are one observation, failing if any failed.
    v = tracker.record([result("a", True), result("a", False)])
    assert v.consecutive["a"] == 2


def test_failure_tracker_limit_one_and_serialisation() -> None:
    tracker = FailureTracker(failure_limit=1)
    v = tracker.record([result("x", False)])
    assert v.failed and v.newly_failed_checks == ("x",)
    state = tracker.to_dict()
    again = FailureTracker.from_dict(state)
    assert again == tracker and again.to_dict() == state
    assert again.record([result("x", True)]).recovered[0].name == "x"
    tracker.reset()
    assert tracker.consecutive == {}
    with pytest.raises(ValueError):
        FailureTracker(failure_limit=0)
    for bad in ({"failure_limit": "3"}, {"failure_limit": 3, "consecutive": {"a": -1}}, {"version": 9}):
        with pytest.raises(ValueError):
            FailureTracker.from_dict(bad)


# --------------------------------------------------------------------------- parsing


P = "environments.prod.checks[0]"


def test_parse_http_check() -> None:
    check, problems = parse_check(
        {
            "name": "health",
            "type": "http",
            "url": "https://app.example.com/health",
            "method": "head",
            "json_field": "db.ok",
            "json_equals": True,
            "max_latency": 2,
            "headers": {"Authorization": "Bearer x"},
        },
        P,
    )
    assert problems == []
    assert isinstance(check, HttpCheck)
    assert (
        check.method == "HEAD" and check.max_latency == 2.0 and check.headers["Authorization"] == "Bearer x"
    )
    assert asdict(check)["kind"] == "http"


def test_parse_errors_have_key_paths() -> None:
    check, problems = parse_check({"type": "http", "timeout": -1, "verify_tls": "no", "colour": "red"}, P)
    assert check is None
    assert f"{P}.name: required" in problems
    assert f"{P}.url: required" in problems
    assert f"{P}.timeout: must be a positive number of seconds" in problems
    assert f"{P}.verify_tls: must be true or false" in problems
    assert f"{P}.colour: unknown key for a http check" in problems

    _, problems = parse_check({"name": "x"}, P)
    assert problems == [f"{P}.type: required (one of: http, sql, command)"]
    _, problems = parse_check({"name": "x", "type": "ping"}, P)
    assert problems == [f"{P}.type: must be one of: http, sql, command"]
    _, problems = parse_check({"name": "x", "type": "http", "url": "ftp://h/", "expect_status": True}, P)
    assert f"{P}.url: must start with http:// or https://" in problems
    assert f"{P}.expect_status: must be an integer" in problems
    _, problems = parse_check({"name": "x", "type": "http", "url": "http://h/", "query": "SELECT 1"}, P)
    assert problems == [f"{P}.query: unknown key for a http check (only for sql checks)"]
    _, problems = parse_check({"name": "x", "type": "http", "url": "http://h/", "json_equals": 1}, P)
    assert problems == [f"{P}.json_equals: requires json_field"]
    _, problems = parse_check({"name": "x", "type": "http", "url": "http://h/", "headers": {"A": 1}}, P)
    assert problems == [f"{P}.headers.A: must be a string"]
    assert parse_check(["not", "a", "table"], P) == (None, [f"{P}: must be a table"])  # type: ignore[arg-type]


def test_parse_sql_check() -> None:
    base = {"name": "db", "type": "sql", "dsn_env": "PROD_DB_DSN", "query": "SELECT 1"}
    check, problems = parse_check({**base, "expect": ">= 4"}, P)
    assert problems == [] and isinstance(check, SqlCheck)
    assert (check.op, check.expect, check.timeout) == (">=", 4, 10.0)
    check, _ = parse_check({**base, "op": "<", "expect": 2.5, "timeout": 3}, P)
    assert isinstance(check, SqlCheck) and (check.op, check.expect, check.timeout) == ("<", 2.5, 3.0)
    check, _ = parse_check({**base, "expect": "= ok"}, P)
    assert isinstance(check, SqlCheck) and (check.op, check.expect) == ("==", "ok")
    check, _ = parse_check({**base, "expect": "ready"}, P)
    assert isinstance(check, SqlCheck) and (check.op, check.expect) == ("==", "ready")

    _, problems = parse_check({**base, "op": ">=", "expect": ">= 4"}, P)
    assert problems == [f"{P}.expect: gives an operator and op is also set; use one"]
    _, problems = parse_check({**base, "op": "=~", "expect": 1}, P)
    assert problems == [f"{P}.op: must be one of: ==, !=, >=, <=, >, <"]
    _, problems = parse_check({**base}, P)
    assert problems and problems[0].startswith(f"{P}.expect: required")
    _, problems = parse_check({**base, "expect": ">="}, P)
    assert problems == [f"{P}.expect: has operator '>=' but no value"]
    secret = "postgresql://app:pw123456@db/prod"
    _, problems = parse_check({**base, "dsn_env": secret, "expect": 1}, P)
    assert problems == [
        f"{P}.dsn_env: must be the NAME of an environment variable holding the DSN, not the DSN itself"
    ]
    assert not any("pw123456" in p for p in problems)
    _, problems = parse_check({"name": "db", "type": "sql", "expect": 1}, P)
    assert f"{P}.query: required" in problems and any(
        p.startswith(f"{P}.dsn_env: required") for p in problems
    )


def test_parse_command_check() -> None:
    check, problems = parse_check(
        {"name": "svc", "type": "command", "command": "systemctl is-active app", "on": "all"}, P
    )
    assert problems == [] and isinstance(check, CommandCheck) and check.on == "all" and check.timeout == 30.0
    _, problems = parse_check({"name": "svc", "type": "command", "on": "some", "expect_exit": 300}, P)
    assert problems == [
        f"{P}.command: required",
        f"{P}.on: must be one of: one, all",
        f"{P}.expect_exit: must be between 0 and 255",
    ]


def test_healthapp_version_and_404(app: HealthApp) -> None:
    app.set_version("v9")
    assert httpx.get(f"{app.url}/version").json() == {"version": "v9"}
    assert httpx.get(f"{app.url}/nope").status_code == 404
    assert app.hits == 2


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
