"""Deploy windows and freezes: when is a deployment allowed?

Runbooks say things like "deploy Mon-Thu 09:00-16:00, never on Friday" and "freeze from
Dec 20 to Jan 3: holidays". This module holds those rules and parses them;
`bot.domain.window_check` decides, for a given instant, whether a deployment may start and,
if not, when the next opportunity is.

Pure domain logic: no I/O, and time always comes in as an argument (aware datetimes).

Windows are wall-clock times in the environment's time zone. Each *occurrence* of a window
(one per allowed day) is turned into a half-open interval of real instants
``[start, end)``; the day of an occurrence is the day it starts, and ``end <= start``
(wall-clock) means it ends on the next day. Daylight-saving transitions are resolved so
that occurrences never have holes and are as wide as the wall-clock text suggests:

* a wall time that does not exist (spring-forward gap) resolves, for both start and end,
  to the first existing instant after it, i.e. the transition itself: a 02:30 start on
  the spring-forward day in Europe/Paris starts at 03:00 CEST;
* a wall time that happens twice (fall-back) resolves to its *first* occurrence when it
  starts a window and to its *second* occurrence when it ends one: a 01:00-02:00 window on
  the fall-back day in America/New_York covers 01:00 EDT through 01:59 EST (two real
  hours), so both 01:30s are inside.

Consequently a window whose whole wall-clock range falls in a gap (02:00-02:30 on the
Paris spring-forward day) is empty that day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "DAY_ABBR",
    "Freeze",
    "Window",
    "parse_freeze",
    "parse_window",
    "resolve_wall",
    "round_trips",
    "utc",
]

DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS: dict[str, int] = {
    **{name.lower(): i for i, name in enumerate(DAY_ABBR)},
    **{name: i for i, name in enumerate(_DAY_FULL)},
}
_ALL_DAYS = frozenset(range(7))
_WEEKDAYS = frozenset(range(5))
_WEEKENDS = frozenset({5, 6})
_DAY_KEYWORDS: dict[str, frozenset[int]] = {
    "daily": _ALL_DAYS,
    "weekdays": _WEEKDAYS,
    "weekends": _WEEKENDS,
}

_WINDOW_RE = re.compile(r"^(?P<days>.+?)\s+(?P<start>\S+?)\s*-\s*(?P<end>\S+)$")
_TIME_RE = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})$")
_EXAMPLE = "expected '<days> HH:MM-HH:MM', e.g. 'Mon-Thu 09:00-16:00' or 'daily 22:00-06:00'"


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    """A recurring weekly deploy window in wall-clock time.

    ``days`` are weekday numbers (0=Mon .. 6=Sun) on which the window *starts*;
    ``end <= start`` means the window crosses midnight into the next day
    (``start == end`` is a full 24 hours).
    """

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("a deploy window needs at least one day")
        if not self.days <= _ALL_DAYS:
            raise ValueError(f"window days must be 0 (Mon) to 6 (Sun), got {sorted(self.days)}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are wall-clock times and must not carry a tzinfo")

    @property
    def crosses_midnight(self) -> bool:
        """True when the window ends on the day after it starts."""
        return self.end <= self.start

    def __str__(self) -> str:
        return f"{_format_days(self.days)} {_format_time(self.start)}-{_format_time(self.end)}"


def _format_time(t: time) -> str:
    if t.second or t.microsecond:
        return t.strftime("%H:%M:%S")
    return t.strftime("%H:%M")


def _format_days(days: frozenset[int]) -> str:
    """Canonical day list: keywords, else cyclic runs sorted by starting day."""
    for keyword, members in _DAY_KEYWORDS.items():
        if days == members:
            return keyword
    runs: list[tuple[int, int]] = []
    for first in sorted(days):
        if (first - 1) % 7 in days:
            continue  # not the start of a (cyclic) run
        last = first
        while (last + 1) % 7 in days:
            last = (last + 1) % 7
        runs.append((first, last))
    parts = [DAY_ABBR[a] if a == b else f"{DAY_ABBR[a]}-{DAY_ABBR[b]}" for a, b in runs]
    return ",".join(parts)


def _parse_day(name: str, text: str) -> int:
    try:
        return _DAY_NUMBERS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown day {name!r} in deploy window {text!r}: use Mon..Sun, full day names, "
            "'daily', 'weekdays' or 'weekends'"
        ) from None


def _parse_days(spec: str, text: str) -> frozenset[int]:
    days: set[int] = set()
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            raise ValueError(f"empty day in deploy window {text!r}: {_EXAMPLE}")
        keyword = _DAY_KEYWORDS.get(part.lower())
        if keyword is not None:
            days |= keyword
            continue
        if "-" in part:
            first_name, _, last_name = (s.strip() for s in part.partition("-"))
            first, last = _parse_day(first_name, text), _parse_day(last_name, text)
            day = first
            days.add(day)
            while day != last:  # ranges wrap around the week: Sat-Mon = Sat, Sun, Mon
                day = (day + 1) % 7
                days.add(day)
        else:
            days.add(_parse_day(part, text))
    return frozenset(days)


def _parse_time(value: str, text: str, *, allow_24: bool) -> time:
    m = _TIME_RE.match(value)
    if m is None:
        raise ValueError(f"invalid time {value!r} in deploy window {text!r}: use HH:MM (24-hour clock)")
    hour, minute = int(m["h"]), int(m["m"])
    if allow_24 and hour == 24 and minute == 0:
        return time(0, 0)
    if hour > 23 or minute > 59:
        raise ValueError(f"invalid time {value!r} in deploy window {text!r}: hours 00-23, minutes 00-59")
    return time(hour, minute)


def parse_window(text: str) -> Window:
    """Parse a window such as ``Mon-Thu 09:00-16:00`` or ``daily 22:00-06:00``.

    Days: 3-letter or full names (case-insensitive), comma lists, ranges that may wrap
    around the week (``Sat-Mon``), and the keywords ``daily``, ``weekdays``, ``weekends``.
    Times are ``HH:MM``; ``24:00`` is accepted as an end time. An end at or before the
    start crosses midnight. Raises `ValueError` with a message saying what is wrong.
    """
    stripped = " ".join(text.split())
    if not stripped:
        raise ValueError(f"empty deploy window: {_EXAMPLE}")
    m = _WINDOW_RE.match(stripped)
    if m is None:
        raise ValueError(f"invalid deploy window {text!r}: {_EXAMPLE}")
    days = _parse_days(m["days"], text)
    start = _parse_time(m["start"], text, allow_24=False)
    end = _parse_time(m["end"], text, allow_24=True)
    return Window(days=days, start=start, end=end)


# --------------------------------------------------------------------------- freezes


@dataclass(frozen=True)
class Freeze:
    """No deployments in ``[start, end)`` (aware datetimes) because of ``reason``."""

    start: datetime
    end: datetime
    reason: str

    def __post_init__(self) -> None:
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            raise ValueError("freeze start and end must be timezone-aware")
        if utc(self.end) <= utc(self.start):
            raise ValueError(
                f"freeze must end after it starts (start {self.start.isoformat()}, end {self.end.isoformat()})"
            )

    def covers(self, instant: datetime) -> bool:
        """True when `instant` is inside the freeze."""
        return utc(self.start) <= utc(instant) < utc(self.end)


def _parse_freeze_bound(value: str, tz: ZoneInfo, *, is_end: bool) -> datetime:
    value = value.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        if is_end:  # an end date is inclusive: until midnight starting the next day
            day += timedelta(days=1)
        return resolve_wall(datetime.combine(day, time(0, 0)), tz, latest=False).astimezone(tz)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        which = "end" if is_end else "start"
        raise ValueError(
            f"invalid freeze {which} {value!r}: use an ISO date (2026-12-20) or date-time (2026-12-20T18:00)"
        ) from None
    if parsed.utcoffset() is not None:
        return parsed.astimezone(tz)
    return resolve_wall(parsed, tz, latest=False).astimezone(tz)


def parse_freeze(start: str, end: str, reason: str, tz: ZoneInfo) -> Freeze:
    """Build a `Freeze` from ISO text interpreted in the environment's time zone `tz`.

    A date start means 00:00 that day; a date end is inclusive (the freeze lasts until
    00:00 the next day). Date-times without an offset are wall-clock times in `tz` (a
    nonexistent time resolves to the first existing instant after it, an ambiguous one to
    its first occurrence); date-times with an offset are converted to `tz`.
    Raises `ValueError` on unparsable input or an end not after the start.
    """
    start_dt = _parse_freeze_bound(start, tz, is_end=False)
    end_dt = _parse_freeze_bound(end, tz, is_end=True)
    if utc(end_dt) <= utc(start_dt):
        raise ValueError(f"freeze end {end!r} is not after its start {start!r}")
    return Freeze(start=start_dt, end=end_dt, reason=reason.strip())


# --------------------------------------------------------------------------- time zones
# Python compares and subtracts datetimes sharing a tzinfo as naive wall-clock values,
# ignoring `fold` and offset changes, so every comparison below is done in UTC.


def utc(d: datetime) -> datetime:
    return d.astimezone(UTC)


def resolve_wall(wall: datetime, tz: ZoneInfo, *, latest: bool) -> datetime:
    """Turn a naive wall-clock datetime into an aware instant in `tz` (returned in UTC).

    Ambiguous wall times (fall-back) give the first occurrence, or the second one when
    `latest`. Nonexistent wall times (spring-forward gap) give the transition instant,
    the first existing instant after them.
    """
    naive = wall.replace(tzinfo=None)
    early = naive.replace(tzinfo=tz, fold=0)
    late = naive.replace(tzinfo=tz, fold=1)
    if early.utcoffset() == late.utcoffset():
        return utc(early)
    if round_trips(early, naive):  # ambiguous: both folds exist
        return utc(late if latest else early)
    # Gap. With fold=1 the instant is before the transition, with fold=0 after it
    # (PEP 495); binary-search the first instant whose offset is the post-gap one.
    before = late.astimezone(UTC)
    after = early.astimezone(UTC)
    if after < before:
        before, after = after, before
    after_offset = after.astimezone(tz).utcoffset()
    lo, hi = 0, int((after - before).total_seconds())
    while lo < hi:
        mid = (lo + hi) // 2
        if (before + timedelta(seconds=mid)).astimezone(tz).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid + 1
    return before + timedelta(seconds=lo)


def round_trips(aware: datetime, naive: datetime) -> bool:
    back = aware.astimezone(UTC).astimezone(aware.tzinfo)
    return back.replace(tzinfo=None) == naive
