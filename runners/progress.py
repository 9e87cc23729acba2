"""Progress events: what the pipeline reports as a stage runs (for the store, chat and printer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from runners.base import HostResult, StepResult

EventKind = Literal[
    "stage_started",  # hosts: every host of the stage in batch order; batches: how many; batch: the first
    "batch_started",
    "step_started",
    "host_started",  # a host's command starts (hosts: that one); at most max_parallel run at once
    "output",
    "host_done",
    "step_done",
    "batch_done",  # every step of the batch finished on its hosts (not sent when the batch stopped)
    "stage_done",
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
    #: For `stage_started`: how many batches the stage has.
    batches: int | None = None


ProgressSink = Callable[[ProgressEvent], None]
