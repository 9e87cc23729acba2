"""The stage pipeline: run named stages of steps over hosts, batch by batch.

Capistrano-style: a stage (`pre_deploy`, `deploy`, `verify`, `rollback`) is a list of steps;
the strategy splits hosts into batches; within a batch each step runs on the batch's hosts
concurrently (bounded by `max_parallel`). A failure stops the stage after the current step
of the current batch; later batches are reported as skipped. Sessions are opened lazily,
once per host, and reused by every stage until `close()`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from runners.base import Backend, Host, HostResult, HostSession, HostUnreachable, Step, StepResult
from runners.output import TailBuffer
from runners.redact import Redactor
from runners.strategy import Strategy
from runners.template import render

EventKind = Literal["stage_started", "batch_started", "step_started", "output", "host_done", "step_done"]


@dataclass(frozen=True)
class ProgressEvent:
    """A progress notification from the pipeline (for the store and chat)."""

    kind: EventKind
    stage: str
    step: str | None = None
    batch: int | None = None
    hosts: tuple[str, ...] = ()
    text: str | None = None
    result: HostResult | StepResult | None = None


@dataclass
class StageResult:
    """Every step result of one stage; `failed_step` names the step that stopped it."""

    stage: str
    steps: list[StepResult] = field(default_factory=list)
    failed_step: StepResult | None = None
    aborted: bool = False
    completed_batches: int = 0

    @property
    def ok(self) -> bool:
        """True when every step succeeded and the stage was not aborted."""
        return self.failed_step is None and not self.aborted


ProgressSink = Callable[[ProgressEvent], None]


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
        self.redact = redactor or Redactor()
        self.on_progress = on_progress
        self.stop = stop or threading.Event()
        # `stop` ends the rollout after the current batch (abort); `halt` after the current
        # step (shutdown), so the record says exactly where to resume.
        self.halt = halt or threading.Event()
        self._sessions: dict[str, HostSession] = {}
        self._session_errors: dict[str, str] = {}
        self._lock = threading.Lock()

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
        """Close every session and the backend."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            with contextlib.suppress(Exception):
                session.close()
        self.backend.close()

    # -- running --------------------------------------------------------------------------
    def render(self, step: Step, host: Host) -> str:
        """The exact command `step` runs on `host` (templates substituted, shell-quoted)."""
        command = render(step.command, {**self.variables, "host": host.name})
        if step.sudo:
            from shlex import quote

            command = f"sudo -n sh -c {quote(command)}"
        return command

    def run_stage(self, stage: str, steps: Sequence[Step], *, start_batch: int = 0) -> StageResult:
        """Run `steps` batch by batch; stop after the batch in which a step fails."""
        result = StageResult(stage=stage)
        self.on_progress(ProgressEvent("stage_started", stage))
        batches = self.strategy.batches(self.hosts)
        once_done: set[str] = set()
        for index, batch in enumerate(batches):
            if index < start_batch:
                continue
            if self.stop.is_set():
                result.aborted = True
                break
            if index > start_batch and self.strategy.pause and self.stop.wait(self.strategy.pause):
                result.aborted = True
                break
            self.on_progress(
                ProgressEvent("batch_started", stage, batch=index, hosts=tuple(h.name for h in batch))
            )
            for step in steps:
                if self.halt.is_set():
                    result.aborted = True
                    break
                targets = self._targets(step, batch, once_done)
                if not targets:
                    continue
                step_result = self.run_step(stage, step, targets, batch_index=index)
                result.steps.append(step_result)
                if not step_result.ok:
                    result.failed_step = step_result
                    break
            if result.failed_step is not None or result.aborted:
                break
            result.completed_batches = index + 1
        return result

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

    def run_step(self, stage: str, step: Step, hosts: Sequence[Host], *, batch_index: int = 0) -> StepResult:
        """Run one step on `hosts` concurrently (at most `max_parallel`), results in host order."""
        self.on_progress(
            ProgressEvent(
                "step_started", stage, step=step.name, batch=batch_index, hosts=tuple(h.name for h in hosts)
            )
        )
        workers = max(1, min(self.strategy.max_parallel, len(hosts)))
        if workers == 1:
            results = [self._run_on_host(stage, step, h) for h in hosts]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gonogo-host") as pool:
                results = list(pool.map(lambda h: self._run_on_host(stage, step, h), hosts))
        step_result = StepResult(step=step.name, hosts=tuple(results))
        self.on_progress(ProgressEvent("step_done", stage, step=step.name, result=step_result))
        return step_result

    def _run_on_host(self, stage: str, step: Step, host: Host) -> HostResult:
        started = time.monotonic()
        try:
            command = self.render(step, host)
        except ValueError as exc:
            result = HostResult(host.name, step.name, "error", error=str(exc))
            self.on_progress(ProgressEvent("host_done", stage, step=step.name, result=result))
            return result
        tail = TailBuffer()

        def sink(chunk: str) -> None:
            tail.write(chunk)
            self.on_progress(
                ProgressEvent("output", stage, step=step.name, hosts=(host.name,), text=self.redact(chunk))
            )

        try:
            session = self._session(host)
            outcome = session.run(command, timeout=step.timeout, env=self.env, on_output=sink)
        except HostUnreachable as exc:
            elapsed = time.monotonic() - started
            result = HostResult(host.name, step.name, "error", duration=elapsed, error=self.redact(str(exc)))
        except Exception as exc:
            result = HostResult(
                host.name,
                step.name,
                "error",
                duration=time.monotonic() - started,
                error=self.redact(f"{type(exc).__name__}: {exc}"),
            )
        else:
            duration = time.monotonic() - started
            output = self.redact(outcome.output or tail.text())
            if outcome.timed_out:
                status: str = "timed_out"
            elif outcome.exit_code == 0 and outcome.error is None:
                status = "ok"
            elif outcome.exit_code is None:
                status = "error"
            else:
                status = "failed"
            error = outcome.error
            if status == "failed" and error is None:
                error = f"exit {outcome.exit_code} after {duration:.1f}s"
            result = HostResult(
                host.name,
                step.name,
                status,  # type: ignore[arg-type]
                exit_code=outcome.exit_code,
                duration=duration,
                output=output,
                error=self.redact(error) if error else None,
            )
        self.on_progress(ProgressEvent("host_done", stage, step=step.name, result=result))
        return result
