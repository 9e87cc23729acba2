"""What running a stage comes to: `StageResult`, the `Planned` steps of a compensation, and how
one command's outcome is judged (`judge`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from runners.base import (
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
from runners.running import RunningSteps
from runners.upload import put_file


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


@dataclass(frozen=True)
class Planned:
    """One step of a planned stage (a compensation): it runs on exactly these hosts, with these
    variables over the pipeline's (an undo sees the variables of the deployment it undoes)."""

    step: Step
    hosts: tuple[Host, ...]
    variables: Mapping[str, object] = field(default_factory=dict)


#: What a host runs for a step: a command line, or an upload's (source, destination).
Work = str | tuple[str, str]


@dataclass(frozen=True)
class StepCall:
    """One step about to run on one host: the `work` (a rendered command, or an upload's source
    and destination), its environment, where output goes, when it started, its journal name."""

    host: Host
    step: Step
    work: Work
    env: Mapping[str, str]
    sink: OutputSink
    started: float
    key: str


@dataclass(frozen=True)
class Attempt:
    """What running a command on a host came to: its outcome, or why it never ran, and the times."""

    outcome: CommandOutcome | None
    error: str | None
    connect: float
    duration: float


def judge(
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


def missing_artifacts(step: Step, published: tuple[tuple[str, str], ...]) -> list[str]:
    """The artifacts `step` declares that its output did not publish."""
    names = {name for name, _ in published}
    return [name for name in step.artifacts if name not in names]


def step_env(step: Step, env: Mapping[str, str], step_secrets: Mapping[str, str]) -> dict[str, str]:
    """The environment of `step`'s command: the environment's secrets and the step's own;
    ValueError naming a secret the step needs and gonogo was not given."""
    out = dict(env)
    for name in step.secrets:
        if name not in step_secrets:
            raise ValueError(f"secret {name} is not set in gonogo's environment")
        out[name] = step_secrets[name]
    return out


def attempt(
    session_for: Callable[[], HostSession], reused: bool, call: StepCall, running: RunningSteps
) -> Attempt:
    """Open (or reuse: `reused`) the host's session and run the call's work (a command under its
    journal name, listed in `running` meanwhile; or an upload); never raises."""
    host, step, work, started = call.host, call.step, call.work, call.started
    outcome: CommandOutcome | None = None
    error: str | None = None
    opened = started
    try:
        session = session_for()
        opened = time.monotonic()
        if isinstance(work, tuple):
            outcome = put_file(session, *work, host, call.sink)
        else:
            if refused := running.refusal(session, host, call.key):
                return Attempt(None, refused, 0.0 if reused else time.monotonic() - started, 0.0)
            running.add(host.name, session, call.key)
            try:
                outcome = session.run(
                    work, timeout=step.timeout, env=call.env, on_output=call.sink, journal=call.key
                )
            finally:
                running.discard(host.name)
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
    return Attempt(outcome, error, connect, duration)
