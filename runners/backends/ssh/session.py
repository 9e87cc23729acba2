"""SSHSession: one host's connection, reused for every command of a deploy (run, put, close)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from fabric import Connection
from paramiko.ssh_exception import SSHException

from runners.backends.ssh.channel import (
    EXIT_DRAIN,
    GUARD_SLACK,
    RECV_BYTES,
    TICK,
    LineStream,
    signal_code,
    signal_name,
)
from runners.backends.ssh.options import SSHOptions
from runners.backends.ssh.plan import SSHPlan
from runners.backends.ssh.transport import LiveTransport, dead_reason
from runners.base import CommandOutcome, Host, OutputSink
from runners.command import KILL_AFTER, RemoteCommand, format_seconds
from runners.output import TailBuffer


class _Backend(Protocol):
    """What a session uses of its backend (SSHBackend): the plan, options, sudo password, connect."""

    plan: SSHPlan
    options: SSHOptions
    sudo_password: str | None

    def connect(self, host: Host) -> Connection:
        """Open a verified, authenticated connection to `host`."""
        ...


class SSHSession:
    """One host's connection, reused for every command of a deploy."""

    def __init__(self, host: Host, backend: _Backend, conn: Connection) -> None:
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
        dead = dead_reason(self.conn)
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
        live = transport if isinstance(transport, LiveTransport) else None
        if live is not None:
            live.mark_alive()  # the host just opened a channel for us
        out, err = LineStream(emit), LineStream(emit)
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
                exit_code=signal_code(killed_by),
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
                reason = dead_reason(self.conn) or exc
                raise OSError(f"{self.host.name}: upload of {local} to {remote} failed: {reason}") from exc
            transport = self.conn.transport
            if isinstance(transport, LiveTransport):
                transport.mark_alive()

    def close(self) -> None:
        """Close the connection (its gateway, if shared, is closed by the backend)."""
        with self._lock:
            self.conn.close()
