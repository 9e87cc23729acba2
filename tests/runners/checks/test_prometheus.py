"""The Prometheus check against a real Prometheus server scraping a real exporter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from runners.checks import PrometheusCheck, parse_condition, run_check, run_checks
from runners.checks.batch import batchable
from tests.runners.checks.helpers import closed_port
from tests.support.prometheus import PrometheusServer, Slot


@dataclass
class Exporter:
    slot: Slot
    gauge: Gauge
    prometheus: PrometheusServer

    def selector(self, **labels: str) -> str:
        pairs = ",".join([f'job="{self.slot.job}"', *(f'{k}="{v}"' for k, v in labels.items())])
        return f"gonogo_test_value{{{pairs}}}"

    def set(self, name: str, value: float) -> None:
        """Set the series `name` and wait until Prometheus has scraped that value."""
        self.gauge.labels(name).set(value)
        self.prometheus.wait_for(f"{self.selector(series=name)} == {value}")


@pytest.fixture
def exporter(prometheus: PrometheusServer) -> Iterator[Exporter]:
    with prometheus.slot() as slot:
        registry = CollectorRegistry()
        gauge = Gauge("gonogo_test_value", "a value the test sets", ["series"], registry=registry)
        server, thread = start_http_server(slot.port, addr="127.0.0.1", registry=registry)
        try:
            yield Exporter(slot, gauge, prometheus)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def check(
    prometheus: PrometheusServer,
    query: str,
    condition: str = "result < 0.1",
    name: str = "errors",
    **kw: object,
) -> PrometheusCheck:
    return PrometheusCheck(name, prometheus.url, query, parse_condition(condition), **kw)  # type: ignore[arg-type]


def test_one_series_meets_the_threshold_or_breaches_it(
    exporter: Exporter, prometheus: PrometheusServer
) -> None:
    exporter.set("a", 0.05)
    ok = run_check(check(prometheus, exporter.selector(series="a")), env={})
    assert ok.ok and ok.observed == "result 0.05" and ok.kind == "prometheus"
    exporter.set("a", 0.25)
    breach = run_check(check(prometheus, exporter.selector(series="a")), env={})
    assert not breach.ok and not breach.inconclusive
    assert "0.25: not result < 0.1" in (breach.error or "")
    assert breach.summary().startswith("errors ✗")


def test_a_vector_is_judged_per_series_and_names_the_failing_ones(
    exporter: Exporter, prometheus: PrometheusServer
) -> None:
    exporter.set("a", 0.01)
    exporter.set("b", 0.5)
    exporter.set("c", 0.02)
    result = run_check(check(prometheus, exporter.selector()), env={})
    assert not result.ok and result.observed == "2/3 series ok"
    assert 'series="b"' in (result.error or "") and 'series="a"' not in (result.error or "")
    assert "= 0.5: not result < 0.1" in (result.error or "")
    scalar = run_check(check(prometheus, f"scalar(sum({exporter.selector()}))", "result > 0.5"), env={})
    assert scalar.ok and scalar.observed == "result 0.53"


@pytest.mark.parametrize(
    ("on_no_data", "ok", "inconclusive"),
    [("fail", False, False), ("pass", True, False), ("inconclusive", False, True)],
)
def test_no_data_is_its_own_outcome(
    prometheus: PrometheusServer, on_no_data: str, ok: bool, inconclusive: bool
) -> None:
    result = run_check(check(prometheus, 'gonogo_test_value{job="nobody"}', on_no_data=on_no_data), env={})
    assert (result.ok, result.inconclusive, result.observed) == (ok, inconclusive, "no data")
    if on_no_data == "inconclusive":
        assert result.error == "inconclusive: the query returned no data" and "errors ?" in result.summary()
    nan = run_check(check(prometheus, "vector(0) / 0", on_no_data=on_no_data), env={})
    assert (nan.ok, nan.inconclusive) == (ok, inconclusive)  # NaN (0/0: no traffic) is no data too


def test_query_errors_come_back_in_prometheus_words(prometheus: PrometheusServer) -> None:
    bad = run_check(check(prometheus, "sum(rate(x[5m])"), env={})
    assert not bad.ok and (bad.error or "").startswith("Prometheus query failed (bad_data):")
    matrix = run_check(check(prometheus, "up[1m]"), env={})
    assert not matrix.ok and "range vector" in (matrix.error or "")
    gone = run_check(
        PrometheusCheck("errors", f"http://127.0.0.1:{closed_port()}", "up", parse_condition("result > 0")),
        env={},
    )
    assert not gone.ok and "connection refused" in (gone.error or "")


def test_a_round_of_prometheus_checks_shares_one_client(
    exporter: Exporter, prometheus: PrometheusServer
) -> None:
    exporter.set("a", 0.05)
    checks = [
        PrometheusCheck(
            f"c{i}", prometheus.url + "/", exporter.selector(series="a"), parse_condition("result < 0.1")
        )
        for i in range(20)
    ]
    results = run_checks(checks, env={})
    assert [r.name for r in results] == [f"c{i}" for i in range(20)]
    assert all(r.ok for r in results), [r.summary() for r in results if not r.ok]


def test_checks_to_one_server_share_requests_and_a_query_that_cannot_ride_along_is_asked_alone(
    exporter: Exporter, prometheus: PrometheusServer
) -> None:
    exporter.set("a", 0.05)
    exporter.set("b", 0.5)
    good = [check(prometheus, exporter.selector(series="a"), name=f"g{i}") for i in range(8)]
    breach = check(prometheus, exporter.selector(), name="per-series")
    scalar = check(prometheus, f"scalar(sum({exporter.selector()}))", "result > 0.5", name="scalar")
    broken = check(prometheus, "sum(rate(x[5m])", name="broken")
    results = {r.name: r for r in run_checks([broken, scalar, breach, *good], env={})}  # 10 per request
    assert all(results[f"g{i}"].ok for i in range(8)), [r.summary() for r in results.values()]
    assert not results["per-series"].ok and 'series="b"' in (results["per-series"].error or "")
    assert "gonogo_check" not in (results["per-series"].error or "")  # the batch's tag is gone
    assert results["scalar"].ok and results["scalar"].observed == "result 0.55"
    assert (results["broken"].error or "").startswith("Prometheus query failed (bad_data):")
    assert batchable(good[0]) and not batchable(scalar) and not batchable(broken)
    gone = [
        PrometheusCheck(f"x{i}", f"http://127.0.0.1:{closed_port()}", "up", parse_condition("result > 0"))
        for i in range(3)
    ]
    assert all("connection refused" in (r.error or "") for r in run_checks(gone, env={}))
