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
- Only the bot's key is offered: `identity_file` is loaded once per backend and handed to each
  connection (`allow_agent=False, look_for_keys=False`, agent forwarding off). Without an
  `identity_file` every host is refused with a message saying so: the agent and `~/.ssh/id_*`
  are never a silent fallback. No Fabric configuration file (`/etc/fabric.*`, `~/.fabric.*`,
  `FABRIC_*` variables) is ever read; connections use one inert Fabric `Config`.
- Where each host connects is decided by `SSHPlan` (also used by the dry-run printer):
  `Host.user`/`Host.port`/`Host.gateway`, then the host's ssh_config entry (`HostName`, `Port`,
  `User`, `ProxyJump`, `ProxyCommand`), then `SSHOptions`. ssh_config's `IdentityFile`,
  `ForwardAgent` and `IdentitiesOnly` are ignored (the bot has one identity).
- Jump hosts, from `gateway` or from ssh_config `ProxyJump` (chains too), are one shared
  connection per jump host per backend, closed by `close()`.
- `connect_timeout` bounds the TCP connect, the SSH banner, authentication and, through a
  gateway, opening the tunnel: a host that accepts TCP and says nothing fails in about that time.
- Handshakes in flight are bounded per gateway (`max_handshakes`; direct connections are one
  group), process-wide: two deploys through one jump host share its bound. The connect clock
  starts once a handshake slot is held, so waiting for a slot is never reported as a timeout.
- Liveness: every `keepalive` seconds of silence the client sends an SSH keepalive that asks
  for a reply; a connection that answers nothing for `keepalive * keepalive_count_max` seconds
  (host stopped, network gone) is closed, and its command fails with
  `host stopped answering (...)` even when the step has no timeout (OpenSSH's
  ServerAliveInterval / ServerAliveCountMax).
- Commands run as `runners.pipeline.remote_command` builds them, on a paramiko channel of the
  host's connection (no extra threads per command): a step timeout becomes
  `exec timeout --kill-after=5 N "$SHELL" -c '...'`, secrets travel on stdin (never on a command
  line), stdin is closed after that. Exit 124/137 is a timeout only when the step ran for its
  whole timeout; a command killed by a signal is `killed by SIGKILL after 0.3s`.
  A client-side guard a bit longer than the step timeout keeps a silent channel from hanging.
- Output streams line by line, per host, to the `on_output` callback (never interleaved).
- One connection per host for the whole deploy; `close()` closes them all.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import errno
import getpass
import hashlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import paramiko
from fabric import Config, Connection
from paramiko.common import MSG_CHANNEL_REQUEST, cMSG_GLOBAL_REQUEST
from paramiko.ssh_exception import (
    AuthenticationException,
    BadHostKeyException,
    ChannelException,
    NoValidConnectionsError,
    PasswordRequiredException,
    SSHException,
)

from runners.base import CommandOutcome, Host, HostUnreachable, OutputSink
from runners.output import TailBuffer
from runners.pipeline import KILL_AFTER, RemoteCommand, format_seconds, remote_command

log = logging.getLogger("gonogo.ssh")
#: paramiko's own transport logs. Quiet by default: every failure is reported, naming its
#: host, as HostUnreachable or a CommandOutcome error; lower this logger's level to debug.
PARAMIKO_LOGGER = "gonogo.ssh.paramiko"
logging.getLogger(PARAMIKO_LOGGER).setLevel(logging.CRITICAL)

#: Seconds the client waits beyond `timeout` + `KILL_AFTER` before it gives up on a silent channel.
GUARD_SLACK = 10.0
#: After the exit status, seconds to wait for output still in flight when the command left a
#: background process holding its stdout/stderr open (OpenSSH would wait for it forever).
EXIT_DRAIN = 2.0
#: How often a waiting command loop re-checks liveness and the guard.
TICK = 0.5
RECV_BYTES = 32768
SYSTEM_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")
SYSTEM_SSH_CONFIGS = ("~/.ssh/config", "/etc/ssh/ssh_config")
NO_IDENTITY = (
    "no SSH identity configured: set [ssh] identity_file (gonogo offers only its own key, "
    "never the SSH agent or ~/.ssh keys)"
)


