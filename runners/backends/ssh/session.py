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

from runners.backends.ssh.channel import ChannelCommand, connection_lost
from runners.backends.ssh.options import SSHOptions
from runners.backends.ssh.plan import SSHPlan
from runners.backends.ssh.transport import LiveTransport, dead_reason
from runners.base import CommandOutcome, Host, HostUnreachable, OutputSink
from runners.command import RemoteCommand
from runners.journal import (
    CANNOT,
    JournalState,
    journaled,
    parse_state,
    state_command,
    step_dir,
    stop_command,
)


class _Backend(Protocol):
    """What a session uses of its backend (SSHBackend): the plan, options, sudo password, connect."""

    plan: SSHPlan
    options: SSHOptions
    sudo_password: str | None
    journal_root: str
    journal_keep: int

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
        self._closed = False

    def run(
        self,
        command: str,
        *,
        timeout: float | None,
        env: Mapping[str, str],
        on_output: OutputSink,
        journal: str | None = None,
    ) -> CommandOutcome:
        """Run `command` (wrapped by `remote_command`, then with a `journal` by the journal
        wrapper), streaming whole lines to `on_output`."""
        wrapped = self.backend.plan.command(
            command, timeout=timeout, env=env, sudo_password=self.backend.sudo_password
        )
        if journal is not None:
            wrapped = journaled(wrapped, self._journal_dir(journal), self.backend.journal_keep)
        with self._lock:
            if self._closed:
                return CommandOutcome(None, "", error="connection closed (the deploy was stopped)")
            reconnect = self._reconnect_if_dropped()
            outcome = self._execute(wrapped, timeout, on_output)
        if journal is not None and outcome.exit_code == 125 and outcome.output.startswith(CANNOT):
            # The host cannot keep the journal: the command never ran; say so, not `exit 125`.
            outcome = replace(outcome, exit_code=None, error=outcome.output.strip().removeprefix("gonogo: "))
        return replace(outcome, connect=reconnect) if reconnect else outcome

    def _reconnect_if_dropped(self) -> float:
        """Reconnect once if the connection dropped since the last step; the seconds it took."""
        if self.conn.is_connected:
            return 0.0
        began = time.monotonic()
        self.conn.close()
        self.conn = self.backend.connect(self.host)
        return time.monotonic() - began

    def _lost(self, what: str) -> str:
        dead = dead_reason(self.conn)
        return f"{dead}; connection closed" if dead else what

    def _execute(
        self, wrapped: RemoteCommand, timeout: float | None, on_output: OutputSink
    ) -> CommandOutcome:
        """One command on a fresh channel: stdin payload then EOF, output streamed, exit status."""
        transport = self.conn.transport
        try:
            chan = transport.open_session(timeout=self.backend.options.connect_timeout)
        except (SSHException, EOFError, OSError) as exc:
            return CommandOutcome(None, "", error=self._lost(connection_lost(exc)))
        live = transport if isinstance(transport, LiveTransport) else None
        if live is not None:
            live.mark_alive()  # the host just opened a channel for us
        command = ChannelCommand(chan, live, timeout, on_output, self._lost)
        try:
            command.run(wrapped)
        except (SSHException, EOFError, OSError) as exc:
            return command.broken(exc)
        finally:
            with contextlib.suppress(Exception):
                chan.close()
        outcome = command.outcome()
        if command.guard_hit:
            self.conn.close()  # the next step reconnects
        return outcome

    # -- the journal ----------------------------------------------------------------------------
    def _journal_dir(self, journal: str) -> str:
        """`<root>/<deployment>/<host>/<step key>`: hosts may share a home (and so a journal root)."""
        deployment, _, key = journal.partition("/")
        return step_dir(self.backend.journal_root, deployment, self.host.name, key)

    def journal_state(self, journal: str) -> JournalState:
        """What the host's journal says of the step `journal`; HostUnreachable when it cannot be read."""
        return parse_state(self._ask(state_command(self._journal_dir(journal)), "read the step journal"))

    def stop(self, journal: str) -> str:
        """Stop the step's process group on the host (TERM, then KILL after a few seconds):
        `killed`, `stopped`, `exit <status> <epoch>` (it had ended) or `absent`."""
        return self._ask(stop_command(self._journal_dir(journal)), "stop the step").strip()

    def _ask(self, line: str, what: str) -> str:
        """Run a short bookkeeping command on its own channel (beside a running step: no lock),
        on a fresh connection when this one dropped; its stdout."""
        conn = self.conn
        if not conn.is_connected:
            conn = self.backend.connect(self.host)
        try:
            chan = conn.transport.open_session(timeout=self.backend.options.connect_timeout)
            chan.settimeout(self.backend.options.connect_timeout + 30)
            chan.exec_command(line)
            chan.shutdown_write()
            out = b""
            while data := chan.recv(65536):
                out += data
            chan.recv_exit_status()
            chan.close()
        except (SSHException, EOFError, OSError) as exc:
            raise HostUnreachable(
                f"{self.host.name}: could not {what}: {self._lost(connection_lost(exc))}"
            ) from exc
        finally:
            if conn is not self.conn:
                conn.close()
        return out.decode("utf-8", "replace")

    def put(self, local: str, remote: str) -> None:
        """Upload a local file over SFTP; errors name the host."""
        with self._lock:
            if self._closed:
                raise OSError(f"{self.host.name}: upload of {local} refused: the connection was closed")
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
        """Close the connection (its gateway, if shared, is closed by the backend), also while a
        command runs on it: a shutdown gives up on a step that outlived its grace this way, so
        this never waits for the command; its channel closes and its `run` returns."""
        self._closed = True
        self.conn.close()
