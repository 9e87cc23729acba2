"""The runs in flight in this process, and the run's own writes to its deployment.

A run writes its bookkeeping (progress, resume cursor, live tails) only while its deployment is
still `running` and the run still owns it. When another replica declared it interrupted (or
shutdown gave up on it), the run is *fenced*: it stops after the current step and writes
nothing more about the deployment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bot.domain.deployment import Deployment, State
from bot.domain.errors import Refused
from bot.engine.port import Ledger, Notifier
from runners.pipeline import Pipeline

log = logging.getLogger("gonogo.runs")


@dataclass
class Run:
    """One deployment being run here."""

    stop: threading.Event = field(default_factory=threading.Event)  # abort: after the batch
    halt: threading.Event = field(default_factory=threading.Event)  # shutdown: after the step
    shutdown: bool = False
    #: The run lost its claim on the deployment (declared interrupted elsewhere): it stops,
    #: and writes nothing more about the deployment.
    fenced: bool = False
    #: The outcome is being recorded: the state leaves `running` by this run's own hand.
    finishing: bool = False
    pipeline: Pipeline | None = None


class InFlight:
    """The registry of this process's runs, and their fenced writes."""

    def __init__(self, ledger: Ledger, notify: Notifier) -> None:
        self.ledger = ledger
        self.notify = notify
        self.runs: dict[int, Run] = {}

    def get(self, deployment_id: int) -> Run | None:
        """The run of `deployment_id` in this process, if any."""
        return self.runs.get(deployment_id)

    def fence(self, deployment_id: int) -> None:
        """The run no longer owns its deployment: stop after this step, write nothing more."""
        run = self.runs.get(deployment_id)
        if run is None:
            return
        if not run.fenced:
            log.warning(
                "deployment #%s is no longer running here (interrupted elsewhere): stopping after this step",
                deployment_id,
                extra={"deployment_id": deployment_id},
            )
        run.fenced = True
        run.halt.set()
        run.stop.set()

    def update_running(
        self, deployment_id: int, change: Callable[[Deployment], Deployment]
    ) -> Deployment | None:
        """Write the run's own bookkeeping, only while the deployment is still running here;
        otherwise fence the run and write nothing (None)."""
        lost = False

        def guarded(d: Deployment) -> Deployment | None:
            nonlocal lost
            run = self.runs.get(deployment_id)
            lost = d.state != State.RUNNING or (run is not None and run.fenced)
            return None if lost else change(d)

        try:
            saved = self.ledger.write(deployment_id, guarded)
        except Refused as exc:  # it kept losing races: bookkeeping waits for the next write
            log.warning("deployment #%s: %s", deployment_id, exc, extra={"deployment_id": deployment_id})
            return None
        if lost:
            self.fence(deployment_id)
            return None
        return saved

    def save_details(self, deployment_id: int, extra: dict[str, object]) -> None:
        """Merge `extra` into the running deployment's details."""
        self.update_running(deployment_id, lambda d: replace(d, details={**d.details, **extra}))

    def set_progress(self, deployment_id: int, text: str | None) -> None:
        """Set the card's progress line (and heartbeat) of a running deployment."""
        d = self.update_running(
            deployment_id, lambda d: replace(d, progress=text, heartbeat_at=self.ledger.now())
        )
        if d is not None:
            self.notify.refresh_card(d)


__all__ = ["InFlight", "Run"]
