"""The failure tracker: consecutive failures, transitions, serialisation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runners.checks import CheckResult, FailureTracker, Limit


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


def unsure(name: str) -> CheckResult:
    return CheckResult(
        name, "prometheus", False, "no data", 0.01, "inconclusive: no data", datetime.now(UTC), True
    )


def test_a_check_s_own_limit_counts_consecutive_failures_or_all_of_them() -> None:
    limits = {"strict": Limit(failures=1), "flappy": Limit(failures=3, consecutive=False)}
    tracker = FailureTracker(failure_limit=2, limits=limits)
    v = tracker.record([result("strict", True), result("flappy", False), result("plain", False)])
    assert not v.failed and v.failing == ("flappy", "plain")
    v = tracker.record([result("flappy", True), result("plain", True)])
    assert not v.failed and tracker.standing("flappy") == (1, 3) and tracker.standing("plain") == (0, 2)
    v = tracker.record([result("flappy", False)])
    assert not v.failed  # 2 of 3, not in a row: still counting
    v = tracker.record([result("flappy", True)])
    v = tracker.record([result("flappy", False), result("strict", False)])
    assert v.failed and v.failed_checks == ("flappy", "strict")
    assert set(v.newly_failed_checks) == {"flappy", "strict"}


def test_inconclusive_results_count_on_their_own_and_start_over_when_a_human_says_go_on() -> None:
    tracker = FailureTracker(failure_limit=2, limits={"latency": Limit(inconclusive=2)})
    v = tracker.record([unsure("latency"), result("health", True)])
    assert not v.failed and v.inconclusive_checks == () and v.transitions == ()
    v = tracker.record([unsure("latency")])
    assert (
        v.inconclusive_checks == ("latency",) and not v.failed and tracker.consecutive.get("latency", 0) == 0
    )
    tracker.reset_inconclusive()
    assert tracker.inconclusive_checks() == ()
    assert tracker.record([result("latency", False), result("latency", False)]).failing == ("latency",)


def test_samples_and_counts_survive_being_stored() -> None:
    tracker = FailureTracker(failure_limit=3)
    sample = CheckResult(
        "rate", "metrics", True, "baseline 1", 0.0, None, datetime.now(UTC), sample={"value": 1.0, "at": 5.0}
    )
    tracker.record([sample, result("a", False), unsure("b")])
    again = FailureTracker.from_dict(tracker.to_dict(), limits={"a": Limit(failures=1)})
    assert again.samples == {"rate": {"value": 1.0, "at": 5.0}}
    assert again.failures == {"a": 1} and again.inconclusive == {"b": 1} and again.failed_checks() == ("a",)
    old = FailureTracker.from_dict(
        {"version": 1, "failure_limit": 3, "consecutive": {"a": 1}}
    )  # before these keys
    assert old.samples == {} and old.failures == {}
