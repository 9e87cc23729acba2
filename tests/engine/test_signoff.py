"""Sign-off through the real engine: SQLite store, recording chat, local hosts, a fixed clock.

What the audit found, as behaviour: Roll back decides once and returns to the release before
*that* deployment; Keep needs the configured checklist ticked and the live deployment; a
rollback that does not happen reopens the sign-off; the card says who decided and when;
concurrent ticks all count; one card per deployment; only signers may decide, and refusals
are in the event log.
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config import parse_config
from bot.domain.card import Card
from bot.domain.deployment import Deployment, State
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
checklist = ["backup"]
signoff_checklist = ["smoke ok", "no error spike"]
signoff_reminder = "2h"
{extra}
[environments.prod.approvals]
required = 1
rollback_required = {rollback_required}
[[environments.prod.steps.deploy]]
name = "ship"
run = "echo {{ref}} >> {data}/shipped"
[[environments.prod.steps.rollback]]
name = "back"
run = "echo back {{ref}} >> {data}/shipped"
"""

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class RacingStore(SqliteStore):
    """SQLite, plus a barrier that makes the next two compare-and-set writes start together
    (both writers have read the same row by then): the lost-update race, every time."""

    barrier: threading.Barrier | None = None

    def transition(self, d: Deployment, expected_version: int, event: Any = None) -> Deployment:
        """Wait at the barrier (once) before the real compare-and-set."""
        barrier = self.barrier
        if barrier is not None:
            try:
                barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
        return super().transition(d, expected_version, event)


Make = Callable[..., Engine]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock, chat: RecordingChat) -> Iterator[Make]:
    """Build the engine with `rollback_required` and extra environment lines."""
    engines: list[Engine] = []

    def build(rollback_required: int = 1, extra: str = "") -> Engine:
        text = CONFIG.format(data=tmp_path, extra=extra, rollback_required=rollback_required)
        config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
        engine = Engine(config, RacingStore(tmp_path / "db.sqlite"), chat, clock=clock)
        engine.start(run_scheduler=False)  # timed work is fired by hand with scheduler.run_due()
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.shutdown()


def deploy(engine: Engine, ref: str) -> Deployment:
    """Request `ref` as alice, bob ticks and approves; returns it once it is live."""
    d = engine.request_deploy("alice", "#d", "prod", ref)
    assert d.id is not None
    engine.tick_all("bob", d.id)
    engine.approve("bob", d.id)
    assert engine.wait_idle(30)
    return engine.deployment(d.id)


def signoff_cards(chat: RecordingChat, deployment_id: int) -> list[Card]:
    """Every sign-off card posted or updated for a deployment, oldest first."""
    return [
        m.card
        for m in chat.messages
        if m.card is not None and m.card.kind == "signoff" and m.card.deployment_id == deployment_id
    ]


def press(engine: Engine, action: str, d: Deployment, user: str = "bob", **kw: Any) -> str:
    """A button press through the command handlers; the reply text ('' for none)."""
    reply = handle_action(engine, action, str(d.id), Context(user, "#d"), **kw)
    return reply.text if reply is not None else ""


def shipped(tmp_path: Path) -> list[str]:
    return (tmp_path / "shipped").read_text().splitlines()


def actions(engine: Engine, deployment_id: int | None) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.action, e.detail) for e in engine.store.events(deployment_id=deployment_id)]


# -- finding 1: Roll back decides once, back to the release before that deployment ---------------
def test_roll_back_twice_rolls_back_once_to_the_release_before(make: Make, tmp_path: Path) -> None:
    engine = make(rollback_required=0)
    deploy(engine, "v1")
    v2 = deploy(engine, "v2")
    v3 = deploy(engine, "v3")
    engine.signoff("bob", "#d", "prod")
    first = press(engine, "signoff_rollback", v3)
    assert first.startswith("ROLL BACK requested by bob: rollback #4")
    engine.wait_idle(30)
    second = press(engine, "signoff_rollback", v3)
    assert second.startswith("Refused: #3 was already signed off: ROLL BACK by bob at 2026-11-23 10:00 UTC")
    engine.wait_idle(30)
    # hosts run v2 (the release before #3), not v1: one rollback only
    assert shipped(tmp_path) == ["v1", "v2", "v3", "back v2"]
    assert [d.id for d in engine.store.deployments("prod", kind="rollback")] == [4]
    current = engine.store.current_release("prod")
    assert current is not None and current.id == 4 and current.release_id == v2.id
    assert engine.deployment(v3.id).state == State.ROLLED_BACK  # type: ignore[arg-type]


def test_roll_back_of_a_deployment_that_no_longer_runs_is_refused(make: Make) -> None:
    engine = make(rollback_required=0)
    v1 = deploy(engine, "v1")
    deploy(engine, "v2")
    reply = press(engine, "signoff_rollback", v1)
    assert reply == "Refused: #1 is no longer what prod runs (#2 is); /signoff prod signs off what runs now"
    assert engine.store.deployments("prod", kind="rollback") == []
    assert ("bob", "refused_signoff_rollback", reply.removeprefix("Refused: ")) in actions(engine, v1.id)


