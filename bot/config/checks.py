"""Check tables: `parse_check` builds an `HttpCheck`, `SqlCheck` or `CommandCheck` from a table and
reports every problem with its key path (moved here from runners/checks: parsing the config is
the config's job); `parse_checks` reads an environment's list and the names that refer to it.

Check tables are read with the config's one reader (`reader.Table`), so `timeout` and
`max_latency` take durations (`"90s"`, `"1.5s"`, `"2m"`) as well as bare seconds.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import httpx

from bot.config.reader import D, Problems, Table
from runners.checks import HTTP_METHODS, OPS, Check, CommandCheck, HttpCheck, Op, SqlCheck
from runners.checks import NUMBER_RE as _NUMBER_RE

#: Keys every check table may have, and the keys of each check type (config validation uses them).
CHECK_COMMON_KEYS = frozenset({"name", "type"})
CHECK_KEYS: dict[str, frozenset[str]] = {
    "http": frozenset(
        {
            "url",
            "method",
            "expect_status",
            "body_contains",
            "json_field",
            "json_equals",
            "max_latency",
            "timeout",
            "verify_tls",
            "headers",
        }
    ),
    "sql": frozenset({"dsn_env", "query", "op", "expect", "timeout"}),
    "command": frozenset({"command", "on", "expect_exit", "output_contains", "timeout"}),
}
_OP_BY_TEXT: dict[str, Op] = {op: op for op in OPS}
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXPECT_RE = re.compile(r"^\s*(==|!=|>=|<=|=|>|<)\s*(.*?)\s*$", re.DOTALL)


def parse_check(d: Mapping[str, Any], path: str) -> tuple[Check | None, list[str]]:
    """Build a check from a TOML table, or report every problem with its key path.

    `path` locates the table, e.g. ``environments.prod.checks[0]``; problems read like
    ``environments.prod.checks[0].url: required``. Keys: `name`, `type` ("http", "sql" or
    "command") and the fields of the matching check class. For SQL, `expect` may carry its
    operator (``expect = ">= 4"``) or use a separate `op`. Values of secrets (DSN, headers)
    are never echoed in problems. Returns ``(check, [])`` or ``(None, problems)``.
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
    if kind == "http":
        check = _parse_http(r, name or "")
    elif kind == "sql":
        check = _parse_sql(r, name or "")
    elif kind == "command":
        check = _parse_command(r, name or "")
    if r.problems.items:
        return None, r.problems.items
    return check, []


def _parse_http(r: Table, name: str) -> HttpCheck | None:
    url = r.string("url", required=True)
    if url is not None:
        try:
            parsed = httpx.URL(url)
            if parsed.scheme not in ("http", "https"):
                r.problem("url", "must start with http:// or https://")
            elif not parsed.host:
                r.problem("url", "must include a host")
        except Exception:
            r.problem("url", "is not a valid URL")
    method = r.string("method", default="GET") or "GET"
    if method.upper() not in HTTP_METHODS:
        r.problem("method", f"must be one of: {', '.join(HTTP_METHODS)}")
    expect_status = r.integer("expect_status", 200, 100, 599)
    body_contains = r.string("body_contains")
    json_field = r.string("json_field")
    if json_field is not None and (not json_field or any(not p for p in json_field.split("."))):
        r.problem("json_field", 'must be a dotted path like "status" or "db.ok"')
    json_equals = r.data.get("json_equals")
    if "json_equals" in r.data and "json_field" not in r.data:
        r.problem("json_equals", "requires json_field")
    max_latency = _time_limit(r, "max_latency", None)
    timeout = _time_limit(r, "timeout", 10.0)
    verify_tls = r.boolean("verify_tls", True)
    headers: dict[str, str] = {}
    raw_headers = r.data.get("headers", {})
    if not isinstance(raw_headers, Mapping):
        r.problem("headers", "must be a table of header name = value")
    else:
        for key, value in raw_headers.items():
            if not isinstance(value, str):
                r.problem(f"headers.{key}", "must be a string")
            else:
                headers[str(key)] = value
    if r.problems.items or url is None:
        return None
    return HttpCheck(
        name=name,
        url=url,
        method=method.upper(),
        expect_status=expect_status,
        body_contains=body_contains,
        json_field=json_field,
        json_equals=json_equals,
        max_latency=max_latency,
        timeout=timeout,
        verify_tls=verify_tls,
        headers=headers,
    )


