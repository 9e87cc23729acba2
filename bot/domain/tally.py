"""How a stage of a run is going over its hosts: the per-stage counts a deployment records
(`Details.stages`) and the line the card and the terminal chat show for them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageTally:
    """How one stage of a run is going over its hosts (the card's and the console's progress line).

    A host is *done* once every step of its batch finished on it, *failed* once a step failed
    on it, *running* while a command runs on it; *stopped* hosts were in the batch the stage
    stopped in, *not started* ones in later batches. `elapsed` is seconds since the stage
    started, as of the last update (`started_at`, an ISO instant, lets a live display count on).
    """

    stage: str
    hosts: int
    done: int = 0
    failed: int = 0
    running: int = 0
    stopped: int = 0
    not_started: int = 0
    batch: int = 0  # 1-based; 0 before the first batch starts
    batches: int = 1
    step: str | None = None
    step_done: int = 0
    step_hosts: int = 0
    started_at: str | None = None
    elapsed: float = 0.0
    finished: bool = False

    def line(self, elapsed: float | None = None, *, brief: bool = False) -> str:
        """`🚀 deploy: 12/50 hosts done · 1 failed · 10 running · 0:42 · batch 2/4 · restart 5/10`
        (what matters first: a narrow terminal cuts the end); `brief` leaves out what changes from
        one host to the next (running, batch and step)."""
        seconds = self.elapsed if elapsed is None else elapsed
        if self.finished:
            mark = "✗" if self.failed or self.stopped or self.not_started else "✓"
            parts = [f"{mark} {self.stage}: {self.done}/{self.hosts} hosts done"]
            parts += [f"{n} {what}" for n, what in self._endings() if n]
        else:
            parts = [f"🚀 {self.stage}: {self.done}/{self.hosts} hosts done", f"{self.failed} failed"]
            if not brief:
                parts.append(f"{self.running} running")
            parts.append(clock_time(seconds))
            if self.batches > 1 and not brief:
                parts.append(f"batch {max(1, self.batch)}/{self.batches}")
            if self.step and self.step_hosts > 1 and not brief:
                parts.append(f"{self.step} {self.step_done}/{self.step_hosts}")
            return " · ".join(parts)
        parts.append(clock_time(seconds))
        return " · ".join(parts)

    def _endings(self) -> tuple[tuple[int, str], ...]:
        return ((self.failed, "failed"), (self.stopped, "stopped"), (self.not_started, "not started"))


def clock_time(seconds: float) -> str:
    """Elapsed time as a stopwatch shows it: `0:42`, `12:05`, `1:02:03`."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


__all__ = ["StageTally", "clock_time"]