# -- finding 2: Keep needs the configured checklist, on what runs now ----------------------------
def test_keep_without_the_checklist_or_on_an_old_deployment_is_refused(make: Make) -> None:
    engine = make()
    v1 = deploy(engine, "v1")
    # Keep pressed although /signoff was never posted: nothing is ticked
    reply = press(engine, "keep", v1)
    assert reply == (
        "Refused: tick every sign-off item before Keep (open: 1, 2); /signoff prod posts the checklist"
    )
    assert engine.deployment(v1.id).state == State.SUCCEEDED  # type: ignore[arg-type]
    engine.signoff("bob", "#d", "prod")
    press(engine, "signoff_checklist", v1, changes={1: True, 2: True})
    v2 = deploy(engine, "v2")  # #1 is no longer live, although its sign-off is fully ticked
    reply = press(engine, "keep", v1)
    assert reply == "Refused: #1 is no longer what prod runs (#2 is); /signoff prod signs off what runs now"
    assert engine.deployment(v1.id).state == State.SUCCEEDED  # type: ignore[arg-type]
    assert signoff_cards(engine.chat, v1.id)[-1].buttons == ()  # type: ignore[arg-type]
    refused = [a for a in actions(engine, v1.id) if a[1] == "refused_sign_off"]
    assert len(refused) == 2
    engine.signoff("bob", "#d", "prod")
    press(engine, "signoff_checklist", v2, changes={1: True, 2: True})
    assert "signed off (KEEP) by bob" in press(engine, "keep", v2)


# -- finding 3: ROLL BACK is final only once the rollback happened --------------------------------
def test_a_declined_sign_off_rollback_reopens_the_sign_off(make: Make, clock: FakeClock) -> None:
    engine = make(rollback_required=1)
    deploy(engine, "v1")
    v2 = deploy(engine, "v2")
    engine.signoff("bob", "#d", "prod")
    assert press(engine, "signoff_rollback", v2).startswith("ROLL BACK requested by bob: rollback #3")
    pending = signoff_cards(engine.chat, v2.id)[-1]  # type: ignore[arg-type]
    assert pending.buttons == () and pending.status_line.startswith("↩️ ROLL BACK requested by bob")
    assert ("Decided", "ROLL BACK by bob at 2026-11-23 10:00 UTC (pending)") in pending.fields
    assert "decision" not in engine.deployment(v2.id).details["signoff"]  # type: ignore[arg-type]
    refused = press(engine, "signoff_checklist", v2, changes={1: True})
    assert refused.startswith("Refused: ROLL BACK of #2 was already requested by bob")
    assert press(engine, "signoff_rollback", v2).startswith("Refused: ROLL BACK of #2 was already requested")
    # carol says No-go to the rollback: nothing was rolled back, so the sign-off opens again
    engine.decline("carol", 3)  # the engine settles the sign-off at once (no timer needed)
    reopened = signoff_cards(engine.chat, v2.id)[-1]  # type: ignore[arg-type]
    assert [b.label for b in reopened.buttons] == ["Keep", "Roll back"]
    assert any("rollback #3 was declined, nothing was rolled back" in w for w in reopened.warnings)
    assert any("is open again" in m.text for m in engine.chat.of_kind("thread"))
    assert ("gonogo", "signoff_reopened", "rollback #3 was declined, nothing was rolled back") in actions(
        engine, v2.id
    )
    # and it can be decided again
    press(engine, "signoff_checklist", v2, changes={1: True, 2: True})
    assert "signed off (KEEP) by bob" in press(engine, "keep", v2)
    assert engine.deployment(v2.id).state == State.SIGNED_OFF  # type: ignore[arg-type]


def test_a_sign_off_rollback_becomes_final_when_it_is_done(make: Make, clock: FakeClock) -> None:
    engine = make(rollback_required=1)
    deploy(engine, "v1")
    v2 = deploy(engine, "v2")
    engine.signoff("bob", "#d", "prod")
    press(engine, "signoff_rollback", v2)
    clock.advance(minutes=5)
    engine.approve("carol", 3)
    engine.wait_idle(30)
    assert engine.deployment(3).state == State.SUCCEEDED
    # the engine settled it the moment the rollback was done, before anyone acted again
    assert engine.deployment(v2.id).details["signoff"]["decision"] == "ROLL BACK"  # type: ignore[arg-type]
    reply = press(engine, "keep", v2)
    assert reply == "Refused: #2 was already signed off: ROLL BACK by bob at 2026-11-23 10:00 UTC"
    signoff = engine.deployment(v2.id).details["signoff"]  # type: ignore[arg-type]
    assert signoff["decision"] == "ROLL BACK" and signoff["by"] == "bob" and signoff["rollback_id"] == 3
    card = signoff_cards(engine.chat, v2.id)[-1]  # type: ignore[arg-type]
    assert card.status_line == "🏁 ROLL BACK by bob at 2026-11-23 10:00 UTC" and card.buttons == ()
    assert ("Rolled back by", "#3 at 2026-11-23 10:05 UTC") in card.fields
    assert ("gonogo", "sign_off", "ROLL BACK (decided by bob; done by #3)") in actions(engine, v2.id)


