"""Printer backend (dry run): records the exact command each host would run, runs nothing.

Capistrano/SSHKit's printer backend is the model. The pipeline renders templates before
calling the backend; the printer builds the command line exactly as the backend it stands in
for would:

- for SSH (`PrinterBackend(plan=SSHPlan(options))`), with the same `SSHPlan` the SSH backend
  uses: the `remote_command` line (step timeout, secrets loader, `sudo -S -p ''` when a sudo
  password is configured, else `sudo -n`), and where each host connects
  (`[app1] connect deploy@10.0.0.5:22 via jump@gw:22`); on the host that line runs inside the
  step journal's wrapper (`runners.journal`), which the dry run leaves out: it is the same
  scaffolding for every step, and the line inside it is what the step does;
- for the local backend (`PrinterBackend(local=True)`): `/bin/sh -c '<command>'`, the step
  timeout and the variables it gets in its environment;
- with neither, the SSH command line without connection details.

Lines come out per stage, batch and step in host order, whatever order parallel hosts finish
in (`# deploy: batch 2: app2, app3`, then each host's lines). Secret values are never printed:
they travel on stdin (or in the environment), so only their names are listed.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from runners.base import CommandOutcome, Host, HostSession, OutputSink
from runners.command import remote_command
from runners.journal import JournalState
from runners.progress import ProgressEvent

if TYPE_CHECKING:
    from runners.backends.ssh.plan import SSHPlan


class PrinterSession:
    """Records commands for one host."""

    def __init__(self, host: Host, backend: PrinterBackend) -> None:
        self.host = host
        self._backend = backend

    def _emit(self, line: str) -> None:
        self._backend.emit(self.host.name, line)

    def run(
        self,
        command: str,
        *,
        timeout: float | None,
        env: Mapping[str, str],
        on_output: OutputSink,
        journal: str | None = None,
    ) -> CommandOutcome:
        """Record the command line the real backend would run and report success."""
        line = f"[{self.host.name}] $ {self._backend.command_line(command, timeout=timeout, env=env)}"
        self._emit(line)
        on_output(line + "\n")
        return CommandOutcome(exit_code=0, output=line)

    def journal_state(self, journal: str) -> JournalState:
        """A dry run runs nothing: never started."""
        return JournalState("absent")

    def stop(self, journal: str) -> str:
        """Nothing runs in a dry run."""
        return "absent"

    def put(self, local: str, remote: str) -> None:
        """Record the upload."""
        self._emit(f"[{self.host.name}] put {local} -> {remote}")

    def close(self) -> None:
        """Nothing to release."""


class PrinterBackend:
    """Dry-run backend: every command is recorded in `lines`, per batch and step, in host order."""

    name = "printer"

    def __init__(self, plan: SSHPlan | None = None, *, local: bool = False) -> None:
        if plan is not None and local:
            raise ValueError("a printer stands in for either the SSH or the local backend")
        self.plan = plan
        self.local = local
        self.lines: list[str] = []
        self._lock = threading.Lock()
        # The step being printed: its hosts in order, and each host's lines so far.
        self._step_hosts: tuple[str, ...] = ()
        self._held: dict[str, list[str]] | None = None

    # -- what would run -------------------------------------------------------------------
    def command_line(self, command: str, *, timeout: float | None, env: Mapping[str, str]) -> str:
        """The command line (with a `# ...` note of what travels off the line) for one step."""
        if self.local:
            line = f"/bin/sh -c {shlex.quote(command)}"
            notes = [f"timeout {timeout:g}s (process group killed)"] if timeout else []
            if env:
                notes.append(f"env: {', '.join(sorted(env))}")
            return line + (f"    # {'; '.join(notes)}" if notes else "")
        if self.plan is not None:
            wrapped = self.plan.command(command, timeout=timeout, env=env)
        else:
            wrapped = remote_command(command, timeout=timeout, env=env)
        stdin = sorted(env)
        if wrapped.line.startswith("sudo -S ") and self.plan is not None:
            stdin.insert(0, f"sudo password (${self.plan.options.sudo_password_env})")
        return wrapped.line + (f"    # stdin: {', '.join(stdin)}" if stdin else "")

    # -- recording ------------------------------------------------------------------------
    def emit(self, host: str, line: str) -> None:
        """Record `line` for `host`: held until its step is done, so hosts print in order."""
        with self._lock:
            if self._held is not None and host in self._held:
                self._held[host].append(line)
            else:
                self.lines.append(line)

    def observe(self, event: ProgressEvent) -> None:
        """Called by the pipeline with every progress event: batch markers and step order."""
        with self._lock:
            if event.kind == "stage_started":
                self.lines.append(f"# stage {event.stage}")
            elif event.kind == "batch_started":
                self.lines.append(
                    f"# {event.stage}: batch {(event.batch or 0) + 1}: {', '.join(event.hosts)}"
                )
            elif event.kind == "step_started":
                self._flush()
                self._step_hosts = event.hosts
                self._held = {h: [] for h in event.hosts}
            elif event.kind in ("step_done", "stage_done"):
                self._flush()

    def _flush(self) -> None:
        if self._held is not None:
            for host in self._step_hosts:
                self.lines.extend(self._held.get(host, ()))
        self._held, self._step_hosts = None, ()

    # -- the Backend protocol -------------------------------------------------------------
    def open(self, host: Host) -> HostSession:
        """Open a recording session (printing where the host connects, for SSH)."""
        session = PrinterSession(host, self)
        if self.plan is not None:
            try:
                where = self.plan.endpoint(host).describe()
            except ValueError as exc:
                where = f"cannot resolve: {exc}"
            session._emit(f"[{host.name}] connect {where}")
        return session

    def close(self) -> None:
        """Nothing to release."""
