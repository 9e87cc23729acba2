"""The table of each check type: HTTP, SQL, command, Prometheus and metrics, read into their specs.

`PARSERS` maps a `type` to its reader; `CHECK_KEYS` the keys each type has. Every reader records
its problems on the table (`reader.Table`) with the key path and returns None when there were
any. `defaults` carries what the environment gives every check (`prometheus_url`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from bot.config.reader import D, Table
from runners.checks import (
    HTTP_METHODS,
    NO_DATA,
    NUMBER_RE,
    OPS,
    PLACEHOLDER,
    Check,
    CommandCheck,
    Condition,
    ConditionError,
    HttpCheck,
    MetricsCheck,
    NoData,
    Op,
    PrometheusCheck,
    SqlCheck,
    parse_condition,
)

#: The keys of each check type (config validation uses them).
CHECK_KEYS: dict[str, frozenset[str]] = {
    "http": frozenset(
        {
            "url",
            "method",
            "expect_status",
            "body_contains",
            "json_field",
            "json_equals",
            "op",
            "expect",
            "max_latency",
            "timeout",
            "verify_tls",
            "headers",
            "body",
            "json",
            "capture",
        }
    ),
    "sql": frozenset({"dsn_env", "query", "op", "expect", "timeout"}),
    "command": frozenset({"command", "run_on", "expect_exit", "output_contains", "timeout"}),
    "prometheus": frozenset(
        {"prometheus_url", "query", "condition", "on_no_data", "timeout", "verify_tls", "headers"}
    ),
    "metrics": frozenset(
        {
            "url",
            "metric",
            "labels",
            "per",
            "rate",
            "condition",
            "on_no_data",
            "timeout",
            "verify_tls",
            "headers",
        }
    ),
}
_OP_BY_TEXT: dict[str, Op] = {op: op for op in OPS}
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXPECT_RE = re.compile(r"^\s*(==|!=|>=|<=|=|>|<)\s*(.*?)\s*$", re.DOTALL)
_CAPTURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def time_limit(r: Table, key: str, default: D) -> float | D:
    """A check's `timeout` or `max_latency`: a duration > 0, bare seconds (`2`, `0.5`) or like the
    rest of the config (`"90s"`, `"1.5s"`, `"2m"`)."""
    raw = r.data.get(key)
    if isinstance(raw, int | float) and not isinstance(raw, bool) and not raw > 0:
        r.problem(key, "must be a positive number of seconds")  # what check tables always said
        return default
    return r.duration(key, default, positive=True)


def _url(r: Table, key: str, *, required: bool = True, default: str | None = None) -> str | None:
    url = r.string(key, required=required and default is None, default=default)
    if url is None:
        return None
    try:
        parsed = httpx.URL(PLACEHOLDER.sub("0", url))  # placeholders are filled later
        if parsed.scheme not in ("http", "https"):
            r.problem(key, "must start with http:// or https://")
        elif not parsed.host:
            r.problem(key, "must include a host")
    except Exception:
        r.problem(key, "is not a valid URL")
    return url


def _strings_table(r: Table, key: str, what: str) -> dict[str, str]:
    """A table of name = string (`headers`, `labels`)."""
    out: dict[str, str] = {}
    raw = r.data.get(key, {})
    if not isinstance(raw, Mapping):
        r.problem(key, f"must be a table of {what}")
        return out
    for name, value in raw.items():
        if not isinstance(value, str):
            r.problem(f"{key}.{name}", "must be a string")
        else:
            out[str(name)] = value
    return out


def _number_or_text(text: str) -> object:
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if NUMBER_RE.match(text):
        return float(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _expectation(r: Table, *, required: bool) -> tuple[Op, object]:
    """`expect` with its operator (``">= 4"``) or a separate `op`; ("==", None) when absent."""
    op: Op = _OP_BY_TEXT[r.choice("op", OPS, "==")]
    if "expect" not in r.data:
        if required:
            r.problem("expect", 'required (a number or string, optionally with an operator: ">= 4")')
        return op, None
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
            return _OP_BY_TEXT["==" if m.group(1) == "=" else m.group(1)], _number_or_text(m.group(2))
    else:
        return op, raw
    return op, None


def _condition(r: Table) -> Condition | None:
    text = r.string("condition", required=True)
    if text is None:
        return None
    try:
        return parse_condition(text)
    except ConditionError as exc:
        r.problem("condition", f"does not parse: {exc} (write e.g. `result < 0.1`)")
        return None


def _no_data(r: Table) -> NoData:
    choice = r.choice("on_no_data", NO_DATA, "fail")
    return next(n for n in NO_DATA if n == choice)


def parse_http(r: Table, name: str, defaults: Mapping[str, Any]) -> HttpCheck | None:
    """`type = "http"`: a request, its status, body, JSON field, latency; a body; captures."""
    url = _url(r, "url")
    body = r.string("body")
    json_body = r.data.get("json")
    if "json" in r.data and not isinstance(json_body, Mapping | list):
        r.problem("json", "must be a table or a list (sent as the JSON request body)")
    if body is not None and "json" in r.data:
        r.problem("json", "a request has one body: set body or json, not both")
    has_body = body is not None or "json" in r.data
    method = r.string("method", default="POST" if has_body else "GET") or "GET"
    if method.upper() not in HTTP_METHODS:
        r.problem("method", f"must be one of: {', '.join(HTTP_METHODS)}")
    expect_status = r.integer("expect_status", 200, 100, 599)
    body_contains = r.string("body_contains")
    json_field = r.string("json_field")
    if json_field is not None and (not json_field or any(not p for p in json_field.split("."))):
        r.problem("json_field", 'must be a dotted path like "status" or "db.ok"')
    json_equals = r.data.get("json_equals")
    for key in ("json_equals", "expect", "op"):
        if key in r.data and "json_field" not in r.data:
            r.problem(key, "requires json_field")
    if "json_equals" in r.data and ("expect" in r.data or "op" in r.data):
        r.problem("json_equals", "compare with json_equals or with op/expect, not both")
    op, expect = _expectation(r, required="op" in r.data)
    capture = _captures(r)
    max_latency = time_limit(r, "max_latency", None)
    timeout = time_limit(r, "timeout", 10.0)
    verify_tls = r.boolean("verify_tls", True)
    headers = _strings_table(r, "headers", "header name = value")
    if r.problems.items or url is None:
        return None
    compares = "expect" in r.data or "op" in r.data
    return HttpCheck(
        name=name, url=url, method=method.upper(), expect_status=expect_status,
        body_contains=body_contains, json_field=json_field, json_equals=json_equals,
        max_latency=max_latency, timeout=timeout, verify_tls=verify_tls, headers=headers,
        op=op if compares else None, expect=expect if compares else None, body=body,
        json_body=json_body, capture=capture,
    )  # fmt: skip


def _captures(r: Table) -> dict[str, str]:
    """`capture = { job_id = "id" }`: name → dotted JSON path of the response."""
    out: dict[str, str] = {}
    raw = r.data.get("capture", {})
    if not isinstance(raw, Mapping):
        r.problem("capture", 'must be a table of name = "json.path" (e.g. { job_id = "id" })')
        return out
    for name, path in raw.items():
        if not _CAPTURE_NAME.match(str(name)):
            r.problem(f"capture.{name}", "capture names are letters, digits and _")
        elif not isinstance(path, str) or not path or any(not p for p in path.split(".")):
            r.problem(f"capture.{name}", 'must be a dotted JSON path like "id" or "job.id"')
        else:
            out[str(name)] = path
    return out


def parse_sql(r: Table, name: str, defaults: Mapping[str, Any]) -> SqlCheck | None:
    """`type = "sql"`: a read-only query whose one value is compared with `expect`."""
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
    op, expect = _expectation(r, required=True)
    timeout = time_limit(r, "timeout", 10.0)
    if r.problems.items or dsn_env is None or query is None:
        return None
    return SqlCheck(name=name, dsn_env=dsn_env, query=query, op=op, expect=expect, timeout=timeout)


def parse_command(r: Table, name: str, defaults: Mapping[str, Any]) -> CommandCheck | None:
    """`type = "command"`: a command on one host or all (`run_on`; `on = "one"|"all"` as before)."""
    command = r.string("command", required=True)
    legacy = r.data.get("on") if r.data.get("on") in ("one", "all") else None
    if isinstance(r.data.get("on"), str) and not legacy and r.data["on"] not in ("deploy", "rollback"):
        r.problem("on", "must be one of: one, all")  # its hosts, as it always said (or when it applies)
    run_on = r.choice("run_on", ("one", "all"), legacy or "one")
    if legacy and "run_on" in r.data:
        r.problem("on", "run_on is set too: write the hosts as run_on only")
    expect_exit = r.integer("expect_exit", 0, 0, 255)
    output_contains = r.string("output_contains")
    timeout = time_limit(r, "timeout", 30.0)
    if r.problems.items or command is None:
        return None
    return CommandCheck(
        name=name, command=command, on=run_on, expect_exit=expect_exit,
        output_contains=output_contains, timeout=timeout,
    )  # fmt: skip


def parse_prometheus(r: Table, name: str, defaults: Mapping[str, Any]) -> PrometheusCheck | None:
    """`type = "prometheus"`: a PromQL instant query held to `condition`, with `on_no_data`."""
    fallback = defaults.get("prometheus_url")
    if "prometheus_url" not in r.data and not fallback:
        where = defaults.get("env_path", "environments.<env>")
        r.problem(
            "prometheus_url", f"required: the Prometheus server to query (or set {where}.prometheus_url)"
        )
        url = None
    else:
        url = _url(r, "prometheus_url", default=fallback)
    query = r.string("query", required=True)
    condition = _condition(r)
    on_no_data = _no_data(r)
    timeout = time_limit(r, "timeout", 10.0)
    verify_tls = r.boolean("verify_tls", True)
    headers = _strings_table(r, "headers", "header name = value")
    if r.problems.items or url is None or query is None or condition is None:
        return None
    return PrometheusCheck(
        name=name, prometheus_url=url, query=query, condition=condition, on_no_data=on_no_data,
        timeout=timeout, verify_tls=verify_tls, headers=headers,
    )  # fmt: skip


def _metric(r: Table, key: str, *, required: bool) -> str | None:
    value = r.string(key, required=required)
    if value is not None and not _METRIC_NAME.match(value):
        r.problem(key, "must be a metric name like http_requests_total")
        return None
    return value


def parse_metrics(r: Table, name: str, defaults: Mapping[str, Any]) -> MetricsCheck | None:
    """`type = "metrics"`: a scrape of a /metrics endpoint, a sample (or a ratio, or a rate)."""
    url = _url(r, "url")
    metric = _metric(r, "metric", required=True)
    per = _metric(r, "per", required=False)
    labels = _strings_table(r, "labels", "label name = value")
    rate = r.boolean("rate", False)
    condition = _condition(r)
    on_no_data = _no_data(r)
    timeout = time_limit(r, "timeout", 10.0)
    verify_tls = r.boolean("verify_tls", True)
    headers = _strings_table(r, "headers", "header name = value")
    if r.problems.items or url is None or metric is None or condition is None:
        return None
    return MetricsCheck(
        name=name, url=url, metric=metric, condition=condition, labels=labels, per=per, rate=rate,
        on_no_data=on_no_data, timeout=timeout, verify_tls=verify_tls, headers=headers,
    )  # fmt: skip


#: The reader of each check type.
PARSERS: dict[str, Callable[[Table, str, Mapping[str, Any]], Check | None]] = {
    "http": parse_http,
    "sql": parse_sql,
    "command": parse_command,
    "prometheus": parse_prometheus,
    "metrics": parse_metrics,
}
