"""`FailureTracker`: a pure, serialisable counter of consecutive failures per check.

It says when a check reached its failure limit and which checks changed state this round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runners.checks.result import CheckResult


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

    `failed` is True when any check has `failure_limit` or more consecutive failures
    (`failed_checks`); `newly_failed_checks` are those that reached the limit this very
    round. `transitions` lists only state changes, for chat to post.
    """

    failed: bool
    failed_checks: tuple[str, ...]
    newly_failed_checks: tuple[str, ...]
    transitions: tuple[Transition, ...]
    consecutive: Mapping[str, int]

    @property
    def newly_failing(self) -> tuple[Transition, ...]:
        """Transitions ok→failing."""
        return tuple(t for t in self.transitions if t.failing)

    @property
    def recovered(self) -> tuple[Transition, ...]:
        """Transitions failing→ok."""
        return tuple(t for t in self.transitions if not t.failing)


_TRACKER_VERSION = 1


@dataclass
class FailureTracker:
    """Consecutive failure counts per check name, across rounds. Pure: no I/O, no clock.

    Fails (Verdict.failed) when a check's consecutive failures >= `failure_limit`. A check
    seen for the first time counts as previously ok: its first failure is a transition, its
    first success is not. Checks absent from a round keep their count. Store it between rounds
    with `to_dict` / `from_dict`.
    """

    failure_limit: int = 3
    consecutive: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.failure_limit, bool) or not isinstance(self.failure_limit, int):
            raise ValueError("failure_limit must be an integer")
        if self.failure_limit < 1:
            raise ValueError("failure_limit must be at least 1")

    def record(self, results: Iterable[CheckResult]) -> Verdict:
        """Fold one round of results in and return the verdict for that round.

        Several results with the same name in one round count as one observation, failing
        if any of them failed.
        """
        by_name: dict[str, list[CheckResult]] = {}
        for result in results:
            by_name.setdefault(result.name, []).append(result)
        transitions: list[Transition] = []
        newly_failed: list[str] = []
        for name, group in by_name.items():
            failing = [r for r in group if not r.ok]
            before = self.consecutive.get(name, 0)
            if failing:
                after = before + 1
                self.consecutive[name] = after
                if before == 0:
                    transitions.append(Transition(name, True, after, failing[0]))
                if after == self.failure_limit:
                    newly_failed.append(name)
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
        )

    def failed_checks(self) -> tuple[str, ...]:
        """The checks at or over `failure_limit` consecutive failures, sorted."""
        return tuple(sorted(n for n, c in self.consecutive.items() if c >= self.failure_limit))

    def reset(self, names: Iterable[str] | None = None) -> None:
        """Forget counts (all, or just `names`), e.g. after a rollback or a new deploy."""
        if names is None:
            self.consecutive.clear()
        else:
            for name in names:
                self.consecutive.pop(name, None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "version": _TRACKER_VERSION,
            "failure_limit": self.failure_limit,
            "consecutive": dict(self.consecutive),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailureTracker:
        """Rebuild from `to_dict` output; raises ValueError on malformed data."""
        if not isinstance(data, Mapping):
            raise ValueError("tracker state must be a mapping")
        if data.get("version", _TRACKER_VERSION) != _TRACKER_VERSION:
            raise ValueError(f"unsupported tracker state version {data.get('version')!r}")
        limit = data.get("failure_limit")
        counts = data.get("consecutive", {})
        if not isinstance(counts, Mapping):
            raise ValueError("consecutive must be a mapping of check name to count")
        clean: dict[str, int] = {}
        for name, count in counts.items():
            if (
                not isinstance(name, str)
                or isinstance(count, bool)
                or not isinstance(count, int)
                or count < 0
            ):
                raise ValueError(f"bad consecutive count for {name!r}")
            clean[name] = count
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ValueError("failure_limit must be an integer")
        return cls(failure_limit=limit, consecutive=clean)
