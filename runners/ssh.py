"""SSH backend on Fabric 3 / paramiko, with verified host keys and timeouts that stop remote work.

    backend = SSHBackend(SSHOptions(user="deploy", identity_file="~/.ssh/gonogo_ed25519"))
    session = backend.open(Host("web1", "web1.internal"))   # HostUnreachable names the host
    session.run("uptime", timeout=30, env={"TOKEN": "..."}, on_output=print)
    backend.close()

What it does beyond Fabric's defaults (see DESIGN §4):

- Host keys are checked against known_hosts (parsed once per backend). An unknown key is
  rejected unless `accept_new_host_keys` is set, in which case it is logged (host and SHA256
  fingerprint) and appended to the known_hosts file. A changed key is always refused. Fabric's
  `AutoAddPolicy` is replaced on every connection, gateways included.
- Only the bot's key is offered (`allow_agent=False, look_for_keys=False`) when
  `identity_file` is set.
- `connect_timeout` bounds the TCP connect, the SSH banner, authentication and, through a
  gateway, opening the tunnel: a host that accepts TCP and says nothing fails in about that time.
- Handshakes in flight are bounded per gateway (`max_handshakes`, direct connections are one
  group) so one sshd is not pushed past its `MaxStartups`; commands themselves are not bounded.
- Commands run as `runners.pipeline.remote_command` builds them: a step timeout becomes
  `timeout --kill-after=5 N sh -c '...'` (so the remote work really stops), secrets travel on
  stdin (never on a command line), stdin is closed after that. A client-side guard a bit longer
  than the step timeout keeps a dead connection from hanging the deploy.
- Output streams line by line, per host, to the `on_output` callback (never interleaved).
- One connection per host for the whole deploy; `close()` closes them all.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection
from fabric.runners import Remote
from invoke.exceptions import CommandTimedOut, ThreadException
from paramiko.ssh_exception import (
    AuthenticationException,
    BadHostKeyException,
    ChannelException,
    NoValidConnectionsError,
    SSHException,
)

from runners.base import CommandOutcome, Host, HostUnreachable, OutputSink
from runners.output import TailBuffer
from runners.pipeline import KILL_AFTER, format_seconds, remote_command

log = logging.getLogger("gonogo.ssh")
#: paramiko's own transport logs. Quiet by default: every failure is reported, naming its
#: host, as HostUnreachable or a CommandOutcome error; lower this logger's level to debug.
PARAMIKO_LOGGER = "gonogo.ssh.paramiko"
logging.getLogger(PARAMIKO_LOGGER).setLevel(logging.CRITICAL)

#: Seconds the client waits beyond `timeout` + `KILL_AFTER` before it gives up on a silent channel.
GUARD_SLACK = 10.0
SYSTEM_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")


@dataclass(frozen=True)
class SSHOptions:
    """How the SSH backend connects. `Host.port`/`Host.user`/`Host.gateway` beat these defaults.

    - `user`, `port`: defaults for hosts that set none (an ssh_config entry for the host's
      address wins over these defaults; `Host.user`/`Host.port` win over everything).
    - `identity_file`: the bot's private key; when set, only it is offered (no agent, no
      `~/.ssh/id_*`). When None, paramiko's defaults apply (agent and `~/.ssh/id_*`).
    - `known_hosts`: the known_hosts file to verify against and to save accepted keys to;
      None means `~/.ssh/known_hosts` plus `/etc/ssh/ssh_known_hosts`.
    - `accept_new_host_keys`: explicit opt-in to trust and save keys of unknown hosts (logged).
    - `connect_timeout`: seconds for connect, banner, authentication and gateway tunnel.
    - `ssh_config`: an ssh_config file, so `Host.address` can be an alias (`HostName`, `Port`,
      `User`, `IdentityFile`, `ProxyJump`). When None, `~/.ssh/config` and `/etc/ssh/ssh_config`.
    - `gateway`: jump host `user@host:port` (or an ssh_config alias) for hosts without their own.
    - `max_handshakes`: connection handshakes in flight per gateway (direct hosts: one group).
    - `sudo_password_env`: name of an environment variable holding the sudo password; when set,
      sudo steps use `sudo -S` and get the password on stdin. Add it to the redacted secrets.
    - `keepalive`: seconds between SSH keepalives on idle connections (0 disables).
    """

    user: str | None = None
    port: int = 22
    identity_file: str | None = None
    known_hosts: str | None = None
    accept_new_host_keys: bool = False
    connect_timeout: float = 10.0
    ssh_config: str | None = None
    gateway: str | None = None
    max_handshakes: int = 10
    sudo_password_env: str | None = None
    keepalive: float = 30.0


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a public key: `SHA256:base64` without padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(hostname: str, port: int) -> str:
    """How known_hosts names a host: `host` on port 22, else `[host]:port`."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