@dataclass(frozen=True)
class SSHOptions:
    """How the SSH backend connects. `Host.port`/`Host.user`/`Host.gateway` beat these defaults.

    - `user`, `port`: defaults for hosts that set none (an ssh_config entry for the host's
      address wins over these defaults; `Host.user`/`Host.port` win over everything).
    - `identity_file`: the bot's private key, the only one ever offered (no agent, no
      `~/.ssh/id_*`). Required: without it every host is refused with a clear message.
    - `known_hosts`: the known_hosts file to verify against and to save accepted keys to;
      None means `~/.ssh/known_hosts` plus `/etc/ssh/ssh_known_hosts`.
    - `accept_new_host_keys`: explicit opt-in to trust and save keys of unknown hosts (logged).
    - `connect_timeout`: seconds for connect, banner, authentication and gateway tunnel.
    - `ssh_config`: an ssh_config file, so `Host.address` can be an alias (`HostName`, `Port`,
      `User`, `ProxyJump`, `ProxyCommand`). When None, `~/.ssh/config` and `/etc/ssh/ssh_config`.
    - `gateway`: jump host `user@host:port` (or an ssh_config alias; `a,b` for a chain) for
      hosts that have none of their own (`Host.gateway` or an ssh_config `ProxyJump`).
    - `max_handshakes`: connection handshakes in flight per gateway (direct hosts: one group),
      shared by every backend of this process.
    - `sudo_password_env`: name of an environment variable holding the sudo password; when set,
      sudo steps use `sudo -S` and get the password on stdin. It is redacted from all output.
    - `keepalive`: seconds of silence before the client asks the host for a sign of life
      (0 disables liveness checks); `keepalive_count_max`: unanswered intervals before the
      connection is declared dead (so a dead host fails in about `keepalive * count` seconds).
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
    keepalive: float = 15.0
    keepalive_count_max: int = 3


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a public key: `SHA256:base64` without padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(hostname: str, port: int) -> str:
    """How known_hosts names a host: `host` on port 22, else `[host]:port`."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


def signal_name(name: str) -> str:
    """`SIGKILL` for the SSH protocol's `KILL` (names are sent without the `SIG` prefix)."""
    return name if name.startswith("SIG") else f"SIG{name}"


def _signal_code(name: str) -> int | None:
    """128 + the signal's number, as a shell reports a process killed by it."""
    try:
        return 128 + int(signal.Signals[signal_name(name)])
    except KeyError:
        return None


