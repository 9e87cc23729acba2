"""The CI gate, the GitHub mirror and paging, through the real engine (SQLite, local backend)
against a local server answering as GitHub and PagerDuty do (`tests.support.vendors`)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app.wiring import integrations_for
from bot.config import Config, parse_config
from bot.domain.deployment import State
from bot.engine import Engine, Refused
from bot.store.sqlite import SqliteStore
from tests.support.engines import make_engine
from tests.support.recording import RecordingChat
from tests.support.vendors import ENVIRON, ROUTING_KEY, Vendors, config_toml, start_vendors, stop_vendors

CONFIG = """
[bot]
data_dir = "{data}"

[environments.staging]
backend = "local"
hosts = ["h1"]
deploy_to = "{data}/staging"
required_contexts = ["ci/build", "ci/test"]
break_glass = ["alice"]
page = true
[environments.staging.approvals]
required = 1
[[environments.staging.steps.deploy]]
name = "maybe fail"
run = "test ! -e {data}/fail"
[[environments.staging.steps.rollback]]
name = "rollback"
run = "test ! -e {data}/fail-rollback"
"""


@pytest.fixture
def vendors() -> Iterator[Vendors]:
    fake = start_vendors()
    yield fake
    stop_vendors(fake)


def _config(tmp_path: Path, vendors: Vendors) -> Config:
    text = CONFIG.format(data=tmp_path) + config_toml(vendors)
    return parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ=ENVIRON)


def _engine(
    tmp_path: Path, vendors: Vendors, chat: RecordingChat, environ: dict[str, str] | None = None
) -> Engine:
    config = _config(tmp_path, vendors)
    return make_engine(
        config,
        SqliteStore(tmp_path / "db.sqlite"),
        chat,
        integrations=integrations_for(config, environ or ENVIRON),
    )


@pytest.fixture
def engine(tmp_path: Path, vendors: Vendors, chat: RecordingChat) -> Iterator[Engine]:
    e = _engine(tmp_path, vendors, chat)
    yield e
    e.shutdown()


def green(vendors: Vendors, ref: str) -> None:
    vendors.set_status(ref, "ci/build", "success")
    vendors.set_check_run(ref, "ci/test", "completed", "success")


def deliver(engine: Engine, seconds: float = 0) -> None:
    """Fire whatever the scheduler has due (deliveries, polls) `seconds` from now."""
    engine.scheduler.run_due(engine.now() + timedelta(seconds=seconds))


def last_card_text(chat: RecordingChat) -> str:
    card = [m for m in chat.messages if m.kind in ("card", "update")][-1].card
    assert card is not None
    return "\n".join([*card.lines, *(f"{link.text} {link.url}" for link in card.links)])


# -- the CI gate -------------------------------------------------------------------------------
def test_a_red_required_context_refuses_go_and_the_card_updates_when_it_turns(
    engine: Engine, vendors: Vendors, chat: RecordingChat
) -> None:
    vendors.set_status("v1", "ci/build", "success")
    vendors.set_check_run("v1", "ci/test", "completed", "failure")
    d = engine.request_deploy("alice", "#deploys", "staging", "v1")
    text = last_card_text(chat)
    assert "CI: ❌ failing: ci/test" in text
    assert "ci/test (failure) https://github.example/acme/shop/runs/" in text  # linked
    with pytest.raises(Refused, match="CI is failing: ci/test"):
        engine.approve("bob", d.id)
    assert engine.deployment(d.id).state == State.PENDING
    assert [e.action for e in engine.store.events(deployment_id=d.id)][-1] == "refused_approve"

    vendors.set_check_run("v1", "ci/test", "completed", "success")
    deliver(engine, 2)  # the poll, by the scheduler (no thread per card)
    assert "CI: ✅ passed (ci/build, ci/test)" in last_card_text(chat)
    assert any("Go is open" in m.text for m in chat.of_kind("thread"))
    engine.approve("bob", d.id)
    engine.wait_idle(30)
    assert engine.deployment(d.id).state == State.SUCCEEDED


def test_pending_holds_go_and_a_fresh_look_at_go_lets_it_through(
    engine: Engine, vendors: Vendors, chat: RecordingChat
) -> None:
    vendors.set_status("v1", "ci/build", "success")  # ci/test has not reported yet
    d = engine.request_deploy("alice", "#deploys", "staging", "v1")
    assert "pending: ci/test (not reported yet)" in last_card_text(chat)
    with pytest.raises(Refused, match="CI is still running"):
        engine.approve("bob", d.id)
    vendors.set_check_run("v1", "ci/test", "in_progress")
    deliver(engine, 2)
    assert "CI: ⏳ pending: ci/test" in last_card_text(chat)
    vendors.set_check_run("v1", "ci/test", "completed", "success")
    engine.approve("bob", d.id)  # asked again at Go: no waiting for the next poll
    engine.wait_idle(30)
    assert engine.deployment(d.id).state == State.SUCCEEDED


def test_force_records_the_override_and_needs_one_more_approval(
    engine: Engine, vendors: Vendors, chat: RecordingChat
) -> None:
    vendors.set_status("v1", "ci/build", "failure")
    d = engine.request_deploy("alice", "#deploys", "staging", "v1", force=True)
    d = engine.deployment(d.id)
    assert d.required_approvals == 2 and d.details.ignored_safeties == ("required CI contexts",)
    card = [m for m in chat.messages if m.kind in ("card", "update")][-1].card
    assert card is not None and any("required CI contexts" in w for w in card.warnings)
    assert engine.approve("bob", d.id).state == State.PENDING
    engine.approve("carol", d.id)
    engine.wait_idle(30)
    assert engine.deployment(d.id).state == State.SUCCEEDED


@pytest.mark.parametrize(
    ("fault", "needle"),
    [
        ("token", "GitHub refused the credentials (401: Bad credentials) (check TEST_GITHUB_TOKEN)"),
        ("503", "GitHub had an error (503: Server Error)"),
        ("404", "GitHub found nothing there (404"),
        ("slow", "GitHub did not answer within 2s"),
        ("down", "cannot reach GitHub at http://127.0.0.1:"),
    ],
)
def test_api_errors_give_a_clear_card_line_never_a_stuck_card(
    tmp_path: Path, vendors: Vendors, chat: RecordingChat, fault: str, needle: str
) -> None:
    environ = dict(ENVIRON, TEST_GITHUB_TOKEN="wrong") if fault == "token" else ENVIRON
    e = _engine(tmp_path, vendors, chat, environ)
    try:
        if fault in ("503", "404"):
            vendors.fail_next(
                "/repos/", int(fault), body={"message": "Server Error" if fault == "503" else "Not Found"}
            )
        elif fault == "slow":
            vendors.slow_next("/repos/", 3, times=2)
        elif fault == "down":
            stop_vendors(vendors)
        d = e.request_deploy("alice", "#deploys", "staging", "v1")
        assert needle in last_card_text(chat)
        assert "CI: ⚠️ could not check" in last_card_text(chat)
        with pytest.raises(Refused, match="could not check"):
            e.approve("bob", d.id) if fault not in ("503", "404") else _refuse_on_second_fault(
                e, vendors, d.id, fault
            )
        assert e.deployment(d.id).state == State.PENDING
        assert e.store.pending_schedules()  # it keeps looking
    finally:
        e.shutdown()


def _refuse_on_second_fault(e: Engine, vendors: Vendors, deployment_id: int, fault: str) -> None:
    vendors.fail_next("/repos/", int(fault))
    e.approve("bob", deployment_id)


# -- deployments mirrored to GitHub --------------------------------------------------------------
def test_a_deploy_mirrors_every_status_with_links_to_the_web_view(
    engine: Engine, vendors: Vendors, chat: RecordingChat
) -> None:
    green(vendors, "v1")
    d = engine.request_deploy("alice", "#deploys", "staging", "v1", reason="ship it")
    engine.approve("bob", d.id)
    engine.wait_idle(30)
    deliver(engine)
    assert vendors.states_of(d.id) == ["queued", "in_progress", "success"]
    created = next(iter(vendors.deployments.values()))
    assert (
        created["environment"] == "staging" and created["ref"] == "v1" and created["required_contexts"] == []
    )
    assert "requested by alice" in created["description"]
    status = created["statuses"][-1]
    assert status["log_url"] == f"http://127.0.0.1:9/web/deploys/{d.id}"
    assert status["environment_url"] == "http://127.0.0.1:9/web/envs/staging"
    assert engine.deployment(d.id).details.codehost_id == str(created["id"])
    assert any("/web/deploys/" in m.text for m in chat.of_kind("thread"))  # the thread links to the view


def test_mirroring_failures_never_fail_the_deploy_are_retried_in_order_and_survive_a_restart(
    tmp_path: Path, vendors: Vendors, chat: RecordingChat
) -> None:
    green(vendors, "v1")
    e = _engine(tmp_path, vendors, chat)
    d = e.request_deploy("alice", "#deploys", "staging", "v1")
    vendors.fail_next("/repos/acme/shop/deployments", 502, times=1)
    e.approve("bob", d.id)
    e.wait_idle(30)
    assert e.deployment(d.id).state == State.SUCCEEDED  # GitHub being down changed nothing here
    deliver(e)
    assert vendors.states_of(d.id) == []
    assert any("Could not tell GitHub" in m.text and "502" in m.text for m in chat.of_kind("thread"))
    e.shutdown()

    again = _engine(tmp_path, vendors, RecordingChat())  # a new process over the same store
    try:
        deliver(again, 3600)
        deliver(again, 3600)
        assert vendors.states_of(d.id) == ["queued", "in_progress", "success"]
    finally:
        again.shutdown()


# -- paging ----------------------------------------------------------------------------------------
def test_a_failed_deploy_and_a_failed_rollback_page_and_a_healthy_release_resolves(
    engine: Engine, vendors: Vendors, tmp_path: Path
) -> None:
    green(vendors, "v1")
    green(vendors, "v2")
    first = engine.request_deploy("alice", "#deploys", "staging", "v1")
    engine.approve("bob", first.id)
    engine.wait_idle(30)
    (tmp_path / "fail").touch()
    failed = engine.request_deploy("alice", "#deploys", "staging", "v2")
    engine.approve("bob", failed.id)
    engine.wait_idle(30)
    assert engine.deployment(failed.id).state == State.FAILED
    deliver(engine)
    trigger = vendors.wait_for(lambda: vendors.events, what="a trigger")[0]
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == ROUTING_KEY
    assert trigger["dedup_key"] == f"gonogo-staging-{failed.id}"
    assert trigger["payload"]["severity"] == "critical" and "FAILED" in trigger["payload"]["summary"]
    assert vendors.hooks[0]["event"] == "trigger" and vendors.hooks[0]["key"] == trigger["dedup_key"]

    (tmp_path / "fail-rollback").touch()
    rollback = engine.rollback_failed("bob", failed.id)
    if engine.deployment(rollback.id).state == State.PENDING:
        engine.approve("carol", rollback.id)
    engine.wait_idle(30)
    assert engine.deployment(rollback.id).state == State.FAILED
    deliver(engine)
    keys = [ev["dedup_key"] for ev in vendors.events if ev["event_action"] == "trigger"]
    assert keys == [f"gonogo-staging-{failed.id}", f"gonogo-staging-{rollback.id}"]

    (tmp_path / "fail-rollback").unlink()
    (tmp_path / "fail").unlink()
    engine.unlock("alice", "staging", "fixed") if engine.store.get_lock("staging") else None
    healthy = engine.request_deploy("alice", "#deploys", "staging", "v2")
    engine.approve("bob", healthy.id)
    engine.wait_idle(30)
    deliver(engine)
    resolved = sorted(ev["dedup_key"] for ev in vendors.events if ev["event_action"] == "resolve")
    assert resolved == sorted(keys)
    assert sorted(h["key"] for h in vendors.hooks if h["event"] == "resolve") == sorted(keys)
    assert engine.integrations.paging.open_incidents("staging") == {}


def test_a_pager_that_refuses_the_routing_key_is_said_in_the_thread(
    tmp_path: Path, vendors: Vendors, chat: RecordingChat
) -> None:
    e = _engine(tmp_path, vendors, chat, dict(ENVIRON, TEST_PD_ROUTING_KEY="not-the-key"))
    try:
        green(vendors, "v1")
        (tmp_path / "fail").touch()
        d = e.request_deploy("alice", "#deploys", "staging", "v1")
        e.approve("bob", d.id)
        e.wait_idle(30)
        deliver(e)
        notes = [m.text for m in chat.of_kind("thread")]
        assert any("PagerDuty" in n and "400" in n and "routing_key" in n for n in notes), notes
        assert vendors.hooks  # the webhook still got its page
    finally:
        e.shutdown()
