"""Counting a run's hosts per stage from the pipeline's events: the record's `StageTally`s.

A host of a stage is pending until its batch starts, running while a command runs on it, done
once its batch finished (`batch_done`), failed once a step failed on it; when the stage stops,
the hosts of its last batch that were neither are *stopped*, and the later ones *not started*.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bot.domain.tally import StageTally
from runners.base import HostResult
from runners.pipeline import ProgressEvent


@dataclass
class _Stage:
    tally: StageTally
    began: float
    status: dict[str, str] = field(default_factory=dict)  # host -> batch|running|done|failed
    batch: tuple[str, ...] = ()


class StageCounter:
    """Turns progress events into one `StageTally` per stage. Thread-safe (hosts report at once)."""

    def __init__(self, now_iso: Callable[[], str], clock: Callable[[], float] = time.monotonic) -> None:
        self._now_iso = now_iso
        self._clock = clock
        self._lock = threading.Lock()
        self._stages: dict[str, _Stage] = {}

    def observe(self, event: ProgressEvent) -> bool:
        """Count `event`; True when a stage began, a batch or stage ended (worth saving at once)."""
        with self._lock:
            if event.kind == "stage_started" and event.hosts:  # (a compensation names no hosts)
                self._start(event)
                return True
            stage = self._stages.get(event.stage)
            if stage is None:
                return False
            return self._count(stage, event)

    def tallies(self) -> tuple[StageTally, ...]:
        """Every stage so far, in the order they started, with their elapsed time now."""
        with self._lock:
            now = self._clock()
            return tuple(
                s.tally if s.tally.finished else replace(s.tally, elapsed=round(now - s.began, 1))
                for s in self._stages.values()
            )

    def _start(self, event: ProgressEvent) -> None:
        self._stages.pop(event.stage, None)  # a resumed stage starts its count again
        self._stages[event.stage] = _Stage(
            StageTally(
                stage=event.stage,
                hosts=len(event.hosts),
                batches=event.batches or 1,
                started_at=self._now_iso(),
            ),
            self._clock(),
        )

    def _count(self, stage: _Stage, event: ProgressEvent) -> bool:
        status, tally = stage.status, stage.tally
        milestone = False
        if event.kind == "batch_started":
            stage.batch = event.hosts
            status.update(dict.fromkeys(event.hosts, "batch"))
            tally = replace(tally, batch=(event.batch or 0) + 1)
        elif event.kind == "step_started":
            tally = replace(tally, step=event.step, step_done=0, step_hosts=len(event.hosts))
        elif event.kind == "host_started" and event.hosts and status.get(event.hosts[0]) != "failed":
            status[event.hosts[0]] = "running"
        elif event.kind == "host_done" and isinstance(event.result, HostResult):
            host = event.result.host
            if not event.result.ok:
                status[host] = "failed"
            elif status.get(host) == "running":
                status[host] = "batch"
            tally = replace(tally, step_done=tally.step_done + 1)
        elif event.kind == "batch_done":
            status.update({h: "done" for h in event.hosts if status.get(h) != "failed"})
            milestone = True
        elif event.kind == "stage_done":
            stopped = sum(1 for s in status.values() if s in ("batch", "running"))
            status.update({h: "stopped" for h, s in status.items() if s in ("batch", "running")})
            tally = replace(
                tally,
                stopped=stopped,
                not_started=len(event.hosts),
                finished=True,
                elapsed=round(self._clock() - stage.began, 1),
            )
            milestone = True
        else:
            return False
        stage.tally = _counted(tally, status)
        return milestone


def _counted(tally: StageTally, status: dict[str, str]) -> StageTally:
    values = list(status.values())
    return replace(
        tally, done=values.count("done"), failed=values.count("failed"), running=values.count("running")
    )


__all__ = ["StageCounter"]
