"""The CI gate's verdict: the required contexts of a commit, from what the code host reported.

Pure. `required` names contexts (`"ci/build"`), or `"*"` for every reported one. A required
context not reported yet counts as pending; a failing one fails the gate, a pending one holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.integrations.base import Context

ALL = "*"


@dataclass(frozen=True)
class Verdict:
    """`state` is "passed", "pending" or "failing"; `shown` are the required contexts, worst first."""

    state: str
    summary: str
    shown: tuple[Context, ...]


def verdict(contexts: Sequence[Context], required: Sequence[str]) -> Verdict:
    """What the gate says about `contexts` given the `required` names."""
    by_name = {c.name: c for c in contexts}
    if ALL in required:
        names = list(dict.fromkeys([*by_name, *(r for r in required if r != ALL)]))
    else:
        names = list(required)
    shown = [by_name.get(name) or Context(name, "pending", None, "not reported yet") for name in names]
    failing = [c for c in shown if c.state == "failure"]
    pending = [c for c in shown if c.state == "pending"]
    if not shown:
        return Verdict("pending", "no CI context reported yet", ())
    order = {"failure": 0, "pending": 1, "success": 2}
    ordered = tuple(sorted(shown, key=lambda c: order[c.state]))
    if failing:
        return Verdict("failing", "failing: " + ", ".join(c.name for c in failing), ordered)
    if pending:
        return Verdict("pending", "pending: " + ", ".join(_pending_name(c) for c in pending), ordered)
    return Verdict("passed", f"passed ({', '.join(c.name for c in shown)})", ordered)


def _pending_name(c: Context) -> str:
    return f"{c.name} (not reported yet)" if c.description == "not reported yet" and c.url is None else c.name


__all__ = ["ALL", "Verdict", "verdict"]
