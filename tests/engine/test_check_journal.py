"""Command checks under the step journal, over real sshd and the local backend, and both stores:
a shutdown stops a command check still running in a monitoring round on its host and exits
long before the check would end, recording nothing for that round (no result, no failure, no
rollback), and the next bot runs the round again; a check's output is journaled on the host, and
every run of a check really runs (a probe never replays an earlier reading)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import Config, parse_config
from bot.domain.deployment import Deployment, State
from bot.engine import Engine
from bot.engine.journal import journal_name
from bot.store import open_store
from tests.support.bot_process import kill_bot, shut_down_bot, start_bot
from tests.support.engines import make_engine, wait_for
from tests.support.recording import RecordingChat
from tests.support.sshd import SSHFleet

pytest_plugins = ["tests.support.sshd"]

CONFIG = """
[bot]
data_dir = "{data}"
heartbeat_interval = "0.2s"
{ssh}
[environments.prod]
backend = "{backend}"
hosts = [{hosts}]
deploy_to = "{data}/srv"
smoke_checks = ["ready"]
[environments.prod.monitor]
interval = "{interval}"
duration = "{duration}"
failure_limit = 1
checks = ["probe"]
[[environments.prod.steps.deploy]]
name = "ship"
run = "true"
[[environments.prod.checks]]
name = "ready"
type = "command"
command = "true"
[[environments.prod.checks]]
name = "probe"
type = "command"
command = "echo probed; echo round >> {data}/probes; while [ -e {data}/guard ]; do sleep 0.2; done"
timeout = "120s"
"""

SSH = """[ssh]
user = "{user}"
identity_file = "{key}"
known_hosts = "{known_hosts}"
ssh_config = "{ssh_config}"
connect_timeout = "5s"
"""


@pytest.fixture(params=[pytest.param("ssh", marks=pytest.mark.ssh), "local"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def config_text(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, *, interval: str, duration: str
) -> str:
    """The config for `backend` (an SSH host of the test fleet, or this machine)."""
    ssh, hosts = "", '"localhost"'
    if backend == "ssh":
        sshd_hosts: Callable[[int], SSHFleet] = request.getfixturevalue("sshd_hosts")
        fleet = sshd_hosts(1)
        (host,) = fleet.hosts(1)
        hosts = f'{{ name = "app1", address = "{host.address}", port = {host.port} }}'
        ssh = SSH.format(
            user=fleet.user,
            key=fleet.key,
            known_hosts=fleet.known_hosts,
            ssh_config=fleet.root / "ssh_config",
        )
    return CONFIG.format(
        data=tmp_path, ssh=ssh, backend=backend, hosts=hosts, interval=interval, duration=duration
    )


def journal_dir(tmp_path: Path, backend: str, d: Deployment) -> Path:
    """The deployment's journal on its (only) host."""
    root = tmp_path / "srv" / ".gonogo" / "journal" if backend == "ssh" else tmp_path / "journal" / "prod"
    return root / journal_name(d) / ("app1" if backend == "ssh" else "localhost")


def check_dirs(tmp_path: Path, backend: str, d: Deployment, prefix: str) -> list[str]:
    """The journal directories of one check's runs (`check.r1.probe.`...), oldest first."""
    where = journal_dir(tmp_path, backend, d)
    return sorted(p.name for p in where.iterdir() if p.name.startswith(prefix)) if where.exists() else []


def probes(tmp_path: Path) -> int:
    """How many times the probe ran."""
    path = tmp_path / "probes"
    return len(path.read_text().splitlines()) if path.exists() else 0


def check_processes(tmp_path: Path, *not_these: int) -> list[int]:
    """Processes running the probe (their command line names this test's guard file)."""
    found = []
    skip = {os.getpid(), *not_these}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in skip:
            try:
                line = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if f"{tmp_path}/guard".encode() in line:
                found.append(int(entry))
    return found


def engine_for(tmp_path: Path, text: str, store_url: str) -> tuple[Config, Engine]:
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    return config, make_engine(config, open_store(store_url), RecordingChat())


