"""paramiko and Fabric plumbing: a transport that records exit signals, sends small packets at
once (TCP_NODELAY) and notices a silent peer (keepalives), and a Fabric connection whose gateway tunnel opens within the connect timeout.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import paramiko
from fabric import Connection
from paramiko.common import MSG_CHANNEL_REQUEST, cMSG_GLOBAL_REQUEST

log = logging.getLogger("gonogo.ssh")
#: paramiko's own transport logs. Quiet by default: every failure is reported, naming its
#: host, as HostUnreachable or a CommandOutcome error; lower this logger's level to debug.
PARAMIKO_LOGGER = "gonogo.ssh.paramiko"
logging.getLogger(PARAMIKO_LOGGER).setLevel(logging.CRITICAL)


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


class LiveTransport(paramiko.Transport):
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
        no_delay(self.sock)
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


def no_delay(sock: Any) -> None:
    """Send small packets at once (TCP_NODELAY), as OpenSSH does for its sessions.

    paramiko leaves Nagle's algorithm on. A command on a reused connection is a few small
    messages each way (channel open, exec, EOF, close); with Nagle each exchange waits for the
    peer's delayed ACK, measured at about 44 ms per command on loopback (3 ms without): on a
    20-step deploy, most of a second per host. A gateway tunnel (a channel, not a socket) rides
    on its gateway's connection, which has it set.
    """
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            log.debug("could not set TCP_NODELAY", exc_info=True)


def dead_reason(conn: Connection | None) -> str | None:
    """Why `conn` (or a gateway it goes through) was declared dead, if it was."""
    gateway = ""
    while isinstance(conn, Connection):
        transport = conn.transport
        if isinstance(transport, LiveTransport) and transport.dead:
            return f"{gateway}{transport.dead}"
        gateway = f"gateway {conn.original_host}: "
        conn = conn.gateway if isinstance(conn.gateway, Connection) else None
    return None


class SSHConnection(Connection):
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


def abandon(conn: Connection) -> None:
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
