"""Whether a deployment may start at an instant, given deploy windows and freezes, and if not
when the next opportunity is (the rules themselves, and how time zones and daylight-saving
transitions are read, are `bot.domain.windows`).

Pure domain logic: no I/O, and time always comes in as an argument (aware datetimes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.windows import DAY_ABBR, Freeze, Window, resolve_wall, utc

__all__ = ["WindowDecision", "check_window", "format_next_open"]

#: How far ahead `check_window` looks for the next open instant.
HORIZON = timedelta(days=60)


def _occurrences(
    window: Window, tz: ZoneInfo, first: date, last: date
) -> Iterator[tuple[datetime, datetime]]:
    """Occurrences ``(start, end)`` (UTC) of `window` starting on local dates first..last."""
    day = first
    while day <= last:
        if day.weekday() in window.days:
            end_day = day + timedelta(days=1) if window.crosses_midnight else day
            start = resolve_wall(datetime.combine(day, window.start), tz, latest=False)
            end = resolve_wall(datetime.combine(end_day, window.end), tz, latest=True)
            if start < end:
                yield start, end
        day += timedelta(days=1)


def _in_window(instant: datetime, windows: Sequence[Window], tz: ZoneInfo) -> bool:
    instant = utc(instant)
    local_day = instant.astimezone(tz).date()
    for window in windows:
        for start, end in _occurrences(window, tz, local_day - timedelta(days=1), local_day):
            if start <= instant < end:
                return True
    return False


def _is_open(instant: datetime, windows: Sequence[Window], freezes: Sequence[Freeze], tz: ZoneInfo) -> bool:
    if any(f.covers(instant) for f in freezes):
        return False
    return not windows or _in_window(instant, windows, tz)


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class WindowDecision:
    """Whether a deployment may start now, why not, and when it next may.

    ``next_open`` is the earliest instant at or after the checked instant at which a
    deployment is allowed (equal to it when ``open``), in the environment's time zone,
    or None when nothing opens within the search horizon (60 days).
    """

    open: bool
    reason: str | None
    next_open: datetime | None


def _format_instant(d: datetime) -> str:
    return f"{d:%Y-%m-%d %H:%M} {d.tzname()}"


def format_next_open(d: datetime) -> str:
    """Render an aware instant like ``Mon 2026-11-23 09:00 CET`` (locale-independent)."""
    return f"{DAY_ABBR[d.weekday()]} {_format_instant(d)}"


def _freeze_reason(now: datetime, freezes: Sequence[Freeze], tz: ZoneInfo) -> str | None:
    active = [f for f in freezes if f.covers(now)]
    if not active:
        return None
    # Chain overlapping/adjacent freezes so "until" is when the freeze really ends.
    until = max(utc(f.end) for f in active)
    extended = True
    while extended:
        extended = False
        for f in freezes:
            if f.covers(until):
                until = utc(f.end)
                extended = True
    reasons = list(dict.fromkeys(f.reason for f in active if f.reason))
    text = f"deploy freeze until {_format_instant(until.astimezone(tz))}"
    return f"{text}: {'; '.join(reasons)}" if reasons else text


def _next_open(
    now: datetime, windows: Sequence[Window], freezes: Sequence[Freeze], tz: ZoneInfo
) -> datetime | None:
    """Earliest open instant in ``[now, now + HORIZON]``.

    The open set is the union of window occurrences minus the union of freezes, all
    half-open intervals, so its first point after `now` is `now` itself, a window start
    or a freeze end: only those candidates need checking.
    """
    now = utc(now)
    horizon = now + HORIZON
    candidates = {now}
    candidates.update(utc(f.end) for f in freezes if now < utc(f.end) <= horizon)
    if windows:
        first = now.astimezone(tz).date() - timedelta(days=1)
        last = horizon.astimezone(tz).date()
        for window in windows:
            for start, _end in _occurrences(window, tz, first, last):
                if now < start <= horizon:
                    candidates.add(start)
    for candidate in sorted(candidates):
        if _is_open(candidate, windows, freezes, tz):
            return candidate.astimezone(tz)
    return None


def check_window(
    now: datetime, windows: Sequence[Window], freezes: Sequence[Freeze], tz: ZoneInfo
) -> WindowDecision:
    """Decide whether a deployment may start at `now` (aware) in an environment.

    Closed when a freeze covers `now` (freezes win over windows) or when windows are
    configured and none is open; no windows configured means always open unless frozen.
    """
    if now.utcoffset() is None:
        raise ValueError("check_window needs a timezone-aware 'now'")
    reason = _freeze_reason(now, freezes, tz)
    if reason is None and windows and not _in_window(now, windows, tz):
        listed = ", ".join(str(w) for w in windows)
        reason = f"outside deploy windows ({listed} {tz})"
    if reason is None:
        return WindowDecision(open=True, reason=None, next_open=now.astimezone(tz))
    return WindowDecision(open=False, reason=reason, next_open=_next_open(now, windows, freezes, tz))
