"""Comparing observed values with expectations.

A SQL value compares numerically when both sides are numbers (numeric strings included), else
as text; an HTTP check's JSON field is picked by a dotted path and compared as JSON.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any


def render(value: object) -> str:
    """A value as text for comparing and for messages: NULL, true/false, else `str`."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
#: A decimal number literal (sign, digits, fraction, exponent): the strings `compare` treats as numbers.
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _as_number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and NUMBER_RE.match(value.strip()):
        return Decimal(value.strip())
    return None


def compare(actual: object, op: str, expected: object) -> bool | None:
    """Compare a query value with an expectation; numerically when both sides are numbers.

    Numeric strings count as numbers; otherwise both sides compare as text (booleans as
    ``true``/``false``). Returns None when the comparison is impossible (NaN, unknown op).
    """
    left_n, right_n = _as_number(actual), _as_number(expected)
    left: Decimal | str
    right: Decimal | str
    if left_n is not None and right_n is not None:
        left, right = left_n, right_n
    else:
        left, right = render(actual), render(expected)
    fn = _OPERATORS.get(op)
    if fn is None:
        return None
    try:
        return bool(fn(left, right))
    except (InvalidOperation, TypeError):
        return None


_MISSING = object()


def _json_path(doc: object, path: str) -> object:
    node = doc
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _json_text(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _json_equal(actual: object, expected: object) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return actual == expected
    return actual == expected


def json_value(body: bytes, path: str) -> tuple[object] | str:
    """The value at `path` in a JSON body, as a 1-tuple; or, as a string, why there is none.

    Only a scalar (string, number, boolean) can be captured: an object, a list or null is refused.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "response body is not valid JSON"
    value = _json_path(doc, path)
    if value is _MISSING:
        return f"JSON field {path} is missing"
    if value is None or isinstance(value, dict | list):
        return f"JSON field {path} is {_json_text(value)}, not a string, number or boolean"
    return (value,)


def compare_json(body: bytes, path: str, op: str, expected: object) -> tuple[str | None, str] | None:
    """None if the JSON field at `path` compares `op` `expected` (numerically when both are
    numbers, as a SQL value), else (observed, error)."""
    found = json_value(body, path)
    if isinstance(found, str):
        return None, found
    value = found[0]
    shown = f"{path}={_json_text(value)}"
    verdict = compare(value, op, expected)
    if verdict is None:
        return shown, f"cannot compare {shown} {op} {render(expected)}"
    if not verdict:
        return shown, f"JSON {shown} is not {op} {render(expected)}"
    return None


def check_json(body: bytes, path: str, expected: object) -> tuple[str | None, str] | None:
    """None if the JSON assertion holds, else (observed, error)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, "response body is not valid JSON"
    value = _json_path(doc, path)
    if value is _MISSING:
        return None, f"JSON field {path} is missing"
    shown = f"{path}={_json_text(value)}"
    if expected is None:
        if not value:
            return shown, f"JSON {shown}, expected a true value"
        return None
    if not _json_equal(value, expected):
        return shown, f"JSON {shown}, expected {_json_text(expected)}"
    return None
