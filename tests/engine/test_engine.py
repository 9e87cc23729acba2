"""The engine over real SQLite and the local backend, with a recording chat."""

from __future__ import annotations

import shlex
import threading
import tomllib
from pathlib import Path

import pytest

from bot.config import Config, parse_config
from bot.domain.deployment import State
from bot.engine.engine import Engine, Refused
from bot.store.sqlite import SqliteStore
from tests.support.recording import RecordingChat

CONFIG = """
[bot]
data_dir = "{data}"

[environments.staging]
backend = "local"
hosts = ["h1", "h2"]
deploy_to = "{data}/staging"
checklist = ["backup", "announce"]
[environments.staging.approvals]
required = 2
approvers = ["bob", "carol", "dave", "alice"]
[[environments.staging.steps.deploy]]
name = "write"
run = "mkdir -p {{release_dir}} && echo {{ref}} > {{release_dir}}/REF.{{host}}"
[[environments.staging.steps.deploy]]
name = "maybe fail"
run = "test ! -e {data}/fail-{{host}}"
[[environments.staging.steps.rollback]]
name = "rollback"
run = "echo back to {{release_id}} >> {data}/rollbacks"
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse_config(tomllib.loads(CONFIG.format(data=tmp_path)), source=tmp_path / "c.toml", environ={})


@pytest.fixture
def engine(config: Config, tmp_path: Path, chat: RecordingChat) -> Engine:
    e = Engine(config, SqliteStore(tmp_path / "db.sqlite"), chat)
    yield e
    e.shutdown()


def approve_fully(engine: Engine, deployment_id: int) -> None:
    engine.tick_all("bob", deployment_id)
    engine.approve("bob", deployment_id)
    engine.approve("carol", deployment_id)
    engine.wait_idle(30)


def test_deploy_needs_checklist_and_two_approvers_never_the_requester(
    engine: Engine, chat: RecordingChat
) -> None:
    d = engine.request_deploy("alice", "#deploys", "staging", "v1", reason="release")
    assert chat.of_kind("card")[0].card.buttons[0].label == "Go"  # type: ignore[union-attr]
    with pytest.raises(Refused, match="tick every checklist item"):
        engine.approve("bob", d.id)  # type: ignore[arg-type]
    engine.tick("bob", d.id, 1)  # type: ignore[arg-type]
    engine.tick("carol", d.id, 2)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="someone else must approve"):
        engine.approve("alice", d.id)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="not an approver"):
        engine.approve("mallory", d.id)  # type: ignore[arg-type]
    engine.approve("bob", d.id)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="already approved"):
        engine.approve("bob", d.id)  # type: ignore[arg-type]
    assert engine.deployment(d.id).state == State.PENDING  # type: ignore[arg-type]
    engine.approve("carol", d.id)  # type: ignore[arg-type]
    engine.wait_idle(30)
    done = engine.deployment(d.id)  # type: ignore[arg-type]
    assert done.state == State.SUCCEEDED
    assert done.approvers() == ["bob", "carol"]
    assert engine.status("staging")[0].current.id == d.id  # type: ignore[union-attr]
    actions = [e.action for e in engine.store.events(deployment_id=d.id)]
    assert actions[:1] == ["request_deploy"] and "refused_approve" in actions and actions[-1] == "succeed"
    # progress went into the thread, the card ended "deployed" without buttons
    assert any("deploy › write" in m.text for m in chat.of_kind("thread"))
    final = chat.last_card(d.id)  # type: ignore[arg-type]
    assert final.state == State.SUCCEEDED and not final.buttons


def test_concurrent_go_clicks_are_all_recorded_and_start_one_run(engine: Engine, tmp_path: Path) -> None:
    d = engine.request_deploy("alice", "#deploys", "staging", "v1")
    engine.tick_all("bob", d.id)  # type: ignore[arg-type]
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def click(user: str) -> None:
        barrier.wait()
        try:
            engine.approve(user, d.id)  # type: ignore[arg-type]
            outcomes.append("ok")
        except Refused as exc:
            outcomes.append(str(exc))

    threads = [
        threading.Thread(target=click, args=(u,)) for u in ["bob", "bob", "bob", "carol", "carol", "dave"]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.wait_idle(30)
    final = engine.deployment(d.id)  # type: ignore[arg-type]
    assert final.state == State.SUCCEEDED
    assert len(final.approvals) == 2 and len(set(final.approvers())) == 2
    assert outcomes.count("ok") == 2
    starts = [e for e in engine.store.events(deployment_id=d.id) if e.action == "start"]
    assert len(starts) == 1


def test_failure_stops_and_alerts_then_rollback_now_restores(
    engine: Engine, chat: RecordingChat, tmp_path: Path
) -> None:
    first = engine.request_deploy("alice", "#deploys", "staging", "v1")
    approve_fully(engine, first.id)  # type: ignore[arg-type]
    (tmp_path / "fail-h2").touch()
    bad = engine.request_deploy("alice", "#deploys", "staging", "v2")
    approve_fully(engine, bad.id)  # type: ignore[arg-type]
    failed = engine.deployment(bad.id)  # type: ignore[arg-type]
    assert failed.state == State.FAILED
    assert "h2: exit 1" in (failed.error or "")
    alert = chat.of_kind("message")[-1]
    assert "FAILED" in alert.text and "alice" in alert.mentions
    assert [b.label for b in alert.buttons] == ["Roll back now"]  # no automatic rollback here: no Hold
    # the failed deploy did not change what runs
    assert engine.status("staging")[0].current.id == first.id  # type: ignore[union-attr]
    rb = engine.rollback_failed("carol", bad.id)  # type: ignore[arg-type]
    engine.wait_idle(30)
    rb = engine.deployment(rb.id)  # type: ignore[arg-type]
    assert rb.state == State.SUCCEEDED and rb.release_id == first.id
    assert (tmp_path / "rollbacks").read_text().split() == [
        "back",
        "to",
        str(first.id),
    ] * 2  # ran on both hosts
    assert engine.deployment(bad.id).state == State.ROLLED_BACK  # type: ignore[arg-type]


def test_rollback_targets_the_previous_good_release(engine: Engine) -> None:
    with pytest.raises(Refused, match="no successful deployment"):
        engine.request_rollback("alice", "#d", "staging")
    ids = []
    for ref in ("v1", "v2", "v3"):
        d = engine.request_deploy("alice", "#d", "staging", ref)
        approve_fully(engine, d.id)  # type: ignore[arg-type]
        ids.append(d.id)
    rb = engine.request_rollback("alice", "#d", "staging")
    assert rb.ref == "v2" and rb.release_id == ids[1] and rb.rollback_of == ids[2]
    engine.approve("bob", rb.id)  # type: ignore[arg-type]
    engine.wait_idle(30)
    assert engine.status("staging")[0].current.ref == "v2"  # type: ignore[union-attr]
    # and again: back to v1, never "forward" to the rolled-back v3
    rb2 = engine.request_rollback("alice", "#d", "staging")
    assert rb2.ref == "v1"
    engine.decline("alice", rb2.id)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="not a deployment of staging"):
        engine.request_rollback("alice", "#d", "staging", target_id=999)
    by_ref = engine.request_rollback("alice", "#d", "staging", target_ref="v1")
    assert by_ref.release_id == ids[0]


def test_one_active_deployment_and_locks(engine: Engine) -> None:
    d = engine.request_deploy("alice", "#d", "staging", "v1")
    with pytest.raises(Refused, match=r"busy: deployment #1 of v1 by alice is pending"):
        engine.request_deploy("bob", "#d", "staging", "v2")
    engine.decline("bob", d.id)  # type: ignore[arg-type]
    assert engine.deployment(d.id).state == State.DECLINED  # type: ignore[arg-type]
    engine.lock("bob", "staging", "incident 42")
    with pytest.raises(Refused, match="locked by bob: incident 42"):
        engine.request_deploy("alice", "#d", "staging", "v2")
    with pytest.raises(Refused, match="already locked"):
        engine.lock("carol", "staging", "x")
    engine.unlock("carol", "staging", "resolved")
    with pytest.raises(Refused, match="not locked"):
        engine.unlock("carol", "staging", "again")
    engine.request_deploy("alice", "#d", "staging", "v2")


def test_automatic_lock_needs_a_reason_to_unlock(engine: Engine) -> None:
    engine.lock("gonogo", "staging", "locked after rollback of #4", automatic=True)
    with pytest.raises(Refused, match="with a reason"):
        engine.unlock("bob", "staging", None)
    engine.unlock("bob", "staging", "root cause fixed")


def test_pending_deployment_survives_a_restart(config: Config, tmp_path: Path) -> None:
    chat1 = RecordingChat()
    e1 = Engine(config, SqliteStore(tmp_path / "db.sqlite"), chat1)
    d = e1.request_deploy("alice", "#d", "staging", "v1")
    e1.tick_all("bob", d.id)  # type: ignore[arg-type]
    e1.approve("bob", d.id)  # type: ignore[arg-type]
    e1.shutdown()
    e1.store.close()

    chat2 = RecordingChat()
    e2 = Engine(config, SqliteStore(tmp_path / "db.sqlite"), chat2)
    e2.start()
    assert chat2.of_kind("update")[0].card.deployment_id == d.id  # type: ignore[union-attr]
    e2.approve("carol", d.id)  # type: ignore[arg-type]
    e2.wait_idle(30)
    assert e2.deployment(d.id).state == State.SUCCEEDED  # type: ignore[arg-type]
    e2.shutdown()


def test_dry_run_prints_exact_commands_and_changes_nothing(
    engine: Engine, chat: RecordingChat, tmp_path: Path
) -> None:
    d = engine.request_deploy("alice", "#d", "staging", "v1; rm -rf /", dry_run=True)
    posted = chat.of_kind("card")[0].card
    assert posted is not None and posted.buttons == () and not posted.checklist_open  # nothing to press
    engine.wait_idle(30)
    assert engine.deployment(d.id).state == State.SUCCEEDED  # type: ignore[arg-type]
    assert chat.last_card(d.id).status_line == "✅ dry run finished: nothing was changed"  # type: ignore[arg-type]
    thread = "\n".join(m.text for m in chat.of_kind("thread"))
    command = f"mkdir -p {tmp_path}/staging/releases/1 && echo 'v1; rm -rf /' > {tmp_path}/staging/releases/1/REF.h1"
    # exactly what the local backend runs: the step in /bin/sh -c, itself quoted
    assert "[h1] $ /bin/sh -c " + shlex.quote(command) in thread
    assert not (tmp_path / "staging").exists()
    assert engine.status("staging")[0].current is None


def test_a_late_refresh_never_puts_an_older_card_over_a_newer_one(
    engine: Engine, chat: RecordingChat
) -> None:
    stale = engine.request_deploy("alice", "#deploys", "staging", "v1")  # the object a slow thread holds
    approve_fully(engine, stale.id)  # type: ignore[arg-type]
    engine.refresh_card(stale)  # that thread refreshes late, with its old copy
    assert chat.of_kind("update")[-1].card.state == State.SUCCEEDED  # type: ignore[union-attr]


def test_a_card_that_cannot_be_posted_cancels_the_request_with_a_reason(
    config: Config, tmp_path: Path
) -> None:
    class Mute(RecordingChat):
        def post_card(self, channel: str, card: object) -> None:  # type: ignore[override]
            return None  # e.g. Slack's not_in_channel

    engine = Engine(config, SqliteStore(tmp_path / "db.sqlite"), Mute())
    try:
        with pytest.raises(
            Refused, match=r"could not post the card in #private .*invited.*cancelled, nothing ran"
        ):
            engine.request_deploy("alice", "#private", "staging", "v1")
        assert engine.store.deployments("staging")[0].state == State.CANCELLED
        assert engine.store.active("staging") is None  # the environment is not held by a card nobody sees
    finally:
        engine.shutdown()
