"""Why a connection attempt failed, in a few words: what `HostUnreachable` says after the host.

The reasons name what a person can act on: a changed host key (rebuilt host, or a man in the
middle), refused or unroutable connections, timeouts (with or without an SSH banner), a gateway
that cannot reach its target, a host that closed the connection during the handshake.
"""

from __future__ import annotations

import errno
import socket

from fabric import Connection
from paramiko.ssh_exception import (
    AuthenticationException,
    BadHostKeyException,
    ChannelException,
    NoValidConnectionsError,
    SSHException,
)

from runners.backends.ssh.known_hosts import fingerprint, known_hosts_name
from runners.command import format_seconds


def describe_failure(exc: BaseException, conn: Connection, elapsed: float, connect_timeout: float) -> str:
    """A short reason for a failed connection attempt that took `elapsed` seconds."""
    timeout = format_seconds(connect_timeout)
    where = f"{conn.host}:{conn.port}"
    if isinstance(exc, BadHostKeyException):
        return _host_key_changed(exc, conn)
    if isinstance(exc, AuthenticationException):
        if "timeout" in str(exc).lower():
            return f"timed out authenticating after {timeout}s"
        return f"authentication failed (user {conn.user})"
    if isinstance(exc, NoValidConnectionsError):
        return _no_connection(exc, where)
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host name {conn.host!r}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out connecting after {timeout}s"
    if isinstance(exc, ChannelException):
        return f"the gateway cannot reach {where}: {exc.text}"
    if isinstance(exc, SSHException):
        return _ssh_error(exc, conn, timeout, timed_out=elapsed >= 0.9 * connect_timeout)
    if isinstance(exc, EOFError | ConnectionResetError):
        return "connection closed by the host during the handshake"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _host_key_changed(exc: BadHostKeyException, conn: Connection) -> str:
    return (
        f"host key CHANGED for {known_hosts_name(conn.host, int(conn.port))} "
        f"(got {exc.key.get_name()} {fingerprint(exc.key)}, known_hosts has "
        f"{fingerprint(exc.expected_key)}); if the host was rebuilt, remove its old key "
        "from known_hosts, otherwise suspect a man in the middle"
    )


def _no_connection(exc: NoValidConnectionsError, where: str) -> str:
    codes = {e.errno for e in exc.errors.values()}
    if codes == {errno.ECONNREFUSED}:
        return "connection refused"
    if errno.EHOSTUNREACH in codes:
        return f"no route to {where}"
    return f"cannot connect to {where}"


def _ssh_error(exc: SSHException, conn: Connection, timeout: str, *, timed_out: bool) -> str:
    text = str(exc)
    transport = conn.client.get_transport()
    no_banner = "protocol banner" in text or (transport is not None and not transport.remote_version)
    if timed_out or isinstance(exc.__context__, TimeoutError | socket.timeout):
        return f"timed out connecting after {timeout}s" + (" (no SSH banner)" if no_banner else "")
    if no_banner:
        return "connection closed by the host before its SSH banner (sshd MaxStartups?)"
    return f"SSH error: {text}"
