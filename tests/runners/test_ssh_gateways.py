"""Jump hosts over real sshd: ssh_config ProxyJump shares and closes one connection per jump host,
and the handshake bound is per gateway, shared by every backend of the process."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runners import Host, HostUnreachable, Pipeline, StageResult, Step, Strategy
from runners.backends.ssh import SSHBackend, SSHOptions
from tests.runners.test_ssh import SilentHost
from tests.support.sshd import SSHFleet

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh


@pytest.fixture
def fleet(sshd_hosts: Callable[[int], SSHFleet]) -> SSHFleet:
    return sshd_hosts(3)


@pytest.fixture
def silent() -> Iterator[SilentHost]:
    host = SilentHost()
    yield host
    host.close()


def established_to(port: int) -> int:
    """This process's TCP connections to 127.0.0.1:`port` that are still open (sockets other
    processes hold, e.g. an earlier test's sshd children, do not count)."""
    own = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            own.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port and inode in own:
                count += 1
    return count


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def jump_config(fleet: SSHFleet, path: Path, gateway_port: int) -> Path:
    """ssh_config: `jump` is the gateway; every `tgt-*` host goes through it."""
    path.write_text(
        f"Host jump\n    HostName 127.0.0.1\n    Port {gateway_port}\n    User {fleet.user}\n"
        "Host tgt-*\n    HostName 127.0.0.1\n    ProxyJump jump\n"
    )
    return path


def run(backend: SSHBackend, hosts: list[Host], command: str = "echo $SSH_CONNECTION") -> StageResult:
    pipeline = Pipeline(backend, hosts, Strategy("parallel"), {})
    try:
        return pipeline.run_stage("deploy", [Step("s", command)])
    finally:
        pipeline.close()


def test_proxyjump_hosts_share_one_jump_connection_and_close_closes_it(
    fleet: SSHFleet, tmp_path: Path
) -> None:
    gateway, target = fleet.servers[0], fleet.servers[2]
    config = jump_config(fleet, tmp_path / "ssh_config", gateway.port)
    hosts = [Host(f"app{i}", f"tgt-{i}", port=target.port) for i in (1, 2, 3)]
    before = gateway.logins(), target.logins()
    open_before = established_to(gateway.port)  # other tests may have left some open
    backend = SSHBackend(fleet.options(ssh_config=str(config)))
    result = run(backend, hosts)  # closes the pipeline, hence the backend
    assert result.ok, result.failed_step
    for host in result.steps[0].hosts:
        assert host.output.split()[3] == str(target.port)  # ran on the target, through the jump
    assert gateway.logins() - before[0] == 1  # one login to the jump host for three targets
    assert target.logins() - before[1] == 3
    assert backend.connections_opened == 4
    # at most as many as before: an earlier test's connection may close meanwhile, none may stay
    assert wait_until(lambda: established_to(gateway.port) <= open_before), (
        "connections to the jump host leaked"
    )


def test_gateway_option_and_proxyjump_alias_for_one_jump_host_share_its_connection(
    fleet: SSHFleet, tmp_path: Path
) -> None:
    gateway, target = fleet.servers[1], fleet.servers[2]
    config = jump_config(fleet, tmp_path / "ssh_config", gateway.port)
    hosts = [
        Host("app1", "tgt-1", port=target.port),  # ProxyJump jump (an alias)
        Host("app2", "127.0.0.1", port=target.port, gateway=f"{fleet.user}@127.0.0.1:{gateway.port}"),
    ]
    before = gateway.logins()
    result = run(SSHBackend(fleet.options(ssh_config=str(config))), hosts)
    assert result.ok, result.failed_step
    assert gateway.logins() - before == 1


