"""One command on one SSH channel: send it and its stdin, stream its output, judge how it ended.

The loop runs on the caller's thread (no extra threads per command). It stops at the channel's
EOF with an exit status; shortly after the exit status when a background process keeps the
output open (`EXIT_DRAIN`); when the transport declares the host dead; or at the client-side
guard a bit longer than the step timeout, which keeps a silent channel from hanging.
"""

from __future__ import annotations

import codecs
import signal
import threading
import time
from collections.abc import Callable

import paramiko

from runners.backends.ssh.transport import LiveTransport
from runners.base import CommandOutcome, OutputSink
from runners.command import KILL_AFTER, RemoteCommand, format_seconds
from runners.output import TailBuffer

#: Seconds the client waits beyond `timeout` + `KILL_AFTER` before it gives up on a silent channel.
GUARD_SLACK = 10.0
#: After the exit status, seconds to wait for output still in flight when the command left a
#: background process holding its stdout/stderr open (OpenSSH would wait for it forever).
EXIT_DRAIN = 2.0
#: How often a waiting command loop re-checks liveness and the guard.
TICK = 0.5
RECV_BYTES = 32768


def signal_name(name: str) -> str:
    """`SIGKILL` for the SSH protocol's `KILL` (names are sent without the `SIG` prefix)."""
    return name if name.startswith("SIG") else f"SIG{name}"


def signal_code(name: str) -> int | None:
    """128 + the signal's number, as a shell reports a process killed by it."""
    try:
        return 128 + int(signal.Signals[signal_name(name)])
    except KeyError:
        return None


class LineStream:
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


class ChannelCommand:
    """One command on an open channel: `run` it, then read its `outcome` (after closing the channel).

    `lost` turns a "connection lost" text into the reason to report (the session prefers the
    transport's own dead reason). Exit 124/137 (or TERM/KILL) is a timeout only when the step
    ran for its whole timeout; a command killed by a signal is `killed by SIGKILL after 0.3s`.
    """

    def __init__(
        self,
        chan: paramiko.Channel,
        live: LiveTransport | None,
        timeout: float | None,
        on_output: OutputSink,
        lost: Callable[[str], str],
    ) -> None:
        self.chan = chan
        self.live = live
        self.timeout = timeout
        self._on_output = on_output
        self._lost = lost
        self._tail = TailBuffer()
        self._out, self._err = LineStream(self._emit), LineStream(self._emit)
        self._wake = threading.Event()
        chan.in_buffer.set_event(self._wake)
        chan.in_stderr_buffer.set_event(self._wake)
        self.guard = timeout + KILL_AFTER + GUARD_SLACK if timeout else None
        self.started = time.monotonic()
        #: The guard ended the wait: the host stopped answering (the session closes the connection).
        self.guard_hit = False
        self._exited_at: float | None = None
        self._last_data = self.started

    def _emit(self, text: str) -> None:
        self._tail.write(text)
        self._on_output(text)

    # -- running ------------------------------------------------------------------------------
    def run(self, wrapped: RemoteCommand) -> None:
        """Start the command, send its stdin payload then EOF, and stream output until it is over."""
        self.chan.exec_command(wrapped.line)
        if wrapped.stdin:
            self.chan.sendall(wrapped.stdin.encode())
        self.chan.shutdown_write()
        while True:
            if self._receive():
                continue
            status_known = self._status_known()
            if self.chan.closed or (self.chan.eof_received and status_known):
                if self.chan.recv_ready() or self.chan.recv_stderr_ready():
                    continue  # data that arrived just before the EOF
                return
            if self._give_up(status_known):
                return
            self._wait()

    def _receive(self) -> bool:
        """Pass on what stdout and stderr have ready; True when there was something."""
        got = False
        if self.chan.recv_ready():
            self._out.write(self.chan.recv(RECV_BYTES))
            got = True
        if self.chan.recv_stderr_ready():
            self._err.write(self.chan.recv_stderr(RECV_BYTES))
            got = True
        if got:
            self._last_data = time.monotonic()
            if self.live is not None:
                self.live.mark_alive()
        return got

    def _status_known(self) -> bool:
        return self.chan.exit_status != -1 or getattr(self.chan, "exit_signal", None) is not None

    def _give_up(self, status_known: bool) -> bool:
        """True when waiting longer is pointless: drained after the exit, host dead, or guard hit."""
        now = time.monotonic()
        if status_known:
            self._exited_at = self._exited_at or now
            # Quiet for EXIT_DRAIN since the exit and the last output, but no EOF: a
            # background process the command started holds its stdout/stderr open.
            if now - max(self._exited_at, self._last_data) >= EXIT_DRAIN:
                return True
        if self.live is not None and self.live.check_liveness():
            return True
        if self.guard is not None and now - self.started > self.guard:
            self.guard_hit = True
            return True
        return False

    def _wait(self) -> None:
        if self.chan.eof_received:
            self.chan.status_event.wait(TICK)
        else:
            self._wake.wait(TICK)

    # -- judging ------------------------------------------------------------------------------
    def _finish(self) -> str:
        """Emit the unfinished last lines; the output tail."""
        self._out.close()
        self._err.close()
        return self._tail.text()

    def broken(self, exc: BaseException) -> CommandOutcome:
        """The outcome when the connection failed mid-command."""
        return CommandOutcome(None, self._finish(), error=self._lost(connection_lost(exc)))

    def outcome(self) -> CommandOutcome:
        """How the command ended: exit code, timeout, killing signal or lost connection."""
        output = self._finish()
        elapsed = time.monotonic() - self.started
        if self.guard_hit:
            return CommandOutcome(
                exit_code=None,
                output=output,
                timed_out=True,
                error=f"timed out after {format_seconds(self.timeout or 0)}s and the host stopped "
                f"answering ({format_seconds(self.guard or 0)}s); connection closed",
            )
        code = self.chan.exit_status if self.chan.exit_status >= 0 else None
        killed_by = getattr(self.chan, "exit_signal", None)
        if self.timeout and elapsed >= self.timeout and (code in (124, 137) or killed_by in ("TERM", "KILL")):
            return CommandOutcome(
                exit_code=code,
                output=output,
                timed_out=True,
                error=f"timed out after {format_seconds(self.timeout)}s",
            )
        if killed_by:
            return self._killed(killed_by, output, elapsed)
        if code is None:
            return CommandOutcome(None, output, error=self._lost("connection lost (no exit status)"))
        return CommandOutcome(exit_code=code, output=output)

    def _killed(self, killed_by: str, output: str, elapsed: float) -> CommandOutcome:
        core = " (core dumped)" if getattr(self.chan, "core_dumped", False) else ""
        return CommandOutcome(
            exit_code=signal_code(killed_by),
            output=output,
            error=f"killed by {signal_name(killed_by)}{core} after {elapsed:.1f}s",
        )


def connection_lost(exc: BaseException) -> str:
    """`connection lost: <why>` for an error on the connection."""
    return f"connection lost: {exc or type(exc).__name__}"
