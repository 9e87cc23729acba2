"""A host that stops answering fails its step with a clear message, even without a step timeout.

Real sshd: the host's sshd session processes are SIGSTOPped (the kernel still ACKs TCP, so only
SSH-level liveness can tell), or the network between client and host goes silent (a proxy that
stops passing bytes but keeps the sockets open). Without liveness detection both hang forever.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners import Host, Pipeline, StageResult, Step, Strategy
from runners.backends.ssh import SSHBackend, SSHOptions
from tests.support.sshd import SSHFleet, SSHServer, TCPProxy, start_fleet

pytestmark = pytest.mark.ssh

#: Generous: detection takes about keepalive * count (2 s here) on a quiet machine.
BOUND = 30.0


@pytest.fixture
def own_fleet(tmp_path: Path) -> Iterator[SSHFleet]:
    """Two sshd processes of this test's own (their sessions get stopped)."""
    from tests.support.sshd import SSHDUnavailable

    try:
        fleet = start_fleet(2, tmp_path / "fleet")
    except (SSHDUnavailable, OSError) as exc:
        pytest.skip(f"cannot start a test sshd: {exc}")
    yield fleet
    fleet.stop()


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (its sshd sessions, their shells and commands)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_everything_below(pid: int) -> list[int]:
    """SIGSTOP every process below `pid`, again until none is left running (a short-lived one,
    such as the journal wrapper's `sleep`, may end or start meanwhile); the pids stopped."""
    stopped: list[int] = []
    while fresh := [p for p in descendants(pid) if p not in stopped]:
        for child in fresh:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGSTOP)
            stopped.append(child)
    return stopped


def commands_below(server: SSHServer) -> list[str]:
    """The command lines of the processes below `server` (`sleep 120`; the step journal's
    wrapper polls with short sleeps of its own, so the names alone do not tell the step)."""
    lines = []
    for pid in descendants(server.proc.pid):  # type: ignore[union-attr]
        with contextlib.suppress(OSError):
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
    return lines


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def start_stage(pipeline: Pipeline, steps: list[Step]) -> tuple[threading.Thread, dict[str, StageResult]]:
    out: dict[str, StageResult] = {}
    thread = threading.Thread(
        target=lambda: out.update(result=pipeline.run_stage("deploy", steps)), daemon=True
    )
    thread.start()
    return thread, out


def options(fleet: SSHFleet, **overrides: object) -> SSHOptions:
    return fleet.options(keepalive=1, keepalive_count_max=2, **overrides)


def test_a_stopped_host_fails_within_a_bound_without_a_step_timeout(own_fleet: SSHFleet) -> None:
    server = own_fleet.servers[0]
    pipeline = Pipeline(SSHBackend(options(own_fleet)), [own_fleet.host("app1")], Strategy(), {})
    stopped: list[int] = []
    try:
        thread, out = start_stage(pipeline, [Step("wait", "sleep 120")])  # no timeout
        wait_for(lambda: "sleep 120" in commands_below(server))
        stopped = stop_everything_below(server.proc.pid)  # type: ignore[union-attr]
        thread.join(BOUND)
        assert not thread.is_alive(), "the step hung on a stopped host"
        result = out["result"]
        assert result.failed_step is not None
        [host] = result.failed_step.hosts
        assert host.status == "error"
        assert host.describe().startswith("app1: host stopped answering (no reply to SSH keepalives for ")
        assert host.describe().endswith("; connection closed")
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        pipeline.close()


def test_a_host_whose_network_disappears_fails_within_a_bound(own_fleet: SSHFleet, tmp_path: Path) -> None:
    server = own_fleet.servers[1]
    proxy = TCPProxy(server.port)
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line().replace(f":{server.port} ", f":{proxy.port} ") + "\n")
    host = Host("app2", "127.0.0.1", port=proxy.port)
    pipeline = Pipeline(SSHBackend(options(own_fleet, known_hosts=str(known))), [host], Strategy(), {})
    try:
        thread, out = start_stage(pipeline, [Step("wait", "echo started; sleep 120")])
        wait_for(lambda: "sleep 120" in commands_below(server))
        proxy.freeze()  # silence both ways, sockets left open: no FIN, no RST
        thread.join(BOUND)
        assert not thread.is_alive(), "the step hung on a host whose network disappeared"
        result = out["result"]
        assert result.failed_step is not None
        [failed] = result.failed_step.hosts
        assert failed.status == "error"
        assert "app2: host stopped answering" in failed.describe()
        assert failed.output == "started\n"  # what came before is kept
    finally:
        proxy.close()
        pipeline.close()


def test_hosts_behind_a_stopped_jump_host_fail_within_a_bound(own_fleet: SSHFleet) -> None:
    gateway, target = own_fleet.servers
    hosts = [own_fleet.host("app1", 1), own_fleet.host("app2", 1)]
    backend = SSHBackend(options(own_fleet, gateway=f"{own_fleet.user}@127.0.0.1:{gateway.port}"))
    pipeline = Pipeline(backend, hosts, Strategy("parallel"), {})
    stopped: list[int] = []
    try:
        thread, out = start_stage(pipeline, [Step("wait", "sleep 120")])
        wait_for(lambda: commands_below(target).count("sleep 120") == 2)
        stopped = stop_everything_below(gateway.proc.pid)  # type: ignore[union-attr]
        thread.join(BOUND)
        assert not thread.is_alive(), "the step hung behind a stopped jump host"
        result = out["result"]
        assert result.failed_step is not None
        for failed in result.failed_step.hosts:
            assert failed.status == "error" and "stopped answering" in (failed.error or ""), failed
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        pipeline.close()


def test_an_idle_healthy_connection_stays_up(own_fleet: SSHFleet) -> None:
    # Keepalives every second, for several seconds of a silent command and of idling between
    # steps: a host that answers is never declared dead, and the connection is reused.
    backend = SSHBackend(options(own_fleet))
    pipeline = Pipeline(backend, [own_fleet.host("app1")], Strategy(), {})
    try:
        assert pipeline.run_stage("deploy", [Step("quiet", "sleep 4")]).ok
        time.sleep(4)
        assert pipeline.run_stage("verify", [Step("again", "true")]).ok
        assert backend.connections_opened == 1
    finally:
        pipeline.close()
