"""Placeholders in check fields, and checks that act: a POST with a token, a captured id, the
next check using it (against the real demo app)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.checks import (
    CommandCheck,
    FillError,
    HttpCheck,
    PrometheusCheck,
    fill,
    parse_condition,
    placeholders,
    run_check,
    run_checks,
)
from runners.checks.fill import waves
from tests.support.demoapp import DemoApp


@pytest.fixture
def demo_app(tmp_path: Path) -> Iterator[DemoApp]:
    with DemoApp(tmp_path / "app") as app:
        yield app


HOST = {"host": "app2", "host.name": "app2", "host.address": "10.0.0.2", "host.vars.port": "8082"}


def test_host_values_fill_every_field_the_way_it_needs() -> None:
    http = HttpCheck(
        "health", "http://{host.address}:{host.vars.port}/health?h={host}",
        headers={"X-Host": "{host}"}, json_body={"host": "{host}", "port": "{host.vars.port}", "n": 1},
    )  # fmt: skip
    filled = fill(http, HOST, name="health@app2")
    assert isinstance(filled, HttpCheck) and filled.name == "health@app2"
    assert filled.url == "http://10.0.0.2:8082/health?h=app2"
    assert filled.headers == {"X-Host": "app2"} and filled.json_body == {
        "host": "app2",
        "port": "8082",
        "n": 1,
    }
    command = fill(CommandCheck("svc", "systemctl is-active app@{host.vars.port} && echo {host}"), HOST)
    assert (
        isinstance(command, CommandCheck) and command.command == "systemctl is-active app@8082 && echo app2"
    )
    quoted = fill(CommandCheck("svc", "echo {capture.id}"), {"capture.id": "$(touch x); y"})
    assert isinstance(quoted, CommandCheck) and quoted.command == "echo '$(touch x); y'"


def test_only_the_known_namespaces_are_placeholders() -> None:
    promql = 'sum(rate(http_requests_total{job="web",instance="{host.address}:9100"}[5m]))'
    check = PrometheusCheck("errors", "http://prom:9090", promql, parse_condition("result < 1"))
    assert placeholders(promql) == ["host.address"]
    filled = fill(check, HOST)
    assert isinstance(filled, PrometheusCheck)
    assert filled.query == 'sum(rate(http_requests_total{job="web",instance="10.0.0.2:9100"}[5m]))'
    assert placeholders("{env} {ref} {{x}} {capture.a-b}") == []


def test_captured_values_are_encoded_for_where_they_go() -> None:
    values = {"capture.id": "../admin?x=1", "capture.n": 42, "secret.TOKEN": "s3cr3t/+"}
    check = HttpCheck(
        "approve", "https://api/jobs/{capture.id}/approve?t={secret.TOKEN}",
        headers={"Authorization": "Bearer {secret.TOKEN}"}, json_body={"n": "{capture.n}", "text": "n={capture.n}"},
    )  # fmt: skip
    filled = fill(check, values)
    assert isinstance(filled, HttpCheck)
    assert filled.url == "https://api/jobs/..%2Fadmin%3Fx%3D1/approve?t=s3cr3t%2F%2B"
    assert filled.headers == {"Authorization": "Bearer s3cr3t/+"}
    assert filled.json_body == {"n": 42, "text": "n=42"}  # a whole-placeholder string keeps the number
    with pytest.raises(FillError):
        fill(HttpCheck("x", "http://h/", headers={"X": "{capture.id}"}), {"capture.id": "a\r\nInjected: 1"})


def test_a_value_is_never_scanned_again() -> None:
    filled = fill(HttpCheck("x", "http://h/{capture.id}"), {"capture.id": "{secret.T}", "secret.T": "leak"})
    assert isinstance(filled, HttpCheck) and filled.url == "http://h/%7Bsecret.T%7D"


def test_a_check_that_uses_a_capture_runs_after_the_one_that_captures_it() -> None:
    approve = HttpCheck("approve", "http://h/jobs/{capture.job_id}/approve")
    create = HttpCheck("create", "http://h/jobs", json_body={}, capture={"job_id": "id"})
    other = HttpCheck("health", "http://h/health")
    assert waves([approve, create, other]) == [[1, 2], [0]]
    looped = HttpCheck("a", "http://h/{capture.b}", capture={"a": "x"})
    assert waves([looped, HttpCheck("b", "http://h/{capture.a}", capture={"b": "y"})]) == [[0, 1]]


def test_post_with_a_token_then_approve_the_job_by_the_id_it_returned(demo_app: DemoApp) -> None:
    demo_app.fault("TOKEN", "tok-123456")
    values = {"secret.API_TOKEN": "tok-123456"}
    auth = {"Authorization": "Bearer {secret.API_TOKEN}"}
    create = HttpCheck(
        "create-job", f"{demo_app.url}/jobs", method="POST", expect_status=201, headers=auth,
        json_body={"kind": "smoke", "priority": 1}, capture={"job_id": "id"},
    )  # fmt: skip
    approve = HttpCheck(
        "approve-job", f"{demo_app.url}/jobs/{{capture.job_id}}/approve", method="POST", headers=auth,
        json_field="status", json_equals="approved",
    )  # fmt: skip
    first, second = run_checks([approve, create], env={}, values=values)  # written in any order
    assert second.ok and second.captured == {"job_id": "1"}
    assert first.ok, first.summary()
    job = run_check(HttpCheck("job", f"{demo_app.url}/jobs/1", headers={"Authorization": "Bearer tok-123456"},
                              json_field="job.kind", json_equals="smoke"), env={})  # fmt: skip
    assert job.ok, job.summary()
    # Without the token the POST is refused; the approve check then has no id and says so.
    refused, waiting = run_checks([create, approve], env={}, values={"secret.API_TOKEN": "wrong-token"})
    assert not refused.ok and "got 401" in (refused.error or "") and "wrong-token" not in refused.summary()
    assert not waiting.ok and "{capture.job_id}: no value captured yet" in (waiting.error or "")


def test_json_fields_compare_numerically(demo_app: DemoApp) -> None:
    url = f"{demo_app.url}/jobs"
    created = run_check(HttpCheck("c", url, "POST", 201, json_body={"p": 1}, capture={"id": "id"}), env={})
    assert created.ok
    job = f"{demo_app.url}/jobs/{created.captured['id']}"
    ok = run_check(HttpCheck("p", job, json_field="job.p", op="<", expect=5), env={})
    assert ok.ok
    too_high = run_check(HttpCheck("p", job, json_field="job.p", op=">=", expect=2), env={})
    assert not too_high.ok and too_high.error == "JSON job.p=1 is not >= 2"
    missing = run_check(HttpCheck("p", job, json_field="job.nope", op="<", expect=5), env={})
    assert not missing.ok and missing.error == "JSON field job.nope is missing"