# -- where hosts connect ----------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where one SSH connection goes: resolved address, port and user, and how it gets there.

    `gateway` is the jump host the connection is tunnelled through (itself an Endpoint, which
    may have its own gateway); `proxy_command` an ssh_config `ProxyCommand` instead.
    """

    name: str
    host: str
    port: int
    user: str
    gateway: Endpoint | None = None
    proxy_command: str | None = None

    @property
    def address(self) -> str:
        """`user@host:port` (IPv6 addresses in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:{self.port}"

    def jumps(self) -> list[Endpoint]:
        """The jump hosts before this endpoint, outermost first."""
        chain: list[Endpoint] = []
        gateway = self.gateway
        while gateway is not None:
            chain.insert(0, gateway)
            gateway = gateway.gateway
        return chain

    @property
    def key(self) -> str:
        """Identifies this connection (its route included): one shared connection per key."""
        route = " -> ".join(e.address for e in [*self.jumps(), self])
        return f"{route} (ProxyCommand {self.proxy_command})" if self.proxy_command else route

    @property
    def handshake_group(self) -> str:
        """The handshake bound this connection counts against: its gateway's, or `direct`."""
        if self.gateway is not None:
            return self.gateway.key
        if self.proxy_command:
            return f"ProxyCommand {self.proxy_command}"
        return "direct"

    def describe(self) -> str:
        """`deploy@10.0.0.5:22 via jump@gw:22`: where the connection goes, and through what."""
        text = self.address
        jumps = self.jumps()
        if jumps:
            text += " via " + " -> ".join(j.address for j in jumps)
        if self.proxy_command:
            text += f" via ProxyCommand {self.proxy_command!r}"
        return text


def _shorthand(spec: str) -> tuple[str | None, str, int | None]:
    """`user@host:port` -> (user, host, port); `host` alone and IPv6 addresses are allowed."""
    user: str | None = None
    if "@" in spec:
        user, spec = spec.rsplit("@", 1)
    port: int | None = None
    if spec.startswith("[") and "]" in spec:
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        return user, host, port
    if spec.count(":") == 1:
        host, _, maybe = spec.partition(":")
        if maybe.isdigit():
            return user, host, int(maybe)
    return user, spec, port


class SSHPlan:
    """Decides, without connecting, where each host connects and what command line it runs.

    The SSH backend connects exactly where `endpoint` says and runs exactly what `command`
    returns; the printer (dry run) prints the same, so a dry run shows the real thing.
    """

    MAX_JUMPS = 8

    def __init__(self, options: SSHOptions) -> None:
        self.options = options
        self.ssh_config = paramiko.SSHConfig()
        if options.ssh_config is not None:
            paths = [Path(options.ssh_config).expanduser()]
            if not paths[0].is_file():
                raise ValueError(f"ssh_config file {options.ssh_config} not found")
        else:
            paths = [p for p in (Path(s).expanduser() for s in SYSTEM_SSH_CONFIGS) if p.is_file()]
        for path in paths:  # the first value found wins, as in OpenSSH: the user's file first
            with open(path, encoding="utf-8") as fh:
                self.ssh_config.parse(fh)
        self._default_user = options.user or getpass.getuser()

    @property
    def uses_sudo_password(self) -> bool:
        """True when sudo steps get a password on stdin (`sudo -S`) instead of `sudo -n`."""
        return self.options.sudo_password_env is not None

    def command(
        self,
        command: str,
        *,
        timeout: float | None,
        env: Mapping[str, str],
        sudo_password: str | None = None,
    ) -> RemoteCommand:
        """The command line (and stdin) the SSH backend runs for a rendered step command.

        `sudo_password` is the password itself when running; None when only printing (a
        placeholder is used: the line does not depend on the password's value).
        """
        password = sudo_password if sudo_password is not None else ("" if self.uses_sudo_password else None)
        return remote_command(command, timeout=timeout, env=env, sudo_password=password)

    def endpoint(self, host: Host) -> Endpoint:
        """Where `host` connects (its ssh_config entry, gateway or ProxyJump resolved)."""
        return self._resolve(
            host.address,
            user=host.user,
            port=host.port,
            gateway=host.gateway,
            default_gateway=self.options.gateway,
            seen=frozenset(),
        )

    def _resolve(
        self,
        name: str,
        *,
        user: str | None,
        port: int | None,
        gateway: str | None,
        default_gateway: str | None,
        seen: frozenset[str],
    ) -> Endpoint:
        if len(seen) > self.MAX_JUMPS:
            raise ValueError(f"jump host chain for {name} is longer than {self.MAX_JUMPS} hops (a loop?)")
        entry = self.ssh_config.lookup(name)
        hostname = str(entry.get("hostname", name))
        resolved_port = port or (int(entry["port"]) if "port" in entry else self.options.port)
        resolved_user = user or entry.get("user") or self._default_user
        jump = gateway
        proxy_command: str | None = None
        if jump is None:
            proxy_jump, command = entry.get("proxyjump"), entry.get("proxycommand")
            if proxy_jump is not None:
                hops = [h.strip() for h in str(proxy_jump).split(",") if h.strip()]
                # `ProxyJump none`, or a ProxyJump naming the host itself (a `Host *` entry that
                # matches the jump host too, or a loop): connect directly, as OpenSSH/Fabric do.
                direct = not hops or str(proxy_jump).strip().lower() == "none"
                if not direct and not any(_shorthand(h)[1] in (name, hostname) or h in seen for h in hops):
                    jump = str(proxy_jump)
            elif command is not None:
                if str(command).strip().lower() != "none":
                    proxy_command = str(command)
            else:
                jump = default_gateway
        via = self._chain(jump, seen | {name}) if jump else None
        return Endpoint(name, hostname, resolved_port, str(resolved_user), via, proxy_command)

    def _chain(self, spec: str, seen: frozenset[str]) -> Endpoint:
        """The last hop of a `a,b,c` jump chain (each hop through the one before it)."""
        previous: Endpoint | None = None
        for hop in (h.strip() for h in spec.split(",") if h.strip()):
            user, host, port = _shorthand(hop)
            endpoint = self._resolve(
                host,
                user=user,
                port=port,
                gateway=None,
                default_gateway=None,
                seen=seen | {hop},
            )
            if previous is not None:  # later hops go through the earlier ones, whatever they say
                endpoint = replace(endpoint, gateway=previous, proxy_command=None)
            previous = replace(endpoint, name=hop)
        if previous is None:
            raise ValueError(f"empty jump host specification {spec!r}")
        return previous


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


# -- handshake bound (process-wide) ----------------------------------------------------------


class HandshakeLimiter:
    """Handshakes in flight per group (a gateway, or `direct`), shared by every backend.

    Each caller passes its own limit and waits while the group has that many in flight, so two
    deploys through one jump host together stay within its bound.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, tuple[threading.Condition, list[int]]] = {}

    @contextlib.contextmanager
    def slot(self, group: str, limit: int) -> Iterator[None]:
        """Hold one handshake slot of `group` (waiting while `limit` are in flight)."""
        with self._lock:
            cond, count = self._groups.setdefault(group, (threading.Condition(), [0]))
        with cond:
            while count[0] >= limit:
                cond.wait()
            count[0] += 1
        try:
            yield
        finally:
            with cond:
                count[0] -= 1
                cond.notify_all()


#: The process-wide handshake bound used by every SSHBackend.
HANDSHAKES = HandshakeLimiter()


# -- paramiko plumbing ------------------------------------------------------------------------


def _channel_request(chan: paramiko.Channel, m: paramiko.Message) -> None:
    """Channel requests, plus `exit-signal` (paramiko drops it): the command's killing signal."""
    start = m.packet.tell()
    if m.get_text() == "exit-signal":
        m.get_boolean()  # want_reply: always false for exit-signal (RFC 4254 6.10)
        chan.exit_signal = m.get_text()
        chan.core_dumped = m.get_boolean()
        chan.status_event.set()
        return
    m.packet.seek(start)
    paramiko.Channel._handle_request(chan, m)


class _Transport(paramiko.Transport):
    """A paramiko transport that records exit signals and notices a peer that stopped answering.

    Liveness: paramiko calls `_keepalive` on its own thread after `interval` seconds without
    sending; it asks for a reply (`keepalive@openssh.com`, want-reply), and any reply or channel
    data counts as a sign of life. When a probe is outstanding and nothing came back for
    `interval * count` seconds, the transport is closed and `dead` says why.
    """

    _channel_handler_table: ClassVar[dict[int, Callable[..., None]]] = {
        **paramiko.Transport._channel_handler_table,
        MSG_CHANNEL_REQUEST: _channel_request,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._live_lock = threading.Lock()
        self._alive_at = time.monotonic()
        self._probe_at: float | None = None
        self._interval = 0.0
        self._count = 3
        self.dead: str | None = None

    def start_liveness(self, interval: float, count: int) -> None:
        """Check every `interval` seconds of silence; dead after `interval * count` without a reply."""
        if interval <= 0:
            return
        self._interval, self._count = float(interval), max(1, count)
        self.mark_alive()
        self.packetizer.set_keepalive(self._interval, self._keepalive)

    def mark_alive(self) -> None:
        """Something came from the peer: it is alive."""
        with self._live_lock:
            self._alive_at = time.monotonic()
            self._probe_at = None

    def _parse_request_success(self, m: paramiko.Message) -> None:
        self.mark_alive()
        super()._parse_request_success(m)

    def _parse_request_failure(self, m: paramiko.Message) -> None:
        self.mark_alive()  # OpenSSH answers unknown global requests with a failure: fine
        super()._parse_request_failure(m)

    def _silence(self) -> float:
        with self._live_lock:
            return time.monotonic() - self._alive_at

    def _keepalive(self) -> None:
        """Runs on paramiko's thread after `interval` seconds without sending anything."""
        with self._live_lock:
            outstanding = self._probe_at is not None
        if outstanding and self._silence() >= self._interval * self._count:
            self._die()
            return
        if not self.clear_to_send.is_set():  # key exchange in progress: no other messages
            return
        # Never block paramiko's thread: if another thread is mid-send, skip this probe.
        if not self.clear_to_send_lock.acquire(blocking=False):
            return
        try:
            if self.clear_to_send.is_set():
                m = paramiko.Message()
                m.add_byte(cMSG_GLOBAL_REQUEST)
                m.add_string("keepalive@openssh.com")
                m.add_boolean(True)
                with self._live_lock:
                    if self._probe_at is None:
                        self._probe_at = time.monotonic()
                self._send_message(m)
        except Exception:
            log.debug("sending a keepalive failed", exc_info=True)
        finally:
            self.clear_to_send_lock.release()

    def check_liveness(self) -> str | None:
        """From a command loop: declare the peer dead if paramiko's own checks cannot run."""
        if self.dead is None and self._interval and self._silence() >= self._interval * (self._count + 2):
            self._die()
        return self.dead

    def _die(self) -> None:
        with self._live_lock:
            if self.dead is not None:
                return
            silent = time.monotonic() - self._alive_at
            self.dead = f"host stopped answering (no reply to SSH keepalives for {silent:.0f}s)"
        log.debug("closing a dead connection: %s", self.dead)
        with contextlib.suppress(Exception):
            self.close()


def _dead_reason(conn: Connection | None) -> str | None:
    """Why `conn` (or a gateway it goes through) was declared dead, if it was."""
    gateway = ""
    while isinstance(conn, Connection):
        transport = conn.transport
        if isinstance(transport, _Transport) and transport.dead:
            return f"{gateway}{transport.dead}"
        gateway = f"gateway {conn.original_host}: "
        conn = conn.gateway if isinstance(conn.gateway, Connection) else None
    return None


class _Connection(Connection):
    """A Fabric connection whose gateway tunnel opens within the connect timeout."""

    #: Set by Fabric's __init__ without a class-level declaration, so invoke would store it in
    #: the config (a modification and a full re-merge of the config, which here is shared by
    #: every connection and read by other threads meanwhile). It is a plain attribute.
    inline_ssh_env: bool = True

    def __setattr__(self, key: str, value: Any) -> None:
        # invoke's DataProxy decides between "real attribute" and "config key" with
        # `key in dir(self)`, which costs most of a millisecond per Connection (Fabric's
        # __init__ sets a dozen attributes). Same decision without building dir(): class
        # attributes (Fabric declares its own) and instance attributes are real.
        if hasattr(type(self), key) or key in self.__dict__:
            object.__setattr__(self, key, value)
        else:
            super().__setattr__(key, value)

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


class _LineStream:
    """Decodes one byte stream (UTF-8, incrementally) and forwards whole lines to a sink."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def write(self, data: bytes) -> None:
        """Buffer `data`; emit every complete line."""
        text = self._pending + self._decoder.decode(data)
        cut = text.rfind("\n") + 1
        if cut == 0 and len(text) > 8192:
            cut = len(text)
        self._pending = text[cut:]
        if cut:
            self._emit(text[:cut])

    def close(self) -> None:
        """Emit the unfinished last line, if any."""
        rest, self._pending = self._pending + self._decoder.decode(b"", final=True), ""
        if rest:
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
        wrapped = self.backend.plan.command(
            command, timeout=timeout, env=env, sudo_password=self.backend.sudo_password
        )
        with self._lock:
            reconnect = 0.0
            if not self.conn.is_connected:  # dropped since the last step: reconnect once
                began = time.monotonic()
                self.conn.close()
                self.conn = self.backend.connect(self.host)
                reconnect = time.monotonic() - began
            outcome = self._execute(wrapped, timeout, on_output)
        return replace(outcome, connect=reconnect) if reconnect else outcome

    def _lost(self, what: str) -> str:
        dead = _dead_reason(self.conn)
        return f"{dead}; connection closed" if dead else what

    def _execute(
        self, wrapped: RemoteCommand, timeout: float | None, on_output: OutputSink
    ) -> CommandOutcome:
        """One command on a fresh channel: stdin payload then EOF, output streamed, exit status."""
        transport = self.conn.transport
        tail = TailBuffer()

        def emit(text: str) -> None:
            tail.write(text)
            on_output(text)

        try:
            chan = transport.open_session(timeout=self.backend.options.connect_timeout)
        except (SSHException, EOFError, OSError) as exc:
            return CommandOutcome(None, "", error=self._lost(f"connection lost: {exc or type(exc).__name__}"))
        live = transport if isinstance(transport, _Transport) else None
        if live is not None:
            live.mark_alive()  # the host just opened a channel for us
        out, err = _LineStream(emit), _LineStream(emit)
        wake = threading.Event()
        chan.in_buffer.set_event(wake)
        chan.in_stderr_buffer.set_event(wake)
        guard = timeout + KILL_AFTER + GUARD_SLACK if timeout else None
        started = time.monotonic()
        guard_hit = False
        try:
            chan.exec_command(wrapped.line)
            if wrapped.stdin:
                chan.sendall(wrapped.stdin.encode())
            chan.shutdown_write()
            exited_at: float | None = None
            last_data = started
            while True:
                got = False
                if chan.recv_ready():
                    out.write(chan.recv(RECV_BYTES))
                    got = True
                if chan.recv_stderr_ready():
                    err.write(chan.recv_stderr(RECV_BYTES))
                    got = True
                if got:
                    last_data = time.monotonic()
                    if live is not None:
                        live.mark_alive()
                    continue
                status_known = chan.exit_status != -1 or getattr(chan, "exit_signal", None) is not None
                if chan.closed or (chan.eof_received and status_known):
                    if chan.recv_ready() or chan.recv_stderr_ready():
                        continue  # data that arrived just before the EOF
                    break
                now = time.monotonic()
                if status_known:
                    exited_at = exited_at or now
                    # Quiet for EXIT_DRAIN since the exit and the last output, but no EOF: a
                    # background process the command started holds its stdout/stderr open.
                    if now - max(exited_at, last_data) >= EXIT_DRAIN:
                        break
                if live is not None and live.check_liveness():
                    break
                if guard is not None and now - started > guard:
                    guard_hit = True
                    break
                if chan.eof_received:
                    chan.status_event.wait(TICK)
                else:
                    wake.wait(TICK)
        except (SSHException, EOFError, OSError) as exc:
            out.close()
            err.close()
            return CommandOutcome(
                None, tail.text(), error=self._lost(f"connection lost: {exc or type(exc).__name__}")
            )
        finally:
            with contextlib.suppress(Exception):
                chan.close()
        out.close()
        err.close()
        elapsed = time.monotonic() - started
        output = tail.text()
        if guard_hit:
            self.conn.close()  # the next step reconnects
            return CommandOutcome(
                exit_code=None,
                output=output,
                timed_out=True,
                error=f"timed out after {format_seconds(timeout or 0)}s and the host stopped "
                f"answering ({format_seconds(guard or 0)}s); connection closed",
            )
        code = chan.exit_status if chan.exit_status >= 0 else None
        killed_by = getattr(chan, "exit_signal", None)
        if timeout and elapsed >= timeout and (code in (124, 137) or killed_by in ("TERM", "KILL")):
            return CommandOutcome(
                exit_code=code,
                output=output,
                timed_out=True,
                error=f"timed out after {format_seconds(timeout)}s",
            )
        if killed_by:
            core = " (core dumped)" if getattr(chan, "core_dumped", False) else ""
            return CommandOutcome(
                exit_code=_signal_code(killed_by),
                output=output,
                error=f"killed by {signal_name(killed_by)}{core} after {elapsed:.1f}s",
            )
        if code is None:
            return CommandOutcome(None, output, error=self._lost("connection lost (no exit status)"))
        return CommandOutcome(exit_code=code, output=output)

    def put(self, local: str, remote: str) -> None:
        """Upload a local file over SFTP; errors name the host."""
        with self._lock:
            if not self.conn.is_connected:
                self.conn = self.backend.connect(self.host)
            try:
                self.conn.put(local, remote)
            except (OSError, SSHException, EOFError) as exc:
                reason = _dead_reason(self.conn) or exc
                raise OSError(f"{self.host.name}: upload of {local} to {remote} failed: {reason}") from exc
            transport = self.conn.transport
            if isinstance(transport, _Transport):
                transport.mark_alive()

    def close(self) -> None:
        """Close the connection (its gateway, if shared, is closed by the backend)."""
        with self._lock:
            self.conn.close()


@dataclass
class _GatewaySlot:
    lock: threading.Lock
    endpoint: Endpoint
    conn: Connection | None = None
    error: str | None = None


class SSHBackend:
    """Backend over Fabric connections. One instance serves one deploy; thread-safe."""

    name = "ssh"

    def __init__(self, options: SSHOptions | None = None) -> None:
        self.options = options or SSHOptions()
        if self.options.max_handshakes < 1:
            raise ValueError("max_handshakes must be at least 1")
        if self.options.keepalive < 0 or self.options.keepalive_count_max < 1:
            raise ValueError("keepalive must be >= 0 and keepalive_count_max at least 1")
        self.plan = SSHPlan(self.options)
        self.known_hosts = KnownHosts(self.options.known_hosts, accept_new=self.options.accept_new_host_keys)
        self.sudo_password: str | None = None
        if self.options.sudo_password_env:
            self.sudo_password = os.environ.get(self.options.sudo_password_env)
            if self.sudo_password is None:
                raise ValueError(f"sudo password variable {self.options.sudo_password_env} is not set")
        # One inert Fabric config for every connection: an explicit empty ssh_config (this
        # backend resolves ssh_config itself, in SSHPlan), lazy (no /etc/fabric.* or ~/.fabric.*,
        # no FABRIC_* variables), never cloned (clone() would load those files).
        self._config = Config(
            overrides={"load_ssh_configs": False, "forward_agent": False},
            lazy=True,
            ssh_config=paramiko.SSHConfig(),
        )
        self._lock = threading.Lock()
        self._pkey: paramiko.PKey | None = None
        self._pkey_problem: str | None = None
        self._gateways: dict[str, _GatewaySlot] = {}
        self._sessions: list[SSHSession] = []
        #: Successful handshakes (targets and gateways): one per host per deploy when reused.
        self.connections_opened = 0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in output (the sudo password); the pipeline redacts them."""
        return (self.sudo_password,) if self.sudo_password else ()

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
        """Close every session, then the shared gateway connections (innermost first)."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
            gateways, self._gateways = list(self._gateways.values()), {}
        for session in sessions:
            try:
                session.close()
            except Exception:  # closing must never fail a deploy
                log.debug("closing %s failed", session.host.name, exc_info=True)
        for slot in sorted(gateways, key=lambda s: len(s.endpoint.jumps()), reverse=True):
            if slot.conn is not None:
                try:
                    slot.conn.close()
                except Exception:
                    log.debug("closing a gateway failed", exc_info=True)

    # -- connecting -------------------------------------------------------------------------
    def connect(self, host: Host) -> Connection:
        """Open a verified, authenticated connection to `host` (used by `open` and reconnects)."""
        try:
            endpoint = self.plan.endpoint(host)
        except ValueError as exc:
            raise HostUnreachable(f"{host.name}: {exc}") from exc
        pkey = self._identity(host.name)
        gateway = self._gateway(endpoint.gateway, host.name) if endpoint.gateway else None
        conn = self._connection(endpoint, pkey, gateway)
        self._handshake(conn, host.name, group=endpoint.handshake_group)
        return conn

    def _identity(self, label: str) -> paramiko.PKey:
        """The bot's key, loaded once; HostUnreachable (naming `label`) when there is none."""
        with self._lock:
            if self._pkey is None and self._pkey_problem is None:
                path = self.options.identity_file
                if not path:
                    self._pkey_problem = NO_IDENTITY
                else:
                    try:
                        self._pkey = paramiko.PKey.from_path(str(Path(path).expanduser()))
                    except PasswordRequiredException:
                        self._pkey_problem = f"identity_file {path} is passphrase-protected (not supported)"
                    except (OSError, SSHException, ValueError) as exc:
                        self._pkey_problem = f"cannot load identity_file {path}: {exc}"
            if self._pkey is None:
                raise HostUnreachable(f"{label}: {self._pkey_problem}")
            return self._pkey

    def _connection(self, endpoint: Endpoint, pkey: paramiko.PKey, gateway: Connection | None) -> _Connection:
        timeout = self.options.connect_timeout
        connect_kwargs: dict[str, Any] = {
            # A fresh dict per connection (Fabric may write into it); only the bot's key.
            "pkey": pkey,
            "allow_agent": False,
            "look_for_keys": False,
            "banner_timeout": timeout,
            "auth_timeout": timeout,
            "transport_factory": _Transport,
        }
        route: Connection | str | bool = gateway if gateway is not None else (endpoint.proxy_command or False)
        conn = _Connection(
            endpoint.host,
            user=endpoint.user,
            port=endpoint.port,
            config=self._config,
            gateway=route,
            forward_agent=False,
            connect_timeout=max(1, round(timeout)),
            connect_kwargs=connect_kwargs,
        )
        conn.connect_timeout = timeout  # Fabric rounds it to an int; keep fractions
        return conn

    def _gateway(self, endpoint: Endpoint, for_host: str) -> Connection:
        """The shared, open connection to a jump host (one per route per backend)."""
        with self._lock:
            slot = self._gateways.setdefault(endpoint.key, _GatewaySlot(threading.Lock(), endpoint))
        with slot.lock:
            if slot.conn is not None and slot.conn.is_connected:
                return slot.conn
            if slot.error is not None:  # failed for an earlier host of this deploy: fail fast
                raise HostUnreachable(f"{for_host}: via {slot.error}")
            if slot.conn is not None:  # dropped: reconnect
                with contextlib.suppress(Exception):
                    slot.conn.close()
                slot.conn = None
            upstream = self._gateway(endpoint.gateway, for_host) if endpoint.gateway else None
            conn = self._connection(endpoint, self._identity(for_host), upstream)
            try:
                self._handshake(conn, f"gateway {endpoint.name}", group=endpoint.handshake_group)
            except HostUnreachable as exc:
                slot.error = str(exc)
                raise HostUnreachable(f"{for_host}: via {exc}") from exc
            slot.conn = conn
            return conn

    def _handshake(self, conn: Connection, label: str, *, group: str) -> None:
        """Connect, verify the host key and authenticate, at most `max_handshakes` per group."""
        conn.client.set_missing_host_key_policy(_HostKeyPolicy(label, self.known_hosts))
        conn.client.set_log_channel(PARAMIKO_LOGGER)
        self.known_hosts.prime(conn.client, known_hosts_name(conn.host, int(conn.port)))
        with HANDSHAKES.slot(group, self.options.max_handshakes):
            started = time.monotonic()  # only now: waiting for a slot is not connecting
            try:
                conn.open()
            except HostUnreachable:
                _abandon(conn)
                raise
            except Exception as exc:
                reason = self._describe(exc, conn, time.monotonic() - started)
                _abandon(conn)
                raise HostUnreachable(f"{label}: {reason}") from exc
        transport = conn.transport
        if isinstance(transport, _Transport):
            transport.start_liveness(self.options.keepalive, self.options.keepalive_count_max)
        with self._lock:
            self.connections_opened += 1

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
