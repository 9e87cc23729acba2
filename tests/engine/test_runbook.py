"""Runbooks as configs: per-step undo and ordered compensation, artifacts between steps,
per-step secrets, irreversible steps with their choices, and stage gates.

Real SQLite stores and the local backend running real shell commands: each step appends to a
log file, so the tests read what really ran, in which order, with which values.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Config, parse_config
from bot.domain.actions import Action
from bot.domain.deployment import State
from bot.engine import Engine, Refused
from bot.store.sqlite import SqliteStore
from commands.handlers import Context, handle_action
from tests.support.engines import make_engine, wait_for
from tests.support.recording import RecordingChat

BASE = """
[bot]
data_dir = "{data}"
heartbeat_interval = "0.2s"
[environments.prod]
backend = "local"
hosts = [{{ name = "db1", roles = ["db"] }}, {{ name = "web1" }}, {{ name = "web2" }}]
auto_rollback = true
lock_after_rollback = false
{env_keys}
[environments.prod.strategy]
kind = "sequential"
[environments.prod.approvals]
required = 1
rollback_required = 0
[[environments.prod.steps.rollback]]
name = "switch back"
run = "echo rollback-{{host}}-{{ref}} >> {data}/log"
"""


def make_config(tmp_path: Path, steps: str, env_keys: str = "") -> Config:
    text = BASE.format(data=tmp_path, env_keys=env_keys) + steps.replace("{data}", str(tmp_path))
    return parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})


def log(tmp_path: Path) -> list[str]:
    path = tmp_path / "log"
    return path.read_text().split() if path.exists() else []


@pytest.fixture
def made(tmp_path: Path) -> Iterator[list[Engine]]:
    engines: list[Engine] = []
    yield engines
    for e in engines:
        e.shutdown(grace=10)
        e.store.close()


def engine(tmp_path: Path, config: Config, made: list[Engine]) -> tuple[Engine, RecordingChat]:
    chat = RecordingChat()
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), chat)
    made.append(e)
    e.start()
    return e, chat


def deploy(e: Engine, ref: str, approver: str = "bob") -> int:
    d = e.request_deploy("alice", "#d", "prod", ref)
    e.approve(approver, d.id)
    assert e.wait_idle(60)
    return d.id


def press(e: Engine, user: str, action: Action, value: str) -> str:
    reply = handle_action(e, action, value, Context(user, "#d"))
    assert e.wait_idle(60)
    return reply.text if reply else ""


def rollback_of(e: Engine, deployment_id: int) -> int:
    rollbacks = [
        d for d in e.store.deployments("prod", kind="rollback", limit=50) if d.rollback_of == deployment_id
    ]
    assert rollbacks, f"no rollback of #{deployment_id}"
    return rollbacks[0].id


SAGA = """
[[environments.prod.steps.pre_deploy]]
name = "backup"
run = "echo backup-{ref} >> {data}/log && echo ::gonogo artifact backup_path={data}/backup-{deploy_id}.sql"
once = true
roles = ["db"]
artifacts = ["backup_path"]
[[environments.prod.steps.deploy]]
name = "migrate"
run = "echo migrate-{ref} >> {data}/log"
undo = "echo unmigrate-{ref}-{host} >> {data}/log"
once = true
roles = ["db"]
[[environments.prod.steps.deploy]]
name = "copy"
run = "echo copy-{host}-{ref} >> {data}/log"
[[environments.prod.steps.deploy]]
name = "switch"
run = "echo switch-{host}-{ref} >> {data}/log"
undo = "echo unswitch-{host}-{ref}-from-{artifact.backup_path} >> {data}/log"
[[environments.prod.steps.deploy]]
name = "restart"
run = "echo restart-{host}-{ref} >> {data}/log && test {ref} != bad -o {host} != web2"
"""


def test_a_failed_deploy_is_compensated_in_reverse_then_rolled_back(
    tmp_path: Path, made: list[Engine]
) -> None:
    e, chat = engine(tmp_path, make_config(tmp_path, SAGA), made)
    good = deploy(e, "v1")
    assert e.deployment(good).state == State.SUCCEEDED
    (tmp_path / "log").unlink()
    bad = deploy(e, "bad")
    assert e.deployment(bad).state == State.ROLLED_BACK  # failed, then rolled back automatically
    rb = e.deployment(rollback_of(e, bad))
    assert rb.state == State.SUCCEEDED
    backup = f"{tmp_path}/backup-{bad}.sql"
    # host by host (sequential): restart failed on web2, so the undo of every step that finished,
    # newest first, each where it finished (web2's batch first), then the rollback steps
    undo_lines = [line for line in log(tmp_path) if line.startswith(("un", "rollback"))]
    assert undo_lines == [
        f"unswitch-web2-bad-from-{backup}",
        f"unswitch-web1-bad-from-{backup}",
        f"unswitch-db1-bad-from-{backup}",
        "unmigrate-bad-db1",
        "rollback-db1-v1",
        "rollback-web1-v1",
        "rollback-web2-v1",
    ]
    # the record says what was skipped, and the thread shows each undo as its own step
    assert "skipped deploy › copy: it has no undo" in rb.details.undo_notes
    assert "skipped deploy › restart: it has no undo" in rb.details.undo_notes
    assert "skipped pre_deploy › backup: it has no undo" in rb.details.undo_notes
    compensation = [ev for ev in e.store.events(deployment_id=rb.id) if ev.action == "compensation"]
    assert compensation and "skipped deploy › copy: it has no undo" in (compensation[0].detail or "")
    texts = chat.texts()
    assert "✓ undo › deploy › switch: db1: ok" in texts
    assert "✓ undo › deploy › migrate: db1: ok" in texts
    assert "✓ rollback › switch back" in texts
    card = chat.last_card(rb.id)
    assert "↩️ undo deploy › migrate on db1" in card.lines


def test_artifacts_flow_into_later_steps_and_the_card_and_survive_in_the_record(
    tmp_path: Path, made: list[Engine]
) -> None:
    e, chat = engine(tmp_path, make_config(tmp_path, SAGA), made)
    d = deploy(e, "v1")
    path = f"{tmp_path}/backup-{d}.sql"
    assert "switch-web1-v1" in log(tmp_path)
    saved = e.deployment(d)
    assert dict(saved.details.artifacts) == {"backup_path": {"db1": path}}
    assert f"📦 backup_path: {path}" in chat.last_card(d).lines
    # a fresh store reads the same record (a restart)
    again = SqliteStore(tmp_path / "db.sqlite")
    try:
        assert dict(again.get(d).details.artifacts) == {"backup_path": {"db1": path}}  # type: ignore[union-attr]
    finally:
        again.close()


def test_a_step_that_does_not_publish_its_declared_artifact_fails(tmp_path: Path, made: list[Engine]) -> None:
    steps = """
