"""Real OpenSSH servers on loopback ports for tests and benchmarks.

    fleet = start_fleet(3, tmp_dir)          # 3 sshd processes, one client key, one known_hosts
    backend = SSHBackend(fleet.options())
    hosts = fleet.hosts(5)                   # app1..app5 spread over the 3 servers
    ...
    fleet.stop()

In pytest, use the session-scoped `sshd_hosts` factory fixture (`sshd_hosts(3)` returns a shared
fleet of 3 servers) by adding `pytest_plugins = ["tests.support.sshd"]` to the test module, and mark the
tests `@pytest.mark.ssh`. When sshd cannot be started the tests are skipped with the reason, or
FAIL when the environment variable CI is set (`scripts/ensure-sshd.sh` installs OpenSSH).

Each server is `/usr/sbin/sshd -D -e -f <cfg>` with its own ed25519 host key, listening on
127.0.0.1 only, accepting only the generated client key, logging to `<dir>/sshd.log`, and
giving sessions a clean `HOME` (so the machine's `.bashrc` is not run: DESIGN §4).

(PYTEST_DONT_REWRITE: this module is both imported by tests and loaded as a plugin; it has no
asserts to rewrite.)
"""

from __future__ import annotations

import contextlib
import getpass
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runners import Host
from runners.backends.ssh import SSHOptions

SSHD = "/usr/sbin/sshd"
SFTP_SERVERS = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/libexec/sftp-server",
)


