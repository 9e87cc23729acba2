"""The SSH backend against real OpenSSH servers on loopback (see tests/sshd.py).

Hosts are several sshd processes (and several host entries per sshd); a "silent host" is a
socket that accepts and never speaks; a closed port is a port nobody listens on.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runners import Host, HostUnreachable, Pipeline, ProgressEvent, Redactor, StageResult, Step, Strategy
from runners.backends.ssh import SSHBackend, SSHOptions
from tests.support.sshd import SSHFleet, free_port, keygen

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh


@pytest.fixture
def fleet(sshd_hosts: Callable[[int], SSHFleet]) -> SSHFleet:
    return sshd_hosts(3)


def run(
    fleet: SSHFleet,
    hosts: list[Host],
    steps: list[Step],
    *,
    strategy: Strategy | None = None,
    options: SSHOptions | None = None,
    events: list[ProgressEvent] | None = None,
    **kwargs: object,
) -> StageResult:
    """Run one stage over SSH and close everything."""
    sink = events.append if events is not None else (lambda _: None)
    backend = SSHBackend(options or fleet.options())
    pipeline = Pipeline(backend, hosts, strategy or Strategy("parallel"), kwargs, on_progress=sink)
    try:
        return pipeline.run_stage("deploy", steps)
    finally:
        pipeline.close()


class SilentHost:
    """Accepts TCP connections and never sends a byte; counts connections held at once."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self.max_open = 0
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.held = [c for c in self.held if _is_open(c)] + [conn]
                self.max_open = max(self.max_open, len(self.held))

    def close(self) -> None:
        self._closed = True
        self.sock.close()
        for conn in self.held:
            conn.close()


def _is_open(conn: socket.socket) -> bool:
    """Read (and drop) what the client sent, e.g. its banner; closed when we reach EOF."""
    conn.setblocking(False)
    try:
        while conn.recv(4096):
            pass
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False


@pytest.fixture
def silent() -> Iterator[SilentHost]:
    host = SilentHost()
    yield host
    host.close()


# -- running steps ----------------------------------------------------------------------------


def test_multi_host_step_streams_each_host_separately(fleet: SSHFleet) -> None:
    events: list[ProgressEvent] = []
    hosts = fleet.hosts(5)
    step = Step("talk", "for i in 1 2 3; do echo {host} out $i; echo {host} err $i >&2; sleep 0.05; done")
    result = run(fleet, hosts, [step], events=events)
    assert result.ok, result.failed_step
    for host_result in result.steps[0].hosts:
        lines = host_result.output.splitlines()
        assert sorted(lines) == sorted(
            f"{host_result.host} {s} {i}" for s in ("out", "err") for i in (1, 2, 3)
        )
    # Every streamed chunk is whole lines of one host.
    for event in (e for e in events if e.kind == "output"):
        assert event.text and event.text.endswith("\n")
        assert all(line.startswith(event.hosts[0] + " ") for line in event.text.splitlines())


def test_failure_on_one_host_stops_the_rollout_after_its_batch(fleet: SSHFleet) -> None:
    hosts = fleet.hosts(5)
    strategy = Strategy("canary", canary=1, batch_size=2)
    steps = [Step("check", "test {host} != app2 || exit 3"), Step("after", "echo after")]
    result = run(fleet, hosts, steps, strategy=strategy)
    assert not result.ok and result.failed_step is not None
    by_host = {h.host: h for h in result.failed_step.hosts}
    assert by_host["app2"].status == "failed", by_host["app2"]
    assert by_host["app2"].exit_code == 3
    assert by_host["app2"].describe().startswith("app2: exit 3 after ")
    assert by_host["app3"].ok  # the rest of the batch finished the step
    assert result.skipped == ["app4", "app5"]
    assert [s.step for s in result.steps] == ["check", "after", "check"]  # canary, then batch 2


