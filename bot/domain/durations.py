"""Durations as people read them: the one formatter for chat, cards and reports.

Two readings of one idea. A configured duration (an interval, a grace period) is shown exactly,
in the largest unit that divides it: `90s`, `15m`, `2h`. A measured duration (a lead time, a
time to restore) is shown in its two largest units, truncated: `45s`, `14m`, `3h 12m`, `2d 4h`.
"""

from __future__ import annotations

from datetime import timedelta


def format_duration(value: timedelta | float, *, exact: bool = False) -> str:
    """`value` (a timedelta, or seconds) as `3h 12m`; with `exact`, as the configured `90s` / `15m`."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if exact:
        return _exact(seconds)
    return _measured(int(seconds))


def _exact(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def _measured(total: int) -> str:
    if total < 0:
        return "-" + _measured(-total)
    if total < 60:
        return f"{total}s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


__all__ = ["format_duration"]
