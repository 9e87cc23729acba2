"""The stage pipeline: run named stages of steps over hosts, batch by batch.

Capistrano-style: a stage (`pre_deploy`, `deploy`, `verify`, `rollback`) is a list of steps;
the strategy splits hosts into batches; within a batch each step runs on the batch's hosts
concurrently (bounded by `max_parallel`). A failure stops the stage after the current step
of the current batch; later batches are reported as skipped. Sessions are opened lazily,
once per host, and reused by every stage until `close()`. The hosts of a batch run on a pool
of worker threads started once per pipeline (so a wide batch does not wait for threads to be
created one by one while earlier hosts are already busy with their handshakes).

An upload step (`Step.upload`) copies a file to each of its hosts with `HostSession.put` (SFTP
on the host's SSH connection) instead of running a command; its paths are templates too.

A host's result reports the connection set-up (`HostResult.connect`) apart from the command's
own `duration`. Output is redacted whole lines at a time; an overlong unfinished line is cut
only where no secret (however long) can straddle the cut. A backend may declare `secrets` of
its own (the SSH backend's sudo password): they are redacted too. A backend with an `observe`
method sees every progress event first (the printer uses it to print batches in order).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from runners.base import (
    Backend,
    CommandOutcome,
    Host,
    HostResult,
    HostSession,
    HostStatus,
    HostUnreachable,
    OutputSink,
    Step,
    StepResult,
)
from runners.command import sudo_command
from runners.output import HostOutput
from runners.progress import ProgressEvent, ProgressSink
from runners.redact import Redactor
from runners.strategy import Strategy
from runners.template import render, render_path
from runners.workers import WorkerPool


@dataclass
class StageResult:
    """Every step result of one stage; `failed_step` names the step that stopped it."""

    stage: str
    steps: list[StepResult] = field(default_factory=list)
    failed_step: StepResult | None = None
    aborted: bool = False
    completed_batches: int = 0
    #: Hosts this stage never touched because it stopped (failure or abort) before their batch.
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every step succeeded and the stage was not aborted."""
        return self.failed_step is None and not self.aborted

    def skipped_results(self) -> list[HostResult]:
        """One `skipped` HostResult per untouched host (step `-`), for stores and summaries."""
        return [HostResult(name, "-", "skipped") for name in self.skipped]


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
    ) -> None:
        self.backend = backend
        self.hosts = list(hosts)
        self.strategy = strategy
        self.variables = dict(variables)
        self.env = dict(env or {})
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
    def render(self, step: Step, host: Host) -> str:
        """The exact command `step` runs on `host` (templates substituted, shell-quoted)."""
        command = render(step.command, {**self.variables, "host": host.name})
        return sudo_command(command) if step.sudo else command

    def upload_paths(self, step: Step, host: Host) -> tuple[str, str] | None:
        """(source, destination) of an upload step on `host` (paths substituted as they are)."""
        if step.upload is None:
            return None
        variables = {**self.variables, "host": host.name}
        return render_path(step.upload.source, variables), render_path(step.upload.destination, variables)

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
        self._progress(ProgressEvent("stage_started", stage))
        batches = self.strategy.batches(self.hosts)
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
        self, stage: str, step: Step, hosts: Sequence[Host], *, batch_index: int = 0, step_index: int = 0
    ) -> StepResult:
        """Run one step on `hosts` concurrently (at most `max_parallel`), results in host order."""
        self._progress(
            ProgressEvent(
                "step_started", stage, step=step.name, batch=batch_index, hosts=tuple(h.name for h in hosts)
            )
        )
        if len(hosts) == 1 or self.strategy.max_parallel <= 1:
            results = [self._run_on_host(stage, step, h) for h in hosts]
        else:
            results = self._pool().map(lambda h: self._run_on_host(stage, step, h), hosts)
        step_result = StepResult(step=step.name, hosts=tuple(results))
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

    def _run_on_host(self, stage: str, step: Step, host: Host) -> HostResult:
        """One step on one host: render, run, judge; output and the result go out as progress."""
        started = time.monotonic()
        try:
            upload = self.upload_paths(step, host)
            command = self.render(step, host) if upload is None else ""
        except ValueError as exc:
            return self._host_done(stage, HostResult(host.name, step.name, "error", error=str(exc)))

        def publish(text: str) -> None:
            self._progress(ProgressEvent("output", stage, step=step.name, hosts=(host.name,), text=text))

        output = HostOutput(self.redact, publish)
        attempt = self._attempt(host, step, upload or command, output.sink, started)
        output.flush()
        outcome = attempt.outcome
        status, code, error = _judge(outcome, attempt.error, attempt.duration)
        result = HostResult(
            host.name,
            step.name,
            status,
            exit_code=code,
            duration=attempt.duration,
            output=output.text(outcome),
            error=self.redact(error) if error else None,
            connect=attempt.connect,
        )
        return self._host_done(stage, result)

    def _host_done(self, stage: str, result: HostResult) -> HostResult:
        self._progress(ProgressEvent("host_done", stage, step=result.step, result=result))
        return result

    def _attempt(
        self, host: Host, step: Step, work: str | tuple[str, str], sink: OutputSink, started: float
    ) -> _Attempt:
        """Open (or reuse) the host's session and run `work` (a command, or an upload's
        source and destination); never raises."""
        outcome: CommandOutcome | None = None
        error: str | None = None
        opened = started
        with self._lock:
            reused = host.name in self._sessions
        try:
            session = self._session(host)
            opened = time.monotonic()
            if isinstance(work, tuple):
                outcome = _put(session, *work, host, sink)
            else:
                outcome = session.run(work, timeout=step.timeout, env=self.env, on_output=sink)
        except HostUnreachable as exc:
            # The message names the host ("app3: connection refused"); HostResult adds the name.
            error = str(exc).removeprefix(f"{host.name}: ")
            opened = time.monotonic()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        finished = time.monotonic()
        # Connection set-up (opening the session, or reconnecting inside `run`) is reported apart
        # from the command's own duration, so the first step of a deploy is not slower on paper.
        reconnect = outcome.connect if outcome is not None else 0.0
        connect = (0.0 if reused else opened - started) + reconnect
        duration = max(0.0, finished - opened - reconnect)
        return _Attempt(outcome, error, connect, duration)