# -- finding 4: the card says when -----------------------------------------------------------------
def test_the_signoff_card_shows_who_decided_and_when(make: Make, clock: FakeClock) -> None:
    engine = make(rollback_required=1)
    deploy(engine, "v1")
    v2 = deploy(engine, "v2")
    engine.signoff("bob", "#d", "prod")
    clock.advance(minutes=3)
    press(engine, "signoff_rollback", v2)  # pending: who asked, and when
    card = signoff_cards(engine.chat, v2.id)[-1]  # type: ignore[arg-type]
    assert ("Decided", "ROLL BACK by bob at 2026-11-23 10:03 UTC (pending)") in card.fields
    assert card.status_line == "↩️ ROLL BACK requested by bob: rollback #3 is pending; final once it is done"
    engine.cancel("bob", 3)
    clock.advance(minutes=4)
    press(engine, "signoff_checklist", v2, changes={1: True, 2: True})  # settles: open again
    press(engine, "keep", v2)
    card = signoff_cards(engine.chat, v2.id)[-1]  # type: ignore[arg-type]
    assert card.status_line == "🏁 KEEP by bob at 2026-11-23 10:07 UTC"
    assert card.warnings == ()  # the reopening note goes once it is decided


# -- finding 5: two people ticking at once ---------------------------------------------------------
def test_concurrent_ticks_are_never_lost(make: Make) -> None:
    engine = make()
    v1 = deploy(engine, "v1")
    engine.signoff("bob", "#d", "prod")
    store = engine.store
    assert isinstance(store, RacingStore)
    store.barrier = threading.Barrier(2, action=lambda: setattr(store, "barrier", None))
    errors: list[BaseException] = []

    def tick(user: str, number: int) -> None:
        try:
            engine.signoffs.set_checklist(user, v1.id, {number: True})  # type: ignore[arg-type]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=tick, args=(u, n)) for u, n in (("bob", 1), ("carol", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert engine.deployment(v1.id).details["signoff"]["ticked"] == [True, True]  # type: ignore[arg-type]
    assert "signed off (KEEP) by bob" in press(engine, "keep", v1)


# -- finding 6: one sign-off card --------------------------------------------------------------------
def test_signoff_twice_refreshes_and_points_to_the_one_card(make: Make, chat: RecordingChat) -> None:
    engine = make()
    v1 = deploy(engine, "v1")
    assert handle_text(engine, "/signoff", "prod", Context("bob", "#d")) is None
    press(engine, "signoff_checklist", v1, changes={1: True})
    again = handle_text(engine, "/signoff", "prod", Context("carol", "#d"))
    assert again is not None and again.text == (
        "Refused: the sign-off card of #1 is already posted in #d (asked by bob at 2026-11-23 10:00 UTC); "
        "it is up to date: tick and decide there"
    )
    posted = [m for m in chat.of_kind("card") if m.card is not None and m.card.kind == "signoff"]
    assert len(posted) == 1
    latest = signoff_cards(chat, v1.id)[-1]  # type: ignore[arg-type]
    assert [i.ticked for i in latest.checklist] == [True, False]
    assert [m.ts for m in chat.messages if m.card is latest] == [posted[0].ts]  # the same message, updated


# -- finding 7: only signers decide; refusals are recorded ------------------------------------------
def test_only_signers_may_tick_keep_or_roll_back_and_refusals_are_recorded(make: Make) -> None:
    engine = make(rollback_required=0, extra='signoff_by = ["carol"]')
    deploy(engine, "v1")
    v2 = deploy(engine, "v2")
    engine.signoff("bob", "#d", "prod")
    no = "Refused: you are not allowed to sign off prod"
    assert press(engine, "signoff_checklist", v2, changes={1: True, 2: True}) == no
    assert press(engine, "keep", v2) == no
    assert press(engine, "signoff_rollback", v2) == no
    assert engine.deployment(v2.id).state == State.SUCCEEDED  # type: ignore[arg-type]
    assert engine.store.deployments("prod", kind="rollback") == []
    refusals = [(a, d) for who, a, d in actions(engine, v2.id) if who == "bob" and a.startswith("refused_")]
    assert refusals == [
        ("refused_signoff_checklist", "you are not allowed to sign off prod"),
        ("refused_sign_off", "you are not allowed to sign off prod"),
        ("refused_signoff_rollback", "you are not allowed to sign off prod"),
    ]
    press(engine, "signoff_checklist", v2, "carol", changes={1: True, 2: True})
    assert "signed off (KEEP) by carol" in press(engine, "keep", v2, "carol")
    with pytest.raises(Refused, match="already signed off: KEEP by carol"):
        engine.signoffs.roll_back("carol", v2.id)  # type: ignore[arg-type]
