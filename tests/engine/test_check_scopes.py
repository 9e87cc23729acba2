"""Checks written once for every host, one alert per incident, checks scoped to deploys,
rollbacks and releases, and checks that act (a POST with a token, then the next check using the
id it returned): a real engine, real local HTTP apps, real SQLite."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Config, parse_config
from bot.domain.deployment import State
from bot.engine import Engine
from bot.engine.variables import step_variables
from bot.store.sqlite import SqliteStore
from runners.backends.local import LocalBackend
from runners.base import Host, Step
from runners.pipeline import Pipeline
from runners.strategy import Strategy
from tests.support.demoapp import DemoApp
from tests.support.engines import make_engine, wait_for
from tests.support.healthapp import HealthApp
from tests.support.recording import RecordingChat

FLEET = """
[bot]
data_dir = "{data}"
[environments.web]
backend = "local"
hosts = [{hosts}]
auto_rollback = true
rollback_grace = "{grace}"
on_call = ["U0ONCALL"]
[environments.web.approvals]
rollback_required = 0
[environments.web.monitor]
interval = "0.3s"
duration = "{duration}"
failure_limit = {limit}
[[environments.web.steps.deploy]]
name = "ship"
run = "true"
[[environments.web.steps.rollback]]
name = "back"
run = "true"
[[environments.web.checks]]
name = "health"
type = "http"
url = "http://{{host.address}}:{{host.vars.port}}/health"
timeout = 2
"""


@pytest.fixture
def fleet() -> Iterator[list[HealthApp]]:
    apps = [HealthApp() for _ in range(3)]
    yield apps
    for app in apps:
        app.close()


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for e in made:
        e.shutdown(grace=5)


def fleet_config(
    tmp_path: Path,
    apps: list[HealthApp],
    *,
    duration: str = "30s",
    limit: int = 2,
    extra: str = "",
    grace: str = "0",
) -> Config:
    hosts = ", ".join(
        f'{{ name = "app{i + 1}", address = "127.0.0.1", vars = {{ port = "{app.port}" }} }}'
        for i, app in enumerate(apps)
    )
    text = (
        FLEET.format(data=tmp_path / "data", hosts=hosts, duration=duration, limit=limit, grace=grace) + extra
    )
    return parse_config(tomllib.loads(text), source=tmp_path / "gonogo.toml", environ={})


def start(config: Config, tmp_path: Path, engines: list[Engine], chat: RecordingChat) -> Engine:
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), chat)
    e.start()
    engines.append(e)
    return e


def ship(e: Engine, ref: str, requester: str = "alice") -> int:
    d = e.request_deploy(requester, "#deploys", "web", ref)
    e.approve("bob", d.id)
    e.wait_idle(60)
    return d.id


def names(e: Engine, deployment_id: int, round_no: int | None = None) -> set[str]:
    return {c.name for c in e.store.check_results(deployment_id=deployment_id, round=round_no, limit=500)}


def test_a_check_written_once_runs_on_each_of_3_hosts_and_one_incident_makes_one_alert(
    tmp_path: Path, fleet: list[HealthApp], engines: list[Engine]
) -> None:
    chat = RecordingChat()
    e = start(fleet_config(tmp_path, fleet, grace="1s"), tmp_path, engines, chat)
    first = ship(e, "v1")
    assert names(e, first, 0) == {"health@app1", "health@app2", "health@app3"}
    e.abort("bob", "web")
    second = ship(e, "v2", requester="carol")
    assert e.deployment(second).state == State.MONITORING
    fleet[1].set_status(503)
    fleet[2].set_status(503)
    wait_for(lambda: e.deployment(second).state == State.FAILED, timeout=60, what="the failed window")
    for app in fleet:
        app.reset()  # what the rollback puts back is healthy (it starts after the grace period)
    wait_for(lambda: e.deployment(second).state == State.ROLLED_BACK, timeout=60, what="the rollback")
    e.wait_idle(60)

    (alert,) = [
        m for m in chat.of_kind("message") if m.deployment_id == second
    ]  # one post, not one per check
    assert alert.mentions == ("carol", "U0ONCALL")
    assert (
        "2 checks failing while monitoring" in alert.text
        and "health@app2 (1/2), health@app3 (1/2)" in alert.text
    )
    updates = [m for m in chat.of_kind("message_update") if m.ts == alert.ts]
    final = updates[-1].text
    assert (
        "FAILED: monitoring: health@app2 ✗ expected status 200, got 503" in final and "health@app3 ✗" in final
    )
    assert (
        "health@app1" not in final and "Rolling back automatically in 1s unless someone presses Hold" in final
    )
    assert "↩️ Rollback #3 to #1 started automatically." in final
    assert final.endswith("✅ Rolled back by #3: web runs v1 again.")
    details = "\n".join(m.text for m in chat.of_kind("thread") if m.ts == alert.ts)
    assert "• health@app2 ✗ expected status 200, got 503" in details and "• health@app3 ✗" in details


def test_checks_that_recover_update_the_alert_and_end_the_incident(
    tmp_path: Path, fleet: list[HealthApp], engines: list[Engine]
) -> None:
    chat = RecordingChat()
    e = start(fleet_config(tmp_path, fleet, limit=50), tmp_path, engines, chat)
    d = ship(e, "v1")
    fleet[1].set_status(503)
    wait_for(
        lambda: [m for m in chat.of_kind("message") if m.deployment_id == d], what="the incident's alert"
    )
    fleet[1].reset()
    (alert,) = [m for m in chat.of_kind("message") if m.deployment_id == d]
    wait_for(lambda: "✅ Recovered" in chat.message(alert.ts or "").text, what="the recovery")
    assert "health@app2 passing again" in chat.message(alert.ts or "").text
    assert e.deployment(d).details.incident is None and e.deployment(d).state == State.MONITORING
    fleet[0].set_status(500)  # a new incident gets a new alert
    wait_for(
        lambda: len([m for m in chat.of_kind("message") if m.deployment_id == d]) == 2, what="a second alert"
    )


SCOPED = """
[[environments.web.checks]]
name = "new-schema"
type = "http"
url = "{url}"
since = "v2"
[[environments.web.checks]]
name = "deploy-only"
type = "http"
url = "{url}"
on = ["deploy"]
[[environments.web.checks]]
name = "rollback-only"
type = "http"
url = "{url}"
on = "rollback"
[[environments.web.checks]]
name = "after-ship"
type = "http"
url = "{url}"
after = "ship"
"""


def test_scoped_checks_on_deploy_and_on_a_rollback_to_an_older_release(
    tmp_path: Path, fleet: list[HealthApp], engines: list[Engine]
) -> None:
    chat = RecordingChat()
    config = fleet_config(tmp_path, fleet[:1], duration="0", extra=SCOPED.format(url=fleet[0].health_url))
    e = start(config, tmp_path, engines, chat)
    v1 = ship(e, "v1")
    assert names(e, v1) == {"health@app1", "deploy-only", "after-ship"}  # new-schema starts at v2
    v2 = ship(e, "v2")
    assert names(e, v2) == {"health@app1", "deploy-only", "after-ship", "new-schema"}
    rollback = e.request_rollback("bob", "#deploys", "web")
    e.wait_idle(60)
    assert e.deployment(rollback.id).state == State.SUCCEEDED and e.deployment(rollback.id).ref == "v1"
    # the rollback's smoke checks are those of the release it returns to
    assert names(e, rollback.id) == {"health@app1", "rollback-only"}
    thread = "\n".join(m.text for m in chat.of_kind("thread") if m.deployment_id == rollback.id)
    assert "Not for this rollback of v1: new-schema, deploy-only, after-ship" in thread


def test_smoke_checks_that_post_with_a_token_and_approve_by_the_returned_id(
    tmp_path: Path, engines: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "tok-5f3a9c1e"
    monkeypatch.setenv("SHOP_API_TOKEN", token)
    with DemoApp(tmp_path / "app") as app:
        app.fault("TOKEN", token)
        extra = f"""