@dataclass(frozen=True)
class _Attempt:
    """What running a command on a host came to: its outcome, or why it never ran, and the times."""

    outcome: CommandOutcome | None
    error: str | None
    connect: float
    duration: float


def _put(session: HostSession, source: str, destination: str, host: Host, sink: OutputSink) -> CommandOutcome:
    """Upload one file on the host's session, as a command outcome (an error names what failed)."""
    try:
        size = os.path.getsize(source)
    except OSError as exc:
        return CommandOutcome(None, "", error=f"upload of {source} failed: {exc.strerror or exc}")
    try:
        session.put(source, destination)
    except OSError as exc:  # the SSH session's error already says "upload of ... failed"
        why = str(exc).removeprefix(f"{host.name}: ")
        failed = f"upload of {source} to {destination} failed: "
        return CommandOutcome(None, "", error=why if why.startswith("upload of") else failed + why)
    line = f"uploaded {source} ({size:,} bytes) to {destination}\n"
    sink(line)
    return CommandOutcome(0, line)


def _judge(
    outcome: CommandOutcome | None, error: str | None, duration: float
) -> tuple[HostStatus, int | None, str | None]:
    """The host's status, exit code and error for an outcome (None: the command never ran)."""
    if outcome is None:
        return "error", None, error
    code, error = outcome.exit_code, outcome.error
    if outcome.timed_out:
        return "timed_out", code, error
    if code == 0 and error is None:
        return "ok", code, error
    if code is None:
        return "error", code, error
    return "failed", code, error or f"exit {code} after {duration:.1f}s"
