"""Prometheus checks of a round asked together: one request for up to `BATCH_SIZE` queries.

A round of fifty threshold checks against one server would otherwise cost fifty HTTP requests
(about a millisecond of client CPU each, under one GIL). Queries to the same server (same URL,
headers and TLS mode) are joined into one instant query, each tagged by its position:

    label_replace((Q0), "gonogo_check", "0", "", "") or label_replace((Q1), "gonogo_check", "1", "", "")

`or` keeps every series of both sides whose label sets differ, and the tag makes them differ,
so the answer holds every query's series, sorted back by their tag (which is dropped again).
A query that cannot ride along (a scalar, a range vector, bad PromQL: Prometheus refuses the
joined query) makes the batch ask each query alone, as it would have anyway, and is remembered
so later rounds ask it alone at once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from runners.checks.probe import Context, Outcome
from runners.checks.prometheus import QueryRefused, ask, judge
from runners.checks.spec import PrometheusCheck

#: Queries per request (a longer `or` chain costs Prometheus more than the requests it saves).
BATCH_SIZE = 10
TAG = "gonogo_check"

_alone_lock = threading.Lock()
#: Queries Prometheus refused inside a batch (or that answer other than a vector): asked alone.
_alone: set[tuple[str, str]] = set()


def key(check: PrometheusCheck) -> tuple[str, tuple[tuple[str, str], ...], bool]:
    """Checks with the same key may share a request."""
    return check.prometheus_url, tuple(sorted(check.headers.items())), check.verify_tls


def batchable(check: PrometheusCheck) -> bool:
    """False for a query known not to ride along in a batch."""
    with _alone_lock:
        return (check.prometheus_url, check.query) not in _alone


def joined(checks: Sequence[PrometheusCheck]) -> str:
    """The one query asking every check's query, each tagged by its position."""
    return " or ".join(f'label_replace(({c.query}), "{TAG}", "{i}", "", "")' for i, c in enumerate(checks))


def split(data: Mapping[str, Any], count: int) -> list[dict[str, Any]] | None:
    """Each query's own vector out of the joined answer (None when it is not a vector)."""
    if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        return None
    parts: list[list[Any]] = [[] for _ in range(count)]
    for item in data["result"]:
        metric = dict(item.get("metric") or {}) if isinstance(item, Mapping) else {}
        tag = metric.pop(TAG, None)
        if isinstance(tag, str) and tag.isdigit() and int(tag) < count:
            parts[int(tag)].append({**item, "metric": metric})
    return [{"resultType": "vector", "result": part} for part in parts]


def run_batch(checks: Sequence[PrometheusCheck], ctx: Context) -> list[Outcome]:
    """Judge every check from one request; a batch Prometheus refuses is asked query by query."""
    timeout = max(c.timeout for c in checks)
    answer = ask(checks[0], ctx, joined(checks), timeout)
    if isinstance(answer, Outcome) and not isinstance(answer, QueryRefused):
        return [Outcome(False, answer.observed, answer.error) for _ in checks]  # the server, not a query
    if not isinstance(answer, Outcome) and (parts := split(answer, len(checks))) is not None:
        return [judge(c, part) for c, part in zip(checks, parts, strict=True)]
    outcomes = []
    for check in checks:
        alone = ask(check, ctx, check.query, check.timeout)
        if isinstance(alone, QueryRefused) or (
            not isinstance(alone, Outcome) and alone.get("resultType") != "vector"
        ):
            with _alone_lock:
                _alone.add((check.prometheus_url, check.query))
        outcomes.append(alone if isinstance(alone, Outcome) else judge(check, alone))
    return outcomes


__all__ = ["BATCH_SIZE", "TAG", "batchable", "joined", "key", "run_batch", "split"]
