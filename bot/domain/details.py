"""What a deployment records beside its state, as typed records: `Deployment.details`.

Each part of the engine owns a few fields: the request (changelog, warnings, safeties set aside),
the run (resume cursor, finished stages, live output, what each step did where, the artifacts
steps published, the gate it waits at), monitoring (round, tracker, card lines), alerts, Hold,
and the sign-off. They are stored as one JSON object (the `details` column); the
keys are the field names, defaults are left out, and unknown keys in old rows are ignored, so
rows written before a field existed still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, TypeVar

from bot.domain.tally import StageTally

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
class StepRun:
    """Where one step of a stage ran: the hosts it finished on, batch by batch, and the hosts it
    runs on right now, so a compensation knows exactly what to undo, also after an interrupted
    run. One record per step (not per batch), so a deploy host by host keeps a small record.

    `running` is set while the step runs: a run cut off then (its process died) leaves hosts
    whose outcome nobody knows (`unknown()`), which a compensation does not undo blindly.
    """

    stage: str
    step: str
    index: int
    #: Where the command finished (exit 0), in order, and the batch of each (a failed `verify`
    #: does not change that). Two flat lists: this record is read back with every write of a run.
    finished: tuple[str, ...] = ()
    finished_batches: tuple[int, ...] = ()
    #: The batch and hosts it started on and has not reported back from yet.
    running: tuple[str, ...] = ()
    running_batch: int = 0
    verify_error: str | None = None

    def unknown(self) -> tuple[str, ...]:
        """Hosts the step started on whose outcome was never recorded."""
        return self.running

    def hosts(self) -> tuple[str, ...]:
        """Every host it finished on, in order."""
        return self.finished

    def batches(self) -> dict[int, tuple[str, ...]]:
        """The hosts it finished on, by batch."""
        out: dict[int, tuple[str, ...]] = {}
        for batch, host in zip(self.finished_batches, self.finished, strict=False):
            out[batch] = (*out.get(batch, ()), host)
        return out

    def finishing(self, batch: int, hosts: tuple[str, ...], unknown: tuple[str, ...] = ()) -> StepRun:
        """This record once the step finished on `hosts` in `batch`; nothing runs any more, and
        on the `unknown` hosts its outcome is still not known (a resume that did not rerun it)."""
        new = [h for h in hosts if h not in self.finished]
        return replace(
            self,
            finished=(*self.finished, *new),
            finished_batches=(*self.finished_batches, *([batch] * len(new))),
            running=tuple(h for h in unknown if h in self.running),
        )

    def to_json(self) -> dict[str, Any]:
        """This record as stored (defaults left out), written by hand: it is rewritten with
        every bookkeeping write of a run."""
        out: dict[str, Any] = {"stage": self.stage, "step": self.step, "index": self.index}
        if self.finished:
            out["finished"] = list(self.finished)
            out["finished_batches"] = list(self.finished_batches)
        if self.running:
            out["running"] = list(self.running)
            out["running_batch"] = self.running_batch
        if self.verify_error is not None:
            out["verify_error"] = self.verify_error
        return out

    @classmethod
    def from_json(cls, raw: Any) -> StepRun | None:
        """A stored record, or None when it is not one (an old or damaged row)."""
        if not isinstance(raw, Mapping):
            return None
        try:
            return cls(
                stage=str(raw["stage"]),
                step=str(raw["step"]),
                index=int(raw["index"]),
                finished=tuple(raw.get("finished", ())),
                finished_batches=tuple(raw.get("finished_batches", ())),
                running=tuple(raw.get("running", ())),
                running_batch=int(raw.get("running_batch", 0)),
                verify_error=raw.get("verify_error"),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Gate:
    """A stage gate the run waits at: the question, and the Go's given so far."""

    stage: str
    question: str
    approvals: tuple[str, ...] = ()
    at: str | None = None


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
class CiStatus:
    """The CI gate of a deploy: the required contexts of its sha as the code host last said.

    `state` is "passed", "pending", "failing" or "unknown" (could not check: `error` says why);
    `contexts` holds one mapping per context shown (`name`, `state`, `url`).
    """

    state: str
    summary: str
    checked_at: str
    contexts: tuple[Mapping[str, str], ...] = ()
    error: str | None = None
    checks: int = 0


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
    #: What each step did where, in the order the steps ran.
    ran: tuple[StepRun, ...] = ()
    #: What steps published (`::gonogo artifact NAME=VALUE`): name → host → value.
    artifacts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: The gate the run waits at, and the stages whose gate was passed.
    gate: Gate | None = None
    gates_passed: tuple[str, ...] = ()
    #: A rollback after an irreversible step: what a human chose for it ("undo" or "restore").
    recovery: str | None = None
    #: Steps (journal names) a human allowed to run again although their hosts' journals are gone.
    rerun: tuple[str, ...] = ()
    #: A rollback's compensation: what it undoes and what it skips (and why), as the card says.
    undo_notes: tuple[str, ...] = ()
    # monitoring
    monitor_round: int = 0
    monitor_rounds: int = 0
    #: The failure tracker's own serialised state (`runners.checks.FailureTracker.to_dict`).
    tracker: Mapping[str, Any] | None = None
    card_lines: tuple[str, ...] = ()
    #: The values passing checks captured (`{capture.NAME}` in later checks and steps).
    captures: Mapping[str, Any] = field(default_factory=dict)
    #: The one alert of the incident under way (failing checks), updated in place as it moves.
    incident: Alert | None = None
    #: Why the monitoring window holds for a human (an inconclusive check), while it does.
    paused: str | None = None
    # failures
    alerts: tuple[Alert, ...] = ()
    #: Who held the automatic rollback.
    hold: str | None = None
    # the sign-off
    signoff: Signoff = field(default_factory=Signoff)
    # integrations: the CI gate, and the code host's deployment this one is mirrored to
    ci: CiStatus | None = None
    codehost_id: str | None = None

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


_NESTED: dict[str, type] = {
    "incident": Alert,
    "cursor": Cursor,
    "live": Live,
    "signoff": Signoff,
    "rollback": RollbackClaim,
    "reopened": Reopened,
    "gate": Gate,
    "ci": CiStatus,
}
#: Fields holding a list of records.
_LISTS: dict[str, type] = {"alerts": Alert, "stages": StageTally}


def _default(f: Field[Any]) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _to_json(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if value == _default(f):
            continue
        if f.name == "ran":
            out[f.name] = [r.to_json() for r in value]
        elif f.name in _LISTS:
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
        if f.name == "ran" and isinstance(value, list):
            values[f.name] = tuple(r for r in map(StepRun.from_json, value) if r is not None)
        elif f.name in _LISTS and isinstance(value, list):
            kind = _LISTS[f.name]
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
    "CiStatus",
    "Cursor",
    "Details",
    "Gate",
    "Live",
    "Reopened",
    "RollbackClaim",
    "Signoff",
    "StepRun",
]
