"""Conditions on a measured number, Argo-analysis style: ``result < 0.1``, never `eval`.

The grammar is small and parsed by hand (recursive descent over a tokenizer), so a condition
can only ever compare numbers:

    condition  := or
    or         := and (("or" | "||") and)*
    and        := not (("and" | "&&") not)*
    not        := ("not" | "!") not | "(" or ")" | comparison
    comparison := operand (OP operand)+          chained like Python: 0 <= result < 0.1
    operand    := "result" | NUMBER              NUMBER: 12, -0.5, 1e3, 5%  (5% is 0.05)
    OP         := "<" | "<=" | ">" | ">=" | "==" | "!=" | "="

`parse_condition` raises `ConditionError` with a message saying where the text stops making
sense; a parsed `Condition` evaluates against one value (`holds`) and prints as its text.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"\s*(?:(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?)"
    r"|(?P<op><=|>=|==|!=|<|>|=)"
    r"|(?P<punct>\(|\)|&&|\|\||!)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
}
_WORDS = {"and": "&&", "or": "||", "not": "!"}
MAX_LENGTH = 500


class ConditionError(ValueError):
    """A condition that does not parse; the message says what is wrong and where."""


# -- the tree -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Compare:
    operands: tuple[float | None, ...]  # None stands for `result`
    ops: tuple[str, ...]

    def holds(self, value: float) -> bool:
        values = [value if o is None else o for o in self.operands]
        return all(_COMPARE[op](values[i], values[i + 1]) for i, op in enumerate(self.ops))


@dataclass(frozen=True)
class _Not:
    inner: _Node

    def holds(self, value: float) -> bool:
        return not self.inner.holds(value)


@dataclass(frozen=True)
class _Both:
    left: _Node
    right: _Node
    any: bool  # "or" when True, "and" when False

    def holds(self, value: float) -> bool:
        if self.any:
            return self.left.holds(value) or self.right.holds(value)
        return self.left.holds(value) and self.right.holds(value)


_Node = _Compare | _Not | _Both


@dataclass(frozen=True)
class Condition:
    """A parsed condition; `holds(value)` judges one measured number. Prints as its text."""

    text: str
    tree: _Node = field(repr=False, compare=False)

    def holds(self, value: float) -> bool:
        """True when the condition holds for `value` (NaN never satisfies a comparison but `!=`)."""
        return self.tree.holds(value)

    def __str__(self) -> str:
        return self.text


# -- parsing --------------------------------------------------------------------------------
def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, token, offset) of every token; raises on a character the grammar does not know."""
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            where = len(text[:pos]) + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise ConditionError(f"unexpected {text[where : where + 10]!r} at character {where + 1}")
        kind = m.lastgroup or ""
        token = m.group(kind)
        if kind == "word":
            low = token.lower()
            if low in _WORDS:
                kind, token = "punct", _WORDS[low]
            elif low != "result":
                raise ConditionError(
                    f"unknown name {token!r} at character {m.start(kind) + 1}: a condition compares "
                    "`result` with numbers"
                )
            else:
                token = "result"
        out.append((kind, token, m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise ConditionError("the condition ends too early")
        self.i += 1
        return token

    def parse(self) -> _Node:
        node = self.either()
        extra = self.peek()
        if extra is not None:
            raise ConditionError(f"unexpected {extra[1]!r} at character {extra[2] + 1}")
        return node

    def either(self) -> _Node:
        node = self.both()
        while (token := self.peek()) is not None and token[1] == "||":
            self.take()
            node = _Both(node, self.both(), any=True)
        return node

    def both(self) -> _Node:
        node = self.negation()
        while (token := self.peek()) is not None and token[1] == "&&":
            self.take()
            node = _Both(node, self.negation(), any=False)
        return node

    def negation(self) -> _Node:
        token = self.peek()
        if token is not None and token[1] == "!":
            self.take()
            return _Not(self.negation())
        if token is not None and token[1] == "(":
            self.take()
            node = self.either()
            closing = self.take()
            if closing[1] != ")":
                raise ConditionError(f"expected ')' at character {closing[2] + 1}, got {closing[1]!r}")
            return node
        return self.comparison()

    def comparison(self) -> _Node:
        operands = [self.operand()]
        ops: list[str] = []
        while (token := self.peek()) is not None and token[0] == "op":
            ops.append(self.take()[1])
            operands.append(self.operand())
        if not ops:
            token = self.peek()
            where = f"at character {token[2] + 1}" if token else "at the end"
            raise ConditionError(f"expected a comparison such as `result < 0.1` (missing operator {where})")
        if all(o is not None for o in operands):
            raise ConditionError("the comparison does not mention `result`")
        return _Compare(tuple(operands), tuple(ops))

    def operand(self) -> float | None:
        kind, token, offset = self.take()
        if kind == "word":
            return None
        if kind == "num":
            value = float(token[:-1]) / 100 if token.endswith("%") else float(token)
            if not math.isfinite(value):
                raise ConditionError(f"{token!r} at character {offset + 1} is not a finite number")
            return value
        raise ConditionError(f"expected `result` or a number at character {offset + 1}, got {token!r}")


def parse_condition(text: str) -> Condition:
    """Parse a condition such as ``result < 0.1`` or ``0 <= result and result < 5``.

    Raises `ConditionError` (a `ValueError`) naming what does not parse.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("is empty: write a comparison such as `result < 0.1`")
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"is longer than {MAX_LENGTH} characters")
    return Condition(" ".join(text.split()), _Parser(text).parse())


__all__ = ["Condition", "ConditionError", "parse_condition"]
