"""A run's progress, as the pipeline reports it, into the record and the chat.

Each pipeline event becomes: the resume cursor (which batch and step to resume from), the card's
progress line, stored per-host results, the record of what each step did where
(`details.ran`: one record per step, the hosts it finished on batch by batch and those it
runs on now, so a compensation knows what to undo, also after the process died mid-step) with the artifacts it published
(`details.artifacts`), the step's line in the card's thread, and live output tails. Output is streamed into the deployment's record (`details.live`: the last line of each
host working on the step) at most once per `LIVE_INTERVAL` seconds, so a chatty step costs one
store write and one coalesced card update per interval, not one per line. The per-stage host
counts (`details.stages`: done / failed / running, `tally.StageCounter`) are saved the same way,
and at once when a stage starts, a batch ends or a stage ends.
"""

from __future__ import annotations

import threading
import time as monotonic_time
from collections.abc import Mapping
from dataclasses import replace

from bot.domain.details import Cursor, Details, Live, StepRun
from bot.engine.inflight import InFlight
from bot.engine.port import Ledger, Notifier
from bot.engine.tally import StageCounter
from bot.ops import metrics
from bot.store.base import Store
from runners.base import HostResult, StepResult
from runners.pipeline import ProgressEvent


class ProgressReporter:
    """The pipeline's `on_progress` callback for one deployment's run."""

    LIVE_INTERVAL = 1.0
    _LINE = 200

    def __init__(
        self,
        inflight: InFlight,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        deployment_id: int,
        *,
        record_runs: bool = True,
    ) -> None:
        self.inflight = inflight
        #: Keep `details.ran` (a deploy's; a rollback is never compensated, so it keeps none).
        self.record_runs = record_runs
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.deployment_id = deployment_id
        self._lock = threading.Lock()
        self._live: dict[str, str] = {}
        self._dirty = False
        self._flushed = 0.0
        self.tally = StageCounter(lambda: self.ledger.now().isoformat())

    def __call__(self, event: ProgressEvent) -> None:
        if self.tally.observe(event):  # a stage began, a batch or a stage ended: show it now
            self._save_stages()
        elif event.kind in ("host_started", "host_done"):
            with self._lock:
                self._dirty = True
        if event.kind == "output" and event.text and event.hosts:
            self._output(event.hosts[0], event.text)
        elif event.kind == "batch_started":
            self.inflight.save_details(
                self.deployment_id,
                cursor=Cursor(event.stage, event.batch or 0, 0),
                stages=self.tally.tallies(),
            )
        elif event.kind == "step_started":
            self._step_started(event)
        elif event.kind == "host_started":
            self._flush(force=False)
        elif event.kind == "host_done" and isinstance(event.result, HostResult):
            self._flush(force=False)
            env = self.ledger.get(self.deployment_id).env
            metrics.STEP_SECONDS.labels(env, event.stage, event.result.status).observe(event.result.duration)
        elif event.kind == "step_done" and isinstance(event.result, StepResult):
            self._step_done(event, event.result)

    def _step_started(self, event: ProgressEvent) -> None:
        with self._lock:
            self._live.clear()
            self._dirty = False
        hosts = ", ".join(event.hosts) if len(event.hosts) <= 5 else f"{len(event.hosts)} hosts"
        self.inflight.update_running(
            self.deployment_id,
            lambda d: replace(
                d,
                progress=f"{event.stage} › {event.step} on {hosts}",
                heartbeat_at=self.ledger.now(),
                details=d.details.but(
                    live=Live(event.step),
                    ran=_started(d.details.ran, event) if self.record_runs else d.details.ran,
                    stages=self.tally.tallies(),
                ),
            ),
        )
        self.notify.refresh_card(self.ledger.get(self.deployment_id))

    def _step_done(self, event: ProgressEvent, result: StepResult) -> None:
        with self._lock:
            self._live.clear()
            self._dirty = False
        cursor = None
        stages = self.tally.tallies()
        if result.ok and event.step_index is not None:  # a resume starts after this step
            cursor = Cursor(event.stage, event.batch or 0, event.step_index + 1)
        saved = self.inflight.update_running(
            self.deployment_id,
            lambda d: replace(
                d, details=_done(d.details, event, result, cursor, self.record_runs).but(stages=stages)
            ),
        )
        if saved is None:  # fenced (declared interrupted, or given up at shutdown): write nothing
            return
        self.store.record_host_results(self.deployment_id, event.stage, result.hosts)
        mark = "✓" if result.ok else "✗"
        line = f"{mark} {event.stage} › {result.step}: " + "; ".join(h.describe() for h in result.hosts[:10])
        if len(result.hosts) > 10:
            line += f"; …and {len(result.hosts) - 10} more hosts"
        self.notify.thread(self.ledger.get(self.deployment_id), line)

    def _output(self, host: str, text: str) -> None:
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return
        with self._lock:
            self._live[host] = lines[-1][-self._LINE :]
            self._dirty = True
        self._flush(force=False)

    def _flush(self, *, force: bool) -> None:
        """Write the live tails when they changed and the interval has passed (or `force`)."""
        now = monotonic_time.monotonic()
        with self._lock:
            if not self._dirty or (not force and now - self._flushed < self.LIVE_INTERVAL):
                return
            self._flushed, self._dirty = now, False
            live = dict(self._live)
        stages = self.tally.tallies()
        d = self.inflight.update_running(
            self.deployment_id,
            lambda d: d.with_details(
                live=Live(d.details.live.step if d.details.live else None, live), stages=stages
            ),
        )
        if d is not None:
            self.notify.refresh_card(d)

    def _save_stages(self) -> None:
        """Save the stage counts now and update the card."""
        stages = self.tally.tallies()
        d = self.inflight.update_running(self.deployment_id, lambda d: d.with_details(stages=stages))
        if d is not None:
            self.notify.refresh_card(d)