[[environments.prod.steps.deploy]]
name = "backup"
run = "echo no marker here"
artifacts = ["backup_path"]
once = true
"""
    e, _chat = engine(tmp_path, make_config(tmp_path, steps), made)
    d = deploy(e, "v1")
    failed = e.deployment(d)
    assert failed.state == State.FAILED
    assert "did not publish artifact backup_path (print `::gonogo artifact backup_path=VALUE`)" in (
        failed.error or ""
    )


def test_per_step_secrets_reach_only_their_step_and_are_redacted(
    tmp_path: Path, made: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATE_PASSWORD", "s3cret-pass-value")
    steps = """
[[environments.prod.steps.deploy]]
name = "migrate"
run = "echo migrate sees ${MIGRATE_PASSWORD:-nothing} && echo m=${MIGRATE_PASSWORD:-none} >> {data}/log"
secrets = ["MIGRATE_PASSWORD"]
once = true
[[environments.prod.steps.deploy]]
name = "switch"
run = "echo s=${MIGRATE_PASSWORD:-none} >> {data}/log"
once = true
"""
    e, chat = engine(tmp_path, make_config(tmp_path, steps), made)
    d = deploy(e, "v1")
    assert e.deployment(d).state == State.SUCCEEDED
    assert log(tmp_path) == ["m=s3cret-pass-value", "s=none"]  # the value reached migrate only
    outputs = " ".join(str(row.get("output")) for row in e.store.host_results(d))
    assert "migrate sees [redacted]" in outputs
    assert "s3cret-pass-value" not in outputs + chat.texts()


def test_a_missing_step_secret_fails_the_step_with_its_name(tmp_path: Path, made: list[Engine]) -> None:
    os.environ.pop("NOT_SET_ANYWHERE", None)
    steps = """
