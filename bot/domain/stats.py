"""The four DORA metrics computed from gonogo's own deployment records.

Pure domain logic: records and `now` come in as arguments, nothing is read or written.

Definitions (over records whose ``requested_at`` is in ``[now - days, now]``):

* a *deploy attempt* is a record of kind ``deploy`` whose outcome is ``success``,
  ``rolled_back`` or ``failed``; ``aborted`` and ``other`` records never reached a result
  and are ignored by every metric;
* *deployments* are successful attempts (``success`` or ``rolled_back``: a deploy that
  succeeded and was later rolled back still shipped);
* *lead time* is ``committed_at -> live_at`` (the moment the release went live, verify
  passed; a monitoring window after it does not count) over deployments having both;
* *change failure rate* is (``failed`` + ``rolled_back``) / attempts;
* *time to restore*: for each failure (``failed`` or ``rolled_back``) with a
  ``finished_at``, the time until the next successful record (a deploy with outcome
  ``success``/``rolled_back``, or a rollback with outcome ``success``) in the same env went
  live, strictly later; failures with no such record are counted as ``unrestored``.

``live_at`` falls back to ``finished_at`` for records that do not carry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bot.domain.durations import format_duration

__all__ = ["Dora", "StatsRecord", "compute_dora"]

Kind = Literal["deploy", "rollback"]
Outcome = Literal["success", "failed", "rolled_back", "aborted", "other"]

_ATTEMPT_OUTCOMES = frozenset({"success", "rolled_back", "failed"})
_SHIPPED_OUTCOMES = frozenset({"success", "rolled_back"})
_FAILURE_OUTCOMES = frozenset({"failed", "rolled_back"})


@dataclass(frozen=True)
class StatsRecord:
    """One deployment or rollback as recorded by gonogo (aware datetimes).

    ``rolled_back`` is a deploy that succeeded but was later rolled back; ``failed`` is a
    deploy that itself failed (rolled back or not). ``committed_at`` is the commit time of
    the deployed sha; ``live_at`` when its release went live.
    """

    id: int
    env: str
    kind: Kind
    outcome: Outcome
    requested_at: datetime
    finished_at: datetime | None
    committed_at: datetime | None
    live_at: datetime | None = None

    @property
    def live(self) -> datetime | None:
        """When the release went live (`finished_at` when that is not recorded)."""
        return self.live_at or self.finished_at


@dataclass(frozen=True)
class Dora:
    """DORA metrics over the last `days` days; None means no data."""

    days: int
    deployments: int
    frequency_per_day: float
    lead_time_median: timedelta | None
    change_failure_rate: float | None
    time_to_restore_median: timedelta | None
    unrestored: int
    change_failures: int = 0
    attempts: int = 0
    restored: int = 0

    def lines(self) -> list[str]:
        """Human-readable summary, one metric per line, with "n/a" where there is no data."""
        day_word = "day" if self.days == 1 else "days"
        lines = [
            f"Deployment frequency: {_format_rate(self.frequency_per_day)}/day "
            f"({self.deployments} in {self.days} {day_word})"
        ]
        lead = "n/a" if self.lead_time_median is None else f"median {format_duration(self.lead_time_median)}"
        lines.append(f"Lead time: {lead}")
        if self.change_failure_rate is None:
            lines.append("Change failure rate: n/a")
        else:
            lines.append(
                f"Change failure rate: {self.change_failure_rate * 100:.1f}% "
                f"({self.change_failures} of {self.attempts})"
            )
        restore = (
            "n/a"
            if self.time_to_restore_median is None
            else f"median {format_duration(self.time_to_restore_median)}"
        )
        if self.unrestored:
            restore += f" ({self.unrestored} unrestored)"
        lines.append(f"Time to restore: {restore}")
        return lines


def _format_rate(rate: float) -> str:
    if rate == 0:
        return "0"
    if rate >= 1:
        return f"{rate:.1f}"
    return f"{rate:.2f}"


def _utc(d: datetime) -> datetime:
    # Datetimes sharing a tzinfo subtract and compare as wall clocks (ignoring DST
    # offset changes), so all arithmetic is done on UTC instants.
    return d.astimezone(UTC)


def _median(values: Sequence[timedelta]) -> timedelta | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    low, high = ordered[mid - 1], ordered[mid]
    return low + (high - low) / 2


def _restores(record: StatsRecord) -> bool:
    """Whether a record put the env in a good state when it went live."""
    if record.live is None:
        return False
    if record.kind == "deploy":
        return record.outcome in _SHIPPED_OUTCOMES
    return record.outcome == "success"


def compute_dora(records: Sequence[StatsRecord], *, now: datetime, days: int) -> Dora:
    """Compute the DORA metrics for records requested in ``[now - days, now]``.

    The order of `records` does not matter. `now` must be timezone-aware and `days` >= 1.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if now.utcoffset() is None:
        raise ValueError("compute_dora needs a timezone-aware 'now'")
    now = _utc(now)
    since = now - timedelta(days=days)
    period = sorted((r for r in records if since <= _utc(r.requested_at) <= now), key=lambda r: r.id)

    attempts = [r for r in period if r.kind == "deploy" and r.outcome in _ATTEMPT_OUTCOMES]
    shipped = [r for r in attempts if r.outcome in _SHIPPED_OUTCOMES]
    failures = [r for r in attempts if r.outcome in _FAILURE_OUTCOMES]

    lead_times = [
        _utc(live) - _utc(r.committed_at)
        for r in shipped
        if (live := r.live) is not None and r.committed_at is not None
    ]

    restorers = [r for r in period if _restores(r)]
    restore_times: list[timedelta] = []
    unrestored = 0
    for failure in failures:
        if failure.finished_at is None:
            continue  # cannot be measured either way
        failed_at = _utc(failure.finished_at)
        later = [
            _utc(live)
            for r in restorers
            if r.env == failure.env and (live := r.live) is not None and _utc(live) > failed_at
        ]
        if later:
            restore_times.append(min(later) - failed_at)
        else:
            unrestored += 1

    return Dora(
        days=days,
        deployments=len(shipped),
        frequency_per_day=len(shipped) / days,
        lead_time_median=_median(lead_times),
        change_failure_rate=len(failures) / len(attempts) if attempts else None,
        time_to_restore_median=_median(restore_times),
        unrestored=unrestored,
        change_failures=len(failures),
        attempts=len(attempts),
        restored=len(restore_times),
    )
