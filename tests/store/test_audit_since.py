"""`gonogo audit export --since`: the same instant selects the same events whatever its offset."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import load_config
from bot.domain.deployment import EventRecord
from bot.ops.audit import parse_since
from bot.store.sqlite import SqliteStore

START = datetime(2026, 12, 1, 20, 0, 0, tzinfo=UTC)


@pytest.fixture
def config_with_events(demo_config_path: Path) -> Path:
    """The demo config with 60 events, one a second from 2026-12-01 20:00:00Z."""
    store = SqliteStore(load_config(demo_config_path).bot.data_dir / "gonogo.db")
    for i in range(60):
        store.append_event(
            EventRecord(
                at=START + timedelta(seconds=i), actor="alice", action="note", env="demo", detail=str(i)
            )
        )
    store.close()
    return demo_config_path


def export(config: Path, since: str) -> list[dict[str, object]]:
    """Run `gonogo audit export --since SINCE` and parse its JSON lines."""
    proc = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "audit", "export", "--config", str(config), "--since", since],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize(
    "since",
    ["2026-12-01T20:00:30Z", "2026-12-01T21:00:30+01:00", "2026-12-01T15:00:30-05:00", "2026-12-01T20:00:30"],
)
def test_the_same_instant_in_any_offset_exports_the_same_events(config_with_events: Path, since: str) -> None:
    events = export(config_with_events, since)
    assert [e["detail"] for e in events] == [str(i) for i in range(30, 60)]


def test_a_date_is_midnight_utc(config_with_events: Path) -> None:
    assert len(export(config_with_events, "2026-12-01")) == 60
    assert export(config_with_events, "2026-12-02") == []


def test_parse_since_returns_utc() -> None:
    paris = parse_since("2026-12-01T21:00:30+01:00")
    assert paris.tzinfo == UTC and paris == datetime(2026, 12, 1, 20, 0, 30, tzinfo=UTC)
    assert parse_since("2026-12-01").tzinfo == UTC
    assert parse_since("2026-06-01T02:00:00+05:30") == datetime(2026, 5, 31, 20, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_since("last tuesday")
