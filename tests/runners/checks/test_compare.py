"""Comparing SQL values with expectations."""

from __future__ import annotations

from runners.checks import compare


def test_compare() -> None:
    assert compare(3, ">=", 2) and compare("10", ">", 9) and compare("10", ">", "9")  # numeric strings
    assert compare("abc", "<", "abd") and not compare("b", "<", "a")  # text
    assert compare(True, "==", "true")
    assert compare(float("nan"), "==", 1) is False
    assert compare("abc", "~", "abc") is None
