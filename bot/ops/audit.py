"""Audit export: the event log as JSON Lines or CSV, for compliance reviews.

Events are read a page at a time (`paged_events`), so an export of millions of events streams
instead of loading them all. What retention (`bot.event_retention_days`) pruned is gone.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TextIO

from bot.domain.deployment import EventRecord
from bot.store.base import Store

FIELDS = ("id", "at", "actor", "action", "env", "deployment_id", "detail")


def _row(e: EventRecord) -> dict[str, object]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "actor": e.actor,
        "action": e.action,
        "env": e.env,
        "deployment_id": e.deployment_id,
        "detail": e.detail,
    }


def paged_events(store: Store, since: datetime | None = None, page: int = 10_000) -> Iterator[EventRecord]:
    """Every event (at or after `since`), oldest first, read `page` at a time."""
    after: int | None = None
    while True:
        batch = store.events(since=since, limit=page, after_id=after)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].id


def export_events(events: Iterable[EventRecord], out: TextIO, fmt: str = "jsonl") -> int:
    """Write `events` to `out` as `jsonl` or `csv`; returns how many were written."""
    count = 0
    if fmt == "jsonl":
        for e in events:
            out.write(json.dumps(_row(e), ensure_ascii=False) + "\n")
            count += 1
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        for e in events:
            writer.writerow(_row(e))
            count += 1
    else:
        raise ValueError(f"unknown format {fmt!r} (jsonl or csv)")
    return count


def parse_since(text: str) -> datetime:
    """`2026-11-01` or an ISO date-time, as an aware datetime **in UTC**.

    No offset means UTC; an offset (`+01:00`) is converted, so the store, which compares the
    ISO text it keeps in UTC, sees the same instant however it was written. ValueError if it
    is not a date.
    """
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
