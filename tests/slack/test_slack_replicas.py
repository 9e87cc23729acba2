"""Two gonogo replicas behind one Slack app, sharing one PostgreSQL store.

Slack sends each click to whichever replica the load balancer picks, so two people clicking at
the same moment really are handled at the same moment, each on its own replica. The checklist
must keep both ticks: each click carries only what it changed, and the engine applies it
compare-and-set.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from bot.slack.blocks import card_blocks
from tests.slack.test_slack import ALICE, BOB, CAROL, at_once, running_bot
from tests.support.pgfixtures import drop_schema, new_schema_name, require_postgres, schema_url
from tests.support.slackapi import FakeSlack, Message, start_fake_slack, stop_fake_slack


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    fake = start_fake_slack()
    yield fake
    stop_fake_slack(fake)


@pytest.fixture
def shared_store() -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema (dropped afterwards)."""
    schema = new_schema_name()
    yield schema_url(require_postgres(), schema)
    drop_schema(schema)


def test_two_replicas_ticking_at_the_same_moment_keep_both_ticks(
    tmp_path: Path, slack_api: FakeSlack, shared_store: str
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_bot(tmp_path / "a", slack_api, store=shared_store) as a,
        running_bot(tmp_path / "b", slack_api, store=shared_store) as b,
    ):
        a.command("demo v1", user=ALICE)
        card = a.card("Deploy #1: v1 to demo")
        engine = a.runtime.engine

        def checklist_events() -> int:
            return [e.action for e in engine.store.events(deployment_id=1)].count("checklist")

        for r in range(10):
            # both clickers see the card of the stored state (a card from either replica)
            d = engine.deployment(1)
            view = Message(card.channel, card.ts, "card", card_blocks(engine.card(d)))
            ticking = r % 2 == 0
            bob, carol = (["1"], ["2"]) if ticking else (["2"], ["1"])
            at_once(partial(a.tick, view, BOB, bob), partial(b.tick, view, CAROL, carol))
            slack_api.wait_for(
                lambda r=r: checklist_events() == 2 * (r + 1), what=f"both clicks of round {r}"
            )
            assert engine.deployment(1).checklist == (ticking, ticking), f"round {r}: a tick was lost"
