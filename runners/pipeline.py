"""The stage pipeline: run named stages of steps over hosts, batch by batch.

Capistrano-style: the strategy splits hosts into batches; within a batch each step runs on the
batch's hosts concurrently (bounded by `max_parallel`, on a pool started once); a failure stops
the stage after the current step of the current batch (later batches: skipped). Sessions open
lazily, once per host. Every command runs under a journal name (`<journal>/<step key>`, see
`runners.journal`): a step the host already ran under it is not run again. An upload step
(`runners.upload`) copies a file instead. Connection set-up (`HostResult.connect`) is reported
apart from `duration`; output is redacted whole lines at a time, with a backend's `secrets`.

A step may publish artifacts (`{artifact.NAME}` for later commands; declared and not printed:
the step fails), gets the environment's secrets plus its own (`step_secrets`), and its `verify`
checks run right after it. `run_planned` runs a compensation: each step on its planned hosts.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import runners.artifacts as artifacts
from runners.base import (
    Backend,
    Host,
    HostResult,
    HostSession,
    HostUnreachable,
    Step,
    StepResult,
)
from runners.command import sudo_command
from runners.journal import step_key
from runners.output import HostOutput
from runners.progress import ProgressEvent, ProgressSink
from runners.redact import Redactor
from runners.running import RunningSteps
from runners.stage import (
    Attempt,
    Planned,
    StageResult,
    StepCall,
    attempt,
    judge,
    missing_artifacts,
    step_env,
)
from runners.strategy import Strategy
from runners.template import render
from runners.upload import upload_paths
from runners.workers import WorkerPool

#: Runs a step's `verify` checks right after it: a failure summary, or None when they pass.
Verifier = Callable[[str, Step, StepResult], str | None]


def _noop(_: ProgressEvent) -> None:
    pass


class Pipeline:
    """Runs stages for one deployment over one backend, reusing host sessions."""

    def __init__(
        self,
        backend: Backend,
        hosts: Sequence[Host],
        strategy: Strategy,
        variables: Mapping[str, object],
        *,
        env: Mapping[str, str] | None = None,
        redactor: Redactor | None = None,
        on_progress: ProgressSink = _noop,
        stop: threading.Event | None = None,
        halt: threading.Event | None = None,
        step_secrets: Mapping[str, str] | None = None,
        published: Mapping[str, Mapping[str, str]] | None = None,
        verify: Verifier | None = None,
        require_artifacts: bool = True,
        journal: str | None = None,
        unsure: Mapping[str, Sequence[str]] | None = None,
        rerun: Sequence[str] = (),
    ) -> None:
        self.backend = backend
        #: The deployment's name in the hosts' step journals (`runners.journal`); unique when unset.
        self.journal = journal or f"adhoc-{uuid.uuid4().hex[:12]}"
        self.hosts = list(hosts)
        self.strategy = strategy
        self.variables = dict(variables)
        self.env = dict(env or {})
        #: Values of the secrets steps name in `secrets` (each step gets only its own).
        self.step_secrets = dict(step_secrets or {})
        #: Artifacts published so far, name → host → value (seeded from the deployment's record).
        self.artifacts: dict[str, dict[str, str]] = {k: dict(v) for k, v in (published or {}).items()}
        self.verify = verify
        #: False for a dry run: nothing runs, so a declared artifact stands in as `<artifact NAME>`.
        self.require_artifacts = require_artifacts
        redact = redactor or Redactor()
        backend_secrets = tuple(getattr(backend, "secrets", ()) or ())
        self.redact = redact.extended(backend_secrets) if backend_secrets else redact
        self.on_progress = on_progress
        observe = getattr(backend, "observe", None)
        self._observe: ProgressSink | None = observe if callable(observe) else None
        self.stop = stop or threading.Event()
        # `stop` ends the rollout after the current batch (abort); `halt` after the current
        # step (shutdown), so the record says exactly where to resume.
        self.halt = halt or threading.Event()
        self._sessions: dict[str, HostSession] = {}
        self._session_errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._workers: WorkerPool | None = None
        self._stage_runs: dict[str, int] = {}
        #: The step each host runs now (for `stop_running`).
        self.running = RunningSteps(unsure, rerun)  # and the resumed steps the journal decides

    def _stage_run(self, stage: str) -> str:
        """The stage's name in the journal: `deploy`, then `deploy-2` when run again here."""
        runs = self._stage_runs.get(stage, 1)
        return stage if runs == 1 else f"{stage}-{runs}"

    def _progress(self, event: ProgressEvent) -> None:
        if self._observe is not None:
            self._observe(event)
        self.on_progress(event)

    # -- sessions -------------------------------------------------------------------------
    def _session(self, host: Host) -> HostSession:
        with self._lock:
            if host.name in self._session_errors:
                raise HostUnreachable(self._session_errors[host.name])
            session = self._sessions.get(host.name)
        if session is not None:
            return session
        try:
            session = self.backend.open(host)
        except HostUnreachable as exc:
            with self._lock:
                self._session_errors[host.name] = str(exc)
            raise
        with self._lock:
            self._sessions[host.name] = session
        return session

    def close(self) -> None:
        """Close every session, the worker threads and the backend."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            workers, self._workers = self._workers, None
        for session in sessions:
            with contextlib.suppress(Exception):
                session.close()
        if workers is not None:
            workers.close()
        self.backend.close()

    def _pool(self) -> WorkerPool:
        """The pipeline's worker threads: as many as the widest batch may use, started at once."""
        with self._lock:
            if self._workers is None:
                widest = max((len(b) for b in self.strategy.batches(self.hosts)), default=1)
                self._workers = WorkerPool(max(1, min(self.strategy.max_parallel, widest)))
            return self._workers

    # -- running --------------------------------------------------------------------------
    def render(self, step: Step, host: Host, variables: Mapping[str, object] | None = None) -> str:
        """The exact command `step` runs on `host` (templates substituted, shell-quoted): the
        pipeline's variables, then `variables`, the host's own and the artifacts published."""
        command = render(step.command, self._values(host, variables))
        return sudo_command(command) if step.sudo else command

    def _values(self, host: Host, variables: Mapping[str, object] | None) -> dict[str, object]:
        with self._lock:
            published = artifacts.template_variables(self.artifacts, host.name)
        return {**self.variables, **(variables or {}), **host.variables(), **published}

    def run_stage(
        self, stage: str, steps: Sequence[Step], *, start_batch: int = 0, start_step: int = 0
    ) -> StageResult:
        """Run `steps` batch by batch; stop at the end of the batch in which a step fails.

        Within a batch the steps run in order, each on all of the batch's hosts at once; when a
        step fails on any host, the batch's remaining steps and all later batches are not run
        and the untouched hosts are listed in `StageResult.skipped`. A resume starts at batch
        `start_batch`, and in that batch at step `start_step` (the steps before it finished).
        """
        result = StageResult(stage=stage)
        self._stage_runs[stage] = self._stage_runs.get(stage, 0) + 1
        batches = self.strategy.batches(self.hosts)
        every = tuple(h.name for batch in batches for h in batch)
        self._progress(
            ProgressEvent("stage_started", stage, hosts=every, batches=len(batches), batch=start_batch)
        )
        once_done: set[str] = set()
        index = start_batch
        for index, batch in enumerate(batches):
            if index < start_batch:
                continue
            if self.stop.is_set():
                result.aborted = True
                break
            if index > start_batch and self.strategy.pause and self.stop.wait(self.strategy.pause):
                result.aborted = True
                break
            first_step = start_step if index == start_batch else 0
            self._run_batch(result, steps, batch, index, first_step, once_done)
            if result.aborted:
                break
            if result.failed_step is not None:
                index += 1
                break
            result.completed_batches = index + 1
            self._progress(
                ProgressEvent("batch_done", stage, batch=index, hosts=tuple(h.name for h in batch))
            )
        else:
            index = len(batches)
        result.skipped = [h.name for batch in batches[max(index, start_batch) :] for h in batch]
        self._progress(ProgressEvent("stage_done", stage, hosts=tuple(result.skipped)))
        return result

    def _run_batch(
        self,
        result: StageResult,
        steps: Sequence[Step],
        batch: list[Host],
        index: int,
        first_step: int,
        once_done: set[str],
    ) -> None:
        """Run the steps on one batch (from `first_step`), recording into `result`; stop at a failure."""
        stage = result.stage
        self._progress(ProgressEvent("batch_started", stage, batch=index, hosts=tuple(h.name for h in batch)))
        for position, step in enumerate(steps):
            if self.halt.is_set():  # shutdown: stop after the step that was running
                result.aborted = True
                return
            if position < first_step:
                continue  # finished in this batch before the interruption
            targets = self._targets(step, batch, once_done)
            if not targets:
                continue
            step_result = self.run_step(stage, step, targets, batch_index=index, step_index=position)
            result.steps.append(step_result)
            if not step_result.ok:
                result.failed_step = step_result
                return

    def _targets(self, step: Step, batch: list[Host], once_done: set[str]) -> list[Host]:
        hosts = [h for h in batch if not step.roles or set(step.roles) & set(h.roles)]
        if step.once:
            if step.name in once_done:
                return []
            # `once` means the first matching host of the whole fleet, in the first batch it appears.
            fleet = [h for h in self.hosts if not step.roles or set(step.roles) & set(h.roles)]
            if not fleet or fleet[0] not in hosts:
                return []
            once_done.add(step.name)
            return [fleet[0]]
        return hosts

    def run_step(
        self,
        stage: str,
        step: Step,
        hosts: Sequence[Host],
        *,
        batch_index: int = 0,
        step_index: int = 0,
        variables: Mapping[str, object] | None = None,
    ) -> StepResult:
        """Run one step on `hosts` concurrently (at most `max_parallel`), results in host order;
        then, when it finished everywhere, its `verify` checks (a failure fails the step)."""
        self._progress(
            ProgressEvent(
                "step_started",
                stage,
                step=step.name,
                batch=batch_index,
                hosts=tuple(h.name for h in hosts),
                step_index=step_index,
            )
        )

        key = f"{self.journal}/{step_key(self._stage_run(stage), batch_index, step_index, step.name)}"

        def on_host(h: Host) -> HostResult:
            return self._run_on_host(stage, step, h, variables, key)

        if len(hosts) == 1 or self.strategy.max_parallel <= 1:
            results = [on_host(h) for h in hosts]
        else:
            results = self._pool().map(on_host, hosts)
        step_result = StepResult(step=step.name, hosts=tuple(results))
        if step_result.ok and step.verify and self.verify is not None:
            step_result = replace(step_result, verify_error=self.verify(stage, step, step_result))
        self._progress(
            ProgressEvent(
                "step_done",
                stage,
                step=step.name,
                batch=batch_index,
                result=step_result,
                step_index=step_index,
            )
        )
        return step_result

    def run_planned(self, stage: str, planned: Sequence[Planned], *, start_step: int = 0) -> StageResult:
        """Run planned steps in order, each on exactly its hosts (a compensation: every undo where
        its step finished); stop at the first failure. A resume starts at `start_step`."""
        result = StageResult(stage=stage)
        self._stage_runs[stage] = self._stage_runs.get(stage, 0) + 1
        self._progress(ProgressEvent("stage_started", stage))
        for position, item in enumerate(planned):
            if position < start_step or not item.hosts:
                continue
            if self.halt.is_set():
                result.aborted = True
                break
            step_result = self.run_step(
                stage, item.step, item.hosts, step_index=position, variables=item.variables
            )
            result.steps.append(step_result)
            if not step_result.ok:
                result.failed_step = step_result
                break
        self._progress(ProgressEvent("stage_done", stage))
        return result

    def _run_on_host(
        self, stage: str, step: Step, host: Host, variables: Mapping[str, object] | None, key: str
    ) -> HostResult:
        """One step on one host: render, run, judge; output and the result go out as progress."""
        self._progress(ProgressEvent("host_started", stage, step=step.name, hosts=(host.name,)))
        started = time.monotonic()
        try:
            upload = upload_paths(step, self._values(host, variables))
            command = self.render(step, host, variables) if upload is None else ""
            env = step_env(step, self.env, self.step_secrets)
        except ValueError as exc:
            return self._host_done(stage, HostResult(host.name, step.name, "error", error=str(exc)))

        def publish(text: str) -> None:
            self._progress(ProgressEvent("output", stage, step=step.name, hosts=(host.name,), text=text))

        output = HostOutput(self.redact, publish)
        attempt = self._attempt(StepCall(host, step, upload or command, env, output.sink, started, key))
        output.flush()
        outcome = attempt.outcome
        status, code, error = judge(outcome, attempt.error, attempt.duration)
        published = self._published(step, host, output.artifacts(outcome))
        if status == "ok" and (missing := missing_artifacts(step, published)):
            status = "failed"
            error = f"did not publish artifact {missing[0]} (print `{artifacts.MARKER}{missing[0]}=VALUE`)"
        result = HostResult(
            host.name,
            step.name,
            status,
            exit_code=code,
            duration=attempt.duration,
            output=output.text(outcome),
            error=self.redact(error) if error else None,
            connect=attempt.connect,
            artifacts=published,
        )
        return self._host_done(stage, result)

    def _published(
        self, step: Step, host: Host, found: tuple[tuple[str, str], ...]
    ) -> tuple[tuple[str, str], ...]:
        """What `host` published (in a dry run, declared artifacts stand in as `<artifact NAME>`),
        added to the pipeline's artifacts for later steps."""
        if not self.require_artifacts:
            have = {name for name, _ in found}
            found = (*found, *((n, f"<artifact {n}>") for n in step.artifacts if n not in have))
        if found:
            with self._lock:
                artifacts.merge(self.artifacts, host.name, found)
        return found

    def _host_done(self, stage: str, result: HostResult) -> HostResult:
        self._progress(ProgressEvent("host_done", stage, step=result.step, result=result))
        return result

    def _attempt(self, call: StepCall) -> Attempt:
        """Open (or reuse) the host's session and run the call (`runners.stage.attempt`)."""
        with self._lock:
            reused = call.host.name in self._sessions
        return attempt(lambda: self._session(call.host), reused, call, self.running)

    def stop_running(self) -> list[str]:
        """Stop the steps running now on their hosts (`RunningSteps.stop`): shutdown's last
        resort. What happened, per host: `app1: killed`."""
        return [f"{host}: {said}" for host, said in self.running.stop().items()]