def test_shutdown_stops_a_running_command_check_and_the_next_bot_runs_its_round(
    tmp_path: Path, store_url: str, backend: str, request: pytest.FixtureRequest
) -> None:
    text = config_text(tmp_path, backend, request, interval="0.5s", duration="1s")
    (tmp_path / "guard").touch()  # round 1's probe runs until the guard is gone
    try:
        shut_down_and_resume(tmp_path, text, store_url, backend)
    finally:
        (tmp_path / "guard").unlink(missing_ok=True)  # whatever happened, the probe ends


def shut_down_and_resume(tmp_path: Path, text: str, store_url: str, backend: str) -> None:
    """A bot shut down while round 1's probe runs; then the next bot, once the guard is gone."""
    child = start_bot(tmp_path, text, store_url, GONOGO_SHUTDOWN_GRACE="1")
    try:
        wait_for(
            lambda: probes(tmp_path) == 1 and check_processes(tmp_path, child.pid),
            60,
            "round 1's probe running",
        )
    except BaseException:
        kill_bot(child)
        raise
    shut_down_bot(child)  # the probe would run until the guard goes: the bot stops it and exits
    wait_for(lambda: not check_processes(tmp_path), 30, "the probe stopped on its host")
    assert probes(tmp_path) == 1
    _, engine = engine_for(tmp_path, text, store_url)
    try:
        [d] = engine.store.deployments("prod")  # no rollback
        assert d.state == State.MONITORING and d.error is None
        assert d.details.monitor_round == 0  # round 1 was not judged
        assert engine.store.check_results(deployment_id=d.id, round=1) == []  # nor recorded
        assert [r.name for r in engine.store.check_results(deployment_id=d.id, round=0)] == ["ready"]
        [stopped] = check_dirs(tmp_path, backend, d, "check.r1.probe.")
        assert ".given-up." in stopped  # stopped on the host, its record set aside
        # The next bot runs round 1 again (the guard is gone now), then round 2.
        (tmp_path / "guard").unlink()
        engine.start()
        wait_for(lambda: engine.deployment(d.id).state == State.SUCCEEDED, 60, "the window passed")
        assert [(r.name, r.ok) for r in engine.store.check_results(deployment_id=d.id, round=1)] == [
            ("probe", True)
        ]
        assert probes(tmp_path) == 3  # round 1 stopped, round 1 again, round 2
        assert len(check_dirs(tmp_path, backend, d, "check.r1.probe.")) == 2
        assert len(check_dirs(tmp_path, backend, d, "check.r2.probe.")) == 1
        assert engine.store.deployments("prod") == [engine.deployment(d.id)]
    finally:
        engine.shutdown()
        engine.store.close()


def test_a_command_check_is_journaled_on_its_host_and_never_replayed(
    tmp_path: Path, store_url: str, backend: str, request: pytest.FixtureRequest
) -> None:
    text = config_text(tmp_path, backend, request, interval="0.3s", duration="0.6s")
    config, engine = engine_for(tmp_path, text, store_url)
    try:
        engine.start()
        d = engine.request_deploy("alice", "#d", "prod", "v1")
        engine.approve("bob", d.id)
        wait_for(lambda: engine.deployment(d.id).state == State.SUCCEEDED, 60, "the window passed")
        assert probes(tmp_path) == 2  # two rounds, two runs
        rounds = [check_dirs(tmp_path, backend, d, f"check.r{n}.probe.") for n in (1, 2)]
        assert [len(r) for r in rounds] == [1, 1]
        for [name] in rounds:
            run = journal_dir(tmp_path, backend, d) / name
            assert (run / "output").read_text() == "probed\n"
            assert (run / "exit").read_text().split()[:2] == ["0", "exit"]
        assert len(check_dirs(tmp_path, backend, d, "check.r0.ready.")) == 1  # the smoke check
        # The same check run again in the same round runs again (a probe never replays).
        env = config.environments["prod"]
        probe = [c for c in env.checks if c.name == "probe"]
        for _ in range(2):
            [result] = engine.monitoring.run(engine.deployment(d.id), probe, 2)
            assert result.ok
        assert probes(tmp_path) == 4
        assert len(check_dirs(tmp_path, backend, d, "check.r2.probe.")) == 3
    finally:
        engine.shutdown()
        engine.store.close()
