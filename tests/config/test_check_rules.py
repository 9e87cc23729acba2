"""What a check says beside its probe, read from TOML: Prometheus and metrics tables, when a
check applies, how its failures count, per-host checks, captures and secrets; and every
problem with its key path."""

from __future__ import annotations

import tomllib

import pytest

from bot.config import ConfigError, Environment, parse_config
from runners.checks import CommandCheck, HttpCheck, Limit, MetricsCheck, PrometheusCheck

BASE = """
[environments.prod]
backend = "local"
hosts = [
  { name = "app1", address = "10.0.0.1", roles = ["web"], vars = { port = "8081" } },
  { name = "app2", address = "10.0.0.2", roles = ["web"], vars = { port = 8082 } },
  { name = "db1", address = "10.0.0.9", roles = ["db"] },
]
[[environments.prod.steps.deploy]]
name = "migrate"
run = "true"
[[environments.prod.steps.rollback]]
name = "migrate back"
run = "true"
"""
P = "environments.prod.checks[0]"


def env(checks: str, extra: str = "") -> Environment:
    """The environment with `checks` (tables) and `extra` (keys of the environment's own table)."""
    text = BASE.replace("[environments.prod]\n", "[environments.prod]\n" + extra, 1)
    return parse_config(tomllib.loads(text + checks), environ={}).environments["prod"]


def problems(checks: str, extra: str = "") -> list[str]:
    with pytest.raises(ConfigError) as err:
        env(checks, extra)
    return err.value.problems


def test_prometheus_and_metrics_checks_load() -> None:
    e = env(
        """
[[environments.prod.checks]]
name = "errors"
type = "prometheus"
query = 'sum(rate(http_errors_total{job="shop"}[5m])) / sum(rate(http_requests_total{job="shop"}[5m]))'
condition = "result < 0.1"
on_no_data = "inconclusive"
failure_limit = 2
consecutive = false
inconclusive_limit = 3
[[environments.prod.checks]]
name = "failure-rate"
type = "metrics"
url = "http://{host.address}:{host.vars.port}/metrics"
metric = "http_request_failures"
per = "http_requests"
rate = true
labels = { path = "/api" }
condition = "result < 5%"
roles = ["web"]
""",
        extra='prometheus_url = "http://prom:9090/prefix"\n',
    )
    prom, rate = e.checks
    assert isinstance(prom, PrometheusCheck) and prom.prometheus_url == "http://prom:9090/prefix"
    assert prom.on_no_data == "inconclusive" and prom.condition.holds(0.05) and not prom.condition.holds(0.1)
    assert e.rule("errors").limit == Limit(failures=2, consecutive=False, inconclusive=3)
    assert isinstance(rate, MetricsCheck) and rate.rate and rate.per == "http_requests"
    assert rate.labels == {"path": "/api"} and e.rule("failure-rate").per_host
    assert [h.name for h in e.rule("failure-rate@app2").hosts(e.hosts)] == ["app1", "app2"]


def test_bad_metric_checks_get_their_key_paths() -> None:
    found = problems(
        """
[[environments.prod.checks]]
name = "errors"
type = "prometheus"
query = "up"
condition = "result <"
[[environments.prod.checks]]
name = "m"
type = "metrics"
url = "http://app/metrics"
metric = "bad-name"
condition = "res < 1"
on_no_data = "maybe"
"""
    )
    assert (
        f"{P}.prometheus_url: required: the Prometheus server to query (or set environments.prod.prometheus_url)"
        in found
    )
    assert f"{P}.condition: does not parse: the condition ends too early (write e.g. `result < 0.1`)" in found
    q = "environments.prod.checks[1]"
    assert f"{q}.metric: must be a metric name like http_requests_total" in found
    assert any(p.startswith(f"{q}.condition: does not parse: unknown name 'res'") for p in found)
    assert f"{q}.on_no_data: must be one of: fail, pass, inconclusive" in found


def test_when_a_check_applies() -> None:
    e = env(
        """
[[environments.prod.checks]]
name = "columns"
type = "command"
command = "true"
since = "v2"
after = "migrate"
[[environments.prod.checks]]
name = "old-schema"
type = "command"
command = "true"
on = "rollback"
[[environments.prod.checks]]
name = "svc"
type = "command"
command = "true"
on = "all"
"""
    )
    columns, old, svc = (e.rule(c.name) for c in e.checks)
    assert columns.on == ("deploy",) and columns.since == "v2" and columns.after == "migrate"
    assert (
        columns.applies("deploy", "v2.1")
        and not columns.applies("deploy", "v1")
        and not columns.applies("rollback", "v3")
    )
    assert columns.applies("deploy", "main")  # a branch: the order cannot be told, the check stays
    assert old.on == ("rollback",)
    assert (
        isinstance(e.checks[2], CommandCheck) and e.checks[2].on == "all" and svc.on == ("deploy", "rollback")
    )


