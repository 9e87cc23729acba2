"""Check tables read their time limits like the rest of the config: bare seconds or durations.

The other `parse_check` tests live in tests/runners/test_checks.py (they moved with the parser
from runners/checks); these cover what the shared config reader brought: durations.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict
from typing import Any

import pytest

from bot.config import ConfigError, parse_check, parse_config

P = "environments.prod.checks[0]"
HTTP = {"name": "web", "type": "http", "url": "https://app.example.com/health"}
SQL = {"name": "db", "type": "sql", "dsn_env": "PROD_DB_DSN", "query": "SELECT 1", "expect": 1}
COMMAND = {"name": "svc", "type": "command", "command": "systemctl is-active app"}


def fields(table: dict[str, Any]) -> dict[str, Any]:
    """The fields of the check `table` parses into (it must parse)."""
    check, problems = parse_check(table, P)
    assert problems == [] and check is not None
    return asdict(check)


@pytest.mark.parametrize(
    ("written", "seconds"),
    [(2, 2.0), (0.5, 0.5), ("90s", 90.0), ("1.5s", 1.5), ("500ms", 0.5), ("2m", 120.0), (" 3s ", 3.0)],
)
def test_check_timeouts_take_bare_seconds_or_durations(written: object, seconds: float) -> None:
    http = fields({**HTTP, "timeout": written, "max_latency": written})
    assert (http["kind"], http["timeout"], http["max_latency"]) == ("http", seconds, seconds)
    assert fields({**SQL, "timeout": written})["timeout"] == seconds
    assert fields({**COMMAND, "timeout": written})["timeout"] == seconds


def test_check_timeouts_keep_their_defaults() -> None:
    http = fields(HTTP)
    assert (http["timeout"], http["max_latency"]) == (10.0, None)
    assert fields(SQL)["timeout"] == 10.0
    assert fields(COMMAND)["timeout"] == 30.0


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("fast", "'fast' is not a duration like 30, '90s', '15m' or '4h'"),
        ("-5s", "'-5s' is not a duration like 30, '90s', '15m' or '4h'"),
        (True, "must be a duration like 30, '90s', '15m' or '4h'"),
        ("0s", "must be > 0"),
        (0, "must be a positive number of seconds"),
        (-1, "must be a positive number of seconds"),
        ("400d", "must be at most a year (366d)"),
    ],
)
def test_bad_check_durations_are_reported_with_their_key_path(written: object, problem: str) -> None:
    for key in ("timeout", "max_latency"):
        check, problems = parse_check({**HTTP, key: written}, P)
        assert check is None and problems == [f"{P}.{key}: {problem}"]
    _, problems = parse_check({**SQL, "timeout": written}, P)
    assert problems == [f"{P}.timeout: {problem}"]
    _, problems = parse_check({**COMMAND, "timeout": written}, P)
    assert problems == [f"{P}.timeout: {problem}"]


CONFIG = """
[environments.prod]
backend = "local"
hosts = ["h1"]
checks = [{{ name = "web", type = "http", url = "http://127.0.0.1/health", {keys} }}]
[[environments.prod.steps.deploy]]
name = "ship"
run = "true"
"""


def test_a_config_file_takes_check_durations() -> None:
    config = parse_config(
        tomllib.loads(CONFIG.format(keys='timeout = "90s", max_latency = "1.5s"')), environ={}
    )
    (check,) = config.environments["prod"].checks
    assert (asdict(check)["timeout"], asdict(check)["max_latency"]) == (90.0, 1.5)
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(CONFIG.format(keys='timeout = "soon"')), environ={})
    assert (
        "environments.prod.checks[0].timeout: 'soon' is not a duration like 30, '90s', '15m' or '4h'"
        in caught.value.problems
    )
