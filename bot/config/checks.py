"""Check tables: `parse_check` builds a check spec (HTTP, SQL, command, Prometheus, metrics) from a
table and reports every problem with its key path; `parse_checks` reads an environment's list
and the names that refer to it. Each type's own keys are read in `check_types`; what every
check may say about when it applies and how its failures count is `check_rules`.

Check tables are read with the config's one reader (`reader.Table`), so `timeout` and
`max_latency` take durations (`"90s"`, `"1.5s"`, `"2m"`) as well as bare seconds.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from bot.config.check_types import CHECK_KEYS, PARSERS
from bot.config.reader import Problems, Table
from runners.checks import Check

#: Keys every check table may have (when it applies, how its failures count, its secrets).
CHECK_COMMON_KEYS = frozenset(
    {"name", "type", "on", "since", "after", "failure_limit", "consecutive", "inconclusive_limit",
     "roles", "secrets"}
)  # fmt: skip


def parse_check(
    d: Mapping[str, Any], path: str, defaults: Mapping[str, Any] | None = None
) -> tuple[Check | None, list[str]]:
    """Build a check from a TOML table, or report every problem with its key path.

    `path` locates the table, e.g. ``environments.prod.checks[0]``; problems read like
    ``environments.prod.checks[0].url: required``. Keys: `name`, `type` ("http", "sql",
    "command", "prometheus" or "metrics") and the fields of the matching check class. For SQL
    (and an HTTP JSON field), `expect` may carry its operator (``expect = ">= 4"``) or use a
    separate `op`. Values of secrets (DSN, headers) are never echoed in problems. `defaults`
    holds what the environment gives (`prometheus_url`). Returns ``(check, [])`` or
    ``(None, problems)``.
    """
    if not isinstance(d, Mapping):
        return None, [f"{path}: must be a table"]
    r = Table(d, path, Problems(), record_keys=False)  # check keys are documented by type, not recorded
    name = r.string("name", required=True)
    kind: str | None = None
    if "type" not in d:
        r.problem("type", f"required (one of: {', '.join(CHECK_KEYS)})")
    elif not isinstance(d["type"], str) or d["type"] not in CHECK_KEYS:
        r.problem("type", f"must be one of: {', '.join(CHECK_KEYS)}")
    else:
        kind = d["type"]

    if kind is not None:
        allowed = CHECK_COMMON_KEYS | CHECK_KEYS[kind]
        for key in d:
            if key not in allowed:
                owners = [k for k, keys in CHECK_KEYS.items() if key in keys]
                hint = f" (only for {' or '.join(owners)} checks)" if owners else ""
                r.problem(str(key), f"unknown key for a {kind} check{hint}")

    check: Check | None = None
    if kind is not None:
        check = PARSERS[kind](r, name or "", defaults or {})
    if r.problems.items:
        return None, r.problems.items
    return check, []


def _untyped_check_keys(raw: Any, path: str, problems: Problems) -> None:
    """Keys no check type knows, reported even when `type` is missing or wrong (the check
    parser judges keys only once it knows the type)."""
    if not isinstance(raw, dict) or (isinstance(raw.get("type"), str) and raw["type"] in CHECK_KEYS):
        return
    known = set(CHECK_COMMON_KEYS).union(*CHECK_KEYS.values())
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(str(key), sorted(known), n=1)
            if key in ("kind", "check", "checker"):
                hint = ["type"]
            suffix = f"; did you mean '{hint[0]}'?" if hint else ""
            problems.add(f"{path}.{key}", f"unknown key{suffix}")


def parse_checks(t: Table, monitor_checks: tuple[str, ...]) -> tuple[tuple[Check, ...], tuple[str, ...]]:
    """An environment's `checks` and `smoke_checks`; names in `smoke_checks` and `monitor.checks`
    must be defined, and no name twice."""
    p = t.problems
    defaults = {"prometheus_url": t.get("prometheus_url", str, None), "env_path": t.path}
    checks: list[Check] = []
    for i, raw_check in enumerate(t.get("checks", list, [])):
        check_path = f"{t.key('checks')}[{i}]"
        _untyped_check_keys(raw_check, check_path, p)
        check, check_problems = parse_check(raw_check, check_path, defaults)
        p.extend(check_problems)
        if check is not None:
            checks.append(check)
    check_names = [c.name for c in checks]
    for dup in sorted({n for n in check_names if check_names.count(n) > 1}):
        p.add(t.key("checks"), f"check {dup!r} is defined twice")
    smoke_checks = t.strings("smoke_checks")
    for key, names in (("smoke_checks", smoke_checks), ("monitor.checks", monitor_checks)):
        for name_ in names:
            if name_ not in check_names:
                p.add(t.key(key), f"no check named {name_!r} (defined: {', '.join(check_names) or 'none'})")
    return tuple(checks), smoke_checks
