"""Only the bot's own identity, over real sshd: no Fabric config files, no agent, no fallbacks;
the sudo password is a secret like any other."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runners import HostUnreachable, Pipeline, Step, Strategy
from runners.backends.ssh import SSHBackend
from tests.support.sshd import SSHFleet

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh


@pytest.fixture
def fleet(sshd_hosts: Callable[[int], SSHFleet]) -> SSHFleet:
    return sshd_hosts(3)


@pytest.fixture
def agent_with_the_fleet_key(fleet: SSHFleet, tmp_path: Path) -> Iterator[str]:
    """A running ssh-agent holding the fleet's key, exported in SSH_AUTH_SOCK."""
    if not shutil.which("ssh-agent") or not shutil.which("ssh-add"):
        pytest.skip("ssh-agent not installed")
    sock = str(tmp_path / "agent.sock")
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            subprocess.run(["sleep", "0.05"], check=True)
        env = {**os.environ, "SSH_AUTH_SOCK": sock}
        subprocess.run(["ssh-add", str(fleet.key)], env=env, check=True, capture_output=True)
        old = os.environ.get("SSH_AUTH_SOCK")
        os.environ["SSH_AUTH_SOCK"] = sock
        yield sock
    finally:
        if "old" in locals():
            if old is None:
                os.environ.pop("SSH_AUTH_SOCK", None)
            else:
                os.environ["SSH_AUTH_SOCK"] = old
        agent.terminate()
        agent.wait(5)


def run_step(backend: SSHBackend, fleet: SSHFleet, command: str) -> str:
    pipeline = Pipeline(backend, [fleet.host("app1")], Strategy(), {})
    try:
        result = pipeline.run_stage("deploy", [Step("s", command)])
    finally:
        pipeline.close()
    assert result.ok, result.failed_step
    return result.steps[0].hosts[0].output


def test_fabric_config_files_are_never_read(
    fleet: SSHFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A user-level Fabric config that would turn on agent forwarding (and Fabric also reads
    # FABRIC_* variables when it loads its config files).
    home = tmp_path / "home"
    home.mkdir()
    (home / ".fabric.yaml").write_text("forward_agent: true\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FABRIC_FORWARD_AGENT", "true")
    output = run_step(SSHBackend(fleet.options()), fleet, "echo agent=${SSH_AUTH_SOCK:-none}")
    assert output == "agent=none\n"


def test_without_an_identity_file_every_host_is_refused_even_with_an_agent(
    fleet: SSHFleet, agent_with_the_fleet_key: str
) -> None:
    # The agent holds a key the hosts accept: a careless client would log in with it.
    backend = SSHBackend(fleet.options(identity_file=None))
    with pytest.raises(HostUnreachable) as info:
        backend.open(fleet.host("app1"))
    assert str(info.value) == (
        "app1: no SSH identity configured: set [ssh] identity_file (gonogo offers only its own "
        "key, never the SSH agent or ~/.ssh keys)"
    )
    backend.close()


def test_only_the_configured_key_is_offered_even_with_an_agent(
    fleet: SSHFleet, tmp_path: Path, agent_with_the_fleet_key: str
) -> None:
    from tests.support.sshd import keygen

    keygen(tmp_path / "stranger")  # a key the hosts do not accept
    backend = SSHBackend(fleet.options(identity_file=str(tmp_path / "stranger")))
    with pytest.raises(HostUnreachable, match=r"^app2: authentication failed"):
        backend.open(fleet.host("app2", 1))
    backend.close()


def test_an_unreadable_identity_file_is_refused_with_its_path(fleet: SSHFleet, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-key"
    backend = SSHBackend(fleet.options(identity_file=str(missing)))
    with pytest.raises(HostUnreachable, match=rf"^app1: cannot load identity_file {missing}: "):
        backend.open(fleet.host("app1"))


def test_the_sudo_password_is_redacted_from_output(fleet: SSHFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    password = "sudo-Pa55word-for-tests"
    monkeypatch.setenv("GONOGO_TEST_SUDO_PASSWORD", password)
    backend = SSHBackend(fleet.options(sudo_password_env="GONOGO_TEST_SUDO_PASSWORD"))
    assert backend.secrets == (password,)
    # No redactor given: the pipeline adds the backend's own secrets.
    output = run_step(backend, fleet, f"echo pw={password}; echo pw={password} >&2")
    assert output == "pw=[redacted]\npw=[redacted]\n"
