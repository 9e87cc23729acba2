"""Event-log retention: old events go in small batches, newer ones stay and still export; the
engine's daily retention job applies `bot.event_retention_days` (0 keeps everything)."""

from __future__ import annotations

import io
import json
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.domain.deployment import EventRecord
from bot.ops.audit import export_events, paged_events
from bot.store import Store
from bot.store.base import Schedule
from bot.timing.clock import FakeClock
from tests.support.engines import make_engine
from tests.support.recording import RecordingChat
from tests.support.stores import STORE_BACKENDS, make_store

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    for module in ("bot.store.sqlite_upkeep", "bot.store.postgres_upkeep"):
        monkeypatch.setattr(f"{module}.PRUNE_EVENTS_BATCH", 10)  # several batches from a few events
    s = make_store(request.param, tmp_path)
    yield s
    s.close()


def add_events(store: Store, days_ago: list[int]) -> None:
    for i, days in enumerate(days_ago):
        at = NOW - timedelta(days=days, seconds=i)
        store.append_event(EventRecord(at=at, actor="alice", action="note", env="prod", detail=f"{days}d"))


def test_old_events_are_pruned_in_batches_and_the_rest_still_exports(store: Store) -> None:
    add_events(store, [400] * 25 + [10] * 7)
    assert store.prune_events(NOW - timedelta(days=365)) == 25
    kept = store.events()
    assert [e.detail for e in kept] == ["10d"] * 7
    out = io.StringIO()
    assert export_events(paged_events(store, page=3), out) == 7  # pages of 3: 3 + 3 + 1
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [e.id for e in kept]
    assert store.prune_events(NOW - timedelta(days=365)) == 0


def test_events_page_after_an_id(store: Store) -> None:
    add_events(store, [3, 2, 1])
    first, *rest = store.events()
    assert store.events(after_id=first.id) == rest
    assert store.events(after_id=first.id, limit=1) == rest[:1]


CONFIG = """
[bot]
data_dir = "{data}"
{retention}
[environments.prod]
backend = "local"
hosts = ["h1"]
[[environments.prod.steps.deploy]]
name = "ship"
run = "true"
"""


@pytest.mark.parametrize(
    ("retention", "left"), [("", 1), ("event_retention_days = 30", 0), ("event_retention_days = 0", 2)]
)
def test_the_daily_retention_job_keeps_the_configured_days_of_events(
    tmp_path: Path, retention: str, left: int
) -> None:
    text = CONFIG.format(data=tmp_path, retention=retention)
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    engine = make_engine(config, make_store("sqlite", tmp_path), RecordingChat(), clock=FakeClock(NOW))
    try:
        add_events(engine.store, [500, 100])  # beyond the default 365 days, and beyond 30
        engine._retention(Schedule(kind="retention", run_at=NOW))
        assert len(engine.store.events()) == left
    finally:
        engine.store.close()
