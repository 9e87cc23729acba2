"""The wide fan-out path on a smaller fleet: the 20-step deploy bench/fanout.py runs on 200
hosts, here on 12 hosts over 4 real sshd, every host at once (max_parallel = the fleet).

What must hold at any width: every step ran once on every host, the artifact arrived intact
(uploaded once per host, over SFTP), one SSH connection per host served all 20 steps, the
release is live everywhere; and the same upload step works from the config through the engine.
"""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.domain.deployment import State
from bot.store.sqlite import SqliteStore
from runners import Pipeline, Strategy
from runners.backends.ssh import SSHBackend
from tests.support.deploy20 import check_host, deploy_steps, deploy_variables, make_artifact, stop_apps
from tests.support.engines import make_engine
from tests.support.recording import RecordingChat
from tests.support.sshd import SSHFleet

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh

HOSTS = 12


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    srv = tmp_path / "srv"
    yield srv
    stop_apps(srv)


def test_every_host_of_a_wide_fan_out_gets_all_20_steps_once_on_one_connection(
    tmp_path: Path, root: Path, sshd_hosts: object
) -> None:
    fleet: SSHFleet = sshd_hosts(4)  # type: ignore[operator]
    hosts = fleet.hosts(HOSTS, prefix="wide")
    artifact = make_artifact(tmp_path / "build")
    for release in ("20260101", "20260102"):
        backend = SSHBackend(fleet.options(connect_timeout=10))
        pipeline = Pipeline(
            backend,
            hosts,
            Strategy("parallel", max_parallel=HOSTS),
            deploy_variables(root, release, artifact),
        )
        try:
            result = pipeline.run_stage("deploy", deploy_steps())
        finally:
            pipeline.close()
        assert result.ok, result.failed_step
        assert len(result.steps) == 20
        for step in result.steps:  # each step on every host, each exactly once
            assert sorted(h.host for h in step.hosts) == sorted(h.name for h in hosts)
            assert all(h.ok for h in step.hosts)
        assert backend.connections_opened == HOSTS  # one connection per host for all 20 steps
        upload = result.steps[1]  # once per host (above), the whole file each time
        assert all(f"({artifact.path.stat().st_size:,} bytes)" in h.output for h in upload.hosts)
        assert [problem for h in hosts for problem in check_host(root / h.name, release, artifact)] == []
    assert sorted(p.name for p in (root / "wide1" / "releases").iterdir()) == ["20260101", "20260102"]


CONFIG = """
[bot]
data_dir = "{data}"
[ssh]
user = "{user}"
identity_file = "{key}"
known_hosts = "{known_hosts}"
ssh_config = "{ssh_config}"
[environments.prod]
backend = "ssh"
hosts = [{hosts}]
deploy_to = "{data}/srv/{{env}}"
[environments.prod.strategy]
max_parallel = 4
[[environments.prod.steps.deploy]]
name = "release dir"
run = "mkdir -p {{release_dir}}/{{host}}"
[[environments.prod.steps.deploy]]
name = "upload"
upload = "build/artifact-{{ref}}.tgz"
to = "{{release_dir}}/{{host}}/app.tgz"
[[environments.prod.steps.deploy]]
name = "unpack"
run = "tar -xzf {{release_dir}}/{{host}}/app.tgz -C {{release_dir}}/{{host}}"
"""


def test_an_upload_step_from_the_config_copies_the_artifact_to_every_host(
    tmp_path: Path, root: Path, sshd_hosts: object
) -> None:
    fleet: SSHFleet = sshd_hosts(4)  # type: ignore[operator]
    artifact = make_artifact(tmp_path / "cfg" / "build", size=4096)
    artifact.path.rename(tmp_path / "cfg" / "build" / "artifact-v1.tgz")  # relative to the config file
    hosts = ", ".join(
        f'{{ name = "{h.name}", address = "{h.address}", port = {h.port} }}' for h in fleet.hosts(4)
    )
    text = CONFIG.format(
        data=tmp_path,
        user=fleet.user,
        key=fleet.key,
        known_hosts=fleet.known_hosts,
        ssh_config=fleet.root / "ssh_config",
        hosts=hosts,
    )
    config = parse_config(tomllib.loads(text), source=tmp_path / "cfg" / "gonogo.toml", environ={})
    chat = RecordingChat()
    engine = make_engine(config, SqliteStore(tmp_path / "db"), chat)
    try:
        d = engine.request_deploy("alice", "#d", "prod", "v1")
        engine.approve("bob", d.id)
        assert engine.wait_idle(60)
        done = engine.deployment(d.id)
        assert done.state == State.SUCCEEDED, done.error
        for host in fleet.hosts(4):
            payload = tmp_path / "srv" / "prod" / "releases" / str(d.id) / host.name / "data" / "payload"
            assert payload.stat().st_size == 4096
        thread = "\n".join(m.text for m in chat.of_kind("thread"))
        assert "✓ deploy › upload: app1: ok" in thread
    finally:
        engine.shutdown()
        engine.store.close()


def test_ssh_connections_send_small_packets_at_once(sshd_hosts: object) -> None:
    """TCP_NODELAY on every connection: with Nagle's algorithm each command on a reused
    connection waits for the host's delayed ACK (about 40 ms a step, measured in bench/fanout.py)."""
    fleet: SSHFleet = sshd_hosts(4)  # type: ignore[operator]
    backend = SSHBackend(fleet.options())
    try:
        session = backend.open(fleet.hosts(1)[0])
        sock = session.conn.transport.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        backend.close()