class SSHDUnavailable(RuntimeError):
    """sshd (or ssh-keygen) is missing or would not start."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, comment: str = "gonogo-test") -> str:
    """Create an ed25519 key pair at `path` (no passphrase); return the public key line."""
    if not shutil.which("ssh-keygen"):
        raise SSHDUnavailable("ssh-keygen not found (install openssh-client: scripts/ensure-sshd.sh)")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path.with_name(path.name + ".pub").read_text().strip()


def _prepare_machine() -> None:
    """Make this machine able to run a test sshd (only what sshd itself insists on)."""
    if not os.path.exists(SSHD):
        raise SSHDUnavailable(f"{SSHD} not found (install openssh-server: scripts/ensure-sshd.sh)")
    if os.geteuid() != 0:
        return  # unprivileged sshd: no privilege separation, logs in as this user only
    # Run as root, sshd needs its privilege-separation directory.
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    # With `UsePAM no`, sshd refuses accounts whose password field starts with "!" (locked),
    # even for key logins. Docker images often ship root as "!": set it to "*" (no password
    # login possible either way, but not "locked"). This changes /etc/shadow of this machine.
    try:
        shadow = Path("/etc/shadow").read_text()
    except OSError:
        return
    for line in shadow.splitlines():
        fields = line.split(":")
        if fields[0] == "root" and len(fields) > 1 and fields[1].startswith("!"):
            subprocess.run(["usermod", "-p", "*", "root"], check=True)


@dataclass
class SSHServer:
    """One running sshd."""

    name: str
    port: int
    dir: Path
    host_key: str  # public key line: "ssh-ed25519 AAAA... comment"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        """sshd's own log (it runs with `-e`)."""
        return self.dir / "sshd.log"

    def known_hosts_line(self) -> str:
        """This server's entry for a known_hosts file."""
        key_type, key = self.host_key.split()[:2]
        return f"[127.0.0.1]:{self.port} {key_type} {key}"

    def fingerprint(self) -> str:
        """`SHA256:...` of the host key, computed by ssh-keygen."""
        out = subprocess.run(
            ["ssh-keygen", "-lf", str(self.dir / "host_ed25519_key.pub")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.split()[1]

    def logins(self) -> int:
        """How many sessions this sshd has authenticated so far."""
        try:
            return self.log.read_text(errors="replace").count("Accepted publickey")
        except OSError:
            return 0

    def start(self, *, reexec: bool = True) -> None:
        """Start this sshd with its config (`dir/sshd_config`); `_wait_ready` waits for it."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", *([] if reexec else ["-r"]), "-f", str(self.dir / "sshd_config")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def restart(self) -> None:
        """Stop this sshd and start it again on the same port with the same host key (as when
        its host rebooted), once it answers."""
        self.stop()
        self.start()
        _wait_ready(self, time.monotonic() + 15)

    def stop(self) -> None:
        """Stop this sshd (and its session children) if it is running."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@dataclass
class SSHFleet:
    """Several sshd processes sharing one client key and one known_hosts file."""

    root: Path
    key: Path
    known_hosts: Path
    user: str
    home: Path
    servers: list[SSHServer] = field(default_factory=list)

    def host(self, name: str, server: int = 0, **fields: object) -> Host:
        """A Host named `name` that dials server number `server`."""
        return Host(name, "127.0.0.1", port=self.servers[server].port, **fields)  # type: ignore[arg-type]

    def hosts(self, n: int, prefix: str = "app") -> list[Host]:
        """`n` hosts app1..appN spread round-robin over the servers."""
        return [self.host(f"{prefix}{i + 1}", i % len(self.servers)) for i in range(n)]

    def options(self, **overrides: object) -> SSHOptions:
        """SSHOptions for this fleet: its key, its known_hosts, this user, short timeouts."""
        values: dict[str, object] = {
            "user": self.user,
            "identity_file": str(self.key),
            "known_hosts": str(self.known_hosts),
            "connect_timeout": 5.0,
            # An empty ssh_config, so the machine's ~/.ssh/config cannot change the tests.
            "ssh_config": str(self.root / "ssh_config"),
        }
        values.update(overrides)
        return SSHOptions(**values)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Stop every server."""
        for server in self.servers:
            server.stop()


class TCPProxy:
    """A loopback TCP proxy in front of a server, to play the network in tests.

    `delay`: seconds before the first byte from the server is passed on (a slow handshake).
    `freeze()`: stop passing anything either way while keeping every socket open, as when the
    network between client and host disappears (no FIN, no RST: only silence).
    """

    def __init__(self, port: int, *, delay: float = 0.0) -> None:
        self.target = port
        self.delay = delay
        self.frozen = threading.Event()
        self._closed = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def freeze(self) -> None:
        """From now on, pass nothing (sockets stay open)."""
        self.frozen.set()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.delay), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, delay: float) -> None:
        first = True
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([src], [], [], 0.1)
            except (OSError, ValueError):  # closed by close()
                return
            if self.frozen.is_set():
                continue  # read nothing, send nothing: the kernel buffers fill, then silence
            if not ready:
                continue
            try:
                data = src.recv(65536)
            except OSError:
                return
            if first and delay:
                time.sleep(delay)
            first = False
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        """Close the listener and every proxied connection."""
        self._closed.set()
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.close()


def _sshd_config(server: SSHServer, authorized_keys: Path, home: Path, max_startups: str) -> str:
    sftp = next((p for p in SFTP_SERVERS if os.path.exists(p)), "internal-sftp")
    return f"""\
Port {server.port}
ListenAddress 127.0.0.1
HostKey {server.dir / "host_ed25519_key"}
PidFile {server.dir / "sshd.pid"}
AuthorizedKeysFile {authorized_keys}
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
Subsystem sftp {sftp}
MaxStartups {max_startups}
MaxSessions 100
UseDNS no
PrintMotd no
PrintLastLog no
LogLevel INFO
SetEnv HOME={home}
"""


def _wait_ready(server: SSHServer, deadline: float) -> None:
    """Wait until the server answers with an SSH banner."""
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            log = server.log.read_text(errors="replace") if server.log.exists() else ""
            raise SSHDUnavailable(f"sshd on port {server.port} exited: {log.strip()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SSHDUnavailable(f"sshd on port {server.port} did not answer in time")


def start_fleet(n: int, root: Path, *, max_startups: str = "100:30:200", reexec: bool = True) -> SSHFleet:
    """Start `n` sshd processes under `root` and wait until each one answers.

    `reexec=False` starts them with `-r` (no re-execution of sshd for each connection): about
    a quarter less server CPU per connection, which benchmarks use so that loopback servers
    sharing the client's cores weigh less (the same servers for every tool measured).
    """
    _prepare_machine()
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    home.mkdir(exist_ok=True)
    (root / "ssh_config").write_text("")
    key = root / "id_ed25519"
    client_pub = keygen(key, "gonogo-client")
    authorized = root / "authorized_keys"
    authorized.write_text(client_pub + "\n")
    fleet = SSHFleet(root, key, root / "known_hosts", getpass.getuser(), home)
    try:
        for i in range(n):
            server_dir = root / f"sshd{i + 1}"
            server_dir.mkdir()
            host_key = keygen(server_dir / "host_ed25519_key", f"sshd{i + 1}")
            server = SSHServer(f"sshd{i + 1}", free_port(), server_dir, host_key)
            (server_dir / "sshd_config").write_text(_sshd_config(server, authorized, home, max_startups))
            server.start(reexec=reexec)
            fleet.servers.append(server)
        deadline = time.monotonic() + 15
        for server in fleet.servers:
            _wait_ready(server, deadline)
    except BaseException:
        fleet.stop()
        raise
    fleet.known_hosts.write_text("".join(s.known_hosts_line() + "\n" for s in fleet.servers))
    return fleet


def _unavailable(reason: str) -> None:
    message = f"cannot start a test sshd: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def sshd_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[int], SSHFleet]]:
    """Factory: `sshd_hosts(n)` returns a fleet of n running sshd servers, shared per n."""
    fleets: dict[int, SSHFleet] = {}

    def get(n: int) -> SSHFleet:
        if n not in fleets:
            try:
                fleets[n] = start_fleet(n, tmp_path_factory.mktemp(f"sshd{n}"))
            except (SSHDUnavailable, OSError, subprocess.CalledProcessError) as exc:
                _unavailable(str(exc))
        return fleets[n]

    yield get
    for fleet in fleets.values():
        fleet.stop()
