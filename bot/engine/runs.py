"""Running deployments: the engine's worker side.

`Runs` takes approved deployments off the caller's thread onto its own pool and runs each
through the pipeline (stages, batches, the resume cursor, live output tails), records the
outcome through the engine (verify, monitoring window, failure alerts), heartbeats every run
until it has really ended, fences a run another process declared interrupted, finds the runs
of processes that died, and at shutdown lets running steps finish up to a limit.
"""

from __future__ import annotations

import logging
import os
import threading
import time as monotonic_time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.config import Environment
from bot.domain.card import Button
from bot.domain.deployment import Deployment, Event, State
from bot.domain.errors import Refused
from bot.ops import metrics
from bot.store.base import StaleDeployment
from runners.base import HostResult, StepResult
from runners.pipeline import Pipeline, ProgressEvent, StageResult
from runners.redact import Redactor

if TYPE_CHECKING:
    from bot.engine.engine import Engine

log = logging.getLogger("gonogo.runs")
#: Compare-and-set attempts before a write gives up (the engine uses the same bound).
MAX_CAS_RETRIES = 20


@dataclass
class _Run:
    stop: threading.Event = field(default_factory=threading.Event)  # abort: after the batch
    halt: threading.Event = field(default_factory=threading.Event)  # shutdown: after the step
    shutdown: bool = False
    #: The run lost its claim on the deployment (declared interrupted elsewhere): it stops,
    #: and writes nothing more about the deployment.
    fenced: bool = False
    #: `_finish` is recording the outcome: the state leaves `running` by this run's own hand.
    finishing: bool = False
    pipeline: Pipeline | None = None


