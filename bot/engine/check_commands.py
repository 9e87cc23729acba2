"""Command checks on the hosts: what a check of `type = "command"` runs, and how shutdown stops it.

A command check runs on its host(s) through the environment's backend under the hosts' step
journal (`runners.journal`), as a deploy step does: in its own session (setsid), its output
recorded on the host in the deployment's journal directory (so pruned with the deployment's
step journals). Its journal name is its own for every run, `<deployment>/check.r<round>.<check>.<ns>`
(round 0: a smoke or step check): a check is a probe, and a second reading must never replay
the first.

While it runs a check is listed in `RunningChecks`, so a shutdown stops its process groups on
the host (TERM, then KILL a few seconds later: `HostSession.stop`); no command check starts
after that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from bot.config import Environment
from bot.engine.port import BackendFactory
from runners.base import Host, HostSession
from runners.journal import safe_part
from runners.running import RunningSteps

#: Seconds shutdown waits for the command checks it stops (TERM, KILL after a few seconds).
STOP_BOUND = 10.0
#: What a host reports for a command check the bot did not start because it is shutting down.
NOT_STARTED = "not run: the bot is shutting down"


class RunningChecks:
    """The command checks running now, host by host (`runners.running.RunningSteps`), so a
    shutdown can stop them on their hosts; once stopped, no check starts again."""

    def __init__(self) -> None:
        self._steps = RunningSteps()
        self._lock = threading.Lock()
        self._closed = False

    def start(self, label: str, session: HostSession, journal: str) -> bool:
        """List the check `label` about to run as `journal` on `session`; False (do not run it)
        once `stop` was called."""
        with self._lock:
            if self._closed:
                return False
            self._steps.add(label, session, journal)
            return True

    def done(self, label: str) -> None:
        """The check `label` is over."""
        self._steps.discard(label)

    def stop(self, bound: float = STOP_BOUND) -> list[str]:
        """Stop every running check's process groups on its host, waiting at most `bound`
        seconds; from now on no check starts. `probe on app1 (#17): killed`, one per check.

        A check listed a moment before its process started is stopped again until its run
        returns (or `bound` runs out): its first stop found nothing to stop."""
        with self._lock:
            self._closed = True
        deadline = time.monotonic() + bound
        said: dict[str, str] = {}
        while self._steps.names():
            for label, what in self._steps.stop(max(0.1, deadline - time.monotonic())).items():
                if said.get(label, "absent") == "absent":
                    said[label] = what
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        return [f"{label}: {what}" for label, what in sorted(said.items())]


class CommandRunner:
    """Runs a round's command checks through the environment's backend (first host, all, or a
    named one), each under a journal name of its own, listed in `running` while it runs."""

    def __init__(
        self,
        backends: BackendFactory,
        env: Environment,
        running: RunningChecks,
        *,
        journal: str,
        deployment: str,
        round_no: int,
    ) -> None:
        self.backends = backends
        self.env = env
        self.running = running
        #: The deployment's name in the hosts' journals (`bot.engine.journal.journal_name`).
        self.journal = journal
        self.deployment = deployment
        self.round_no = round_no

    def key(self, name: str) -> str:
        """A journal name for one run of the check `name`, never used before."""
        return f"{self.journal}/check.r{self.round_no}.{safe_part(name) or 'check'}.{time.time_ns()}"

    def __call__(
        self, command: str, on: str, timeout: float, *, name: str
    ) -> list[tuple[str, int | None, str]]:
        """Run the check `name`'s `command` on the hosts `on` names, one after another: `(host,
        exit code or None when it could not run, output)` for each."""
        hosts: Sequence[Host]
        if on == "one":
            hosts = self.env.hosts[:1]
        elif on == "all":
            hosts = self.env.hosts
        else:
            hosts = [h for h in self.env.hosts if h.name == on]
        backend = self.backends(self.env, False)
        out: list[tuple[str, int | None, str]] = []
        try:
            for host in hosts:
                label = f"{name} on {host.name} ({self.deployment})"
                try:
                    session = backend.open(host)
                    journal = self.key(name)
                    if not self.running.start(label, session, journal):
                        out.append((host.name, None, NOT_STARTED))
                        continue
                    try:
                        outcome = session.run(
                            command, timeout=timeout, env={}, on_output=_ignore, journal=journal
                        )
                    finally:
                        self.running.done(label)
                    out.append((host.name, outcome.exit_code, outcome.output))
                except Exception as exc:
                    out.append((host.name, None, str(exc)))
        finally:
            backend.close()
        return out


def _ignore(_: str) -> None:
    pass


__all__ = ["NOT_STARTED", "STOP_BOUND", "CommandRunner", "RunningChecks"]
