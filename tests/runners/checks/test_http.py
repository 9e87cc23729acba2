"""HTTP checks against a real local HTTP app."""

from __future__ import annotations

import time

import httpx

from runners.checks import HttpCheck, run_check
from tests.runners.checks.helpers import closed_port
from tests.support.healthapp import HealthApp


def test_healthy_http_check(app: HealthApp) -> None:
    res = run_check(HttpCheck("health", app.health_url), env={})
    assert res.ok and res.observed == "200" and res.error is None
    assert res.kind == "http" and res.name == "health"
    assert res.at.tzinfo is not None and res.at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert res.summary().startswith("health ✓ 200 (") and res.summary().endswith(" ms)")
    assert app.hits == 1


def test_503_fails_with_observed_status(app: HealthApp) -> None:
    app.set_status(503)
    res = run_check(HttpCheck("health", app.health_url), env={})
    assert not res.ok
    assert res.observed == "503"
    assert res.error == "expected status 200, got 503"
    assert "✗" in res.summary() and "503" in res.summary()
    assert run_check(HttpCheck("maint", app.health_url, expect_status=503), env={}).ok


def test_body_contains_and_json_field(app: HealthApp) -> None:
    app.set_body({"status": "ok", "db": {"ok": False, "lag": 3}, "items": [{"up": True}]})
    assert run_check(HttpCheck("b", app.health_url, body_contains='"status": "ok"'), env={}).ok
    res = run_check(HttpCheck("b", app.health_url, body_contains="healthy"), env={})
    assert not res.ok and res.error == "body does not contain 'healthy'"

    assert run_check(HttpCheck("j", app.health_url, json_field="status", json_equals="ok"), env={}).ok
    assert run_check(HttpCheck("j", app.health_url, json_field="db.lag", json_equals=3.0), env={}).ok
    assert run_check(HttpCheck("j", app.health_url, json_field="items.0.up"), env={}).ok
    res = run_check(HttpCheck("j", app.health_url, json_field="db.ok"), env={})
    assert not res.ok and res.observed == "db.ok=false" and "expected a true value" in (res.error or "")
    res = run_check(HttpCheck("j", app.health_url, json_field="db.ok", json_equals=True), env={})
    assert not res.ok and res.error == "JSON db.ok=false, expected true"
    assert res.summary().startswith("j ✗ JSON db.ok=false, expected true (")
    res = run_check(HttpCheck("j", app.health_url, json_field="db.missing"), env={})
    assert not res.ok and res.error == "JSON field db.missing is missing"
    assert not run_check(HttpCheck("j", app.health_url, json_field="db.lag", json_equals="3"), env={}).ok

    app.set_body("not json at all")
    res = run_check(HttpCheck("j", app.health_url, json_field="status"), env={})
    assert not res.ok and res.error == "response body is not valid JSON"


def test_slow_response_fails_max_latency(app: HealthApp) -> None:
    app.set_delay(0.3)
    res = run_check(HttpCheck("slow", app.health_url, max_latency=0.1), env={})
    assert not res.ok
    assert res.observed is not None and res.observed.startswith("latency 0.")
    assert res.error is not None and "over limit 0.10s" in res.error
    assert res.latency >= 0.3
    assert run_check(HttpCheck("slow", app.health_url, max_latency=5), env={}).ok


def test_unreachable_target_is_a_failure_not_a_crash() -> None:
    port = closed_port()
    res = run_check(HttpCheck("down", f"http://127.0.0.1:{port}/health", timeout=2), env={})
    assert not res.ok and res.observed is None
    assert res.error == f"connection refused to 127.0.0.1:{port}"
    assert "connection refused" in res.summary()


def test_timeout(app: HealthApp) -> None:
    app.set_delay(2)
    started = time.perf_counter()
    res = run_check(HttpCheck("hang", app.health_url, timeout=0.3), env={})
    assert time.perf_counter() - started < 1.5
    assert not res.ok and res.error == f"timeout after 0.3s waiting for 127.0.0.1:{app.port}"


def test_tls_error_and_bad_urls(app: HealthApp) -> None:
    res = run_check(HttpCheck("tls", f"https://127.0.0.1:{app.port}/health", timeout=2), env={})
    assert not res.ok and (res.error or "").startswith(f"TLS error with 127.0.0.1:{app.port}")
    res = run_check(HttpCheck("bad", "ftp://example.com/x"), env={})
    assert not res.ok and (res.error or "").startswith("invalid URL")
    res = run_check(HttpCheck("dns", "http://no-such-host.invalid/health", timeout=3), env={})
    assert not res.ok and res.error  # "DNS lookup failed for no-such-host.invalid" where DNS answers


def test_header_values_and_url_password_are_redacted(app: HealthApp) -> None:
    token = "s3cr3t-token-value"
    check = HttpCheck("h", app.health_url, headers={"Authorization": f"Bearer {token}"})
    assert token not in repr(check)
    assert run_check(check, env={}).ok
    bad = HttpCheck("h", app.health_url, headers={"X-Token": "bad\nvalue-secret"})
    res = run_check(bad, env={})
    assert not res.ok and "value-secret" not in str(res)
    port = closed_port()
    res = run_check(HttpCheck("p", f"http://user:hunter2pw@127.0.0.1:{port}/"), env={})
    assert not res.ok and "hunter2pw" not in str(res)


def test_given_client_is_used(app: HealthApp) -> None:
    with httpx.Client() as client:
        assert run_check(HttpCheck("c", app.health_url), env={}, http_client=client).ok


def test_healthapp_version_and_404(app: HealthApp) -> None:
    app.set_version("v9")
    assert httpx.get(f"{app.url}/version").json() == {"version": "v9"}
    assert httpx.get(f"{app.url}/nope").status_code == 404
    assert app.hits == 2
