"""What the one alert of an incident says, and the details for its thread (pure text).

An incident is checks failing on a deployment: during its smoke checks, or in its monitoring
window. Its alert names the failing checks (a few, then how many more), how close each is to
its limit, and what recovered; each round's failures go into the alert's thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.domain.deployment import Deployment
from runners.checks import CheckResult

#: Failing checks an alert or a failure summary names before "and N more".
NAMED = 3
#: Lines of one round's details in the thread before "and N more".
DETAIL_LINES = 25


def names(items: Sequence[str], limit: int = NAMED) -> str:
    """``a, b, c and 4 more``."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def failure_summary(results: Sequence[CheckResult]) -> str:
    """The failed checks' summaries, a few of them: ``a ✗ ...; b ✗ ...; and 47 more``."""
    text = "; ".join(r.summary() for r in results[:NAMED])
    return text + (f"; and {len(results) - NAMED} more" if len(results) > NAMED else "")


def details(title: str, results: Sequence[CheckResult]) -> str:
    """A thread message listing every result given (capped), under `title`."""
    lines = [f"• {r.summary()}" for r in results[:DETAIL_LINES]]
    if len(results) > DETAIL_LINES:
        lines.append(f"• …and {len(results) - DETAIL_LINES} more")
    return "\n".join([title, *lines])


def round_line(title: str, results: Sequence[CheckResult], *, full: int = 6) -> str:
    """``Round 3/10: a ✓ 200 (3 ms) · b ✗ ...``; with more than `full` results, a count and the
    ones not passing (a card has room for one line, not fifty)."""
    if len(results) <= full:
        return f"{title}: " + " · ".join(r.summary() for r in results)
    passing = sum(r.ok for r in results)
    line = f"{title}: {passing}/{len(results)} ok"
    failed = [r.name for r in results if not r.ok and not r.inconclusive]
    unsure = [r.name for r in results if r.inconclusive]
    if failed:
        line += f"; failing: {names(failed)}"
    if unsure:
        line += f"; inconclusive: {names(unsure)}"
    return line


def failing_text(
    d: Deployment,
    failing: Sequence[str],
    counts: Mapping[str, tuple[int, int]],
    round_no: int,
    rounds: int,
    recovered: Sequence[str] = (),
) -> str:
    """The alert while checks fail in the window, below their limits: who, and how close."""
    plural = "s" if len(failing) != 1 else ""
    shown = [f"{n} ({counts[n][0]}/{counts[n][1]})" if n in counts else n for n in failing]
    text = (
        f"⚠️ {d.env}: {len(failing)} check{plural} failing while monitoring {d.label} ({d.ref}), "
        f"round {round_no}/{rounds}: {names(shown)}. (failures/limit; details in the thread)"
    )
    if recovered:
        text += f" Recovered: {names(list(recovered))}."
    return text


def smoke_text(d: Deployment, failing: Sequence[str]) -> str:
    """The alert when smoke checks fail (the failure that follows says what happens next)."""
    plural = "s" if len(failing) != 1 else ""
    return f"⚠️ {d.env}: {len(failing)} smoke check{plural} of {d.label} ({d.ref}) failed: {names(list(failing))}."


def recovered_text(d: Deployment, recovered: Sequence[str], round_no: int) -> str:
    """The note when every failing check passes again."""
    return f"✅ Recovered in round {round_no}: {names(list(recovered))} passing again ({d.label} keeps monitoring)."


__all__ = [
    "details",
    "failing_text",
    "failure_summary",
    "names",
    "recovered_text",
    "round_line",
    "smoke_text",
]