# -- known hosts ------------------------------------------------------------------------------


class KnownHosts:
    """The known_hosts entries of one backend, parsed once and shared by its connections."""

    def __init__(self, path: str | None, *, accept_new: bool = False) -> None:
        self.accept_new = accept_new
        self._keys = paramiko.HostKeys()
        self._lock = threading.Lock()
        if path is not None:
            self.save_path = Path(path).expanduser()
            sources = [self.save_path]
        else:
            sources = [Path(p).expanduser() for p in SYSTEM_KNOWN_HOSTS]
            self.save_path = sources[0]
        for source in sources:
            if source.is_file():
                self._keys.load(str(source))

    def keys_for(self, name: str) -> dict[str, paramiko.PKey]:
        """The known keys (by key type) for a known_hosts name such as `[10.0.0.5]:2222`."""
        with self._lock:
            entry = self._keys.lookup(name)
            return dict(entry) if entry is not None else {}

    def prime(self, client: paramiko.SSHClient, name: str) -> None:
        """Give `client` the known keys of `name`, so paramiko verifies them (and prefers their type)."""
        client_keys = client.get_host_keys()
        for key_type, key in self.keys_for(name).items():
            client_keys.add(name, key_type, key)

    def accept(self, label: str, name: str, key: paramiko.PKey) -> None:
        """Trust a new key: remember it, append it to the known_hosts file and log it."""
        line = f"{name} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            if self._keys.check(name, key):
                return
            self._keys.add(name, key.get_name(), key)
            self.save_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(self.save_path, "a", encoding="ascii") as fh:
                fh.write(line)
        log.warning(
            "%s: accepted new host key for %s (%s %s) and saved it to %s",
            label,
            name,
            key.get_name(),
            fingerprint(key),
            self.save_path,
        )


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Rejects unknown host keys (default) or accepts, saves and logs them (opt-in)."""

    def __init__(self, label: str, known: KnownHosts) -> None:
        self.label = label
        self.known = known

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        """Called by paramiko for a host (or key type) known_hosts does not list."""
        if not self.known.accept_new:
            raise HostUnreachable(
                f"{self.label}: unknown host key for {hostname} ({key.get_name()} {fingerprint(key)}); "
                "add it to known_hosts or set accept_new_host_keys"
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known.accept(self.label, hostname, key)


# -- fabric plumbing --------------------------------------------------------------------------


class _Connection(Connection):
    """A Fabric connection whose gateway tunnel opens within the connect timeout."""

    def open_gateway(self) -> Any:
        """Open the `direct-tcpip` channel through a gateway Connection with a timeout."""
        if not isinstance(self.gateway, Connection):
            return super().open_gateway()
        self.gateway.open()
        return self.gateway.transport.open_channel(
            kind="direct-tcpip",
            dest_addr=(self.host, int(self.port)),
            src_addr=("", 0),
            timeout=self.connect_timeout,
        )


class _Discard(list[Any]):
    """A capture buffer that keeps nothing: output goes to our own per-host tail instead."""

    def append(self, item: Any) -> None:
        """Drop the chunk."""


class _Remote(Remote):
    """Fabric's remote runner, plus: stdin payload then EOF, no unbounded capture, no busy wait."""

    def __init__(self, *args: Any, stdin_data: str = "", **kwargs: Any) -> None:
        self._stdin_data = stdin_data.encode()
        super().__init__(*args, **kwargs)

    def send_start_message(self, command: str) -> None:
        """Start the command, send the stdin payload (secrets), then close stdin."""
        super().send_start_message(command)
        if self._stdin_data:
            self.channel.sendall(self._stdin_data)
        self.channel.shutdown_write()

    def handle_stdout(self, buffer_: list[str], hide: bool, output: Any) -> None:
        """Stream stdout to `output` without keeping it (invoke would keep it all)."""
        super().handle_stdout(_Discard(), hide, output)

    def handle_stderr(self, buffer_: list[str], hide: bool, output: Any) -> None:
        """Stream stderr to `output` without keeping it."""
        super().handle_stderr(_Discard(), hide, output)

    def respond(self, buffer_: list[str]) -> None:
        """No watchers: skip invoke's join of the whole output on every chunk."""

    def wait(self) -> None:
        """Block on the channel's exit status instead of polling every 10 ms."""
        while not (self.process_is_finished or self.has_dead_threads):
            self.channel.status_event.wait(0.2)


