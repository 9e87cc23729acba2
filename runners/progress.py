"""Progress events: what the pipeline reports as a stage runs (for the store, chat and printer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from runners.base import HostResult, StepResult

EventKind = Literal[
    "stage_started", "batch_started", "step_started", "output", "host_done", "step_done", "stage_done"
]


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
    #: For step events: the step's position in its stage (a resume cursor names it).
    step_index: int | None = None


ProgressSink = Callable[[ProgressEvent], None]
