"""The failure tracker: consecutive failures, transitions, serialisation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runners.checks import CheckResult, FailureTracker


def result(name: str, ok: bool) -> CheckResult:
    return CheckResult(
        name, "http", ok, "200" if ok else "503", 0.01, None if ok else "boom", datetime.now(UTC)
    )


def test_failure_tracker_consecutive_and_transitions() -> None:
    tracker = FailureTracker(failure_limit=3)
    v = tracker.record([result("a", True), result("b", True)])
    assert not v.failed and v.transitions == ()  # first success is not news

    v = tracker.record([result("a", False), result("b", True)])
    assert [(t.name, t.failing) for t in v.transitions] == [("a", True)]
    assert v.newly_failing[0].result.error == "boom" and not v.failed

    v = tracker.record([result("a", False), result("b", True)])
    assert v.transitions == () and not v.failed and v.consecutive["a"] == 2

    v = tracker.record([result("a", False)])  # b absent: keeps its count
    assert v.failed and v.failed_checks == ("a",) and v.newly_failed_checks == ("a",)

    v = tracker.record([result("a", False)])
    assert v.failed and v.newly_failed_checks == () and v.consecutive["a"] == 4

    v = tracker.record([result("a", True)])
    assert not v.failed and [(t.name, t.failing, t.consecutive_failures) for t in v.recovered] == [
        ("a", False, 4)
    ]

    # A success in between resets the streak.
    tracker.record([result("a", False)])
    tracker.record([result("a", True)])
    v = tracker.record([result("a", False)])
    assert v.consecutive["a"] == 1 and not v.failed

    # Duplicate names in one round are one observation, failing if any failed.
    v = tracker.record([result("a", True), result("a", False)])
    assert v.consecutive["a"] == 2


def test_failure_tracker_limit_one_and_serialisation() -> None:
    tracker = FailureTracker(failure_limit=1)
    v = tracker.record([result("x", False)])
    assert v.failed and v.newly_failed_checks == ("x",)
    state = tracker.to_dict()
    again = FailureTracker.from_dict(state)
    assert again == tracker and again.to_dict() == state
    assert again.record([result("x", True)]).recovered[0].name == "x"
    tracker.reset()
    assert tracker.consecutive == {}
    with pytest.raises(ValueError):
        FailureTracker(failure_limit=0)
    for bad in ({"failure_limit": "3"}, {"failure_limit": 3, "consecutive": {"a": -1}}, {"version": 9}):
        with pytest.raises(ValueError):
            FailureTracker.from_dict(bad)