def _find(ran: tuple[StepRun, ...], stage: str, step: str, index: int) -> int:
    """The position of the record of a step in `ran`, or -1."""
    for i, r in enumerate(ran):
        if r.stage == stage and r.index == index and r.step == step:
            return i
    return -1


def _started(ran: tuple[StepRun, ...], event: ProgressEvent) -> tuple[StepRun, ...]:
    """`ran` with the step of `event` running on its hosts (a rerun after an interruption
    replaces the hosts whose outcome was unknown)."""
    stage, step, index = event.stage, event.step or "", event.step_index or 0
    at = _find(ran, stage, step, index)
    if at < 0:
        return (*ran, StepRun(stage, step, index, running=event.hosts, running_batch=event.batch or 0))
    run = replace(ran[at], running=event.hosts, running_batch=event.batch or 0)
    return (*ran[:at], run, *ran[at + 1 :])


def _done(
    details: Details, event: ProgressEvent, result: StepResult, cursor: Cursor | None, record: bool
) -> Details:
    """The details once a step's outcome is back: where it finished, what it published."""
    ran = details.ran
    at = _find(ran, event.stage, result.step, event.step_index or 0) if record else -1
    if at >= 0:
        # A host the resume refused to rerun on (its journal cannot say) stays unknown: Run it again.
        unsure = tuple(h.host for h in result.hosts if h.unsure)
        run = replace(
            ran[at].finishing(event.batch or 0, result.finished_on(), unsure),
            verify_error=result.verify_error,
        )
        ran = (*ran[:at], run, *ran[at + 1 :])
    artifacts: dict[str, Mapping[str, str]] = dict(details.artifacts)
    for host in result.hosts:
        for name, value in host.artifacts:
            artifacts[name] = {**artifacts.get(name, {}), host.host: value}
    changes: dict[str, object] = {"live": None, "ran": ran, "artifacts": artifacts}
    if cursor is not None:
        changes["cursor"] = cursor
    return details.but(**changes)


__all__ = ["ProgressReporter"]