[[environments.web.checks]]
name = "create-job"
type = "http"
url = "{app.url}/jobs"
json = {{ kind = "smoke", priority = 1 }}
headers = {{ Authorization = "Bearer {{secret.SHOP_API_TOKEN}}" }}
secrets = ["SHOP_API_TOKEN"]
expect_status = 201
capture = {{ job_id = "id" }}
[[environments.web.checks]]
name = "approve-job"
type = "http"
url = "{app.url}/jobs/{{capture.job_id}}/approve"
method = "POST"
headers = {{ Authorization = "Bearer {{secret.SHOP_API_TOKEN}}" }}
secrets = ["SHOP_API_TOKEN"]
json_field = "status"
json_equals = "approved"
"""
        with HealthApp() as one:
            chat = RecordingChat()
            config = fleet_config(tmp_path, [one], duration="0", extra=extra)
            e = start(config, tmp_path, engines, chat)
            d = ship(e, "v1")
    deployed = e.deployment(d)
    assert deployed.state == State.SUCCEEDED, deployed.error
    assert deployed.details.captures == {"job_id": "1"}
    results = e.store.check_results(deployment_id=d, limit=50)
    assert {r.name for r in results if r.ok} == {"health@app1", "create-job", "approve-job"}
    assert not any(token in (r.error or "") + (r.observed or "") for r in results)
    assert "Captured: job_id = 1" in "\n".join(m.text for m in chat.of_kind("thread"))

    # Later steps see the captured value as {capture.job_id}, shell-quoted like every placeholder.
    env = config.environments["web"]
    variables = step_variables(config, env, deployed, None)
    assert variables["capture.job_id"] == "1"
    out = tmp_path / "job.txt"
    step = Step("cleanup", f"printf %s {{capture.job_id}} > {out}")
    pipeline = Pipeline(LocalBackend(), [Host("h", "localhost")], Strategy(), variables)
    try:
        assert pipeline.run_stage("verify", [step]).ok
    finally:
        pipeline.close()
    assert out.read_text() == "1"


def test_a_check_after_a_step_runs_right_after_it_and_what_it_captures_reaches_the_next_steps(
    tmp_path: Path, engines: list[Engine]
) -> None:
    out = tmp_path / "job.txt"
    with DemoApp(tmp_path / "app") as app, HealthApp() as one:
        steps = f"""
