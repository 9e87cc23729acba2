"""How a command ended, over real sshd: exit codes, timeouts, signals, the shell, durations."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runners import Host, HostResult, Pipeline, StageResult, Step, Strategy
from runners.backends.ssh import SSHBackend, SSHOptions
from tests.support.sshd import SSHFleet, TCPProxy

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh


@pytest.fixture
def fleet(sshd_hosts: Callable[[int], SSHFleet]) -> SSHFleet:
    return sshd_hosts(3)


def run_one(
    fleet: SSHFleet,
    step: Step,
    *,
    host: Host | None = None,
    options: SSHOptions | None = None,
    env: dict[str, str] | None = None,
) -> HostResult:
    """Run one step on one host; return its result."""
    pipeline = Pipeline(
        SSHBackend(options or fleet.options()), [host or fleet.host("app1")], Strategy(), {}, env=env
    )
    try:
        result = pipeline.run_stage("deploy", [step])
    finally:
        pipeline.close()
    [host_result] = result.steps[0].hosts
    return host_result


@pytest.mark.parametrize("code", [124, 137])
def test_exit_124_or_137_before_the_timeout_is_a_failure_not_a_timeout(fleet: SSHFleet, code: int) -> None:
    result = run_one(fleet, Step("exits", f"exit {code}", timeout=30))
    assert result.status == "failed", result
    assert result.exit_code == code
    assert result.describe().startswith(f"app1: exit {code} after ")


def test_a_real_timeout_is_still_a_timeout(fleet: SSHFleet) -> None:
    result = run_one(fleet, Step("slow", "sleep 5", timeout=1))
    assert result.status == "timed_out" and result.exit_code == 124
    assert result.describe() == "app1: timed out after 1s"


def test_a_command_killed_by_a_signal_is_reported_as_such(fleet: SSHFleet) -> None:
    result = run_one(fleet, Step("die", "kill -9 $$"))
    assert result.status == "failed", result
    assert result.exit_code == 137  # what a shell would report
    assert result.describe().startswith("app1: killed by SIGKILL after ")
    # With a timeout and secrets (the wrapped command line), the same: not a timeout.
    result = run_one(fleet, Step("die", "kill -9 $$", timeout=30), env={"TOKEN": "s3cret-value"})
    assert result.status == "failed", result
    assert result.describe().startswith("app1: killed by SIGKILL after ")
    result = run_one(fleet, Step("term", "kill -TERM $$"))
    assert result.describe().startswith("app1: killed by SIGTERM after ") and result.exit_code == 143


def test_the_shell_is_the_same_with_or_without_a_timeout(fleet: SSHFleet) -> None:
    shell = pwd.getpwnam(fleet.user).pw_shell
    if Path(shell).name in ("sh", "dash"):
        pytest.skip(f"the login shell of {fleet.user} is {shell}: nothing to tell apart")
    probe = "echo shell=${BASH_VERSION:+bash}${ZSH_VERSION:+zsh}"
    without = run_one(fleet, Step("probe", probe))
    with_timeout = run_one(fleet, Step("probe", probe, timeout=30))
    with_env = run_one(fleet, Step("probe", probe, timeout=30), env={"TOKEN": "s3cret-value"})
    assert without.ok and with_timeout.ok and with_env.ok
    assert without.output != "shell=\n"  # the login shell really is bash or zsh here
    assert with_timeout.output == without.output == with_env.output


def test_the_first_step_duration_excludes_the_handshake(fleet: SSHFleet, tmp_path: Path) -> None:
    # A host whose SSH banner takes 1.5 s to arrive (slow network, loaded sshd).
    server = fleet.servers[0]
    proxy = TCPProxy(server.port, delay=1.5)
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line().replace(f":{server.port} ", f":{proxy.port} ") + "\n")
    try:
        host = Host("app1", "127.0.0.1", port=proxy.port)
        pipeline = Pipeline(SSHBackend(fleet.options(known_hosts=str(known))), [host], Strategy(), {})
        try:
            first = pipeline.run_stage("deploy", [Step("first", "true")]).steps[0].hosts[0]
            second = pipeline.run_stage("deploy", [Step("second", "true")]).steps[0].hosts[0]
        finally:
            pipeline.close()
    finally:
        proxy.close()
    assert first.ok and second.ok
    assert first.connect >= 1.5  # reported apart...
    assert first.duration < 1.5  # ...and not part of the step's own duration (which would add 1.5 s)
    assert second.connect == 0.0  # the connection is reused


def test_a_background_process_holding_the_output_open_does_not_hang_the_step(fleet: SSHFleet) -> None:
    # `cmd &` without redirections keeps the session's stdout open after the shell exits;
    # OpenSSH would wait for it. The step ends (with its output) soon after the exit status.
    started = time.monotonic()
    result = run_one(fleet, Step("daemon", "sleep 60 & echo started"))
    assert result.ok, result
    assert result.output == "started\n"
    assert time.monotonic() - started < 30
    # Output still streaming after the exit status is not cut short.
    result = run_one(
        fleet, Step("tail", "(sleep 0.5; for i in 1 2 3 4 5 6; do echo $i; sleep 0.5; done) & echo go")
    )
    assert result.ok and result.output == "go\n1\n2\n3\n4\n5\n6\n", result


def _client_connections_to(port: int) -> int:
    """This machine's open TCP connections to 127.0.0.1:`port` (client side)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        count += sum(
            1 for f in map(str.split, lines) if f[3] == "01" and int(f[2].rsplit(":", 1)[1], 16) == port
        )
    return count


def test_closing_the_connections_while_a_command_runs_does_not_wait_for_it(
    fleet: SSHFleet, tmp_path: Path
) -> None:
    """What a shutdown does with a step that outlived its grace: close, and the step ends."""
    started = tmp_path / "started"
    port = fleet.servers[0].port
    before = _client_connections_to(port)
    pipeline = Pipeline(SSHBackend(fleet.options()), [fleet.host("app1")], Strategy(), {})
    results: list[StageResult] = []
    step = Step("slow", f"echo $$ > {started} && exec sleep 60", timeout=120)
    runner = threading.Thread(target=lambda: results.append(pipeline.run_stage("deploy", [step])))
    runner.start()
    deadline = time.monotonic() + 30
    while not (started.exists() and started.read_text().strip()):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    try:
        closer = threading.Thread(target=pipeline.close)
        closer.start()
        closer.join(timeout=20)
        assert not closer.is_alive(), "close() waited for the running command"
        runner.join(timeout=20)
        assert not runner.is_alive(), "the step did not end when its connection closed"
        [host] = results[0].steps[0].hosts
        assert host.status != "ok", host
    finally:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(started.read_text()), signal.SIGKILL)  # the remote `sleep` this test started
    # nothing left open for the tests after this one (they count connections to this server)
    deadline = time.monotonic() + 20
    while _client_connections_to(port) > before and time.monotonic() < deadline:
        time.sleep(0.05)
