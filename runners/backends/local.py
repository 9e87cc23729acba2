"""Local backend: runs step commands on this machine with `/bin/sh -c`.

Used by the demo environment and by tests. A timeout kills the command's whole process group,
so nothing it started keeps running. A command killed by a signal is reported as such
(`killed by SIGKILL after 0.2s`, exit code 128 + the signal number, as a shell would say).
Commands inherit this process's environment except the `withheld` variables (the secrets of the
config): a secret reaches a command only when the pipeline passes it for that step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping

from runners.base import CommandOutcome, Host, HostSession, OutputSink
from runners.journal import STOP_KILL_AFTER, JournalState
from runners.output import TailBuffer


class LocalSession:
    """A 'session' on this machine: each command is a fresh subprocess."""

    def __init__(self, host: Host, cwd: str | None = None, withheld: frozenset[str] = frozenset()) -> None:
        self.host = host
        self.cwd = cwd
        self.withheld = withheld
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def run(
        self,
        command: str,
        *,
        timeout: float | None,
        env: Mapping[str, str],
        on_output: OutputSink,
        journal: str | None = None,
    ) -> CommandOutcome:
        """Run `command` in a shell, streaming merged stdout/stderr (no journal here yet:
        `journal` is accepted and ignored)."""
        tail = TailBuffer()
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env={**{k: v for k, v in os.environ.items() if k not in self.withheld}, **env},
                start_new_session=True,
            )
        except OSError as exc:
            return CommandOutcome(exit_code=None, output="", error=f"could not start: {exc}")
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for raw in iter(lambda: stdout.read1(4096), b""):  # type: ignore[attr-defined]
                text = raw.decode("utf-8", "replace")
                tail.write(text)
                on_output(text)

        with self._tracked(proc):
            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                reader.join(timeout=2)
                return CommandOutcome(
                    exit_code=None, output=tail.text(), timed_out=True, error=f"timed out after {timeout:g}s"
                )
            reader.join(timeout=5)
        if code < 0:
            return CommandOutcome(
                exit_code=128 - code,
                output=tail.text(),
                error=f"killed by {signal_name(-code)} after {time.monotonic() - started:.1f}s",
            )
        return CommandOutcome(exit_code=code, output=tail.text())

    @contextlib.contextmanager
    def _tracked(self, proc: subprocess.Popen[bytes]) -> Iterator[None]:
        """While the block runs, `close()` can kill `proc`."""
        with self._lock:
            self._running.add(proc)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(proc)

    def put(self, local: str, remote: str) -> None:
        """Copy a file on this machine."""
        import shutil

        shutil.copyfile(local, remote)

    def journal_state(self, journal: str) -> JournalState:
        """No journal on this backend: every step reads as never started."""
        return JournalState("absent")

    def stop(self, journal: str) -> str:
        """Stop what runs in this session: TERM to each process group, KILL after a few seconds."""
        with self._lock:
            running = list(self._running)
        for proc in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in running:
            try:
                proc.wait(timeout=STOP_KILL_AFTER)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
        return "stopped" if running else "absent"

    def close(self) -> None:
        """Kill what is still running (with everything it started): a closed session runs nothing."""
        with self._lock:
            running = list(self._running)
        for proc in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)


def signal_name(number: int) -> str:
    """`SIGKILL` for 9; `signal 64` for a number this platform has no name for."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class LocalBackend:
    """Backend for hosts that are this machine."""

    name = "local"

    def __init__(self, cwd: str | None = None, withheld: frozenset[str] = frozenset()) -> None:
        self.cwd = cwd
        #: Variables of this process commands do not inherit (given to a step only when it names them).
        self.withheld = withheld

    def open(self, host: Host) -> HostSession:
        """Open a local session (never fails)."""
        return LocalSession(host, self.cwd, self.withheld)

    def close(self) -> None:
        """Nothing to release."""
