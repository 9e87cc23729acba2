"""DORA metrics over hand-built histories with exact expected numbers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.durations import format_duration
from bot.domain.stats import Dora, Kind, Outcome, StatsRecord, compute_dora

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def rec(
    id: int,
    kind: Kind,
    outcome: Outcome,
    requested: datetime,
    *,
    env: str = "prod",
    took: timedelta | None = 10 * M,
    lead: timedelta | None = None,
) -> StatsRecord:
    """A record requested at `requested`, finished `took` later, its commit `lead` before finishing."""
    finished = None if took is None else requested + took
    committed = None if lead is None or finished is None else finished - lead
    return StatsRecord(id, env, kind, outcome, requested, finished, committed)


def day(n: int, hour: int = 10) -> datetime:
    """Requested `n` days before NOW's date, at `hour`:00 UTC."""
    return datetime(2026, 11, 22, hour, tzinfo=UTC) - timedelta(days=n)


# A 10-day history in two envs.
HISTORY = [
    rec(1, "deploy", "success", day(9), lead=2 * H),  # prod ok
    rec(2, "deploy", "failed", day(8), lead=1 * H),  # prod fails at day8 10:10
    rec(3, "deploy", "success", day(8, 11), lead=3 * H),  # restores prod at 11:10: 60m
    rec(4, "deploy", "rolled_back", day(6), lead=4 * H),  # shipped day6 10:10, rolled back...
    rec(5, "rollback", "success", day(6, 10) + 30 * M, took=5 * M),  # ...done 10:35: 25m
    rec(6, "deploy", "aborted", day(5), lead=1 * H),  # ignored everywhere
    rec(7, "deploy", "success", day(4), env="staging", lead=30 * M),
    rec(8, "deploy", "failed", day(3), env="staging", lead=10 * M),  # never restored
    rec(9, "deploy", "success", day(2), lead=5 * H),
    rec(10, "deploy", "other", day(1), took=None),  # still running
    rec(11, "rollback", "failed", day(1, 11)),  # a failed rollback is not a deploy attempt
]


def test_known_history_exact_numbers() -> None:
    dora = compute_dora(HISTORY, now=NOW, days=10)
    assert dora == Dora(
        days=10,
        deployments=5,  # 1, 3, 4 (rolled back but shipped), 7, 9
        frequency_per_day=0.5,
        lead_time_median=3 * H,  # of 2h, 3h, 4h, 30m, 5h
        change_failure_rate=3 / 7,  # 2, 4, 8 of 1, 2, 3, 4, 7, 8, 9
        time_to_restore_median=timedelta(minutes=42, seconds=30),  # median of 60m and 25m
        unrestored=1,
        change_failures=3,
        attempts=7,
        restored=2,
    )
    assert dora.lines() == [
        "Deployment frequency: 0.50/day (5 in 10 days)",
        "Lead time: median 3h",
        "Change failure rate: 42.9% (3 of 7)",
        "Time to restore: median 42m (1 unrestored)",
    ]


def test_input_order_does_not_matter() -> None:
    shuffled = HISTORY[:]
    random.Random(4).shuffle(shuffled)
    assert compute_dora(shuffled, now=NOW, days=10) == compute_dora(HISTORY, now=NOW, days=10)
    assert compute_dora(list(reversed(HISTORY)), now=NOW, days=10) == compute_dora(HISTORY, now=NOW, days=10)


def test_empty_history_is_na() -> None:
    dora = compute_dora([], now=NOW, days=30)
    assert dora == Dora(30, 0, 0.0, None, None, None, 0)
    assert dora.lines() == [
        "Deployment frequency: 0/day (0 in 30 days)",
        "Lead time: n/a",
        "Change failure rate: n/a",
        "Time to restore: n/a",
    ]


