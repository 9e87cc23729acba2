"""Sign-off on its own: the sign-off card, ticks, Keep and ROLL BACK over the engine's narrow
interfaces, with a fixed clock and a stand-in for rollbacks that only records what was asked."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from bot.chat.base import StaticDirectory
from bot.config import parse_config
from bot.domain.deployment import Deployment, EventRecord, State
from bot.domain.errors import Refused
from bot.engine.ledger import Ledger
from bot.engine.notify import Notifier
from bot.engine.signoff import SignOff
from bot.store.sqlite import SqliteStore
from bot.timing.clock import FakeClock
from bot.timing.scheduler import Scheduler
from tests.support.recording import RecordingChat

CONFIG = """
[bot]
channel = "#deploys"
[environments.web]
backend = "local"
hosts = ["localhost"]
signoff_checklist = ["Smoke tests passed", "No error spike"]
signoff_reminder = "1h"
[[environments.web.steps.deploy]]
name = "deploy"
run = "true"
"""


@dataclass
class RollbacksAsked:
    """Stands in for `bot.engine.rollbacks.Rollbacks`: creates the rollback row, runs nothing."""

    store: SqliteStore
    clock: FakeClock
    asked: list[tuple[str, int | None]] = field(default_factory=list)

    def rollback_target(self, env: str, current: Deployment) -> Deployment:
        earlier = [d for d in self.store.deployments(env, limit=10) if d.id != current.id]
        if not earlier:
            raise Refused(f"{env} has no earlier successful release to roll back to")
        return earlier[0]

    def request_rollback(
        self, user: str, channel: str, env: str, *, target_id: int | None = None, reason: str | None = None
    ) -> Deployment:
        self.asked.append((user, target_id))
        current = self.store.current_release(env)
        assert current is not None
        rb = Deployment(env=env, kind="rollback", requester=user, ref="v1", sha=None, created_at=self.clock.now(),
                        rollback_of=current.id, channel=channel, required_approvals=1)  # fmt: skip
        return self.store.create_deployment(rb, EventRecord(at=self.clock.now(), actor=user, action="test"))


@dataclass
class World:
    signoffs: SignOff
    store: SqliteStore
    clock: FakeClock
    chat: RecordingChat
    timers: Scheduler
    rollbacks: RollbacksAsked
    v1: Deployment
    v2: Deployment

    def row(self, d: Deployment) -> Deployment:
        got = self.store.get(d.id)  # type: ignore[arg-type]
        assert got is not None
        return got

    def finish(self, rollback: Deployment, state: State) -> None:
        """The rollback ends in `state` (as the runs would save it); the engine's hook fires."""
        fresh = self.row(rollback)
        done = self.store.transition(replace(fresh, state=state), fresh.version)
        self.signoffs.on_rollback_finished(done)


def _live(store: SqliteStore, clock: FakeClock, ref: str) -> Deployment:
    d = Deployment(env="web", requester="alice", ref=ref, sha=None, created_at=clock.now(), state=State.SUCCEEDED,
                   channel="#deploys", live_at=clock.now())  # fmt: skip
    d = store.create_deployment(d, EventRecord(at=clock.now(), actor="alice", action="test"))
    clock.advance(minutes=1)
    return store.transition(replace(d, release_id=d.id), d.version)


@pytest.fixture
def world() -> World:
    config = parse_config(tomllib.loads(CONFIG), environ={})
    store = SqliteStore(":memory:")
    clock = FakeClock()
    ledger = Ledger(config, store, clock)
    chat = RecordingChat()
    notify = Notifier(chat, ledger, store, single_process=True)
    timers = Scheduler(store, clock)
    rollbacks = RollbacksAsked(store, clock)
    signoffs = SignOff(ledger, store, notify, timers, rollbacks, StaticDirectory())  # type: ignore[arg-type]
    v1, v2 = _live(store, clock, "v1"), _live(store, clock, "v2")
    return World(signoffs, store, clock, chat, timers, rollbacks, v1, v2)


def test_keep_needs_every_item_ticked_then_closes_the_deployment(world: World) -> None:
    world.signoffs.request("bob", "#deploys", "web")
    with pytest.raises(Refused, match=r"tick every sign-off item before Keep \(open: 1, 2\)"):
        world.signoffs.keep("bob", world.v2.id)  # type: ignore[arg-type]
    world.signoffs.set_checklist("bob", world.v2.id, {1: True, 2: True})  # type: ignore[arg-type]
    world.signoffs.keep("bob", world.v2.id)  # type: ignore[arg-type]
    closed = world.row(world.v2)
    assert closed.state == State.SIGNED_OFF and closed.details["signoff"]["decision"] == "KEEP"
    with pytest.raises(Refused, match="already signed off: KEEP by bob"):
        world.signoffs.keep("carol", world.v2.id)  # type: ignore[arg-type]


def test_asking_twice_refreshes_the_one_card(world: World) -> None:
    world.signoffs.request("bob", "#deploys", "web")
    with pytest.raises(Refused, match="already posted"):
        world.signoffs.request("carol", "#deploys", "web")
    assert len([m for m in world.chat.of_kind("card") if m.card and m.card.kind == "signoff"]) == 1


def test_roll_back_is_final_only_once_its_rollback_has_happened(world: World) -> None:
    world.signoffs.request("bob", "#deploys", "web")
    rollback = world.signoffs.roll_back("bob", world.v2.id)  # type: ignore[arg-type]
    assert world.rollbacks.asked == [("bob", world.v1.id)]  # named explicitly: the release before
    pending = world.row(world.v2).details["signoff"]
    assert pending["rollback"]["id"] == rollback.id and "decision" not in pending
    with pytest.raises(Refused, match="ROLL BACK of #2 was already requested by bob"):
        world.signoffs.roll_back("carol", world.v2.id)  # type: ignore[arg-type]
    world.finish(rollback, State.SUCCEEDED)
    signoff = world.row(world.v2).details["signoff"]
    assert signoff["decision"] == "ROLL BACK" and signoff["rollback_id"] == rollback.id


def test_a_declined_rollback_opens_the_sign_off_again(world: World) -> None:
    world.signoffs.request("bob", "#deploys", "web")
    rollback = world.signoffs.roll_back("bob", world.v2.id)  # type: ignore[arg-type]
    world.finish(rollback, State.DECLINED)
    signoff = world.row(world.v2).details["signoff"]
    assert "rollback" not in signoff and "decision" not in signoff
    assert "was declined, nothing was rolled back" in signoff["reopened"]["why"]
    assert "the sign-off of #2 is open again" in world.chat.texts()


def test_a_refused_rollback_request_takes_the_claim_back(world: World) -> None:
    def refuse(*args: object, **kwargs: object) -> Deployment:
        raise Refused("web is busy")

    world.signoffs.request("bob", "#deploys", "web")
    world.rollbacks.request_rollback = refuse  # type: ignore[method-assign]
    with pytest.raises(Refused, match="web is busy"):
        world.signoffs.roll_back("bob", world.v2.id)  # type: ignore[arg-type]
    assert "rollback" not in world.row(world.v2).details["signoff"]  # the claim was taken back


def test_a_reminder_is_posted_when_nobody_signs_off_in_time(world: World) -> None:
    world.signoffs.schedule_reminder(world.v2)
    world.clock.advance(timedelta(minutes=59).total_seconds())
    assert world.timers.run_due() == 0
    world.clock.advance(minutes=1)
    assert world.timers.run_due() == 1
    assert "⏰ #2 in web is not signed off yet: /signoff web" in world.chat.texts()
