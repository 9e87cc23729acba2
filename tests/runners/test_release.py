"""Release layout commands, run for real: local backend in temp dirs, and once over SSH."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from runners import Backend, Host, HostSession, Pipeline, Step, Strategy, render
from runners.backends import LocalBackend, LocalSession
from runners.backends.ssh import SSHBackend
from runners.release import (
    ReleaseLayout,
    check_release_id,
    prepare_release,
    prune_releases,
    rollback_to,
    switch_current,
)
from tests.support.sshd import SSHFleet

pytest_plugins = ["tests.support.sshd"]


def sh(command: str, session: HostSession | None = None) -> int | None:
    """Run a command through a (local by default) backend session; return its exit code."""
    session = session or LocalSession(Host("local"))
    outcome = session.run(command, timeout=30, env={}, on_output=lambda _: None)
    return outcome.exit_code


@pytest.fixture
def deploy_to(tmp_path: Path) -> Path:
    # A path with a space and a quote: every path in the commands must be quoted.
    return tmp_path / "it's my app"


def test_layout_paths() -> None:
    layout = ReleaseLayout("/srv/shop")
    assert layout.releases_dir == "/srv/shop/releases"
    assert layout.current_dir == "/srv/shop/current"
    assert layout.release_dir(42) == "/srv/shop/releases/42"
    assert layout.variables("7")["release_dir"] == "/srv/shop/releases/7"
    for bad in ("", ".", "..", "a/b", "x\ny"):
        with pytest.raises(ValueError):
            check_release_id(bad)
    assert "'/srv/my app/releases/3'" in prepare_release("/srv/my app", 3)


def test_prepare_switch_and_rollback(deploy_to: Path) -> None:
    d = str(deploy_to)
    assert sh(prepare_release(d, 1)) == 0
    assert sh(prepare_release(d, 2)) == 0
    assert (deploy_to / "releases" / "1").is_dir()
    assert sh(switch_current(d, 1)) == 0
    assert os.readlink(deploy_to / "current") == "releases/1"  # relative link
    assert sh(switch_current(d, 2)) == 0
    assert os.readlink(deploy_to / "current") == "releases/2"
    assert sh(rollback_to(d, 1)) == 0
    assert os.readlink(deploy_to / "current") == "releases/1"
    # No temporary links are left behind.
    assert sorted(p.name for p in deploy_to.iterdir()) == ["current", "releases"]
    # Switching to a release that does not exist fails and leaves current alone.
    assert sh(switch_current(d, 99)) != 0
    assert os.readlink(deploy_to / "current") == "releases/1"


def test_switch_is_atomic(deploy_to: Path) -> None:
    d = str(deploy_to)
    for rid in (1, 2):
        assert sh(prepare_release(d, rid)) == 0
    assert sh(switch_current(d, 1)) == 0
    current = deploy_to / "current"
    missing: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if not current.is_symlink():
                missing.append(1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    loop = " && ".join([switch_current(d, 2), switch_current(d, 1)] * 50)
    try:
        assert sh(loop) == 0
    finally:
        done.set()
        watcher.join()
    assert missing == []


def test_prune_keeps_newest_and_current(deploy_to: Path) -> None:
    d = str(deploy_to)
    for rid in range(1, 13):  # 1..12: a plain name sort would put 10 before 2
        assert sh(prepare_release(d, rid)) == 0
    assert sh(switch_current(d, 3)) == 0  # rolled back to an old release
    assert sh(prune_releases(d, 4)) == 0
    left = sorted(int(p.name) for p in (deploy_to / "releases").iterdir())
    assert left == [3, 9, 10, 11, 12]
    assert sh(prune_releases(d, 4)) == 0  # idempotent
    assert sorted(int(p.name) for p in (deploy_to / "releases").iterdir()) == left
    # Nothing to prune (no releases dir at all) is not an error.
    assert sh(prune_releases(str(deploy_to / "nowhere"), 2)) == 0
    with pytest.raises(ValueError):
        prune_releases(d, 0)


def test_commands_survive_template_rendering(deploy_to: Path) -> None:
    # Step commands go through the template renderer: these must come out unchanged.
    for command in (
        prepare_release(str(deploy_to), 1),
        switch_current(str(deploy_to), 1),
        prune_releases(str(deploy_to), 3),
    ):
        assert render(command, {}) == command


def test_release_cycle_through_the_pipeline(deploy_to: Path) -> None:
    hosts = [Host("h1", roles=("h1",)), Host("h2", roles=("h2",))]
    _release_cycle(LocalBackend(), hosts, deploy_to)


@pytest.mark.ssh
def test_release_cycle_over_ssh(sshd_hosts: Callable[[int], SSHFleet], deploy_to: Path) -> None:
    fleet = sshd_hosts(3)
    hosts = [fleet.host("h1", 0, roles=("h1",)), fleet.host("h2", 1, roles=("h2",))]
    _release_cycle(SSHBackend(fleet.options()), hosts, deploy_to)


def _release_cycle(backend: Backend, hosts: list[Host], deploy_to: Path) -> None:
    """Three releases, prune to 2, roll back to release 2: on each host its own tree."""
    trees = {h.name: str(deploy_to / h.name) for h in hosts}

    def each(name: str, make: Callable[[str, str | int], str], arg: str | int) -> list[Step]:
        return [Step(f"{name} on {host}", make(tree, arg), roles=(host,)) for host, tree in trees.items()]

    pipeline = Pipeline(backend, hosts, Strategy("parallel"), {})
    try:
        for rid in ("1", "2", "3"):
            steps = each("prepare", prepare_release, rid) + each("switch", switch_current, rid)
            result = pipeline.run_stage("deploy", steps)
            assert result.ok, result.failed_step
        assert pipeline.run_stage("prune", each("prune", prune_releases, 2)).ok  # type: ignore[arg-type]
        assert pipeline.run_stage("rollback", each("rollback", rollback_to, 2)).ok
    finally:
        pipeline.close()
    for tree in trees.values():
        assert os.readlink(f"{tree}/current") == "releases/2"
        assert sorted(os.listdir(f"{tree}/releases")) == ["2", "3"]