class _LineStream:
    """A file-like object for invoke: forwards whole lines of one stream to a shared sink."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._pending = ""

    def write(self, text: str) -> int:
        """Buffer `text`; emit every complete line."""
        data = self._pending + text
        cut = data.rfind("\n") + 1
        if cut == 0 and len(data) > 8192:
            cut = len(data)
        self._pending = data[cut:]
        if cut:
            self._emit(data[:cut])
        return len(text)

    def flush(self) -> None:
        """Nothing to do: partial lines wait for their newline or `close()`."""

    def close(self) -> None:
        """Emit the unfinished last line, if any."""
        if self._pending:
            rest, self._pending = self._pending, ""
            self._emit(rest)


def _abandon(conn: Connection) -> None:
    """Drop a connection whose handshake failed, closing its socket now (not when paramiko's
    thread gets to it), so a freed handshake slot really means one connection less."""
    transport = conn.client.get_transport()
    if transport is not None:
        try:
            # shutdown() sends the FIN now, even while paramiko's thread is blocked reading.
            transport.sock.shutdown(socket.SHUT_RDWR)
        except Exception:
            log.debug("shutting down a failed connection's socket failed", exc_info=True)
    conn.client.close()


# -- sessions and backend ---------------------------------------------------------------------


class SSHSession:
    """One host's connection, reused for every command of a deploy."""

    def __init__(self, host: Host, backend: SSHBackend, conn: Connection) -> None:
        self.host = host
        self.backend = backend
        self.conn = conn
        self._lock = threading.Lock()

    def run(
        self,
        command: str,
        *,
        timeout: float | None,
        env: Mapping[str, str],
        on_output: OutputSink,
    ) -> CommandOutcome:
        """Run `command` (wrapped by `remote_command`), streaming whole lines to `on_output`."""
        sudo_password = self.backend.sudo_password
        wrapped = remote_command(command, timeout=timeout, env=env, sudo_password=sudo_password)
        tail = TailBuffer()
        emit_lock = threading.Lock()

        def emit(text: str) -> None:
            with emit_lock:
                tail.write(text)
                on_output(text)

        out, err = _LineStream(emit), _LineStream(emit)
        guard = timeout + KILL_AFTER + GUARD_SLACK if timeout else None
        with self._lock:
            if not self.conn.is_connected:  # dropped since the last step: reconnect once
                self.conn.close()
                self.conn = self.backend.connect(self.host)
            runner = _Remote(context=self.conn, inline_env=False, stdin_data=wrapped.stdin)
            try:
                result = runner.run(
                    wrapped.line,
                    hide=True,
                    warn=True,
                    pty=False,
                    echo=False,
                    in_stream=False,
                    out_stream=out,
                    err_stream=err,
                    timeout=guard,
                    encoding="utf-8",
                    env={},
                )
            except CommandTimedOut:
                out.close()
                err.close()
                return CommandOutcome(
                    exit_code=None,
                    output=tail.text(),
                    timed_out=True,
                    error=f"timed out after {format_seconds(timeout or 0)}s and the host stopped "
                    f"answering ({format_seconds(guard or 0)}s); connection closed",
                )
            except (ThreadException, SSHException, EOFError, OSError) as exc:
                out.close()
                err.close()
                return CommandOutcome(exit_code=None, output=tail.text(), error=f"connection lost: {exc}")
        out.close()
        err.close()
        code = result.exited
        if timeout and code in (124, 137):
            return CommandOutcome(
                exit_code=code,
                output=tail.text(),
                timed_out=True,
                error=f"timed out after {format_seconds(timeout)}s",
            )
        if code is None or code < 0:
            return CommandOutcome(
                exit_code=None, output=tail.text(), error="connection lost (no exit status)"
            )
        return CommandOutcome(exit_code=code, output=tail.text())

    def put(self, local: str, remote: str) -> None:
        """Upload a local file over SFTP; errors name the host."""
        with self._lock:
            if not self.conn.is_connected:
                self.conn = self.backend.connect(self.host)
            try:
                self.conn.put(local, remote)
            except (OSError, SSHException) as exc:
                raise OSError(f"{self.host.name}: upload of {local} to {remote} failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection (its gateway, if shared, is closed by the backend)."""
        with self._lock:
            self.conn.close()


class SSHBackend:
    """Backend over Fabric connections. One instance serves one deploy; thread-safe."""

    name = "ssh"

    def __init__(self, options: SSHOptions | None = None) -> None:
        self.options = options or SSHOptions()
        if self.options.max_handshakes < 1:
            raise ValueError("max_handshakes must be at least 1")
        self.known_hosts = KnownHosts(self.options.known_hosts, accept_new=self.options.accept_new_host_keys)
        self.sudo_password: str | None = None
        if self.options.sudo_password_env:
            self.sudo_password = os.environ.get(self.options.sudo_password_env)
            if self.sudo_password is None:
                raise ValueError(f"sudo password variable {self.options.sudo_password_env} is not set")
        self._config = self._fabric_config()
        self._lock = threading.Lock()
        self._handshake_slots: dict[str, threading.BoundedSemaphore] = {}
        self._gateways: dict[str, tuple[threading.Lock, list[Connection]]] = {}
        self._sessions: list[SSHSession] = []
        #: Successful handshakes (targets and gateways): one per host per deploy when reused.
        self.connections_opened = 0

    def _fabric_config(self) -> Config:
        # lazy=True: no ~/.fabric.yaml or /etc/fabric.yaml; the bot's own config decides. The
        # connect settings live in the config so ssh_config ProxyJump hops (which Fabric builds
        # from a clone of it) get them too.
        timeout = self.options.connect_timeout
        connect_kwargs: dict[str, Any] = {"banner_timeout": timeout, "auth_timeout": timeout}
        if self.options.identity_file:
            connect_kwargs.update(
                key_filename=[str(Path(self.options.identity_file).expanduser())],
                allow_agent=False,
                look_for_keys=False,
            )
        overrides: dict[str, Any] = {
            "port": self.options.port,
            "load_ssh_configs": True,
            "connect_kwargs": connect_kwargs,
            "timeouts": {"connect": max(1, round(timeout))},
        }
        if self.options.user:
            overrides["user"] = self.options.user
        config = Config(overrides=overrides, lazy=True, runtime_ssh_path=self.options.ssh_config)
        config.load_ssh_config()
        return config

    @property
    def sessions(self) -> list[SSHSession]:
        """The sessions opened so far (and not yet closed by `close()`)."""
        with self._lock:
            return list(self._sessions)

    # -- the Backend protocol ---------------------------------------------------------------
    def open(self, host: Host) -> SSHSession:
        """Connect to `host` (through its gateway, if any); HostUnreachable names the host."""
        session = SSHSession(host, self, self.connect(host))
        with self._lock:
            self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close every session, then the shared gateway connections."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
            gateways, self._gateways = list(self._gateways.values()), {}
        for session in sessions:
            try:
                session.close()
            except Exception:  # closing must never fail a deploy
                log.debug("closing %s failed", session.host.name, exc_info=True)
        for _, conns in gateways:
            for conn in conns:
                try:
                    conn.close()
                except Exception:
                    log.debug("closing a gateway failed", exc_info=True)

    # -- connecting -------------------------------------------------------------------------
    def connect(self, host: Host) -> Connection:
        """Open a verified, authenticated connection to `host` (used by `open` and reconnects)."""
        spec = host.gateway or self.options.gateway
        gateway = self._gateway(spec, host.name) if spec else None
        conn = self._connection(host.address, user=host.user, port=host.port, gateway=gateway)
        self._handshake(conn, host.name, group=spec or "")
        return conn

    def _connection(
        self, address: str, *, user: str | None, port: int | None, gateway: Connection | None
    ) -> Connection:
        # Each connection gets its own copy of the config: Fabric writes the resolved key list back
        # into `config.connect_kwargs`, and concurrent writes to a shared config lose the key.
        conn = _Connection(address, user=user, port=port, config=self._config.clone(), gateway=gateway)
        conn.connect_timeout = self.options.connect_timeout  # Fabric rounds it to an int; keep fractions
        return conn

    def _gateway(self, spec: str, for_host: str) -> Connection:
        """The shared, open connection to a jump host (one per gateway spec per backend)."""
        with self._lock:
            lock, holder = self._gateways.setdefault(spec, (threading.Lock(), []))
        with lock:
            if holder and holder[0].is_connected:
                return holder[0]
            conn = self._connection(spec, user=None, port=None, gateway=None)
            try:
                self._handshake(conn, f"gateway {spec}", group="")
            except HostUnreachable as exc:
                raise HostUnreachable(f"{for_host}: via {exc}") from exc
            holder[:] = [conn]
            return conn

    def _slots(self, group: str) -> threading.BoundedSemaphore:
        with self._lock:
            slots = self._handshake_slots.get(group)
            if slots is None:
                slots = threading.BoundedSemaphore(self.options.max_handshakes)
                self._handshake_slots[group] = slots
            return slots

    def _handshake(self, conn: Connection, label: str, *, group: str) -> None:
        """Connect, verify the host key and authenticate, at most `max_handshakes` per group."""
        self._harden(conn, label)
        started = time.monotonic()
        with self._slots(group):
            try:
                conn.open()
            except HostUnreachable:
                _abandon(conn)
                raise
            except Exception as exc:
                reason = self._describe(exc, conn, time.monotonic() - started)
                _abandon(conn)
                raise HostUnreachable(f"{label}: {reason}") from exc
        if self.options.keepalive and conn.transport is not None:
            conn.transport.set_keepalive(int(max(1, self.options.keepalive)))
        with self._lock:
            self.connections_opened += 1

    def _harden(self, conn: Connection, label: str) -> None:
        """Replace Fabric's AutoAddPolicy (also on ssh_config ProxyJump hops) and prime known keys."""
        conn.client.set_missing_host_key_policy(_HostKeyPolicy(label, self.known_hosts))
        conn.client.set_log_channel(PARAMIKO_LOGGER)
        self.known_hosts.prime(conn.client, known_hosts_name(conn.host, int(conn.port)))
        gateway = conn.gateway
        if isinstance(gateway, Connection) and not gateway.is_connected:
            self._harden(gateway, f"{label}: via gateway {gateway.original_host}")

    def _describe(self, exc: BaseException, conn: Connection, elapsed: float) -> str:
        """A short reason for a failed connection attempt."""
        timeout = format_seconds(self.options.connect_timeout)
        where = f"{conn.host}:{conn.port}"
        if isinstance(exc, BadHostKeyException):
            return (
                f"host key CHANGED for {known_hosts_name(conn.host, int(conn.port))} "
                f"(got {exc.key.get_name()} {fingerprint(exc.key)}, known_hosts has "
                f"{fingerprint(exc.expected_key)}); if the host was rebuilt, remove its old key "
                "from known_hosts, otherwise suspect a man in the middle"
            )
        if isinstance(exc, AuthenticationException):
            if "timeout" in str(exc).lower():
                return f"timed out authenticating after {timeout}s"
            return f"authentication failed (user {conn.user})"
        if isinstance(exc, NoValidConnectionsError):
            codes = {e.errno for e in exc.errors.values()}
            if codes == {errno.ECONNREFUSED}:
                return "connection refused"
            if errno.EHOSTUNREACH in codes:
                return f"no route to {where}"
            return f"cannot connect to {where}"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve host name {conn.host!r}"
        if isinstance(exc, TimeoutError | socket.timeout):
            return f"timed out connecting after {timeout}s"
        if isinstance(exc, ChannelException):
            return f"the gateway cannot reach {where}: {exc.text}"
        if isinstance(exc, SSHException):
            text = str(exc)
            timed_out = elapsed >= 0.9 * self.options.connect_timeout
            transport = conn.client.get_transport()
            no_banner = "protocol banner" in text or (transport is not None and not transport.remote_version)
            if timed_out or isinstance(exc.__context__, TimeoutError | socket.timeout):
                return f"timed out connecting after {timeout}s" + (" (no SSH banner)" if no_banner else "")
            if no_banner:
                return "connection closed by the host before its SSH banner (sshd MaxStartups?)"
            return f"SSH error: {text}"
        if isinstance(exc, EOFError | ConnectionResetError):
            return "connection closed by the host during the handshake"
        if isinstance(exc, OSError):
            return f"cannot connect to {where}: {exc.strerror or exc}"
        return f"{type(exc).__name__}: {exc}"
