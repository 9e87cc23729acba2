"""The metrics probe: scrape a Prometheus text endpoint and hold one number to the condition.

The text is parsed by prometheus_client's own parser. The number is the sum of the samples
named `metric` (whose labels include the check's `labels`); divided by the `per` samples with
`per`; and with `rate`, the change since the sample the check kept last round (Δmetric / Δper,
or Δmetric per second). The reading is handed back as the outcome's `sample`, which the
failure tracker keeps for the next round.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping

import httpx

from runners.checks.http import MAX_BODY_BYTES, http_error
from runners.checks.probe import Context, Outcome, first_line, no_data
from runners.checks.spec import MetricsCheck


def _samples(text: str) -> Iterable[tuple[str, Mapping[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, sample.labels, float(sample.value)


def total(text: str, metric: str, labels: Mapping[str, str]) -> float | None:
    """The sum of the samples named `metric` (or `metric_total`) with `labels`; None if none."""
    sums: dict[str, float] = {}
    for name, sample_labels, value in _samples(text):
        if name not in (metric, f"{metric}_total") or math.isnan(value):
            continue
        if all(sample_labels.get(k) == v for k, v in labels.items()):
            sums[name] = sums.get(name, 0.0) + value
    if metric in sums:
        return sums[metric]
    return sums.get(f"{metric}_total")


def run_metrics(check: MetricsCheck, ctx: Context) -> Outcome:
    """Scrape `check.url` (through `ctx.http_client`) and judge the reading."""
    if ctx.http_client is None:
        raise RuntimeError("no HTTP client")
    for header in check.headers.values():
        ctx.secrets.add(header)
    try:
        url = httpx.URL(check.url)
        ctx.secrets.add(url.password)
    except Exception as exc:
        return Outcome(False, error=f"invalid URL: {first_line(str(exc))}")
    try:
        response = ctx.http_client.get(url, headers=dict(check.headers), timeout=httpx.Timeout(check.timeout))
    except Exception as exc:
        return Outcome(False, error=http_error(exc, url, check.timeout))
    if response.status_code != 200:
        return Outcome(False, str(response.status_code), f"metrics endpoint answered {response.status_code}")
    try:
        body = response.content[:MAX_BODY_BYTES].decode("utf-8", "replace")
        value = total(body, check.metric, check.labels)
        per = total(body, check.per, check.labels) if check.per else None
    except Exception as exc:  # the parser raises ValueError and friends on malformed text
        return Outcome(
            False, error=f"not Prometheus text format: {first_line(str(exc)) or type(exc).__name__}"
        )
    return judge(check, value, per, ctx.previous, time.time())


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def judge(
    check: MetricsCheck,
    value: float | None,
    per: float | None,
    previous: Mapping[str, float] | None,
    now: float,
) -> Outcome:
    """The reading (`value`, `per` at `now`) held to the condition; a rate needs `previous`."""
    if check.per and per is None:
        return no_data(check.on_no_data, f"no sample named {check.per}")
    if value is None and per is not None:
        value = 0.0  # a failure counter that never counted yet, beside its total
    if value is None:
        return no_data(check.on_no_data, f"no sample named {check.metric}")
    sample = {"value": value, "at": now, **({"per": per} if per is not None else {})}
    if not check.rate:
        if per is not None:
            if per == 0:
                return no_data(check.on_no_data, f"{check.per} is 0")
            return _held(check, value / per, sample)
        return _held(check, value, sample)
    if not previous or "value" not in previous or "at" not in previous:
        return Outcome(True, f"baseline {_fmt(value)} (rate from the next round)", sample=sample)
    # A counter that went down was reset: count from zero, as Prometheus' rate() does.
    delta = value - previous["value"] if value >= previous["value"] else value
    if per is not None:
        before = previous.get("per", 0.0)
        per_delta = per - before if per >= before else per
        if per_delta == 0:
            return no_data(check.on_no_data, f"no change in {check.per} since the last round")
        return _held(check, delta / per_delta, sample)
    seconds = now - previous["at"]
    if seconds <= 0:
        return no_data(check.on_no_data, "no time passed since the last round")
    return _held(check, delta / seconds, sample)


def _held(check: MetricsCheck, result: float, sample: Mapping[str, float]) -> Outcome:
    shown = f"result {_fmt(result)}"
    if check.condition.holds(result):
        return Outcome(True, shown, sample=sample)
    return Outcome(False, shown, f"{shown}: not {check.condition}", sample=sample)
