"""Counting hosts per stage from the pipeline's events, and the record that keeps the counts."""

from __future__ import annotations

from bot.domain.details import Details
from bot.domain.tally import StageTally, clock_time
from bot.engine.tally import StageCounter
from runners.base import HostResult
from runners.pipeline import ProgressEvent


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ev(kind: str, *hosts: str, **kw: object) -> ProgressEvent:
    return ProgressEvent(kind, "deploy", hosts=hosts, **kw)  # type: ignore[arg-type]


def done(host: str, status: str = "ok") -> ProgressEvent:
    return ProgressEvent("host_done", "deploy", step="s", result=HostResult(host, "s", status))  # type: ignore[arg-type]


def test_hosts_move_from_running_to_done_batch_by_batch_and_a_failure_stops_the_count() -> None:
    ticks = Ticks()
    counter = StageCounter(lambda: "2026-12-01T10:00:00+00:00", ticks)
    assert counter.observe(ev("stage_started", "a", "b", "c", "d", batches=2, batch=0))
    counter.observe(ev("batch_started", "a", "b", batch=0))
    counter.observe(ev("step_started", "a", "b", step="s"))
    counter.observe(ev("host_started", "a"))
    ticks.now = 101.5
    (t,) = counter.tallies()
    assert (t.done, t.running, t.batch, t.step_hosts, t.elapsed) == (0, 1, 1, 2, 1.5)
    assert t.line() == "🚀 deploy: 0/4 hosts done · 0 failed · 1 running · 0:01 · batch 1/2 · s 0/2"
    counter.observe(done("a"))
    counter.observe(ev("host_started", "b"))
    counter.observe(done("b"))
    assert counter.observe(ev("batch_done", "a", "b", batch=0))  # a milestone: saved at once
    counter.observe(ev("batch_started", "c", "d", batch=1))
    counter.observe(ev("host_started", "c"))
    counter.observe(ev("host_started", "d"))
    counter.observe(done("c", "failed"))
    (t,) = counter.tallies()
    assert (t.done, t.failed, t.running) == (2, 1, 1)
    ticks.now = 163.0
    assert counter.observe(ev("stage_done"))
    (t,) = counter.tallies()
    assert (t.done, t.failed, t.stopped, t.not_started, t.finished) == (2, 1, 1, 0, True)
    assert t.line() == "✗ deploy: 2/4 hosts done · 1 failed · 1 stopped · 1:03"
    assert not counter.observe(ev("output", "a", text="x"))


def test_the_counts_are_stored_with_the_details() -> None:
    tally = StageTally("deploy", 50, done=12, failed=1, running=10, batch=2, batches=4, elapsed=42.0)
    details = Details(stages=(tally, StageTally("verify", 50, finished=True)))
    again = Details.from_json(details.to_json())
    assert again.stages == details.stages
    assert Details.from_json({"stages": [{"stage": "x"}, "junk"]}).stages == ()  # old or bad rows load
    assert [clock_time(s) for s in (0, 42.9, 605, 3723)] == ["0:00", "0:42", "10:05", "1:02:03"]