[[environments.prod.steps.deploy]]
name = "migrate"
run = "true"
secrets = ["NOT_SET_ANYWHERE"]
once = true
"""
    e, _ = engine(tmp_path, make_config(tmp_path, steps), made)
    d = deploy(e, "v1")
    assert "secret NOT_SET_ANYWHERE is not set in gonogo's environment" in (e.deployment(d).error or "")


IRREVERSIBLE = """
[[environments.prod.steps.pre_deploy]]
name = "backup"
run = "echo ::gonogo artifact backup_path={data}/dump-{ref}.sql"
once = true
artifacts = ["backup_path"]
[[environments.prod.steps.deploy]]
name = "drop old tables"
run = "echo drop-{ref} >> {data}/log"
undo = "echo recreate-{ref} >> {data}/log"
irreversible = true
on_failure = ["undo", "restore", "hold"]
once = true
[[environments.prod.steps.deploy]]
name = "restart"
run = "echo restart-{host}-{ref} >> {data}/log && test {ref} != bad"
undo = "echo unrestart-{host} >> {data}/log"
[[environments.prod.steps.restore]]
name = "restore database"
run = "echo restore-from-{artifact.backup_path} >> {data}/log"
once = true
"""


def test_an_irreversible_step_blocks_the_automatic_rollback_and_offers_its_choices(
    tmp_path: Path, made: list[Engine]
) -> None:
    config = make_config(tmp_path, IRREVERSIBLE)
    e, chat = engine(tmp_path, config, made)
    deploy(e, "v1")
    bad = deploy(e, "bad")
    assert e.deployment(bad).state == State.FAILED
    assert not [d for d in e.store.deployments("prod", kind="rollback", limit=5)]  # nothing blind
    alert = next(m for m in chat.of_kind("message") if "FAILED" in m.text and m.deployment_id == bad)
    assert "Irreversible step deploy › drop old tables (on db1) ran" in alert.text
    assert [b.label for b in alert.buttons] == [
        "Undo: run its undo",
        "Restore from backup",
        "Hold: change nothing",
    ]
    assert {b.action for b in alert.buttons} == {Action.RECOVER}
    # the requester alone may not choose; nor may a plain Roll back
    assert "you requested this deployment" in press(e, "alice", Action.RECOVER, f"{bad}:restore")
    with pytest.raises(Refused, match="ran irreversible step deploy › drop old tables"):
        e.rollback_failed("bob", bad)
    # an approver restores: the restore steps stand in for the irreversible step's undo
    assert "Rollback" in press(e, "bob", Action.RECOVER, f"{bad}:restore")
    rb = e.deployment(rollback_of(e, bad))
    assert rb.state == State.SUCCEEDED and rb.details.recovery == "restore"
    # restart failed on db1 (the first batch), so it finished nowhere: only the restore runs,
    # in place of the irreversible step's undo, from the backup this deploy took
    tail = log(tmp_path)[log(tmp_path).index("restart-db1-bad") + 1 :]
    assert tail == [
        f"restore-from-{tmp_path}/dump-bad.sql",
        "rollback-db1-v1",
        "rollback-web1-v1",
        "rollback-web2-v1",
    ]
    assert "recreate-bad" not in log(tmp_path)
    settled = chat.message(alert.ts or "")
    assert "(restore)" in settled.text and not settled.buttons


def test_hold_after_an_irreversible_step_changes_nothing(tmp_path: Path, made: list[Engine]) -> None:
    e, chat = engine(tmp_path, make_config(tmp_path, IRREVERSIBLE), made)
    deploy(e, "v1")
    bad = deploy(e, "bad")
    assert "holds" in press(e, "carol", Action.RECOVER, f"{bad}:hold")
    assert e.deployment(bad).details.hold == "carol"
    assert not e.store.deployments("prod", kind="rollback", limit=5)
    assert "✋ Held by carol: nothing is undone" in chat.texts()


def test_undo_chosen_runs_the_irreversible_steps_undo(tmp_path: Path, made: list[Engine]) -> None:
    e, _ = engine(tmp_path, make_config(tmp_path, IRREVERSIBLE), made)
    deploy(e, "v1")
    bad = deploy(e, "bad")
    press(e, "bob", Action.RECOVER, f"{bad}:undo")
    assert e.deployment(rollback_of(e, bad)).state == State.SUCCEEDED
    assert "recreate-bad" in log(tmp_path) and not any(x.startswith("restore-") for x in log(tmp_path))


GATED = """
[environments.prod.gates]
deploy = "migration done and verified; Go to deploy the app?"
[[environments.prod.steps.pre_deploy]]
name = "migrate"
run = "echo migrate-{ref} >> {data}/log"
undo = "echo unmigrate-{ref} >> {data}/log"
once = true
[[environments.prod.steps.deploy]]
name = "switch"
run = "echo switch-{host}-{ref} >> {data}/log"
"""


def test_a_gate_waits_for_go_without_a_worker_and_goes_on(tmp_path: Path, made: list[Engine]) -> None:
    e, chat = engine(tmp_path, make_config(tmp_path, GATED), made)
    d = deploy(e, "v1")
    waiting = e.deployment(d)
    assert waiting.state == State.GATED  # wait_idle returned: no worker is held
    assert log(tmp_path) == ["migrate-v1"]
    card = chat.last_card(d)
    assert card.status_line == (
        "🚦 waiting at a gate before deploy: migration done and verified; Go to deploy the app?"
    )
    assert [b.action for b in card.buttons] == [Action.GATE_GO, Action.GATE_NOGO]
    assert card.approvals_line == "Go at the gate 0/1: none yet"
    assert "waits at the gate before deploy" in chat.texts()
    # the requester may not Go (same rules as the approval)
    assert "you requested this deployment" in press(e, "alice", Action.GATE_GO, str(d))
    assert e.deployment(d).state == State.GATED
    # a restart changes nothing: the wait lives in the row
    e.shutdown(grace=5)
    e.store.close()
    made.remove(e)
    e, chat = engine(tmp_path, make_config(tmp_path, GATED), made)
    assert e.deployment(d).state == State.GATED
    assert "Gate passed" in press(e, "bob", Action.GATE_GO, str(d))
    done = e.deployment(d)
    assert done.state == State.SUCCEEDED
    assert log(tmp_path) == [
        "migrate-v1",
        "switch-db1-v1",
        "switch-web1-v1",
        "switch-web2-v1",
    ]  # migrate ran once
    assert done.details.gates_passed == ("deploy",)
    assert [ev.action for ev in e.store.events(deployment_id=d) if ev.action.startswith("gate")] == [
        "gate",
        "gate_go",
    ]


def test_no_go_at_a_gate_stops_the_deploy_and_offers_a_rollback(tmp_path: Path, made: list[Engine]) -> None:
    e, chat = engine(tmp_path, make_config(tmp_path, GATED), made)
    first = deploy(e, "v1")
    press(e, "bob", Action.GATE_GO, str(first))
    second = deploy(e, "v2")
    assert e.deployment(second).state == State.GATED
    assert "stopped at its gate" in press(e, "carol", Action.GATE_NOGO, str(second))
    stopped = e.deployment(second)
    assert stopped.state == State.ABORTED
    assert stopped.error == "No-go at the gate before deploy by carol"
    alert = next(m for m in chat.of_kind("message") if m.deployment_id == second and m.buttons)
    assert [b.action for b in alert.buttons] == [Action.ROLLBACK_NOW]
    press(e, "bob", Action.ROLLBACK_NOW, str(second))
    assert "unmigrate-v2" in log(tmp_path) and "switch-db1-v2" not in log(tmp_path)
    wait_for(lambda: e.deployment(rollback_of(e, second)).state == State.SUCCEEDED, what="the rollback")


INTERRUPTIBLE = """
[[environments.prod.steps.deploy]]
name = "copy"
run = "echo copy-{host}-{ref} >> {data}/log"
undo = "echo uncopy-{host}-{ref} >> {data}/log"
[[environments.prod.steps.deploy]]
name = "restart"
run = "echo restart-{host}-{ref} >> {data}/log && if [ -e {data}/hang ] && [ {host} = web1 ]; then sleep 5; fi"
undo = "echo unrestart-{host}-{ref} >> {data}/log"
"""


def test_compensation_after_an_interrupted_run_undoes_exactly_what_finished(
    tmp_path: Path, made: list[Engine]
) -> None:
    config = make_config(tmp_path, INTERRUPTIBLE)
    e, _ = engine(tmp_path, config, made)
    deploy(e, "v1")
    (tmp_path / "hang").touch()
    d = e.request_deploy("alice", "#d", "prod", "v2")
    e.approve("bob", d.id)
    wait_for(lambda: "restart-web1-v2" in log(tmp_path), what="web1's restart started")
    e.shutdown(grace=0.3)  # web1's restart outlives the grace: the process gives up on it
    e.store.close()
    made.remove(e)
    (tmp_path / "hang").unlink()
    e, _ = engine(tmp_path, config, made)
    interrupted = e.deployment(d.id)
    assert interrupted.state == State.INTERRUPTED
    assert [(r.step, r.batches(), r.unknown()) for r in interrupted.details.ran] == [
        ("copy", {0: ("db1",), 1: ("web1",)}, ()),
        ("restart", {0: ("db1",)}, ("web1",)),  # cut off on web1: its outcome is unknown
    ]
    assert "Rollback" in press(e, "carol", Action.ROLLBACK_NOW, str(d.id))
    rb = e.deployment(rollback_of(e, d.id))
    assert rb.state == State.SUCCEEDED
    undone = [line for line in log(tmp_path) if line.startswith(("un", "rollback"))]
    assert undone == [
        "uncopy-web1-v2",
        "unrestart-db1-v2",
        "uncopy-db1-v2",
        "rollback-db1-v1",
        "rollback-web1-v1",
        "rollback-web2-v1",
    ]  # web1's restart was not undone blindly, and web2 never started
    assert (
        "not undone on web1: deploy › restart was cut off there, its outcome is unknown"
        in rb.details.undo_notes
    )


def test_a_dry_run_prints_artifacts_as_placeholders_and_does_not_wait_at_gates(
    tmp_path: Path, made: list[Engine]
) -> None:
    steps = (
        SAGA
        + """