def test_closed_port_and_silent_host_fail_fast_with_their_names(fleet: SSHFleet, silent: SilentHost) -> None:
    hosts = [
        fleet.host("app1"),
        Host("app3", "127.0.0.1", port=free_port()),
        Host("app4", "127.0.0.1", port=silent.port),
    ]
    started = time.monotonic()
    result = run(fleet, hosts, [Step("s", "true")], options=fleet.options(connect_timeout=2))
    elapsed = time.monotonic() - started
    assert result.failed_step is not None
    errors = {h.host: h.describe() for h in result.failed_step.failures()}
    assert errors["app3"] == "app3: connection refused"
    assert errors["app4"].startswith("app4: timed out connecting after 2s")
    assert result.failed_step.hosts[0].ok
    assert elapsed < 5, elapsed  # the 2 s connect timeout bounds it (with room for a loaded machine)
    # The backend's own exception names the host too.
    with pytest.raises(HostUnreachable, match=r"^app3: connection refused$"):
        SSHBackend(fleet.options()).open(hosts[1])


def test_authentication_failure_names_the_host(fleet: SSHFleet, tmp_path: Path) -> None:
    keygen(tmp_path / "stranger")
    backend = SSHBackend(fleet.options(identity_file=str(tmp_path / "stranger")))
    with pytest.raises(HostUnreachable, match=r"^app5: authentication failed"):
        backend.open(fleet.host("app5"))