def test_scope_problems_name_the_steps_and_phases() -> None:
    found = problems(
        """
[[environments.prod.checks]]
name = "a"
type = "command"
command = "true"
after = "migrat"
on = ["deploy", "canary"]
since = "main"
[[environments.prod.checks]]
name = "b"
type = "command"
command = "true"
after = "migrate back"
on = ["deploy"]
"""
    )
    assert f"{P}.after: no step named 'migrat' (steps: migrate, migrate back)" in found
    assert any(
        p.startswith(f'{P}.on: must be "deploy", "rollback" or a list of them, e.g. on = ["deploy"]')
        for p in found
    )
    assert f"{P}.since: 'main' holds no version: write the first release it applies to, like \"v2\"" in found
    assert (
        "environments.prod.checks[1].after: step 'migrate back' runs only in rollbacks, but on = ['deploy']"
        in found
    )


def test_per_host_checks_captures_and_secrets() -> None:
    e = env(
        """
[[environments.prod.checks]]
name = "create-job"
type = "http"
url = "https://api.example.com/jobs"
json = { kind = "smoke", n = 1 }
headers = { Authorization = "Bearer {secret.SHOP_TOKEN}" }
expect_status = 201
capture = { job_id = "id" }
[[environments.prod.checks]]
name = "approve-job"
type = "http"
url = "https://api.example.com/jobs/{capture.job_id}/approve"
body = "yes"
headers = { X-Key = "{secret.OWN_KEY}" }
secrets = ["OWN_KEY"]
json_field = "latency_ms"
expect = "< 500"
[[environments.prod.checks]]
name = "health"
type = "http"
url = "http://{host.address}:{host.vars.port}/health"
roles = ["web"]
""",
        extra='secrets = ["SHOP_TOKEN"]\n',
    )
    create, approve, _ = e.checks
    assert (
        isinstance(create, HttpCheck)
        and create.method == "POST"
        and create.json_body == {"kind": "smoke", "n": 1}
    )
    assert create.capture == {"job_id": "id"}
    assert isinstance(approve, HttpCheck) and approve.method == "POST" and approve.body == "yes"
    assert (approve.op, approve.expect) == ("<", 500) and e.rule("approve-job").secrets == ("OWN_KEY",)
    assert e.rule("health").per_host and e.rule("health").roles == ("web",)


def test_placeholder_problems() -> None:
    found = problems(
        """
[[environments.prod.checks]]
name = "health"
type = "http"
url = "http://{host.address}:{host.vars.port}/health"
headers = { Authorization = "Bearer {secret.TOKEN}" }
[[environments.prod.checks]]
name = "errors"
type = "prometheus"
prometheus_url = "http://prom:9090"
query = 'up{instance="{capture.job_id}"}'
condition = "result > 0"
[[environments.prod.checks]]
name = "lonely"
type = "http"
url = "http://{host}/"
roles = ["cache"]
[[[environments.prod.steps.verify]]]
""".replace("[[[environments.prod.steps.verify]]]\n", "")
    )
    assert f"{P}.url: unknown host var {{host.vars.port}}: db1 has no vars.port" in found
    assert f"{P}.headers: {{secret.TOKEN}} is not a secret of this check: add 'TOKEN' to its secrets" in found
    q = "environments.prod.checks[1]"
    assert f"{q}.query: {{capture.job_id}}: a captured value cannot go into a query" in found
    assert "environments.prod.checks[2].roles: no host has role 'cache' (roles: db, web)" in found


def test_a_capture_nobody_makes_and_a_step_that_uses_a_capture() -> None:
    found = problems(
        """
[[environments.prod.checks]]
name = "approve"
type = "http"
url = "http://api/jobs/{capture.job_id}"
capture = { job_id = "id" }
"""
    )
    assert f"{P}.url: no other check captures 'job_id' (captured: none)" in found
    step = """
[[environments.prod.steps.verify]]
name = "cleanup"
run = "curl -X DELETE http://api/jobs/{capture.job_id}"
[[environments.prod.checks]]
name = "create"
type = "http"
url = "http://api/jobs"
json = {}
capture = { job_id = "id" }
"""
    assert env(step).stage("verify")[0].command.endswith("{capture.job_id}")
    with pytest.raises(ConfigError) as err:
        env(step.replace("{capture.job_id}", "{capture.other}"))
    assert any("unknown variable {capture.other}" in p for p in err.value.problems)
