"""Local backend: runs step commands on this machine with `/bin/sh -c`.

Used by the demo environment and by tests. A timeout kills the command's whole process group,
so nothing it started keeps running. A command killed by a signal is reported as such
(`killed by SIGKILL after 0.2s`, exit code 128 + the signal number, as a shell would say).
Commands inherit this process's environment except the `withheld` variables (the secrets of the
config): a secret reaches a command only when the pipeline passes it for that step.

With a `journal_root`, a step run under a journal name runs under the same wrapper as on an SSH
host (`runners.journal`, in `<journal_root>/<deployment>/<host>/<step key>/`): in its own
session, so it outlives this process, and never twice under one name (a second run replays or
reattaches). `/bin/sh` runs the step there too.
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
from runners.command import RemoteCommand
from runners.journal import (
    CANNOT,
    STOP_KILL_AFTER,
    JournalState,
    journaled,
    parse_state,
    state_command,
    step_dir,
    stop_command,
)
from runners.output import TailBuffer


class LocalSession:
    """A 'session' on this machine: each command is a fresh subprocess."""

    def __init__(
        self,
        host: Host,
        cwd: str | None = None,
        withheld: frozenset[str] = frozenset(),
        journal_root: str | None = None,
        journal_keep: int = 0,
    ) -> None:
        self.host = host
        self.cwd = cwd
        self.withheld = withheld
        #: Where steps keep their journal (None: steps run without one, as plain subprocesses).
        self.journal_root = journal_root
        #: How many deployments' journals are kept (0: all).
        self.journal_keep = journal_keep
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
        """Run `command` in a shell, streaming merged stdout/stderr; under the journal wrapper when
        this session keeps a journal and the step has a `journal` name."""
        tail = TailBuffer()
        started = time.monotonic()
        directory = self._journal_dir(journal) if journal is not None else None
        line = command
        environ = {**{k: v for k, v in os.environ.items() if k not in self.withheld}, **env}
        if directory is not None:
            line = journaled(RemoteCommand(command), directory, self.journal_keep).line
            environ["SHELL"] = "/bin/sh"  # the wrapper runs the step with $SHELL, as sshd would
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", line],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env=environ,
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
                if directory is not None:  # the step runs in a session of its own
                    _sh(stop_command(directory, kill_after=0))
                _kill_group(proc)
                reader.join(timeout=2)
                return CommandOutcome(
                    exit_code=None, output=tail.text(), timed_out=True, error=f"timed out after {timeout:g}s"
                )
            reader.join(timeout=5)
        if directory is not None and code == 125 and tail.text().startswith(CANNOT):
            # The journal cannot be kept here: the command never ran; say so, not `exit 125`.
            return CommandOutcome(None, tail.text(), error=tail.text().strip().removeprefix("gonogo: "))
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

    def _journal_dir(self, journal: str) -> str | None:
        if self.journal_root is None:
            return None
        deployment, _, key = journal.partition("/")
        return step_dir(self.journal_root, deployment, self.host.name, key)

    def journal_state(self, journal: str) -> JournalState:
        """What the journal says of the step `journal` (without a journal: never started)."""
        directory = self._journal_dir(journal)
        if directory is None:
            return JournalState("absent")
        return parse_state(_sh(state_command(directory)))

    def stop(self, journal: str) -> str:
        """Stop the step `journal`: its process groups (TERM, KILL after a few seconds), its
        record set aside (its wrapper then ends by itself); `killed`, `stopped`, `exit <status>
        <epoch>` or `absent`. Without a journal: what runs in this session."""
        directory = self._journal_dir(journal)
        if directory is not None:
            return _sh(stop_command(directory)).strip()
        return self._stop_tracked()

    def _stop_tracked(self) -> str:
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


def _sh(line: str) -> str:
    """Run a journal bookkeeping command line here; its stdout."""
    return subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=False).stdout


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class LocalBackend:
    """Backend for hosts that are this machine."""

    name = "local"

    def __init__(
        self,
        cwd: str | None = None,
        withheld: frozenset[str] = frozenset(),
        journal_root: str | None = None,
        journal_keep: int = 0,
    ) -> None:
        self.cwd = cwd
        #: Variables of this process commands do not inherit (given to a step only when it names them).
        self.withheld = withheld
        #: Where steps keep their journal (`runners.journal`); None: no journal.
        self.journal_root = journal_root
        #: How many deployments' journals are kept (0: all), as releases are.
        self.journal_keep = journal_keep

    def open(self, host: Host) -> HostSession:
        """Open a local session (never fails)."""
        return LocalSession(host, self.cwd, self.withheld, self.journal_root, self.journal_keep)

    def close(self) -> None:
        """Nothing to release."""
