"""Policies, sign-off, status, history, stats and audit: a fixed clock, real SQLite, local hosts."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Config, parse_config
from bot.domain.deployment import State
from bot.engine.engine import Engine, Refused
from bot.store.sqlite import SqliteStore
from bot.timing.clock import FakeClock
from commands.handlers import Context, handle_action, handle_text
from tests.support.recording import RecordingChat

CONFIG = """
[bot]
data_dir = "{data}"
[environments.prod]
backend = "local"
hosts = ["h1"]
timezone = "Europe/Paris"
windows = ["Mon-Thu 09:00-16:00"]
freezes = [{{ start = "2026-12-21", end = "2027-01-03", reason = "holidays" }}]
break_glass = ["root"]
approval_ttl = "1h"
checklist = ["backup"]
signoff_checklist = ["smoke ok", "no error spike"]
signoff_reminder = "2h"
[environments.prod.approvals]
required = 1
[[environments.prod.steps.deploy]]
name = "ship"
run = "echo {{ref}} >> {data}/shipped"
[[environments.prod.steps.rollback]]
name = "back"
run = "echo back {{ref}} >> {data}/shipped"
"""

MONDAY_11_PARIS = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FRIDAY_11_PARIS = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse_config(tomllib.loads(CONFIG.format(data=tmp_path)), source=tmp_path / "c.toml", environ={})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_11_PARIS)


@pytest.fixture
def engine(config: Config, tmp_path: Path, clock: FakeClock, chat: RecordingChat) -> Engine:
    e = Engine(config, SqliteStore(tmp_path / "db.sqlite"), chat, clock=clock)
    e.start(run_scheduler=False)  # timed work is fired by hand with scheduler.run_due()
    yield e
    e.shutdown()


def go(e: Engine, deployment_id: int, approver: str = "bob") -> None:
    e.tick_all(approver, deployment_id)
    e.approve(approver, deployment_id)
    e.wait_idle(30)


def test_outside_the_window_is_refused_with_the_next_window(engine: Engine, clock: FakeClock) -> None:
    clock.set(FRIDAY_11_PARIS)
    with pytest.raises(Refused) as info:
        engine.request_deploy("alice", "#d", "prod", "v1")
    assert "outside deploy windows" in str(info.value)
    assert "next window opens Mon 2026-11-30 09:00 CET" in str(info.value)
    assert "break-glass" in str(info.value)
    # the same instant is inside the window for a Monday in Paris
    clock.set(MONDAY_11_PARIS)
    engine.request_deploy("alice", "#d", "prod", "v1")


def test_freeze_refuses_with_its_reason(engine: Engine, clock: FakeClock) -> None:
    clock.set(datetime(2026, 12, 22, 10, 0, tzinfo=UTC))  # a Tuesday in the freeze
    with pytest.raises(Refused, match="holidays"):
        engine.request_deploy("alice", "#d", "prod", "v1")


def test_force_is_only_for_break_glass_and_needs_one_more_approval(
    engine: Engine, clock: FakeClock, chat: RecordingChat
) -> None:
    clock.set(FRIDAY_11_PARIS)
    with pytest.raises(Refused, match="only for its break-glass group"):
        engine.request_deploy("alice", "#d", "prod", "v1", force=True)
    d = engine.request_deploy("root", "#d", "prod", "hotfix", force=True, reason="incident 7")
    assert d.required_approvals == 2 and d.force
    card = chat.last_card(d.id)  # type: ignore[arg-type]
    assert any("Safeties ignored with --force: deploy window" in w for w in card.warnings)
    assert ("Forced", "yes: safeties ignored (recorded)") in card.fields
    go(engine, d.id, "bob")  # type: ignore[arg-type]
    assert engine.deployment(d.id).state == State.PENDING  # type: ignore[arg-type]
    go(engine, d.id, "carol")  # type: ignore[arg-type]
    assert engine.deployment(d.id).state == State.SUCCEEDED  # type: ignore[arg-type]
    request = engine.store.events(deployment_id=d.id)[0]
    assert "--force ignoring deploy window" in (request.detail or "")
    refusals = [e for e in engine.store.events(env="prod") if e.action == "refused_force"]
    assert refusals and refusals[0].actor == "alice"


def test_unapproved_card_expires_and_loses_its_buttons(
    engine: Engine, clock: FakeClock, chat: RecordingChat
) -> None:
    d = engine.request_deploy("alice", "#d", "prod", "v1")
    clock.advance(minutes=59)
    assert engine.scheduler.run_due() == 0
    clock.advance(minutes=2)
    assert engine.scheduler.run_due() == 1
    expired = engine.deployment(d.id)  # type: ignore[arg-type]
    assert expired.state == State.EXPIRED
    assert chat.last_card(d.id).buttons == ()  # type: ignore[arg-type]
    assert any("expired" in m.text for m in chat.of_kind("thread"))
    with pytest.raises(Refused, match="already expired"):
        engine.approve("bob", d.id)  # type: ignore[arg-type]
    engine.request_deploy("alice", "#d", "prod", "v2")  # the environment is free again


def test_scheduled_deploy_starts_at_its_time_and_can_be_cancelled(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    ctx = Context("alice", "#d")
    reply = handle_text(engine, "/deploy", "prod v9 --at 15:30", ctx)
    assert reply is not None and "will start at 2026-11-23 14:30 UTC" in reply.text
    d = engine.store.active("prod")
    assert d is not None
    go(engine, d.id, "bob")  # type: ignore[arg-type]
    assert engine.deployment(d.id).state == State.SCHEDULED  # type: ignore[arg-type]
    clock.advance(hours=4)  # 15:00 Paris: not yet
    assert engine.scheduler.run_due() == 0
    clock.advance(minutes=31)
    assert engine.scheduler.run_due() == 1
    engine.wait_idle(30)
    assert engine.deployment(d.id).state == State.SUCCEEDED  # type: ignore[arg-type]
    assert (tmp_path / "shipped").read_text().split() == ["v9"]
    # outside the window --at is refused; a second scheduled one is cancelled
    assert "outside deploy windows" in handle_text(engine, "/deploy", "prod v10 --at 20:00", ctx).text  # type: ignore[union-attr]
    handle_text(engine, "/deploy", "prod v10 --at 2026-11-24T10:00", ctx)
    pending = engine.store.active("prod")
    go(engine, pending.id, "bob")  # type: ignore[union-attr,arg-type]
    cancelled = handle_text(engine, "/deploy", f"cancel {pending.id}", ctx)  # type: ignore[union-attr]
    assert cancelled is not None and "cancelled by alice" in cancelled.text
    clock.advance(days=1)
    assert engine.scheduler.run_due() == 1  # only the 2h sign-off reminder of v9 remains
    assert engine.deployment(pending.id).state == State.CANCELLED  # type: ignore[union-attr,arg-type]


def test_signoff_keep_needs_every_item_and_closes_the_deploy(
    engine: Engine, clock: FakeClock, chat: RecordingChat
) -> None:
    d = engine.request_deploy("alice", "#d", "prod", "v1")
    go(engine, d.id)  # type: ignore[arg-type]
    ctx = Context("bob", "#d")
    assert handle_text(engine, "/signoff", "prod", ctx) is None
    card = chat.of_kind("card")[-1].card
    assert (
        card is not None
        and card.kind == "signoff"
        and [b.label for b in card.buttons] == ["Keep", "Roll back"]
    )
    refused = handle_action(engine, "keep", str(d.id), ctx)
    assert refused is not None and "tick every sign-off item before Keep (open: 1, 2)" in refused.text
    handle_action(engine, "signoff_checklist", str(d.id), ctx, changes={1: True, 2: True})
    kept = handle_action(engine, "keep", str(d.id), ctx)
    assert kept is not None and "signed off (KEEP) by bob" in kept.text
    closed = engine.deployment(d.id)  # type: ignore[arg-type]
    assert closed.state == State.SIGNED_OFF and closed.details["signoff"]["by"] == "bob"
    assert chat.of_kind("update")[-1].card.status_line == "🏁 KEEP by bob at 2026-11-23 10:00 UTC"  # type: ignore[union-attr]
    # the reminder no longer fires once signed off
    clock.advance(hours=3)
    engine.scheduler.run_due()
    assert not any("not signed off yet" in m.text for m in chat.of_kind("thread"))


def test_signoff_roll_back_starts_a_rollback_and_reminders_fire(
    engine: Engine, clock: FakeClock, chat: RecordingChat
) -> None:
    first = engine.request_deploy("alice", "#d", "prod", "v1")
    go(engine, first.id)  # type: ignore[arg-type]
    second = engine.request_deploy("alice", "#d", "prod", "v2")
    go(engine, second.id)  # type: ignore[arg-type]
    clock.advance(hours=2, minutes=1)
    engine.scheduler.run_due()
    assert any(f"#{second.id} in prod is not signed off yet" in m.text for m in chat.of_kind("thread"))
    engine.signoff("bob", "#d", "prod")
    reply = handle_action(engine, "signoff_rollback", str(second.id), Context("bob", "#d"))
    assert reply is not None and "ROLL BACK" in reply.text
    rollback = engine.store.active("prod")
    assert rollback is not None and rollback.kind == "rollback" and rollback.ref == "v1"


def test_status_history_and_stats_over_a_known_history(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    ctx = Context("alice", "#d")
    for ref in ("v1", "v2", "v3"):
        d = engine.request_deploy("alice", "#d", "prod", ref)
        clock.advance(minutes=10)
        go(engine, d.id)  # type: ignore[arg-type]
        clock.advance(hours=1)
    rb = engine.request_rollback("alice", "#d", "prod")
    go(engine, rb.id)  # type: ignore[arg-type]
    engine.lock("bob", "prod", "db maintenance")
    status = handle_text(engine, "/status", "", ctx)
    assert status is not None and "*prod*: v2" in status.text and "locked by bob" in status.text
    history = handle_text(engine, "/deploy", "history prod --limit 2", ctx)
    assert history is not None and history.text.count("\n") == 2 and "#4 rollback v2" in history.text
    stats = handle_text(engine, "/deploy", "stats prod --days 7", ctx)
    assert stats is not None
    assert "3 in 7 days" in stats.text  # frequency: three deploys
    assert "Change failure rate: 33.3% (1 of 3)" in stats.text  # v3 was rolled back


def test_audit_export_round_trips(engine: Engine, config: Config, tmp_path: Path) -> None:
    d = engine.request_deploy("alice", "#d", "prod", "v1")
    go(engine, d.id)  # type: ignore[arg-type]
    engine.lock("bob", "prod", 'freeze, with "quotes"')
    engine.shutdown()
    config_path = tmp_path / "c.toml"
    config_path.write_text(
        CONFIG.format(data=tmp_path).replace(
            'data_dir = "', 'store = "sqlite:///' + str(tmp_path / "db.sqlite") + '"\ndata_dir = "'
        )
    )
    run = [sys.executable, "-m", "bot.app.cli", "audit", "export", "--config", str(config_path)]
    jsonl = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    events = [json.loads(line) for line in jsonl.splitlines()]
    assert [e["action"] for e in events][:2] == ["request_deploy", "checklist"]
    assert events[-1]["action"] == "lock" and events[-1]["detail"] == 'freeze, with "quotes"'
    rows = list(
        csv.DictReader(
            io.StringIO(
                subprocess.run([*run, "--format", "csv"], capture_output=True, text=True, check=True).stdout
            )
        )
    )
    assert [r["action"] for r in rows] == [e["action"] for e in events]
    later = subprocess.run([*run, "--since", "2030-01-01"], capture_output=True, text=True, check=True).stdout
    assert later == ""
    bad = subprocess.run([*run, "--since", "yesterday"], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a date" in bad.stderr


def test_force_inside_an_open_window_sets_nothing_aside_and_asks_no_extra_approval(
    engine: Engine, chat: RecordingChat
) -> None:
    d = engine.request_deploy("root", "#d", "prod", "hotfix", force=True)  # Monday 11:00: open
    assert d.required_approvals == 1
    card = chat.last_card(d.id)  # type: ignore[arg-type]
    assert ("Forced", "yes (no safety was in the way)") in card.fields
    assert not any("Safeties ignored" in w for w in card.warnings)


def test_at_the_current_minute_is_refused_and_the_card_shows_the_environments_time(
    engine: Engine, clock: FakeClock, chat: RecordingChat
) -> None:
    clock.advance(seconds=20)  # 11:00:20 in Paris
    with pytest.raises(Refused, match="--at 11:00 is now: leave out --at"):
        engine.request_deploy("alice", "#d", "prod", "v1", at="11:00")
    d = engine.request_deploy("alice", "#d", "prod", "v1", at="15:30")
    assert ("Scheduled", "Mon 2026-11-23 15:30 CET") in chat.last_card(d.id).fields  # type: ignore[arg-type]
