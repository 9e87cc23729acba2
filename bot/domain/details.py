"""What a deployment records beside its state, as typed records: `Deployment.details`.

Each part of the engine owns a few fields: the request (changelog, warnings, safeties set aside),
the run (resume cursor, finished stages, live output), monitoring (round, tracker, card lines),
alerts, Hold, and the sign-off. They are stored as one JSON object (the `details` column); the
keys are the field names, defaults are left out, and unknown keys in old rows are ignored, so
rows written before a field existed still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Alert:
    """An alert posted with buttons, remembered so it can be settled once someone acts."""

    channel: str
    ts: str
    text: str
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cursor:
    """Where a resumed run starts: the stage, the batch within it, and the step within that."""

    stage: str | None = None
    batch: int = 0
    step: int = 0


@dataclass(frozen=True)
class Live:
    """The step running now and the last output line of each host on it."""

    step: str | None = None
    hosts: Mapping[str, str] = field(default_factory=dict)


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


@dataclass(frozen=True)
class RollbackClaim:
    """A sign-off ROLL BACK on its way: who asked, when, for which target, and its rollback."""

    by: str
    at: str
    target: int | None = None
    id: int | None = None


@dataclass(frozen=True)
class Reopened:
    """Why a sign-off opened again (its rollback did not happen), and when."""

    why: str
    at: str


@dataclass(frozen=True)
class Signoff:
    """The sign-off of a live deployment: its card, ticks, a pending ROLL BACK, the decision."""

    ticked: tuple[bool, ...] = ()
    channel: str | None = None
    ts: str | None = None
    #: A card being posted right now (ISO instant): a second request waits for it.
    posting: str | None = None
    requested_by: str | None = None
    requested_at: str | None = None
    decision: str | None = None  # "KEEP" or "ROLL BACK"
    by: str | None = None
    at: str | None = None
    rollback: RollbackClaim | None = None
    rollback_id: int | None = None
    done_at: str | None = None
    reopened: Reopened | None = None

    def ticks(self, count: int) -> tuple[bool, ...]:
        """The ticks fitted to a checklist of `count` items as configured now (missing: unticked)."""
        return (self.ticked + (False,) * count)[:count]


@dataclass(frozen=True)
class Details:
    """Everything a deployment records beside its state."""

    # the request
    changelog: tuple[str, ...] = ()
    changelog_note: str | None = None
    warnings: tuple[str, ...] = ()
    ignored_safeties: tuple[str, ...] = ()
    #: A rollback the bot started by itself.
    automatic: bool = False
    # the run
    done_stages: tuple[str, ...] = ()
    cursor: Cursor | None = None
    live: Live | None = None
    #: Each stage of the latest run so far, in order: hosts done / failed / running.
    stages: tuple[StageTally, ...] = ()
    # monitoring
    monitor_round: int = 0
    monitor_rounds: int = 0
    #: The failure tracker's own serialised state (`runners.checks.FailureTracker.to_dict`).
    tracker: Mapping[str, Any] | None = None
    card_lines: tuple[str, ...] = ()
    # failures
    alerts: tuple[Alert, ...] = ()
    #: Who held the automatic rollback.
    hold: str | None = None
    # the sign-off
    signoff: Signoff = field(default_factory=Signoff)

    def but(self, **changes: Any) -> Details:
        """A copy with `changes`."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored for these details (defaults left out)."""
        return _to_json(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Details:
        """Details from a stored JSON object (unknown keys ignored, bad values defaulted)."""
        return _from_json(cls, raw or {})


#: Fields that are tuples of records.
_RECORD_LISTS: dict[str, type] = {"alerts": Alert, "stages": StageTally}
_NESTED: dict[str, type] = {
    "cursor": Cursor,
    "live": Live,
    "signoff": Signoff,
    "rollback": RollbackClaim,
    "reopened": Reopened,
}


def _default(f: Field[Any]) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _to_json(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if value == _default(f):
            continue
        if f.name in _RECORD_LISTS:
            out[f.name] = [_to_json(a) for a in value]
        elif f.name in _NESTED:
            out[f.name] = _to_json(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        elif isinstance(value, Mapping):
            out[f.name] = dict(value)
        else:
            out[f.name] = value
    return out


def _from_json(cls: type[T], raw: Mapping[str, Any]) -> T:
    """`cls` from `raw`; raises TypeError when a required field is missing."""
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = raw.get(f.name)
        if value is None:
            continue
        if f.name in _RECORD_LISTS and isinstance(value, list):
            kind = _RECORD_LISTS[f.name]
            values[f.name] = tuple(a for a in (_optional(kind, v) for v in value) if a is not None)
        elif f.name in _NESTED:
            nested = _optional(_NESTED[f.name], value)
            if nested is not None:
                values[f.name] = nested
        elif isinstance(value, list):
            values[f.name] = tuple(value)
        else:
            values[f.name] = value
    return cls(**values)


def _optional(cls: type[T], raw: Any) -> T | None:
    """`cls` from `raw`, or None when `raw` is empty or not a whole record (an old row)."""
    if not isinstance(raw, Mapping) or not raw:
        return None
    try:
        return _from_json(cls, raw)
    except TypeError:
        return None


__all__ = [
    "Alert",
    "Cursor",
    "Details",
    "Live",
    "Reopened",
    "RollbackClaim",
    "Signoff",
    "StageTally",
    "clock_time",
]
