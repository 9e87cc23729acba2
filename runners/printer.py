"""Printer backend (dry run): records the exact command each host would run, runs nothing.

Capistrano/SSHKit's printer backend is the model. The pipeline renders templates before
calling the backend, and the printer wraps them with `remote_command` exactly as the SSH backend
does (step timeout, secrets loader, sudo), so what is printed is the real remote command line.
Secret values are never printed: they travel on stdin, so only their names are listed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from runners.base import CommandOutcome, Host, HostSession, OutputSink
from runners.pipeline import remote_command


class PrinterSession:
    """Records commands for one host."""

    def __init__(self, host: Host, emit: Callable[[str], None]) -> None:
        self.host = host
        self._emit = emit

    def run(
        self,
        command: str,
        *,
        timeout: float | None,
        env: Mapping[str, str],
        on_output: OutputSink,
    ) -> CommandOutcome:
        """Record the command line the SSH backend would run and report success."""
        line = f"[{self.host.name}] $ {remote_command(command, timeout=timeout, env=env).line}"
        if env:
            line += f"    # stdin: {', '.join(sorted(env))}"
        self._emit(line)
        on_output(line + "\n")
        return CommandOutcome(exit_code=0, output=line)

    def put(self, local: str, remote: str) -> None:
        """Record the upload."""
        self._emit(f"[{self.host.name}] put {local} -> {remote}")

    def close(self) -> None:
        """Nothing to release."""


class PrinterBackend:
    """Dry-run backend: every command is recorded in `lines`, in order."""

    name = "printer"

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def _emit(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def open(self, host: Host) -> HostSession:
        """Open a recording session."""
        return PrinterSession(host, self._emit)

    def close(self) -> None:
        """Nothing to release."""
