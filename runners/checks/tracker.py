"""`FailureTracker`: a pure, serialisable account of each check's failures across rounds.

It says when a check reached its failure limit (consecutive failures, or all failures in the
window: Argo's `failureLimit`), when one reached its inconclusive limit (Argo's
`inconclusiveLimit`: a human decides), which checks changed state this round, and it keeps the
sample each rate check needs from the round before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runners.checks.result import CheckResult


@dataclass(frozen=True)
class Limit:
    """How one check is judged across rounds.

    `failures` failed rounds fail it (`None`: the tracker's default limit); `consecutive`
    counts only an unbroken run of failures (a pass starts over), else every failure in the
    window counts. `inconclusive` inconclusive rounds (in all) make it ask a human.
    """

    failures: int | None = None
    consecutive: bool = True
    inconclusive: int = 1


@dataclass(frozen=True)
class Transition:
    """A check that changed state this round: ok→failing (`failing=True`) or back."""

    name: str
    failing: bool
    consecutive_failures: int
    result: CheckResult


@dataclass(frozen=True)
class Verdict:
    """What one round means.

    `failed` is True when any check reached its failure limit (`failed_checks`);
    `newly_failed_checks` are those that reached it this very round. `inconclusive_checks`
    reached their inconclusive limit (and did not fail). `failing` are the checks failing now
    (below their limit or not). `transitions` lists only state changes, for chat to post.
    """

    failed: bool
    failed_checks: tuple[str, ...]
    newly_failed_checks: tuple[str, ...]
    transitions: tuple[Transition, ...]
    consecutive: Mapping[str, int]
    inconclusive_checks: tuple[str, ...] = ()
    failing: tuple[str, ...] = ()

    @property
    def newly_failing(self) -> tuple[Transition, ...]:
        """Transitions ok→failing."""
        return tuple(t for t in self.transitions if t.failing)

    @property
    def recovered(self) -> tuple[Transition, ...]:
        """Transitions failing→ok."""
        return tuple(t for t in self.transitions if not t.failing)


_TRACKER_VERSION = 1


def _counts(data: Mapping[str, Any], key: str) -> dict[str, int]:
    counts = data.get(key, {})
    if not isinstance(counts, Mapping):
        raise ValueError(f"{key} must be a mapping of check name to count")
    clean: dict[str, int] = {}
    for name, count in counts.items():
        if not isinstance(name, str) or isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"bad {key} count for {name!r}")
        clean[name] = count
    return clean


def _samples(data: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    raw = data.get("samples", {})
    if not isinstance(raw, Mapping):
        raise ValueError("samples must be a mapping of check name to sample")
    return {
        str(name): {str(k): float(v) for k, v in sample.items() if isinstance(v, int | float)}
        for name, sample in raw.items()
        if isinstance(sample, Mapping)
    }


@dataclass
class FailureTracker:
    """Failure counts per check name, across rounds. Pure: no I/O, no clock.

    A check fails (Verdict.failed) when its failures reach its limit (`limits[name]`, else
    `failure_limit` consecutive failures). A check seen for the first time counts as
    previously ok: its first failure is a transition, its first success is not. Checks absent
    from a round keep their counts. An inconclusive result neither fails nor passes: it only
    counts towards the inconclusive limit. Store it between rounds with `to_dict` /
    `from_dict` (limits come from the configuration, not the stored state).
    """

    failure_limit: int = 3
    consecutive: dict[str, int] = field(default_factory=dict)
    limits: Mapping[str, Limit] = field(default_factory=dict)
    #: Failed rounds per check in the whole window (for `consecutive=False` limits).
    failures: dict[str, int] = field(default_factory=dict)
    inconclusive: dict[str, int] = field(default_factory=dict)
    #: The last sample of each rate check, for the next round.
    samples: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.failure_limit, bool) or not isinstance(self.failure_limit, int):
            raise ValueError("failure_limit must be an integer")
        if self.failure_limit < 1:
            raise ValueError("failure_limit must be at least 1")

    def _limit(self, name: str) -> Limit:
        return self.limits.get(name) or Limit()

    def _count(self, name: str) -> int:
        """The failures that count against `name`'s limit."""
        limit = self._limit(name)
        return self.consecutive.get(name, 0) if limit.consecutive else self.failures.get(name, 0)

    def _reached(self, name: str) -> bool:
        limit = self._limit(name)
        return self._count(name) >= (limit.failures or self.failure_limit)

    def record(self, results: Iterable[CheckResult]) -> Verdict:
        """Fold one round of results in and return the verdict for that round.

        Several results with the same name in one round count as one observation, failing
        if any of them failed (inconclusive if none failed and one was inconclusive).
        """
        by_name: dict[str, list[CheckResult]] = {}
        for result in results:
            by_name.setdefault(result.name, []).append(result)
            if result.sample is not None:
                self.samples[result.name] = dict(result.sample)
        transitions: list[Transition] = []
        newly_failed: list[str] = []
        for name, group in by_name.items():
            failing = [r for r in group if not r.ok and not r.inconclusive]
            before = self.consecutive.get(name, 0)
            if failing:
                reached_before = self._reached(name)
                self.consecutive[name] = before + 1
                self.failures[name] = self.failures.get(name, 0) + 1
                if before == 0:
                    transitions.append(Transition(name, True, before + 1, failing[0]))
                if self._reached(name) and not reached_before:
                    newly_failed.append(name)
            elif any(r.inconclusive for r in group):
                self.inconclusive[name] = self.inconclusive.get(name, 0) + 1
            else:
                self.consecutive[name] = 0
                if before > 0:
                    transitions.append(Transition(name, False, before, group[0]))
        failed_checks = self.failed_checks()
        return Verdict(
            failed=bool(failed_checks),
            failed_checks=failed_checks,
            newly_failed_checks=tuple(newly_failed),
            transitions=tuple(transitions),
            consecutive=dict(self.consecutive),
            inconclusive_checks=self.inconclusive_checks(),
            failing=tuple(sorted(n for n, c in self.consecutive.items() if c > 0)),
        )

    def standing(self, name: str) -> tuple[int, int]:
        """The failures that count against `name` now, and its limit."""
        return self._count(name), self._limit(name).failures or self.failure_limit

    def failed_checks(self) -> tuple[str, ...]:
        """The checks at or over their failure limit, sorted."""
        names = set(self.consecutive) | set(self.failures)
        return tuple(sorted(n for n in names if self._reached(n)))

    def inconclusive_checks(self) -> tuple[str, ...]:
        """The checks at or over their inconclusive limit (and not failed), sorted."""
        failed = set(self.failed_checks())
        return tuple(
            sorted(
                n
                for n, c in self.inconclusive.items()
                if c >= self._limit(n).inconclusive and n not in failed
            )
        )

    def reset(self, names: Iterable[str] | None = None) -> None:
        """Forget counts (all, or just `names`), e.g. after a rollback or a new deploy."""
        if names is None:
            self.consecutive.clear()
            self.failures.clear()
            self.inconclusive.clear()
        else:
            for name in names:
                self.consecutive.pop(name, None)
                self.failures.pop(name, None)
                self.inconclusive.pop(name, None)

    def reset_inconclusive(self) -> None:
        """Start the inconclusive counts over (a human said: go on)."""
        self.inconclusive.clear()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        out: dict[str, Any] = {
            "version": _TRACKER_VERSION,
            "failure_limit": self.failure_limit,
            "consecutive": dict(self.consecutive),
        }
        for key, value in (
            ("failures", self.failures),
            ("inconclusive", self.inconclusive),
            ("samples", self.samples),
        ):
            if value:
                out[key] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in value.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], limits: Mapping[str, Limit] | None = None) -> FailureTracker:
        """Rebuild from `to_dict` output (with the configured `limits`); raises ValueError on
        malformed data."""
        if not isinstance(data, Mapping):
            raise ValueError("tracker state must be a mapping")
        if data.get("version", _TRACKER_VERSION) != _TRACKER_VERSION:
            raise ValueError(f"unsupported tracker state version {data.get('version')!r}")
        limit = data.get("failure_limit")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ValueError("failure_limit must be an integer")
        return cls(
            failure_limit=limit,
            consecutive=_counts(data, "consecutive"),
            limits=dict(limits or {}),
            failures=_counts(data, "failures"),
            inconclusive=_counts(data, "inconclusive"),
            samples=_samples(data),
        )