def test_timed_out_step_really_stops_the_remote_process(fleet: SSHFleet, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    started = time.monotonic()
    result = run(fleet, [fleet.host("app1")], [Step("slow", "sleep 5; touch {m}", timeout=1)], m=str(marker))
    elapsed = time.monotonic() - started
    assert result.failed_step is not None
    [host] = result.failed_step.hosts
    assert host.status == "timed_out" and host.exit_code == 124
    assert host.describe() == "app1: timed out after 1s"
    assert elapsed < 4, elapsed  # not the step's 5 s (the margin is for a loaded machine)
    time.sleep(max(0.0, started + 6 - time.monotonic()))  # past when the command would have touched it
    assert not marker.exists()


# -- host keys --------------------------------------------------------------------------------


def test_unknown_host_key_is_rejected_by_default(fleet: SSHFleet, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    server = fleet.servers[0]
    backend = SSHBackend(fleet.options(known_hosts=str(empty)))
    with pytest.raises(HostUnreachable) as info:
        backend.open(fleet.host("app3"))
    assert str(info.value) == (
        f"app3: unknown host key for [127.0.0.1]:{server.port} (ssh-ed25519 {server.fingerprint()}); "
        "add it to known_hosts or set accept_new_host_keys"
    )
    assert empty.read_text() == ""


def test_new_host_key_accepted_logged_and_saved_with_the_opt_in(
    fleet: SSHFleet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    known = tmp_path / "known_hosts"  # does not exist yet
    server = fleet.servers[1]
    backend = SSHBackend(fleet.options(known_hosts=str(known), accept_new_host_keys=True))
    with caplog.at_level(logging.WARNING, logger="gonogo.ssh"):
        session = backend.open(fleet.host("app2", 1))
    backend.close()
    assert session.host.name == "app2"
    [record] = [r for r in caplog.records if r.name == "gonogo.ssh"]
    assert "app2" in record.getMessage() and server.fingerprint() in record.getMessage()
    assert known.read_text() == server.known_hosts_line() + "\n"
    # From now on the default (rejecting) policy knows this host.
    strict = SSHBackend(fleet.options(known_hosts=str(known)))
    strict.open(fleet.host("app2", 1))
    strict.close()


def test_changed_host_key_is_refused(fleet: SSHFleet, tmp_path: Path) -> None:
    real, impostor = fleet.servers[0], fleet.servers[1]
    known = tmp_path / "known_hosts"
    # known_hosts says server 0's port has server 1's key: the key we get is "changed".
    known.write_text(impostor.known_hosts_line().replace(f":{impostor.port} ", f":{real.port} ") + "\n")
    for accept in (False, True):  # even the opt-in never accepts a changed key
        backend = SSHBackend(fleet.options(known_hosts=str(known), accept_new_host_keys=accept))
        with pytest.raises(HostUnreachable) as info:
            backend.open(fleet.host("app1", 0))
        message = str(info.value)
        assert message.startswith(f"app1: host key CHANGED for [127.0.0.1]:{real.port}")
        assert real.fingerprint() in message and impostor.fingerprint() in message


# -- topology ---------------------------------------------------------------------------------


def test_jump_host(fleet: SSHFleet) -> None:
    gateway, target = fleet.servers[0], fleet.servers[2]
    before = gateway.logins(), target.logins()
    options = fleet.options(gateway=f"{fleet.user}@127.0.0.1:{gateway.port}")
    hosts = [fleet.host("app1", 2), fleet.host("app2", 2)]
    backend = SSHBackend(options)
    pipeline = Pipeline(backend, hosts, Strategy("parallel"), {})
    try:
        result = pipeline.run_stage("deploy", [Step("where", "echo $SSH_CONNECTION")])
    finally:
        pipeline.close()
    assert result.ok, result.failed_step
    for host in result.steps[0].hosts:
        assert host.output.split()[3] == str(target.port)  # the command ran on the target
    # One shared connection to the jump host; one connection per target host through it.
    assert gateway.logins() - before[0] == 1
    assert target.logins() - before[1] == 2
    assert backend.connections_opened == 3
    # A target the gateway cannot reach fails with the host's name.
    bad = Host("app9", "127.0.0.1", port=free_port(), gateway=f"{fleet.user}@127.0.0.1:{gateway.port}")
    with pytest.raises(HostUnreachable, match=r"^app9: the gateway cannot reach"):
        SSHBackend(fleet.options()).open(bad)


def test_ssh_config_alias(fleet: SSHFleet, tmp_path: Path) -> None:
    server = fleet.servers[1]
    config = tmp_path / "ssh_config"
    config.write_text(f"Host web-alias\n    HostName 127.0.0.1\n    Port {server.port}\n")
    result = run(
        fleet,
        [Host("web1", "web-alias")],
        [Step("where", "echo $SSH_CONNECTION")],
        options=fleet.options(ssh_config=str(config)),
    )
    assert result.ok, result.failed_step
    assert result.steps[0].hosts[0].output.split()[3] == str(server.port)


def test_handshakes_are_bounded_but_commands_are_not(fleet: SSHFleet, silent: SilentHost) -> None:
    # Six silent hosts, two handshakes at a time: three waves of the 1 s connect timeout.
    hosts = [Host(f"s{i}", "127.0.0.1", port=silent.port) for i in range(6)]
    started = time.monotonic()
    result = run(
        fleet, hosts, [Step("s", "true")], options=fleet.options(connect_timeout=1, max_handshakes=2)
    )
    assert not result.ok
    assert silent.max_open == 2
    assert 2.8 < time.monotonic() - started < 5
    # Real hosts: the bound only covers the handshake, so six `sleep 1` still take about 1 s.
    started = time.monotonic()
    result = run(fleet, fleet.hosts(6), [Step("s", "sleep 1")], options=fleet.options(max_handshakes=2))
    assert result.ok and time.monotonic() - started < 2.5


# -- strategies and steps over SSH ------------------------------------------------------------


def test_once_steps_and_canary_batches_in_order(fleet: SSHFleet, tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    hosts = fleet.hosts(5)
    steps = [
        Step("migrate", "echo {host} >> {d}/migrated", once=True),
        Step("stamp", "date +%s.%N > {d}/{host}.start; sleep 0.2; date +%s.%N > {d}/{host}.end"),
    ]
    strategy = Strategy("canary", canary=1, batch_size=2)
    result = run(fleet, hosts, steps, strategy=strategy, events=events, d=str(tmp_path))
    assert result.ok, result.failed_step
    assert (tmp_path / "migrated").read_text() == "app1\n"
    batches = [list(e.hosts) for e in events if e.kind == "batch_started"]
    assert batches == [["app1"], ["app2", "app3"], ["app4", "app5"]]

    def stamp(host: str, kind: str) -> float:
        return float((tmp_path / f"{host}.{kind}").read_text())

    for earlier, later in itertools.pairwise(batches):
        assert max(stamp(h, "end") for h in earlier) < min(stamp(h, "start") for h in later)
    # Hosts of one batch overlap (they run at the same time).
    assert stamp("app2", "start") < stamp("app3", "end") and stamp("app3", "start") < stamp("app2", "end")


def test_secrets_are_redacted_and_never_on_a_command_line(fleet: SSHFleet) -> None:
    secret = "s3cr3t-Value-42"
    events: list[ProgressEvent] = []
    seen_in_cmdline: list[str] = []
    done = threading.Event()

    def scan() -> None:  # every process on this machine, sshd sessions included
        while not done.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                    except OSError:
                        continue
                    if secret in cmdline:
                        seen_in_cmdline.append(cmdline)
            time.sleep(0.02)

    scanner = threading.Thread(target=scan)
    scanner.start()
    backend = SSHBackend(fleet.options())
    pipeline = Pipeline(
        backend,
        fleet.hosts(2),
        Strategy("parallel"),
        {},
        env={"API_TOKEN": secret},
        redactor=Redactor([secret]),
        on_progress=events.append,
    )
    try:
        result = pipeline.run_stage("deploy", [Step("leak", "echo token=$API_TOKEN; sleep 1", timeout=10)])
    finally:
        pipeline.close()
        done.set()
        scanner.join()
    assert result.ok, result.failed_step
    assert [h.output for h in result.steps[0].hosts] == ["token=[redacted]\n"] * 2
    assert not any(secret in (e.text or "") for e in events)
    assert any("[redacted]" in (e.text or "") for e in events if e.kind == "output")
    assert seen_in_cmdline == []


def test_connections_are_reused_across_steps_and_stages(fleet: SSHFleet, tmp_path: Path) -> None:
    hosts = fleet.hosts(3)  # one per server
    before = [s.logins() for s in fleet.servers]
    backend = SSHBackend(fleet.options())
    pipeline = Pipeline(backend, hosts, Strategy("parallel"), {})
    try:
        for stage in ("pre_deploy", "deploy", "verify"):
            assert pipeline.run_stage(stage, [Step("a", "true"), Step("b", "echo b")]).ok
        assert backend.connections_opened == 3
        assert [s.logins() - b for s, b in zip(fleet.servers, before, strict=True)] == [1, 1, 1]
        # A connection that dropped between steps is reopened once, transparently.
        session = backend.sessions[0]
        session.conn.close()
        assert pipeline.run_stage("again", [Step("c", "true")]).ok
        assert backend.connections_opened == 4
        # put() uploads over SFTP on the same connection.
        local = tmp_path / "upload.txt"
        local.write_text("payload\n")
        session.put(str(local), str(tmp_path / "uploaded.txt"))
        assert (tmp_path / "uploaded.txt").read_text() == "payload\n"
    finally:
        pipeline.close()
    assert not session.conn.is_connected and backend.sessions == []


def test_ssh_floor_sanity(fleet: SSHFleet) -> None:
    # The fleet's key and known_hosts work for plain OpenSSH too (the bench relies on it).
    server = fleet.servers[0]
    proc = subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={fleet.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-i",
            str(fleet.key),
            "-p",
            str(server.port),
            f"{fleet.user}@127.0.0.1",
            "echo ok",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.stdout == "ok\n", proc.stderr
