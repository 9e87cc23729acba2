"""When deploys may run: the `timezone`, deploy `windows` and `freezes`, parsed at load time.

Named after `bot.domain.windows`, which owns the rules; this module only reads the tables and
reports each problem with its key path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config.reader import Table
from bot.domain.windows import Freeze, Window, parse_freeze, parse_window


def parse_timezone(t: Table) -> str:
    """`timezone`: a zone name the system knows; UTC when unset or unknown."""
    timezone: str = t.get("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        t.problems.add(t.key("timezone"), f"unknown time zone {timezone!r}")
        timezone = "UTC"
    return timezone


def parse_windows(t: Table) -> tuple[tuple[str, ...], tuple[Window, ...]]:
    """`windows`: as written and as parsed `Window`s (each bad one reported with its index)."""
    windows = t.strings("windows")
    deploy_windows: list[Window] = []
    for i, text in enumerate(windows):
        try:
            deploy_windows.append(parse_window(text))
        except ValueError as exc:
            t.problems.add(f"{t.key('windows')}[{i}]", str(exc))
    return windows, tuple(deploy_windows)


def _freeze_bound(f: Table, name: str) -> str | None:
    """A freeze bound as ISO text: a string, or a TOML date / date-time literal."""
    f.seen.add(name)
    f.key(name)
    if name not in f.data:
        f.problems.add(f.key(name), "required (a date like 2026-12-21 or a date-time like 2026-12-21T18:00)")
        return None
    value = f.data[name]
    if isinstance(value, dt.datetime | dt.date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dt.time):
        f.problems.add(f.key(name), "must be a date or a date-time, not a time of day")
    else:
        f.problems.add(f.key(name), "must be a date like 2026-12-21 or a date-time like 2026-12-21T18:00")
    return None


def parse_freezes(t: Table, tz: ZoneInfo) -> tuple[tuple[Mapping[str, str], ...], tuple[Freeze, ...]]:
    """`freezes`: validated at load time, kept as ISO text and as parsed `Freeze` periods."""
    raw = t.get("freezes", list, [])
    texts: list[Mapping[str, str]] = []
    periods: list[Freeze] = []
    for i, item in enumerate(raw):
        path = f"{t.key('freezes')}[{i}]"
        if not isinstance(item, dict):
            t.problems.add(
                path, 'must be a table like { start = 2026-12-21, end = 2027-01-03, reason = "holidays" }'
            )
            continue
        f = Table(item, path, t.problems)
        start = _freeze_bound(f, "start")
        end = _freeze_bound(f, "end")
        reason = f.get("reason", str, "deploy freeze").strip() or "deploy freeze"
        f.finish()
        if start is None or end is None:
            continue
        try:
            period = parse_freeze(start, end, reason, tz)
        except ValueError as exc:
            message = str(exc)
            which = "start" if "freeze start" in message else "end"
            t.problems.add(f"{path}.{which}", message)
            continue
        texts.append({"start": start, "end": end, "reason": reason})
        periods.append(period)
    return tuple(texts), tuple(periods)
