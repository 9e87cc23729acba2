"""A whole deploy through the engine over real OpenSSH: canary then batches, release layout,
host keys verified, rollback by switching `current` back."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.domain.deployment import State
from bot.engine.engine import Engine
from bot.store.sqlite import SqliteStore
from tests.support.recording import RecordingChat
from tests.support.sshd import SSHFleet

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh

CONFIG = """
[bot]
data_dir = "{data}"
[ssh]
user = "{user}"
identity_file = "{key}"
known_hosts = "{known_hosts}"
ssh_config = "{ssh_config}"
connect_timeout = "5s"
[environments.prod]
backend = "ssh"
hosts = [{hosts}]
deploy_to = "{data}/srv"
step_timeout = "30s"
[environments.prod.strategy]
kind = "canary"
canary = 1
batch_size = 2
[[environments.prod.steps.deploy]]
name = "release"
run = "mkdir -p {{release_dir}}/{{host}} && echo {{ref}} > {{release_dir}}/{{host}}/REF && ln -sfn {{release_dir}} {{deploy_to}}/current.tmp-{{host}} && mv -T {{deploy_to}}/current.tmp-{{host}} {{current_dir}}"
[[environments.prod.steps.deploy]]
name = "migrate"
run = "echo migrated on {{host}} >> {{deploy_to}}/migrations"
once = true
[[environments.prod.steps.rollback]]
name = "switch back"
run = "ln -sfn {{release_dir}} {{deploy_to}}/current.tmp-{{host}} && mv -T {{deploy_to}}/current.tmp-{{host}} {{current_dir}}"
"""


def make(tmp_path: Path, fleet: SSHFleet, known_hosts: Path | None = None) -> Engine:
    hosts = ", ".join(
        f'{{ name = "{h.name}", address = "{h.address}", port = {h.port} }}' for h in fleet.hosts(5)
    )
    text = CONFIG.format(
        data=tmp_path,
        user=fleet.user,
        key=fleet.key,
        known_hosts=known_hosts or fleet.known_hosts,
        ssh_config=fleet.root / "ssh_config",
        hosts=hosts,
    )
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    return Engine(config, SqliteStore(tmp_path / "db"), RecordingChat())


def test_deploy_and_rollback_over_ssh(tmp_path: Path, sshd_hosts: object) -> None:
    fleet = sshd_hosts(3)  # type: ignore[operator]
    engine = make(tmp_path, fleet)
    try:
        ids = []
        for ref in ("v1", "v2"):
            d = engine.request_deploy("alice", "#d", "prod", ref)
            engine.approve("bob", d.id)  # type: ignore[arg-type]
            engine.wait_idle(60)
            assert engine.deployment(d.id).state == State.SUCCEEDED, engine.deployment(d.id).error  # type: ignore[arg-type]
            ids.append(d.id)
        srv = tmp_path / "srv"
        assert (srv / "current").resolve() == srv / "releases" / str(ids[1])
        assert sorted(p.name for p in (srv / "releases" / str(ids[1])).iterdir()) == [
            f"app{i}" for i in range(1, 6)
        ]
        assert (srv / "migrations").read_text().splitlines() == ["migrated on app1"] * 2  # once per deploy
        batches = [e for e in engine.store.host_results(ids[1]) if e["step"] == "release"]  # type: ignore[arg-type]
        assert batches[0]["host"] == "app1"  # the canary went first
        rb = engine.request_rollback("alice", "#d", "prod")
        engine.approve("bob", rb.id)  # type: ignore[arg-type]
        engine.wait_idle(60)
        assert engine.deployment(rb.id).state == State.SUCCEEDED  # type: ignore[arg-type]
        assert (srv / "current").resolve() == srv / "releases" / str(ids[0])
    finally:
        engine.shutdown()


def test_unknown_host_keys_are_refused_with_the_host_named(tmp_path: Path, sshd_hosts: object) -> None:
    fleet = sshd_hosts(3)  # type: ignore[operator]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    engine = make(tmp_path, fleet, known_hosts=empty)
    try:
        d = engine.request_deploy("alice", "#d", "prod", "v1")
        engine.approve("bob", d.id)  # type: ignore[arg-type]
        engine.wait_idle(60)
        failed = engine.deployment(d.id)  # type: ignore[arg-type]
        assert failed.state == State.FAILED
        assert "app1:" in (failed.error or "") and "unknown host key" in (failed.error or "")
        assert "SHA256:" in (failed.error or "")
        assert not (tmp_path / "srv").exists()  # the canary failed: nothing ran anywhere
    finally:
        engine.shutdown()
