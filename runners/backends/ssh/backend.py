"""SSHBackend: opens one verified, authenticated connection per host (through shared jump-host
connections), bounds handshakes, and closes everything at the end of a deploy."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection
from paramiko.ssh_exception import PasswordRequiredException, SSHException

from runners.backends.ssh.failures import describe_failure
from runners.backends.ssh.known_hosts import HostKeyPolicy, KnownHosts, known_hosts_name
from runners.backends.ssh.limiter import HANDSHAKES, GatewaySlot
from runners.backends.ssh.options import SSHOptions
from runners.backends.ssh.plan import Endpoint, SSHPlan
from runners.backends.ssh.session import SSHSession
from runners.backends.ssh.transport import PARAMIKO_LOGGER, LiveTransport, SSHConnection, abandon
from runners.base import Host, HostUnreachable
from runners.journal import JOURNAL_ROOT

log = logging.getLogger("gonogo.ssh")
NO_IDENTITY = (
    "no SSH identity configured: set [ssh] identity_file (gonogo offers only its own key, "
    "never the SSH agent or ~/.ssh keys)"
)


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
        #: Where the hosts keep the step journal (`runners.journal`).
        self.journal_root = JOURNAL_ROOT
        #: How many deployments' journals each host keeps (0: all), as it keeps releases.
        self.journal_keep = 0
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
        self._gateways: dict[str, GatewaySlot] = {}
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

    def _connection(
        self, endpoint: Endpoint, pkey: paramiko.PKey, gateway: Connection | None
    ) -> SSHConnection:
        timeout = self.options.connect_timeout
        connect_kwargs: dict[str, Any] = {
            # A fresh dict per connection (Fabric may write into it); only the bot's key.
            "pkey": pkey,
            "allow_agent": False,
            "look_for_keys": False,
            "banner_timeout": timeout,
            "auth_timeout": timeout,
            "transport_factory": LiveTransport,
        }
        route: Connection | str | bool = gateway if gateway is not None else (endpoint.proxy_command or False)
        conn = SSHConnection(
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
            slot = self._gateways.setdefault(endpoint.key, GatewaySlot(threading.Lock(), endpoint))
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
        conn.client.set_missing_host_key_policy(HostKeyPolicy(label, self.known_hosts))
        conn.client.set_log_channel(PARAMIKO_LOGGER)
        self.known_hosts.prime(conn.client, known_hosts_name(conn.host, int(conn.port)))
        with HANDSHAKES.slot(group, self.options.max_handshakes):
            started = time.monotonic()  # only now: waiting for a slot is not connecting
            try:
                conn.open()
            except HostUnreachable:
                abandon(conn)
                raise
            except Exception as exc:
                reason = describe_failure(exc, conn, time.monotonic() - started, self.options.connect_timeout)
                abandon(conn)
                raise HostUnreachable(f"{label}: {reason}") from exc
        transport = conn.transport
        if isinstance(transport, LiveTransport):
            transport.start_liveness(self.options.keepalive, self.options.keepalive_count_max)
        with self._lock:
            self.connections_opened += 1