[[environments.web.steps.deploy]]
name = "use the job"
run = "printf %s {{capture.job_id}} > {out}"
[[environments.web.checks]]
name = "create-job"
type = "http"
url = "{app.url}/jobs"
json = {{ kind = "smoke" }}
expect_status = 201
capture = {{ job_id = "id" }}
after = "ship"
"""
        config = fleet_config(tmp_path, [one], duration="0", extra=steps)
        chat = RecordingChat()
        e = start(config, tmp_path, engines, chat)
        d = ship(e, "v1")
        assert e.deployment(d).state == State.SUCCEEDED, e.deployment(d).error
        assert out.read_text() == "1"  # the step after `ship` got the id the check captured
        assert "Verify deploy › ship: create-job ✓ 201" in "\n".join(m.text for m in chat.of_kind("thread"))

        app.fault("FAIL_RATE", "1")  # the check after `ship` now fails: the deploy stops there
        out.unlink()
        failed = ship(e, "v2")
    assert e.deployment(failed).state in (State.FAILED, State.ROLLED_BACK)
    assert "verify failed: create-job ✗ expected status 201, got 500" in (e.deployment(failed).error or "")
    assert not out.exists()  # nothing after the failed step ran


def test_a_per_host_check_after_a_step_probes_only_the_hosts_of_that_batch(
    tmp_path: Path, fleet: list[HealthApp], engines: list[Engine]
) -> None:
    """Host by host: after `ship` on app1 only app1 is probed (app3 is restarted later)."""
    extra = """
[environments.web.strategy]
kind = "sequential"
[[environments.web.checks]]
name = "probe"
type = "http"
url = "http://{host.address}:{host.vars.port}/health"
after = "ship"
"""
    fleet[2].set_status(503)  # app3 fails its probe: its own batch stops the deploy, not app1's
    chat = RecordingChat()
    e = start(fleet_config(tmp_path, fleet, duration="0", extra=extra), tmp_path, engines, chat)
    d = e.deployment(ship(e, "v1"))
    assert d.state == State.FAILED and d.error is not None
    assert d.error.startswith("deploy › ship: verify failed: probe@app3 ✗"), d.error
    verified = [m.text for m in chat.of_kind("thread") if m.text.startswith("Verify deploy › ship")]
    assert [v.split(": ", 1)[1].split(" ✓")[0].split(" ✗")[0] for v in verified] == [
        "probe@app1",
        "probe@app2",
        "probe@app3",
    ], verified