def _time_limit(r: Table, key: str, default: D) -> float | D:
    """A check's `timeout` or `max_latency`: a duration > 0, bare seconds (`2`, `0.5`) or like the
    rest of the config (`"90s"`, `"1.5s"`, `"2m"`)."""
    raw = r.data.get(key)
    if isinstance(raw, int | float) and not isinstance(raw, bool) and not raw > 0:
        r.problem(key, "must be a positive number of seconds")  # what check tables always said
        return default
    return r.duration(key, default, positive=True)


def _number_or_text(text: str) -> object:
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if _NUMBER_RE.match(text):
        return float(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _parse_sql(r: Table, name: str) -> SqlCheck | None:
    dsn_env = None
    if "dsn_env" not in r.data:
        r.problem("dsn_env", "required (the NAME of an environment variable holding the DSN)")
    elif not isinstance(r.data["dsn_env"], str) or not _ENV_NAME_RE.match(r.data["dsn_env"]):
        raw = r.data["dsn_env"]
        if isinstance(raw, str) and any(mark in raw for mark in ("://", "=", "@")):
            r.problem(
                "dsn_env", "must be the NAME of an environment variable holding the DSN, not the DSN itself"
            )
        else:
            r.problem("dsn_env", "must be an environment variable name like PROD_DB_DSN")
    else:
        dsn_env = r.data["dsn_env"]
    query = r.string("query", required=True)
    op: Op = _OP_BY_TEXT[r.choice("op", OPS, "==")]
    expect: object = None
    if "expect" not in r.data:
        r.problem("expect", 'required (a number or string, optionally with an operator: ">= 4")')
    else:
        raw = r.data["expect"]
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            r.problem("expect", 'must be a number or a string (write booleans as "true")')
        elif isinstance(raw, float) and not math.isfinite(raw):
            r.problem("expect", "must be a finite number")
        elif isinstance(raw, str) and (m := _EXPECT_RE.match(raw)):
            if "op" in r.data:
                r.problem("expect", "gives an operator and op is also set; use one")
            elif not m.group(2):
                r.problem("expect", f"has operator {m.group(1)!r} but no value")
            else:
                op = _OP_BY_TEXT["==" if m.group(1) == "=" else m.group(1)]
                expect = _number_or_text(m.group(2))
        else:
            expect = raw
    timeout = _time_limit(r, "timeout", 10.0)
    if r.problems.items or dsn_env is None or query is None:
        return None
    return SqlCheck(name=name, dsn_env=dsn_env, query=query, op=op, expect=expect, timeout=timeout)


def _parse_command(r: Table, name: str) -> CommandCheck | None:
    command = r.string("command", required=True)
    on: Literal["one", "all"] = "all" if r.choice("on", ("one", "all"), "one") == "all" else "one"
    expect_exit = r.integer("expect_exit", 0, 0, 255)
    output_contains = r.string("output_contains")
    timeout = _time_limit(r, "timeout", 30.0)
    if r.problems.items or command is None:
        return None
    return CommandCheck(
        name=name,
        command=command,
        on=on,
        expect_exit=expect_exit,
        output_contains=output_contains,
        timeout=timeout,
    )


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
    checks: list[Check] = []
    for i, raw_check in enumerate(t.get("checks", list, [])):
        check_path = f"{t.key('checks')}[{i}]"
        _untyped_check_keys(raw_check, check_path, p)
        check, check_problems = parse_check(raw_check, check_path)
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
