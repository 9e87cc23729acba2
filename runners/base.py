"""The host-execution seam: hosts, steps, per-host results and the backend protocol.

A backend opens one `HostSession` per host and reuses it for every step of a deploy
(`Backend.open` / `HostSession.close`). Backends: `runners.backends.local` (this machine),
`runners.backends.printer` (dry run: records the exact commands), `runners.backends.ssh` (Fabric).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from runners.journal import UNSURE, JournalState

HostStatus = Literal["ok", "failed", "timed_out", "error", "skipped"]

# Output callback: receives chunks of text as the command produces them.
OutputSink = Callable[[str], None]


@dataclass(frozen=True)
class Host:
    """One target host. `name` is what people read; `address` is what the backend dials."""

    name: str
    address: str = "localhost"
    port: int | None = None
    user: str | None = None
    roles: tuple[str, ...] = ()
    gateway: str | None = None
    #: Per-host template variables (`{host.vars.NAME}`), as (name, value) pairs so a host stays hashable.
    vars: tuple[tuple[str, str], ...] = ()

    def variables(self) -> dict[str, str]:
        """The host's own template variables: `host`, `host.name`, `host.address`, `host.vars.NAME`."""
        out = {"host": self.name, "host.name": self.name, "host.address": self.address}
        out.update({f"host.vars.{name}": value for name, value in self.vars})
        return out


@dataclass(frozen=True)
class Upload:
    """A file to copy to each host: `source` on this machine, `destination` on the host (path
    templates: placeholders are substituted as they are, no shell ever sees them)."""

    source: str
    destination: str


@dataclass(frozen=True)
class Step:
    """One command template in a stage, or with `upload` a file copied to each host instead
    (`HostSession.put`: over SFTP on the connection the other steps use). `once` runs it on
    the first host only.

    The runbook keys beside the command: `undo` (the template that compensates the step where it
    finished), `irreversible` with the `on_failure` choices a human picks from, `artifacts` the
    step publishes (`::gonogo artifact NAME=VALUE` lines), `secrets` only this step receives,
    and `verify`, the checks (by name) that must pass right after it.
    """

    name: str
    command: str
    once: bool = False
    timeout: float | None = None
    roles: tuple[str, ...] = ()
    sudo: bool = False
    undo: str | None = None
    irreversible: bool = False
    on_failure: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    verify: tuple[str, ...] = ()
    upload: Upload | None = None


@dataclass(frozen=True)
class CommandOutcome:
    """What one command on one host did. `exit_code` is None when it never ran to an exit.

    A command killed by a signal has the shell's code for it (128 + the signal number) and an
    `error` such as `killed by SIGKILL after 0.2s`. `connect` is the time `run` spent
    (re)connecting before the command started, which is not part of the command's duration.
    """

    exit_code: int | None
    output: str
    timed_out: bool = False
    error: str | None = None
    connect: float = 0.0


@dataclass(frozen=True)
class HostResult:
    """The result of one step on one host, with a redacted output tail.

    `duration` is the command's own run time; `connect` is the time spent opening the host's
    session for it (SSH handshake, usually only on a host's first step), reported apart.
    """

    host: str
    step: str
    status: HostStatus
    exit_code: int | None = None
    duration: float = 0.0
    output: str = ""
    error: str | None = None
    connect: float = 0.0
    #: What the step published on this host (`::gonogo artifact NAME=VALUE`), in order.
    artifacts: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        """True when the step succeeded on this host."""
        return self.status == "ok"

    @property
    def unsure(self) -> bool:
        """True when a resume did not run the step here because the host's journal cannot say
        whether it ran already (`runners.running.RunningSteps.refusal`): a human decides."""
        return self.status == "error" and (self.error or "").startswith(UNSURE)

    def describe(self) -> str:
        """One line naming the host: `app2: exit 2 after 4.1s`, `app3: connection refused`."""
        if self.status == "ok":
            return f"{self.host}: ok in {self.duration:.1f}s"
        if self.status == "skipped":
            return f"{self.host}: skipped"
        if self.status == "timed_out":
            return f"{self.host}: {self.error or 'timed out'}"
        if self.error:
            return f"{self.host}: {self.error}"
        return f"{self.host}: exit {self.exit_code} after {self.duration:.1f}s"


@dataclass(frozen=True)
class StepResult:
    """The results of one step across the hosts it ran on (in host order)."""

    step: str
    hosts: tuple[HostResult, ...] = field(default_factory=tuple)
    #: The step ran, but a check of its `verify` failed right after it (the step then fails).
    verify_error: str | None = None

    @property
    def ok(self) -> bool:
        """True when no host failed (skipped hosts do not count as failures) and verify passed."""
        return self.verify_error is None and all(h.status in ("ok", "skipped") for h in self.hosts)

    def finished_on(self) -> tuple[str, ...]:
        """The hosts on which the command itself finished (exit 0), whatever verify said."""
        return tuple(h.host for h in self.hosts if h.status == "ok")

    def failures(self) -> list[HostResult]:
        """The hosts on which the step did not succeed."""
        return [h for h in self.hosts if h.status not in ("ok", "skipped")]


class HostUnreachable(Exception):
    """The backend could not open a session to a host; the message names the host."""


class HostSession(Protocol):
    """An open session to one host, reused across steps."""

    def run(
        self,
        command: str,
        *,
        timeout: float | None,
        env: Mapping[str, str],
        on_output: OutputSink,
        journal: str | None = None,
    ) -> CommandOutcome:
        """Run a shell command, streaming output to `on_output`. Never raises for a failing command.

        `journal` (`<deployment>/<step key>`) names the step in the host's journal
        (`runners.journal`): a step of that name that already ran there is not run again, its
        recorded outcome is replayed (or, still running, waited for).
        """
        ...

    def journal_state(self, journal: str) -> JournalState:
        """What the host's journal says of the step `journal` (never started, running, finished)."""
        ...

    def stop(self, journal: str) -> str:
        """Stop the step `journal`'s process group on the host (TERM, then KILL); what happened."""
        ...

    def put(self, local: str, remote: str) -> None:
        """Upload a local file to the host."""
        ...

    def close(self) -> None:
        """Release the session."""
        ...


class Backend(Protocol):
    """Opens sessions to hosts. One backend instance serves one deploy."""

    name: str

    def open(self, host: Host) -> HostSession:
        """Open a session to `host`; raise HostUnreachable with a message naming it."""
        ...

    def close(self) -> None:
        """Close every session this backend opened."""
        ...
