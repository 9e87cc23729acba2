"""Conditions on a number: a small grammar, parsed (never evaluated as code)."""

from __future__ import annotations

import math

import pytest

from runners.checks import ConditionError, parse_condition


@pytest.mark.parametrize(
    ("text", "holds_for", "fails_for"),
    [
        ("result < 0.1", [0.0, 0.099], [0.1, 5]),
        ("result<=0.1", [0.1], [0.11]),
        ("result >= 4", [4, 9], [3.9]),
        ("result == 0", [0], [1]),
        ("result = 0", [0], [1]),
        ("result != 3", [2, math.nan], [3]),
        ("0 <= result < 5", [0, 4.9], [-1, 5]),
        ("result < 10%", [0.05], [0.1]),
        ("result > -1 and result < 1", [0], [-2, 2]),
        ("result < 1 || result > 9", [0, 10], [5]),
        ("not (result > 3)", [3], [4]),
        ("!(result > 3) && result > 1", [2], [0, 4]),
        ("result < 1e3", [999], [1000]),
    ],
)
def test_conditions_hold_as_written(text: str, holds_for: list[float], fails_for: list[float]) -> None:
    condition = parse_condition(text)
    assert [condition.holds(v) for v in holds_for] == [True] * len(holds_for)
    assert [condition.holds(v) for v in fails_for] == [False] * len(fails_for)
    assert str(condition) == " ".join(text.split())


def test_nan_meets_no_comparison() -> None:
    assert not parse_condition("result < 0.1").holds(math.nan)
    assert not parse_condition("result >= 0.1").holds(math.nan)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("result", "missing operator at the end"),
        ("result <", "ends too early"),
        ("result < 0.1 and", "ends too early"),
        ("1 < 2", "does not mention `result`"),
        ("x < 1", "unknown name 'x' at character 1"),
        ("__import__('os') < 1", "unknown name '__import__'"),
        ("result < 1)", "unexpected ')' at character 11"),
        ("(result < 1", "ends too early"),
        ("result <> 1", "expected `result` or a number at character 9"),
        ("result < 0.1; rm -rf /", "unexpected '; rm -rf /' at character 13"),
        ("result < 1e999", "is not a finite number"),
    ],
)
def test_conditions_that_do_not_parse_say_where(text: str, message: str) -> None:
    with pytest.raises(ConditionError) as err:
        parse_condition(text)
    assert message in str(err.value)