[[environments.prod.steps.verify]]
name = "check backup"
run = "test -s {artifact.backup_path}"
once = true
[environments.prod.gates]
deploy = "Go on?"
"""
    )
    e, chat = engine(tmp_path, make_config(tmp_path, steps), made)
    d = e.request_deploy("alice", "#d", "prod", "v1", dry_run=True)
    assert e.wait_idle(60)
    assert e.deployment(d.id).state == State.SUCCEEDED
    assert not (tmp_path / "log").exists()  # nothing ran
    texts = chat.texts()
    assert "🚦 Dry run: a real deploy waits here for Go: Go on?" in texts
    assert "test -s '\"'\"'<artifact backup_path>'" in texts  # what the backup step would publish
    assert "unswitch" not in texts  # undo commands are not part of a deploy


def test_abort_at_a_gate_stops_the_deploy_and_a_gate_go_counts_once(
    tmp_path: Path, made: list[Engine]
) -> None:
    text = BASE.format(data=tmp_path, env_keys="").replace("required = 1", "required = 2") + GATED.replace(
        "{data}", str(tmp_path)
    )
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    e, chat = engine(tmp_path, config, made)
    d = e.request_deploy("alice", "#d", "prod", "v1")
    e.approve("bob", d.id)
    e.approve("carol", d.id)
    assert e.wait_idle(60)
    assert e.deployment(d.id).state == State.GATED
    assert "1 so far" in press(e, "bob", Action.GATE_GO, str(d.id))
    assert "already said Go" in press(e, "bob", Action.GATE_GO, str(d.id))
    assert chat.last_card(d.id).approvals_line == "Go at the gate 1/2: bob"
    stopped = e.abort("carol", "prod")
    assert stopped.state == State.ABORTED and stopped.error == "aborted by carol at the gate"
    assert "is aborted; it is not waiting at a gate" in press(e, "dave", Action.GATE_GO, str(d.id))
    assert log(tmp_path) == ["migrate-v1"]  # nothing after the gate ran
