"""The Prometheus probe: one PromQL instant query (`/api/v1/query`), each value held to the
check's condition.

A vector is judged series by series and the failing series are named by their labels
(``{instance="app2:8080"} = 0.25``); a scalar is one value. No series, or only NaN values, is no
data, judged as the check's `on_no_data` says. Query errors (bad PromQL, a timeout) come back
as Prometheus words them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from runners.checks.http import http_error
from runners.checks.probe import Context, Outcome, first_line, no_data, short
from runners.checks.spec import PrometheusCheck

#: Series named in a failure message before "and N more".
_NAMED = 3


def query_url(base: str) -> str:
    """The instant-query endpoint under a Prometheus base URL (a path prefix is kept)."""
    return base.rstrip("/") + "/api/v1/query"


class QueryRefused(Outcome):
    """Prometheus answered, but not with a result: the query itself is the problem."""

    __slots__ = ()


def run_prometheus(check: PrometheusCheck, ctx: Context) -> Outcome:
    """Run the query through `ctx.http_client` and judge every series it returns."""
    answer = ask(check, ctx, check.query, check.timeout)
    return answer if isinstance(answer, Outcome) else judge(check, answer)


def ask(check: PrometheusCheck, ctx: Context, query: str, timeout: float) -> Mapping[str, Any] | Outcome:
    """Ask `check`'s Prometheus `query` (its URL, headers): the result's `data`, or the failure
    (a `QueryRefused` when Prometheus answered with an error about the query)."""
    if ctx.http_client is None:
        raise RuntimeError("no HTTP client")
    for value in check.headers.values():
        ctx.secrets.add(value)
    try:
        url = httpx.URL(query_url(check.prometheus_url))
        ctx.secrets.add(url.password)
    except Exception as exc:
        return Outcome(False, error=f"invalid Prometheus URL: {first_line(str(exc))}")
    try:
        response = ctx.http_client.post(
            url,
            data={"query": query, "timeout": f"{timeout:g}s"},
            headers=dict(check.headers),
            timeout=httpx.Timeout(timeout),
        )
    except Exception as exc:
        return Outcome(False, error=http_error(exc, url, timeout))
    try:
        body = response.json()
    except ValueError:
        return Outcome(
            False, str(response.status_code), f"Prometheus answered {response.status_code}, not JSON"
        )
    if not isinstance(body, Mapping) or body.get("status") != "success":
        return QueryRefused(False, str(response.status_code), _query_error(response.status_code, body))
    data = body.get("data")
    return data if isinstance(data, Mapping) else {}


def _query_error(status: int, body: object) -> str:
    if isinstance(body, Mapping) and body.get("error"):
        kind = body.get("errorType") or "error"
        return f"Prometheus query failed ({kind}): {first_line(str(body['error']))}"
    return f"Prometheus answered {status}"


def _labels(metric: object) -> str:
    """``{instance="app2:8080",job="web"}`` (no `__name__`), or "" for a series without labels."""
    if not isinstance(metric, Mapping):
        return ""
    pairs = [f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__"]
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _value(pair: object) -> float | None:
    """The number of a ``[timestamp, "value"]`` pair (None when it is not one, or NaN)."""
    if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
        return None
    try:
        value = float(pair[1])
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _series(data: Mapping[str, Any]) -> list[tuple[str, float]] | str:
    """(labels, value) of every series with a number; or what is wrong with the result's shape."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        value = _value(result)
        return [] if value is None else [("", value)]
    if kind == "vector" and isinstance(result, list):
        out = []
        for item in result:
            if isinstance(item, Mapping) and (value := _value(item.get("value"))) is not None:
                out.append((_labels(item.get("metric")), value))
        return out
    if kind == "matrix":
        return "the query returns a range vector: use an instant vector (e.g. rate(x[5m]), not x[5m])"
    return f"unexpected result type {kind!r}"


def _number(value: float) -> str:
    return f"{value:.4g}"


def judge(check: PrometheusCheck, data: Mapping[str, Any]) -> Outcome:
    """The query's result held to the condition: every series must satisfy it."""
    series = _series(data)
    if isinstance(series, str):
        return Outcome(False, error=series)
    if not series:
        return no_data(check.on_no_data, "the query returned no data")
    failing = [(labels, v) for labels, v in series if not check.condition.holds(v)]
    if len(series) == 1:
        observed = f"result {_number(series[0][1])}"
    else:
        observed = f"{len(series) - len(failing)}/{len(series)} series ok"
    if not failing:
        return Outcome(True, observed)
    named = [f"{labels} = {_number(v)}" if labels else _number(v) for labels, v in failing[:_NAMED]]
    more = f" and {len(failing) - _NAMED} more" if len(failing) > _NAMED else ""
    which = ", ".join(named) + more
    error = f"{which}: not {check.condition}" if len(series) > 1 else f"result {which}: not {check.condition}"
    return Outcome(False, observed, short(error, 280))
