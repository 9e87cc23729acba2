"""The runbook keys in the config: undo, irreversible and its choices, artifacts, per-step
secrets and verify, host variables, gates, checklist phases. What loads, and every problem
with its key path (also through `gonogo config check`)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, parse_config

HEAD = """
[environments.prod]
backend = "local"
hosts = [{ name = "db1", roles = ["db"], vars = { port = 8001 } }, { name = "web1", vars = { port = "8002" } }]
"""
CHECKS = """
[[environments.prod.checks]]
name = "columns"
type = "command"
command = "true"
"""


def load(text: str):  # type: ignore[no-untyped-def]
    return parse_config(tomllib.loads(HEAD + text + CHECKS), environ={})


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return info.value.problems


def test_a_full_runbook_loads_with_its_defaults() -> None:
    config = load(
        """
[environments.prod.gates]
deploy = "migration done and verified; Go to deploy the app?"
[[environments.prod.steps.pre_deploy]]
name = "backup"
run = "echo ::gonogo artifact backup_path=/b/{deploy_id}.sql"
artifacts = ["backup_path"]
once = true
[[environments.prod.steps.deploy]]
name = "drop"
run = "psql -f drop.sql"
undo = "psql -f recreate.sql {artifact.backup_path}"
irreversible = true
secrets = ["PGPASSWORD"]
verify = ["columns"]
[[environments.prod.steps.deploy]]
name = "serve"
run = "serve --port {host.vars.port} --bind {host.address}"
[[environments.prod.steps.restore]]
name = "restore"
run = "psql -f {artifact.backup_path}"
"""
    )
    env = config.environments["prod"]
    drop = env.stage("deploy")[0]
    assert drop.on_failure == ("undo", "restore", "hold")  # what it has: its undo, restore steps, hold
    assert drop.secrets == ("PGPASSWORD",) and drop.verify == ("columns",)
    assert env.step_secrets() == ("PGPASSWORD",)
    assert env.gates == {"deploy": "migration done and verified; Go to deploy the app?"}
    assert dict(env.hosts[0].vars) == {"port": "8001"}  # numbers kept as their text
    assert env.stage("restore")[0].name == "restore"


def test_an_undo_the_choices_leave_out_contradicts_the_irreversible_step() -> None:
    found = problems(
        """
[[environments.prod.steps.deploy]]
name = "drop"
run = "true"
undo = "false"
irreversible = true
on_failure = ["hold"]
"""
    )
    assert found == [
        "environments.prod.steps.deploy[0].undo: contradicts irreversible = true: an irreversible step's undo "
        'runs only when someone chooses it, and on_failure does not offer undo (add "undo" to on_failure, '
        "or remove undo)"
    ]


def test_choices_are_checked_against_what_the_runbook_has() -> None:
    found = problems(
        """
[[environments.prod.steps.deploy]]
name = "drop"
run = "true"
irreversible = true
on_failure = ["undo", "restore", "maybe"]
[[environments.prod.steps.deploy]]
name = "plain"
run = "true"
on_failure = ["hold"]
[[environments.prod.steps.rollback]]
name = "back"
run = "true"
undo = "x"
"""
    )
    assert found == [
        "environments.prod.steps.deploy[0].on_failure[2]: unknown choice 'maybe' (choices: undo, restore, hold)",
        "environments.prod.steps.deploy[0].on_failure: offers undo, but the step has no undo command",
        "environments.prod.steps.deploy[0].on_failure: offers restore, but the environment has no restore "
        "steps ([[environments.prod.steps.restore]])",
        "environments.prod.steps.deploy[1].on_failure: only an irreversible step has choices (set irreversible = true)",
        "environments.prod.steps.rollback[0].undo: only pre_deploy, deploy and verify steps are undone, not rollback steps",
    ]


def test_artifacts_may_be_used_only_after_a_step_publishes_them() -> None:
    found = problems(
        """
[[environments.prod.steps.pre_deploy]]
name = "early"
run = "echo {artifact.backup_path}"
[[environments.prod.steps.deploy]]
name = "backup"
run = "true"
artifacts = ["backup_path", "bad-name"]
undo = "rm {artifact.backup_path}"
[[environments.prod.steps.deploy]]
name = "use"
run = "echo {artifact.typo}"
[[environments.prod.steps.rollback]]
name = "back"
run = "echo {artifact.backup_path}"
"""
    )
    assert found == [
        "environments.prod.steps.deploy[0].artifacts[1]: artifact names are letters, digits and _",
        "environments.prod.steps.pre_deploy[0].run: unknown artifact {artifact.backup_path}: it is published "
        "only later, by deploy[0] 'backup'",
        "environments.prod.steps.deploy[1].run: unknown artifact {artifact.typo}: no step publishes it (a step "
        "publishes with artifacts = [...]; available here: backup_path)",
    ]  # the undo of the step that publishes it, and rollback steps, may use it


def test_host_variables_must_be_set_on_every_host_the_step_runs_on() -> None:
    found = problems(
        """
