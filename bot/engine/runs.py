"""Running deployments: the engine's worker side.

`Runs` queues approved deployments in the store, where a worker of whichever process is free
claims them (`dispatch`), and runs each through the pipeline (stages, batches, the resume cursor, live output tails: `progress`), then
records the outcome: a failed step or smoke check goes to `Failures`, a verified deploy opens its
monitoring window (`Monitoring`) or goes live, a rollback marks what it undid. A rollback first
runs its compensation (`compensation`: the undo of what the undone deployment finished), then
its rollback steps. A run stops before a gated stage and waits there without a worker
(`gates`); a step's `verify` checks run right after it. The watchdog
(`watchdog`) heartbeats every run until it has really ended and finds the runs of processes that
died; a run another process declared interrupted is fenced (`inflight`). At shutdown, running
steps may finish up to a limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.config import Config
from bot.domain.actions import Action
from bot.domain.card import Button
from bot.domain.deployment import Deployment, Event, State
from bot.domain.errors import Deferred, Refused
from bot.engine.dispatch import Dispatcher
from bot.engine.failures import Failures
from bot.engine.gates import Gates, GateStop
from bot.engine.inflight import InFlight, Run
from bot.engine.monitoring import Monitoring
from bot.engine.port import BackendFactory, Ledger, Notifier, Timers
from bot.engine.stages import Stages
from bot.engine.watchdog import Watchdog
from bot.store.base import Store
from runners import StageResult
from runners.journal import UNSURE

log = logging.getLogger("gonogo.runs")
#: Longest wait (seconds) before the dispatcher looks at the queue again without being woken.
QUEUE_POLL = 2.0


class Runs:
    """The engine's runs: a worker pool, the runs in flight in this process and their watchdog."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        timers: Timers,
        *,
        backends: BackendFactory,
        monitoring: Monitoring,
        failures: Failures,
        gates: Gates,
        on_live: Callable[[Deployment], None],
        workers: int,
        single_process: bool,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.timers = timers
        self.backends = backends
        self.monitoring = monitoring
        self.failures = failures
        self.gates = gates
        self.on_live = on_live
        self.inflight = InFlight(ledger, notify)
        self.stages = Stages(config, ledger, store, notify, self.inflight, backends, monitoring)
        self.watchdog = Watchdog(
            self.inflight,
            ledger,
            store,
            interval=config.bot.heartbeat_interval,
            single_process=single_process,
            interrupt=self._interrupt,
        )
        # The queue is the store's (`dispatch`): runs go to whichever process has a free worker.
        beat = config.bot.heartbeat_interval
        self.queue = Dispatcher(
            store, ledger.now, self._run_guarded, workers=workers, poll=min(beat, QUEUE_POLL),
            lease=None if single_process else max(3 * beat, 1.0),
        )  # fmt: skip

    # -- the queue ----------------------------------------------------------------------------
    def submit(self, d: Deployment) -> None:
        """Queue `d` for a worker of any process (this one takes none once shutdown began)."""
        self.queue.submit(d)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no work is in flight here; False on timeout."""
        return self.queue.wait_idle(timeout)

    def stop_after_batch(self, deployment_id: int) -> bool:
        """Abort: the run stops at the end of its current batch; False when it does not run here."""
        run = self.inflight.get(deployment_id)
        if run is None:
            return False
        run.stop.set()
        return True

    # -- lifecycle ----------------------------------------------------------------------------
    def start_watchdog(self) -> None:
        """Start heartbeating this process's runs and looking for those of dead processes, and
        claiming the runs any process queues."""
        self.watchdog.start()
        self.queue.start()

    def recover_stale(self) -> list[Deployment]:
        """Interrupt running deployments nobody is heartbeating (see `Watchdog.recover_stale`)."""
        return self.watchdog.recover_stale()

    def shutdown(self, wait: bool, grace: float) -> None:
        """Stop taking work; running deployments stop after their current step and are
        recorded as `interrupted` so a restart can resume them.

        A step still running after `grace` seconds is given up: its process group is stopped on
        the host (TERM, then KILL a few seconds later), its deployment is recorded as
        interrupted (Resume runs that step again) and its connections are closed. Heartbeats go
        on until then, so no replica takes a run over early.
        """
        self.queue.stop_claiming()
        self.watchdog.stopping.set()
        for run in list(self.inflight.runs.values()):
            run.shutdown = True
            run.halt.set()
            run.stop.set()
        if wait and not self.wait_idle(timeout=grace):
            for deployment_id, run in list(self.inflight.runs.items()):
                self._abandon(deployment_id, run, grace)
            self.wait_idle(timeout=5)

    def close(self) -> None:
        """Stop the watchdog and the worker threads (after `shutdown`)."""
        self.watchdog.stop()
        self.queue.close()

    def _abandon(self, deployment_id: int, run: Run, grace: float) -> None:
        """Shutdown's last resort for a step that outlived the grace period."""
        d = self.store.get(deployment_id)
        run.fenced = True  # from now on the run writes nothing, whatever its step still reports
        stopped = run.pipeline.stop_running() if run.pipeline is not None else []
        if d is not None and d.state == State.RUNNING:
            why = f"the bot shut down and its step did not finish within {grace:g}s"
            if stopped:
                why += "; given up and stopped on the host (" + ", ".join(stopped) + ")"
            self._interrupt(d, why)
        if run.pipeline is not None:
            try:
                run.pipeline.close()
            except Exception:
                log.exception("%s: closing connections at shutdown failed", d.label if d else deployment_id)

    # -- one run ------------------------------------------------------------------------------
    def _run_guarded(self, deployment_id: int) -> None:
        try:
            self._run(deployment_id)
        except Refused as exc:  # a transition lost to another actor (the run was fenced off)
            log.warning("deployment #%s: %s", deployment_id, exc, extra={"deployment_id": deployment_id})
        except Deferred as exc:  # shutdown stopped its checks: the next process goes on with it
            log.info("deployment #%s: %s", deployment_id, exc, extra={"deployment_id": deployment_id})
        except Exception:
            log.exception("deployment #%s: unexpected error in the worker", deployment_id)
            self._record_internal_error(deployment_id)
        finally:
            self.inflight.runs.pop(deployment_id, None)

    def _record_internal_error(self, deployment_id: int) -> None:
        run = self.inflight.get(deployment_id)
        d = self.store.get(deployment_id)
        if d is None or d.state != State.RUNNING or (run and run.fenced):
            return
        try:
            self.ledger.save(
                d,
                Event.FAIL,
                "gonogo",
                "fail",
                detail="internal error",
                error="internal error (see logs)",
                refresh=True,
            )
        except Exception:
            log.exception("deployment #%s: could not record the failure", deployment_id)

    def _run(self, deployment_id: int) -> None:
        d = self.store.get(deployment_id)
        if d is None:
            return
        env = self.ledger.env(d.env)
        resuming = d.state == State.INTERRUPTED
        try:
            d = self.ledger.save(
                d, Event.RESUME if resuming else Event.START, "gonogo", "resume" if resuming else "start",
                progress="starting", heartbeat_at=self.ledger.now(), error=None, refresh=True,
            )  # fmt: skip
        except Refused:
            return  # someone else started it (another click, another replica)
        run = Run()
        self.inflight.runs[deployment_id] = run  # until the outcome is recorded: verify heartbeats too
        pipeline = self.stages.pipeline(env, d, run)
        try:
            failure = self.stages.run(pipeline, env, d, resuming)
            lines = getattr(pipeline.backend, "lines", None)
            if failure is None and d.dry_run and isinstance(lines, list):
                self.notify.thread(
                    self.ledger.get(deployment_id), "Dry run: exact commands per host\n" + "\n".join(lines)
                )
        finally:
            pipeline.close()
        self._finish(deployment_id, failure, run)

    # -- the outcome --------------------------------------------------------------------------
    def _finish(self, deployment_id: int, failure: StageResult | GateStop | None, run: Run) -> None:
        d = self.ledger.get(deployment_id)
        if run.fenced or d.state != State.RUNNING:
            log.warning(
                "%s is %s: this process no longer runs it", d.label, d.state.value,
                extra={"deployment_id": deployment_id},
            )  # fmt: skip
            return
        run.finishing = True
        if isinstance(failure, GateStop):
            self.gates.wait(d, failure)
        elif failure is not None and failure.aborted and failure.failed_step is None:
            self._aborted(d, failure, run)
        elif failure is not None and (unsure := _unsure(failure)):
            self._interrupt(d, unsure, rerun=True)
        elif failure is not None:
            self._failed(d, failure)
        elif d.dry_run:
            self.ledger.save(d, Event.SUCCEED, "gonogo", "succeed", progress=None, refresh=True)
        elif smoke_failure := self.monitoring.verify(d):
            d = self.ledger.save(
                d, Event.FAIL, "gonogo", "fail", detail=smoke_failure, error=smoke_failure, refresh=True
            )
            self.failures.on_failure(d, smoke_failure)
        else:
            self._verified(d)

    def _aborted(self, d: Deployment, failure: StageResult, run: Run) -> None:
        if run.shutdown:
            self._interrupt(d, "the bot shut down during the deployment")
            return
        why = "aborted after the current batch" + _skipped_note(failure)
        d = self.ledger.save(d, Event.ABORT, "gonogo", "aborted", error=why, refresh=True)
        self.failures.on_failure(d, why, automatic=False)

    def _failed(self, d: Deployment, failure: StageResult) -> None:
        step = failure.failed_step
        assert step is not None
        problems = [h.describe() for h in step.failures()[:3]] or [step.verify_error or "failed"]
        summary = f"{failure.stage} › {step.step}: " + "; ".join(problems) + _skipped_note(failure)
        d = self.ledger.save(d, Event.FAIL, "gonogo", "fail", detail=summary, error=summary, refresh=True)
        tails = "\n".join(f"{h.host}: {h.output[-500:]}" for h in step.failures()[:3] if h.output)
        if tails:
            self.notify.thread(d, "Output:\n" + tails)
        self.failures.on_failure(d, summary)

    def _verified(self, d: Deployment) -> None:
        """Deployed and verified: a rollback is done; a deploy opens its window or goes live."""
        if d.kind == "rollback":
            d = self.ledger.save(d, Event.SUCCEED, "gonogo", "succeed", progress=None, refresh=True)
            self._mark_rolled_back(d)
            return
        if self.monitoring.wants_window(self.ledger.env(d.env)):
            d = self.ledger.save(
                d, Event.MONITOR, "gonogo", "monitor", progress="monitoring", release_id=d.id, refresh=True
            )
            self.monitoring.start_window(d)
            return
        d = self.ledger.save(
            d, Event.SUCCEED, "gonogo", "succeed", progress=None, release_id=d.id, refresh=True
        )
        self.on_live(d)

    def _mark_rolled_back(self, rollback: Deployment) -> None:
        if rollback.rollback_of is None:
            return
        undone = self.store.get(rollback.rollback_of)
        if undone is None:
            return
        if undone.state == State.MONITORING:
            self.timers.cancel(undone.id)
        try:
            self.ledger.save(
                undone, Event.ROLL_BACK, "gonogo", "rolled_back", detail=f"by {rollback.label}", refresh=True
            )
        except Refused:
            log.info("%s could not be marked rolled back from %s", undone.label, undone.state.value)

    # -- interruptions ------------------------------------------------------------------------
    def _interrupt(self, d: Deployment, why: str, *, rerun: bool = False) -> Deployment | None:
        try:
            d = self.ledger.save(
                d, Event.INTERRUPT, "gonogo", "interrupt", detail=why, error=why, refresh=True
            )
        except Refused:
            return None
        self.announce_interrupted(d, why, rerun=rerun)
        return d

    def announce_interrupted(
        self, d: Deployment, why: str, *, again: bool = False, rerun: bool = False
    ) -> None:
        """The Resume / Roll back alert of an interrupted deployment; with `rerun` (a host's
        journal cannot say whether the step ran) `Run it again` instead of Resume."""
        still = "is still interrupted" if again else "was interrupted"
        go_on = (
            Button("Run it again", Action.RUN_AGAIN, str(d.id), "primary")
            if rerun
            else Button("Resume", Action.RESUME, str(d.id), "primary")
        )
        ask = "Run the step a second time only if it is safe to" if rerun else "Resume it"
        self.notify.alert(
            d,
            f"⚠️ Deployment {d.label} of {d.ref} to {d.env} {still}: {why}. "
            f"{ask}, or roll back; the environment stays held until someone decides.",
            (
                go_on,
                *self.failures.rollback_buttons(
                    d, Button("Roll back", Action.ROLLBACK_NOW, str(d.id), "danger")
                ),
            ),
            [d.requester, *self.ledger.env(d.env).on_call],
        )


def _unsure(stage: StageResult) -> str | None:
    """Why the stage stopped when it was only because hosts' journals could not say whether a
    resumed step ran (see `runners.running.RunningSteps.refusal`): a human decides."""
    step = stage.failed_step
    failures = step.failures() if step is not None else []
    if step is None or not failures or not all(h.unsure for h in failures):
        return None
    hosts = ", ".join(h.host for h in failures)
    return f"{stage.stage} › {step.step}: on {hosts} {UNSURE} (its journal is gone or was lost)"


def _skipped_note(stage: StageResult) -> str:
    """`; not started on web4, web5 (2 hosts)`, or nothing when every host was reached."""
    if not stage.skipped:
        return ""
    names = ", ".join(stage.skipped[:5]) + (", …" if len(stage.skipped) > 5 else "")
    return f"; not started on {names} ({len(stage.skipped)} host{'s' if len(stage.skipped) != 1 else ''})"


__all__ = ["Runs"]