class Runs:
    """The engine's runs: a worker pool, the runs in flight in this process and their watchdog."""

    def __init__(self, engine: Engine, *, workers: int, single_process: bool) -> None:
        self.engine = engine
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gonogo-work")
        self._inflight: set[Future[None]] = set()
        self._idle = threading.Condition()
        self._runs: dict[int, _Run] = {}
        self._accepting = True
        self._stopping = threading.Event()
        self._watch_stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        #: With replicas, a heartbeat is judged stale only after this process has watched it stand
        #: still for the limit on its own monotonic clock (replicas' wall clocks may disagree).
        self._single_process = single_process
        self._beats_seen: dict[int, tuple[datetime | None, float]] = {}

    def start_watchdog(self) -> None:
        """Start heartbeating this process's runs and looking for those of dead processes."""
        self._watchdog = threading.Thread(target=self._watch, name="gonogo-watchdog", daemon=True)
        self._watchdog.start()

    def stop_after_batch(self, deployment_id: int) -> bool:
        """Abort: the run stops at the end of its current batch; False when it does not run here."""
        run = self._runs.get(deployment_id)
        if run is None:
            return False
        run.stop.set()
        return True

    def shutdown(self, wait: bool, grace: float) -> None:
        """Stop taking work; running deployments stop after their current step and are
        recorded as `interrupted` so a restart can resume them.

        A step still running after `grace` seconds is not waited for: its deployment is
        recorded as interrupted at once (Resume redoes that step) and its connections are
        closed. Heartbeats go on until then, so no replica takes a run over early.
        """
        self._accepting = False
        self._stopping.set()
        for run in list(self._runs.values()):
            run.shutdown = True
            run.halt.set()
            run.stop.set()
        if wait and not self.wait_idle(timeout=grace):
            for deployment_id, run in list(self._runs.items()):
                self._abandon(deployment_id, run, grace)
            self.wait_idle(timeout=5)

    def close(self) -> None:
        """Stop the watchdog and the worker threads (after `shutdown`)."""
        self._watch_stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def recover_stale(self) -> list[Deployment]:
        """Interrupt running deployments nobody is heartbeating (their process died).

        A single process (SQLite) trusts its own clock: a heartbeat older than the limit is
        stale. With replicas, a heartbeat counts as stale only once this process has seen it
        stand still for the limit, so a replica whose clock runs ahead never interrupts a live
        run elsewhere.
        """
        seconds = max(3 * self.engine.config.bot.heartbeat_interval, 1)
        now, mono = self.engine.clock.now(), monotonic_time.monotonic()
        out = []
        running = self.engine.store.deployments(states=[State.RUNNING], limit=500)
        for d in running:
            if d.id is None or d.id in self._runs:
                continue
            beat = d.heartbeat_at or d.started_at or d.updated_at or d.created_at
            if self._single_process:
                stale = now - beat >= timedelta(seconds=seconds)
            else:
                seen = self._beats_seen.get(d.id)
                if seen is None or seen[0] != beat:
                    self._beats_seen[d.id] = (beat, mono)
                stale = seen is not None and seen[0] == beat and mono - seen[1] >= seconds
            if stale:
                out.append(self._interrupt(d, "its process stopped while it was running"))
        live = {d.id for d in running}
        for gone in [k for k in self._beats_seen if k not in live]:
            del self._beats_seen[gone]
        return [d for d in out if d is not None]

    def _watch(self) -> None:
        """Heartbeat this process's runs (until the last one ended, shutdown included) and
        look for runs of dead processes."""
        interval = self.engine.config.bot.heartbeat_interval
        while not self._watch_stop.wait(interval):
            now = self.engine.clock.now()
            for deployment_id, run in list(self._runs.items()):
                try:
                    if not self.engine.store.heartbeat(deployment_id, now) and not run.finishing:
                        self._fence(deployment_id)
                except Exception:
                    log.exception("heartbeat for #%s failed", deployment_id)
            if self._stopping.is_set():
                continue
            try:
                self.recover_stale()
            except Exception:
                log.exception("watchdog: recovery scan failed")

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no work is in flight; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._inflight, timeout=timeout)

    def _abandon(self, deployment_id: int, run: _Run, grace: float) -> None:
        """Shutdown's last resort for a step that outlived the grace period."""
        d = self.engine.store.get(deployment_id)
        run.fenced = True
        if d is not None and d.state == State.RUNNING:
            self._interrupt(d, f"the bot shut down and its step did not finish within {grace:g}s")
        if run.pipeline is not None:
            try:
                run.pipeline.close()
            except Exception:
                log.exception("%s: closing connections at shutdown failed", d.label if d else deployment_id)

    def submit(self, d: Deployment) -> None:
        """Queue `d` for a worker (nothing once shutdown began)."""
        if not self._accepting:
            return
        assert d.id is not None
        future = self._pool.submit(self._run_guarded, d.id)
        with self._idle:
            self._inflight.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._idle:
            self._inflight.discard(future)
            self._idle.notify_all()

    def _run_guarded(self, deployment_id: int) -> None:
        try:
            self._run(deployment_id)
        except Refused as exc:  # a transition lost to another actor (the run was fenced off)
            log.warning("deployment #%s: %s", deployment_id, exc, extra={"deployment_id": deployment_id})
        except Exception:
            log.exception("deployment #%s: unexpected error in the worker", deployment_id)
            run = self._runs.get(deployment_id)
            d = self.engine.store.get(deployment_id)
            if d is not None and d.state == State.RUNNING and not (run and run.fenced):
                try:
                    self.engine.save(
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
        finally:
            self._runs.pop(deployment_id, None)

    def _run(self, deployment_id: int) -> None:
        d = self.engine.store.get(deployment_id)
        if d is None:
            return
        env = self.engine.env(d.env)
        resuming = d.state == State.INTERRUPTED
        event = Event.RESUME if resuming else Event.START
        try:
            d = self.engine.save(d, event, "gonogo", "resume" if resuming else "start", progress="starting",
                          heartbeat_at=self.engine.clock.now(), error=None, refresh=True)  # fmt: skip
        except Refused:
            return  # someone else started it (another click, another replica)
        run = _Run()
        self._runs[deployment_id] = run  # until _finish is done: verify heartbeats too
        backend = self.engine.backends(env, d.dry_run)
        secrets = {name: value for name in env.secrets if (value := os.environ.get(name))}
        pipeline = Pipeline(
            backend,
            env.hosts,
            env.strategy,
            self._variables(env, d),
            env=secrets,
            redactor=Redactor(secrets.values()),
            on_progress=_ProgressReporter(self, deployment_id),
            stop=run.stop,
            halt=run.halt,
        )
        run.pipeline = pipeline
        stages = ("rollback",) if d.kind == "rollback" else ("pre_deploy", "deploy", "verify")
        done_stages = set(d.details.get("done_stages", ())) if resuming else set()
        cursor = d.details.get("cursor", {}) if resuming else {}
        failure: StageResult | None = None
        try:
            for stage in stages:
                steps = env.stage(stage)
                if stage in done_stages or not steps:
                    continue
                self._set_progress(deployment_id, f"{stage}…")
                here = cursor.get("stage") == stage
                result = pipeline.run_stage(
                    stage,
                    steps,
                    start_batch=int(cursor.get("batch", 0)) if here else 0,
                    start_step=int(cursor.get("step", 0)) if here else 0,
                )
                if not result.ok:
                    failure = result
                    break
                done_stages.add(stage)
                self._save_details(deployment_id, {"done_stages": sorted(done_stages), "cursor": {}})
            lines = getattr(backend, "lines", None)
            if failure is None and d.dry_run and isinstance(lines, list):
                self.engine.thread(
                    self.engine.deployment(deployment_id),
                    "Dry run: exact commands per host\n" + "\n".join(lines),
                )
        finally:
            pipeline.close()
        self._finish(deployment_id, failure, run)

    def _finish(self, deployment_id: int, failure: StageResult | None, run: _Run) -> None:
        d = self.engine.deployment(deployment_id)
        if run.fenced or d.state != State.RUNNING:
            log.warning(
                "%s is %s: this process no longer runs it", d.label, d.state.value,
                extra={"deployment_id": deployment_id},
            )  # fmt: skip
            return
        run.finishing = True
        if failure is not None and failure.aborted and failure.failed_step is None:
            if run.shutdown:
                self._interrupt(d, "the bot shut down during the deployment")
                return
            why = "aborted after the current batch" + _skipped_note(failure)
            d = self.engine.save(d, Event.ABORT, "gonogo", "aborted", error=why, refresh=True)
            self.engine.monitoring.on_failure(d, why, automatic=False)
            return
        if failure is not None:
            step = failure.failed_step
            assert step is not None
            summary = f"{failure.stage} › {step.step}: " + "; ".join(
                h.describe() for h in step.failures()[:3]
            )
            summary += _skipped_note(failure)
            d = self.engine.save(d, Event.FAIL, "gonogo", "fail", detail=summary, error=summary, refresh=True)
            tails = "\n".join(f"{h.host}: {h.output[-500:]}" for h in step.failures()[:3] if h.output)
            if tails:
                self.engine.thread(d, "Output:\n" + tails)
            self.engine.monitoring.on_failure(d, summary)
            return
        if d.dry_run:
            self.engine.save(d, Event.SUCCEED, "gonogo", "succeed", progress=None, refresh=True)
            return
        smoke_failure = self.engine.monitoring.verify(d)
        if smoke_failure:
            d = self.engine.save(
                d, Event.FAIL, "gonogo", "fail", detail=smoke_failure, error=smoke_failure, refresh=True
            )
            self.engine.monitoring.on_failure(d, smoke_failure)
            return
        env = self.engine.env(d.env)
        if d.kind == "rollback":
            d = self.engine.save(d, Event.SUCCEED, "gonogo", "succeed", progress=None, refresh=True)
            self._mark_rolled_back(d)
            return
        if self.engine.monitoring.wants_window(env):
            d = self.engine.save(
                d, Event.MONITOR, "gonogo", "monitor", progress="monitoring", release_id=d.id, refresh=True
            )
            self.engine.monitoring.start_window(d)
            return
        d = self.engine.save(
            d, Event.SUCCEED, "gonogo", "succeed", progress=None, release_id=d.id, refresh=True
        )
        self.engine.after_success(d)

    def _mark_rolled_back(self, rollback: Deployment) -> None:
        if rollback.rollback_of is None:
            return
        undone = self.engine.store.get(rollback.rollback_of)
        if undone is None:
            return
        if undone.state == State.MONITORING:
            self.engine.scheduler.cancel(undone.id)  # type: ignore[arg-type]
        try:
            self.engine.save(
                undone, Event.ROLL_BACK, "gonogo", "rolled_back", detail=f"by {rollback.label}", refresh=True
            )
        except Refused:
            log.info("%s could not be marked rolled back from %s", undone.label, undone.state.value)

    def _interrupt(self, d: Deployment, why: str) -> Deployment | None:
        try:
            d = self.engine.save(
                d, Event.INTERRUPT, "gonogo", "interrupt", detail=why, error=why, refresh=True
            )
        except Refused:
            return None
        self.announce_interrupted(d, why)
        return d

    def announce_interrupted(self, d: Deployment, why: str, *, again: bool = False) -> None:
        """The Resume / Roll back alert of an interrupted deployment."""
        still = "is still interrupted" if again else "was interrupted"
        self.engine.alert(
            d,
            f"⚠️ Deployment {d.label} of {d.ref} to {d.env} {still}: {why}. "
            "Resume it, or roll back; the environment stays held until someone decides.",
            (
                Button("Resume", "resume", str(d.id), "primary"),
                Button("Roll back", "rollback_now", str(d.id), "danger"),
            ),
            [d.requester, *self.engine.env(d.env).on_call],
        )

    def _set_progress(self, deployment_id: int, text: str | None) -> None:
        d = self._update_running(
            deployment_id, lambda d: replace(d, progress=text, heartbeat_at=self.engine.clock.now())
        )
        if d is not None:
            self.engine.refresh_card(d)

    def _save_details(self, deployment_id: int, extra: dict[str, object]) -> None:
        self._update_running(deployment_id, lambda d: replace(d, details={**d.details, **extra}))

    def _update_running(
        self, deployment_id: int, change: Callable[[Deployment], Deployment]
    ) -> Deployment | None:
        """`update` for the run's own bookkeeping: only while the deployment is still running.

        When it is not (another replica declared it interrupted, or shutdown gave up on it),
        the run is fenced: it stops after the current step and writes nothing more.
        """
        for _ in range(MAX_CAS_RETRIES):
            d = self.engine.deployment(deployment_id)
            run = self._runs.get(deployment_id)
            if d.state != State.RUNNING or (run is not None and run.fenced):
                self._fence(deployment_id)
                return None
            try:
                return self.engine.store.transition(change(d), d.version)
            except StaleDeployment:
                continue
        return None

    def _fence(self, deployment_id: int) -> None:
        run = self._runs.get(deployment_id)
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

    def _variables(self, env: Environment, d: Deployment) -> dict[str, object]:
        data_dir = str(self.engine.config.bot.data_dir)
        config_dir = str(self.engine.config.config_dir)
        deploy_to = (
            env.deploy_to.replace("{data_dir}", data_dir)
            .replace("{config_dir}", config_dir)
            .replace("{env}", env.name)
        )
        release_id = d.release_id or d.id
        current = self.engine.store.current_release(env.name)
        previous = (current.release_id or current.id) if current else None
        return {
            **env.vars,
            "ref": d.ref,
            "sha": d.sha or d.ref,
            "deploy_id": d.id,
            "env": env.name,
            "release_id": release_id,
            "deploy_to": deploy_to,
            "releases_dir": f"{deploy_to}/releases",
            "release_dir": f"{deploy_to}/releases/{release_id}",
            "current_dir": f"{deploy_to}/current",
            "previous_release_dir": f"{deploy_to}/releases/{previous}" if previous else "",
            "requester": d.requester,
            "config_dir": config_dir,
            "data_dir": data_dir,
            "keep_releases": env.keep_releases,
        }


class _ProgressReporter:
    """Turns pipeline progress into stored host results, card progress, the resume cursor,
    live output tails and thread lines.

    Output is streamed into the deployment's record (`details["live"]`: the last line of each
    host working on the step) at most once per `LIVE_INTERVAL` seconds, so a chatty step costs
    one store write and one coalesced card update per interval, not one per line.
    """

    LIVE_INTERVAL = 1.0
    _LINE = 200

    def __init__(self, runs: Runs, deployment_id: int) -> None:
        self.runs = runs
        self.engine = runs.engine
        self.deployment_id = deployment_id
        self._lock = threading.Lock()
        self._live: dict[str, str] = {}
        self._dirty = False
        self._flushed = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        engine = self.engine
        if event.kind == "output" and event.text and event.hosts:
            self._output(event.hosts[0], event.text)
        elif event.kind == "batch_started":
            cursor = {"stage": event.stage, "batch": event.batch, "step": 0}
            self.runs._save_details(self.deployment_id, {"cursor": cursor})
        elif event.kind == "step_started":
            with self._lock:
                self._live.clear()
                self._dirty = False
            hosts = ", ".join(event.hosts) if len(event.hosts) <= 5 else f"{len(event.hosts)} hosts"
            self.runs._update_running(
                self.deployment_id,
                lambda d: replace(
                    d,
                    progress=f"{event.stage} › {event.step} on {hosts}",
                    heartbeat_at=engine.clock.now(),
                    details={**d.details, "live": {"step": event.step, "hosts": {}}},
                ),
            )
            engine.refresh_card(engine.deployment(self.deployment_id))
        elif event.kind == "host_done" and isinstance(event.result, HostResult):
            self._flush(force=False)
            env = engine.deployment(self.deployment_id).env
            metrics.STEP_SECONDS.labels(env, event.stage, event.result.status).observe(event.result.duration)
        elif event.kind == "step_done" and isinstance(event.result, StepResult):
            result = event.result
            with self._lock:
                self._live.clear()
                self._dirty = False
            after: dict[str, object] = {"live": {}}
            if result.ok and event.step_index is not None:  # a resume starts after this step
                after["cursor"] = {"stage": event.stage, "batch": event.batch, "step": event.step_index + 1}
            self.runs._save_details(self.deployment_id, after)
            engine.store.record_host_results(self.deployment_id, event.stage, result.hosts)
            mark = "✓" if result.ok else "✗"
            line = f"{mark} {event.stage} › {result.step}: " + "; ".join(
                h.describe() for h in result.hosts[:10]
            )
            if len(result.hosts) > 10:
                line += f"; …and {len(result.hosts) - 10} more hosts"
            engine.thread(engine.deployment(self.deployment_id), line)

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
        d = self.runs._update_running(
            self.deployment_id,
            lambda d: replace(d, details={**d.details, "live": {**d.details.get("live", {}), "hosts": live}}),
        )
        if d is not None:
            self.engine.refresh_card(d)


def _skipped_note(stage: StageResult) -> str:
    """`; not started on web4, web5 (2 hosts)`, or nothing when every host was reached."""
    if not stage.skipped:
        return ""
    names = ", ".join(stage.skipped[:5]) + (", …" if len(stage.skipped) > 5 else "")
    return f"; not started on {names} ({len(stage.skipped)} host{'s' if len(stage.skipped) != 1 else ''})"
