"""The metrics check: the real demo app's /metrics, parsed by prometheus_client, judged as a
value, a ratio, or a rate between two rounds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runners.checks import FailureTracker, MetricsCheck, parse_condition, run_check
from runners.checks.metrics import judge
from tests.support.demoapp import DemoApp
from tests.support.healthapp import HealthApp


@pytest.fixture
def demo_app(tmp_path: Path) -> Iterator[DemoApp]:
    with DemoApp(tmp_path / "app") as app:
        yield app


def traffic(app: DemoApp, n: int) -> None:
    for _ in range(n):
        httpx.get(f"{app.url}/health", timeout=5)


def metrics(app: DemoApp, condition: str, **kw: object) -> MetricsCheck:
    return MetricsCheck("failures", f"{app.url}/metrics", kw.pop("metric", "demo_http_request_failures"),  # type: ignore[arg-type]
                        parse_condition(condition), **kw)  # type: ignore[arg-type]  # fmt: skip


def test_a_counter_its_ratio_and_labels(demo_app: DemoApp) -> None:
    traffic(demo_app, 4)
    total = run_check(
        metrics(demo_app, "result == 4", metric="demo_http_requests_total", labels={"path": "/health"}),
        env={},
    )
    assert total.ok, total.summary()
    assert total.observed == "result 4" and total.kind == "metrics"
    demo_app.fault("FAIL_RATE", "1")
    traffic(demo_app, 4)
    ratio = run_check(metrics(demo_app, "result < 0.1", per="demo_http_requests"), env={})
    assert not ratio.ok and ratio.error == "result 0.5: not result < 0.1"
    none = run_check(metrics(demo_app, "result < 1", metric="no_such_metric"), env={})
    assert not none.ok and none.error == "no sample named no_such_metric"


def test_a_rate_between_two_rounds_is_failures_over_requests_in_between(demo_app: DemoApp) -> None:
    check = metrics(demo_app, "result < 0.2", per="demo_http_requests", rate=True)
    traffic(demo_app, 10)  # healthy history before the window
    tracker = FailureTracker(2)
    baseline = run_check(check, env={})
    assert baseline.ok and (baseline.observed or "").startswith("baseline 0")
    tracker.record([baseline])
    demo_app.fault("FAIL_RATE", "0.5")
    traffic(demo_app, 10)
    tracker = FailureTracker.from_dict(tracker.to_dict())  # the reading survives being stored
    second = run_check(check, env={}, previous=tracker.samples["failures"])
    assert not second.ok and second.error == "result 0.5: not result < 0.2"  # 5 of the last 10, not 5 of 20
    tracker.record([second])
    demo_app.fault("FAIL_RATE")
    traffic(demo_app, 10)
    third = run_check(check, env={}, previous=tracker.samples["failures"])
    assert third.ok and third.observed == "result 0"
    idle = run_check(check, env={}, previous=third.sample)
    assert not idle.ok and idle.error == "no change in demo_http_requests since the last round"


def test_counter_resets_and_no_data() -> None:
    check = MetricsCheck("f", "http://x/metrics", "f", parse_condition("result < 0.5"), per="t", rate=True,
                         on_no_data="inconclusive")  # fmt: skip
    reset = judge(check, 1, 4, {"value": 10, "per": 100, "at": 0}, 60)  # the app restarted: 1 of 4
    assert reset.ok and reset.observed == "result 0.25"
    idle = judge(check, 10, 100, {"value": 10, "per": 100, "at": 0}, 60)
    assert not idle.ok and idle.inconclusive
    per_second = MetricsCheck("r", "http://x/metrics", "r", parse_condition("result <= 2"), rate=True)
    assert judge(per_second, 130, None, {"value": 10, "at": 0}, 60).observed == "result 2"


def test_a_page_that_is_not_prometheus_text_fails_clearly() -> None:
    with HealthApp() as app:
        app.set_body("this is { not metrics\n")
        result = run_check(MetricsCheck("m", app.health_url, "x", parse_condition("result < 1")), env={})
    assert not result.ok and (result.error or "").startswith("not Prometheus text format")