def test_records_outside_period_are_ignored() -> None:
    records = [
        rec(1, "deploy", "failed", NOW - timedelta(days=7, minutes=1)),  # just too old
        rec(2, "deploy", "success", NOW - timedelta(days=7), lead=H),  # boundary: included
        rec(3, "deploy", "success", NOW, lead=3 * H),  # boundary: included
        rec(4, "deploy", "failed", NOW + M),  # in the future
    ]
    dora = compute_dora(records, now=NOW, days=7)
    assert dora.deployments == 2
    assert dora.frequency_per_day == pytest.approx(2 / 7)
    assert dora.lead_time_median == 2 * H
    assert dora.change_failure_rate == 0.0
    assert dora.time_to_restore_median is None
    assert dora.unrestored == 0
    assert dora.lines()[0] == "Deployment frequency: 0.29/day (2 in 7 days)"
    assert dora.lines()[2] == "Change failure rate: 0.0% (0 of 2)"


def test_restore_across_a_rollback() -> None:
    shipped = day(1, 9)
    records = [
        rec(1, "deploy", "rolled_back", shipped, took=20 * M, lead=H),  # live at 09:20
        rec(2, "deploy", "success", shipped, env="staging", took=30 * M),  # other env: no restore
        rec(3, "rollback", "success", shipped + 2 * H, took=14 * M),  # done 11:14
        rec(4, "deploy", "success", shipped + 5 * H, lead=H),  # later deploy: not the restore
    ]
    dora = compute_dora(records, now=NOW, days=7)
    assert dora.time_to_restore_median == timedelta(hours=1, minutes=54)
    assert dora.unrestored == 0
    assert dora.change_failure_rate == pytest.approx(1 / 3)
    assert dora.lines()[3] == "Time to restore: median 1h 54m"


def test_failed_rollback_does_not_restore() -> None:
    records = [
        rec(1, "deploy", "failed", day(1, 9)),
        rec(2, "rollback", "failed", day(1, 10)),
        rec(3, "rollback", "success", day(1, 11), took=15 * M),  # restore at 11:15
    ]
    dora = compute_dora(records, now=NOW, days=3)
    assert dora.time_to_restore_median == timedelta(hours=2, minutes=5)  # from 09:10


def test_only_unrestored_failures() -> None:
    records = [rec(1, "deploy", "failed", day(1)), rec(2, "deploy", "failed", day(1, 11))]
    dora = compute_dora(records, now=NOW, days=3)
    assert dora.deployments == 0
    assert dora.change_failure_rate == 1.0
    assert dora.unrestored == 2  # a later failed deploy restores nothing
    assert dora.time_to_restore_median is None
    assert dora.lines() == [
        "Deployment frequency: 0/day (0 in 3 days)",
        "Lead time: n/a",
        "Change failure rate: 100.0% (2 of 2)",
        "Time to restore: n/a (2 unrestored)",
    ]


def test_durations_computed_in_real_time_across_dst() -> None:
    # Same tzinfo on both ends: Python would subtract wall clocks; the metric must not.
    ny = ZoneInfo("America/New_York")
    committed = datetime(2026, 10, 31, 12, 0, tzinfo=ny)  # EDT
    finished = datetime(2026, 11, 1, 12, 0, tzinfo=ny)  # EST: 25 real hours later
    record = StatsRecord(1, "prod", "deploy", "success", finished - H, finished, committed)
    dora = compute_dora([record], now=datetime(2026, 11, 2, tzinfo=ny), days=7)
    assert dora.lead_time_median == 25 * H


def test_frequency_formatting_and_singular_day() -> None:
    records = [rec(i, "deploy", "success", NOW - i * M) for i in range(3)]
    assert compute_dora(records, now=NOW, days=1).lines()[0] == "Deployment frequency: 3.0/day (3 in 1 day)"


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="days must be at least 1"):
        compute_dora([], now=NOW, days=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_dora([], now=datetime(2026, 11, 22), days=7)


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=59, milliseconds=999), "59s"),
        (timedelta(seconds=60), "1m"),
        (timedelta(minutes=14, seconds=59), "14m"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=3, minutes=12, seconds=30), "3h 12m"),
        (timedelta(hours=23, minutes=59), "23h 59m"),
        (timedelta(days=1), "1d"),
        (timedelta(days=2, hours=4, minutes=30), "2d 4h"),
        (timedelta(days=40, hours=1), "40d 1h"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text