[[environments.prod.steps.deploy]]
name = "db only"
run = "echo {host.vars.port} {host.vars.shard}"
roles = ["db"]
[[environments.prod.steps.deploy]]
name = "everywhere"
run = "echo {host.vars.shard} {host.nope}"
"""
    )
    assert found == [
        "environments.prod.steps.deploy[1].run: unknown variable {host.nope} (known: config_dir, current_dir, data_dir, "
        "deploy_id, deploy_to, env, host, host.address, host.name, keep_releases, previous_release_dir, ref, "
        "release_dir, release_id, releases_dir, requester, sha)",
        "environments.prod.steps.deploy[0].run: {host.vars.shard} is not set for host db1 (add shard to "
        "environments.prod.hosts[0].vars)",
        "environments.prod.steps.deploy[1].run: {host.vars.shard} is not set for host db1 (add shard to "
        "environments.prod.hosts[0].vars)",
    ]


def test_verify_names_checks_and_step_secrets_are_variable_names() -> None:
    found = problems(
        """
[[environments.prod.steps.deploy]]
name = "migrate"
run = "true"
verify = ["columns", "colums"]
secrets = ["PG PASSWORD"]
"""
    )
    assert found == [
        "environments.prod.steps.deploy[0].secrets[0]: must be an environment variable name like PGPASSWORD",
        "environments.prod.steps.deploy[0].verify[1]: unknown check 'colums' (checks: columns)",
    ]


def test_gates_stop_before_a_deploy_stage_that_has_steps() -> None:
    found = problems(
        """
[environments.prod.gates]
pre_deploy = "nothing runs there"
deploy = ""
rollback = "no"
[[environments.prod.steps.deploy]]
name = "x"
run = "true"
"""
    )
    assert found == [
        "environments.prod.gates.pre_deploy: the environment has no pre_deploy steps, so this gate would never be asked",
        "environments.prod.gates.deploy: must be the question the card asks (not empty)",
        "environments.prod.gates.rollback: a gate stops before one of: pre_deploy, deploy, verify",
    ]


def test_checklists_take_phases_and_are_numbered_across_them() -> None:
    config = load(
        """
signoff_checklist = [
  { phase = "During", items = ["a", "b", "c", "d", "e", "f"] },
  { phase = "After", items = ["g", "h", "i", "j", "k"] },
  { phase = "Decision", items = ["l", "m"] },
]
[[environments.prod.steps.deploy]]
name = "x"
run = "true"
"""
    )
    env = config.environments["prod"]
    assert len(env.signoff_checklist) == 13
    assert env.signoff_phases == (("During", 6), ("After", 5), ("Decision", 2))


def test_bad_checklist_phases_are_reported() -> None:
    found = problems(
        """
checklist = ["plain", { phase = "x", items = ["a"] }]
signoff_checklist = [{ items = [] }, { phase = "ok", items = ["fine"], extra = 1 }]
[[environments.prod.steps.deploy]]
name = "x"
run = "true"
"""
    )
    assert found == [
        "environments.prod.checklist: either a list of items or a list of phase tables, not both",
        "environments.prod.signoff_checklist[0].phase: required: the phase's name, shown above its items",
        "environments.prod.signoff_checklist[0].items: a phase needs at least one item",
        "environments.prod.signoff_checklist[1].extra: unknown key",
    ]


def test_config_check_names_the_key_paths(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        HEAD
        + CHECKS
        + """
[[environments.prod.steps.deploy]]
name = "drop"
run = "echo {artifact.nope}"
undo = "x"
irreversible = true
on_failure = ["hold"]
"""
    )
    out = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "config", "check", str(path)], capture_output=True, text=True
    )
    assert out.returncode != 0
    assert (
        "environments.prod.steps.deploy[0].undo: contradicts irreversible = true" in out.stdout + out.stderr
    )
    assert (
        "environments.prod.steps.deploy[0].run: unknown artifact {artifact.nope}" in out.stdout + out.stderr
    )
    assert "Traceback" not in out.stdout + out.stderr
