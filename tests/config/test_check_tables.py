"""Tests for parsing check tables (bot.config.checks.parse_check); running checks is tested in
tests/runners/checks/."""

from __future__ import annotations

import sys
from dataclasses import asdict

import pytest

from bot.config import parse_check
from runners.checks import CommandCheck, HttpCheck, SqlCheck

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
    assert problems == [f"{P}.type: required (one of: http, sql, command, prometheus, metrics)"]
    _, problems = parse_check({"name": "x", "type": "ping"}, P)
    assert problems == [f"{P}.type: must be one of: http, sql, command, prometheus, metrics"]
    _, problems = parse_check({"name": "x", "type": "http", "url": "ftp://h/", "expect_status": True}, P)
    assert f"{P}.url: must start with http:// or https://" in problems
    assert f"{P}.expect_status: must be an integer" in problems
    _, problems = parse_check({"name": "x", "type": "http", "url": "http://h/", "query": "SELECT 1"}, P)
    assert problems == [f"{P}.query: unknown key for a http check (only for sql or prometheus checks)"]
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


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_a_check_type_that_is_not_a_string_is_a_problem_not_a_crash() -> None:
    for bad in (["http"], {"kind": "http"}):
        check, problems = parse_check({"name": "x", "type": bad}, P)
        assert check is None and problems == [
            f"{P}.type: must be one of: http, sql, command, prometheus, metrics"
        ]


def test_a_config_whose_check_type_is_a_list_gets_a_problem_with_its_path() -> None:
    from bot.config import ConfigError, parse_config

    raw = {
        "environments": {
            "x": {
                "backend": "local",
                "hosts": ["localhost"],
                "steps": {"deploy": [{"name": "d", "run": "true"}]},
                "checks": [{"name": "c", "type": ["http"]}],
            }
        }
    }
    with pytest.raises(ConfigError) as err:
        parse_config(raw, environ={})
    assert (
        "environments.x.checks[0].type: must be one of: http, sql, command, prometheus, metrics"
        in err.value.problems
    )