def test_a_jump_host_that_fails_fails_every_host_behind_it_fast(fleet: SSHFleet, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there
    config.write_text(f"Host jump\n    HostName 127.0.0.1\n    Port {port}\nHost tgt-*\n    ProxyJump jump\n")
    hosts = [Host(f"app{i}", f"tgt-{i}") for i in range(1, 5)]
    result = run(SSHBackend(fleet.options(ssh_config=str(config))), hosts, "true")
    assert result.failed_step is not None
    for host in result.failed_step.hosts:
        assert host.describe() == f"{host.host}: via gateway jump: connection refused"


class TimedSilentHost(SilentHost):
    """A silent host that records when each connection came and went (EOF from the client)."""

    def __init__(self) -> None:
        self.spans: list[list[float]] = []
        super().__init__()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            span = [time.monotonic(), float("inf")]
            self.spans.append(span)
            self.held.append(conn)
            threading.Thread(target=self._watch, args=(conn, span), daemon=True).start()

    @staticmethod
    def _watch(conn: socket.socket, span: list[float]) -> None:
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass
        span[1] = time.monotonic()

    def most_at_once(self, slack: float) -> int:
        """Most connections open at one instant, ignoring the last `slack` s of each (the time
        a close takes to travel through a gateway's sshd)."""
        events = sorted([(a, 1) for a, _ in self.spans] + [(b - slack, -1) for _, b in self.spans])
        most = now = 0
        for _, step in events:
            now += step
            most = max(most, now)
        return most


def slow_through(
    options: SSHOptions, silent: SilentHost, names: list[str], gateway: str | None = None
) -> threading.Thread:
    """Start a stage on silent hosts (reached through `gateway`) in a thread."""
    hosts = [Host(n, "127.0.0.1", port=silent.port, gateway=gateway) for n in names]
    thread = threading.Thread(target=run, args=(SSHBackend(options), hosts, "true"))
    thread.start()
    return thread


def test_the_handshake_bound_is_per_gateway_and_shared_by_concurrent_deploys(
    fleet: SSHFleet, tmp_path: Path
) -> None:
    # Two deploys at once through one jump host (one names it in `gateway`, the other reaches
    # it by an ssh_config ProxyJump alias), three silent targets each, max_handshakes 2: the
    # jump host never has more than 2 unauthenticated tunnels open.
    gateway = fleet.servers[0]
    silent = TimedSilentHost()
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host jump\n    HostName 127.0.0.1\n    Port {gateway.port}\n    User {fleet.user}\n"
        f"Host silent-*\n    HostName 127.0.0.1\n    Port {silent.port}\n    ProxyJump jump\n"
    )
    options = fleet.options(connect_timeout=1, max_handshakes=2, ssh_config=str(config))
    first = slow_through(
        options, silent, ["a1", "a2", "a3"], gateway=f"{fleet.user}@127.0.0.1:{gateway.port}"
    )
    hosts = [Host(f"b{i}", f"silent-{i}") for i in (1, 2, 3)]
    second = threading.Thread(target=run, args=(SSHBackend(options), hosts, "true"))
    second.start()
    first.join(30)
    second.join(30)
    silent.close()
    assert not first.is_alive() and not second.is_alive()
    assert len(silent.spans) == 6
    # Each tunnel lives about the 1 s connect timeout; per-backend bounds would hold 4 at once.
    assert silent.most_at_once(slack=0.3) == 2


class RudeHost:
    """Accepts a connection, waits `delay`, closes it without a banner (like sshd past MaxStartups)."""

    def __init__(self, delay: float) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.delay = delay
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            time.sleep(self.delay)
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_waiting_for_a_handshake_slot_is_not_reported_as_a_connect_timeout(
    fleet: SSHFleet, silent: SilentHost
) -> None:
    # One slot; a silent host holds it for the whole 1 s connect timeout; meanwhile a host that
    # drops connections before the banner waits for the slot. Its error must say what it did,
    # not "timed out" (the wait for the slot is not connecting).
    rude = RudeHost(delay=0.3)
    backend = SSHBackend(fleet.options(connect_timeout=1, max_handshakes=1))
    errors: list[str] = []

    def open_silent() -> None:
        try:
            backend.open(Host("quiet", "127.0.0.1", port=silent.port))
        except HostUnreachable as exc:
            errors.append(str(exc))

    holder = threading.Thread(target=open_silent)
    holder.start()
    try:
        assert wait_until(lambda: len(silent.held) == 1), "the silent host never got the slot"
        with pytest.raises(HostUnreachable) as info:
            backend.open(Host("rude", "127.0.0.1", port=rude.port))
        holder.join(10)
    finally:
        rude.close()
    assert errors == ["quiet: timed out connecting after 1s (no SSH banner)"]
    assert str(info.value) == "rude: connection closed by the host before its SSH banner (sshd MaxStartups?)"
