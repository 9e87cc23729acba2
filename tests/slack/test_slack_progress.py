"""The Slack card shows a rollout's progress per stage, coalesced within Slack's rate limits.

The real Slack app (HTTP mode under uvicorn, Bolt, SQLite) deploys to twelve hosts on the local
backend; the local Slack Web API fake records every `chat.update` of the card.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.domain.deployment import State
from tests.slack import test_slack
from tests.slack.test_slack import BOB, running_bot
from tests.support.slackapi import FakeSlack, start_fake_slack, stop_fake_slack

FLEET = """
[environments.fleet]
backend = "local"
hosts = ["h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10", "h11", "h12"]
deploy_to = "{data_dir}/fleet"
[environments.fleet.strategy]
kind = "canary"
canary = 1
batch_size = 4
max_parallel = 4
[environments.fleet.approvals]
required = 1
[[environments.fleet.steps.deploy]]
name = "install"
run = "sleep 0.2"
[[environments.fleet.steps.deploy]]
name = "restart"
run = "sleep 0.1"
"""
WINDOW = 0.3


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    fake = start_fake_slack()
    yield fake
    stop_fake_slack(fake)


def test_the_card_shows_each_stage_coalesced(
    tmp_path: Path, slack_api: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(test_slack, "EXTRA_ENVS", test_slack.EXTRA_ENVS + FLEET)
    with running_bot(tmp_path, slack_api, window=WINDOW) as bot:
        bot.command("fleet main")
        card = bot.card("Deploy #1: main to fleet")
        started = time.monotonic()
        bot.press(card, "go", BOB)
        bot.wait_card(card.ts, "✅ deployed")
        took = time.monotonic() - started
        assert bot.store_state(1) == State.SUCCEEDED
        record = bot.runtime.engine.deployment(1).details.stages
    updates = [c for c in slack_api.ok_calls("chat.update") if c.params.get("ts") == card.ts]
    shown = [json.dumps(c.params.get("blocks"), ensure_ascii=False) for c in updates]
    lines = [
        m
        for text in shown
        for m in re.findall(r"🚀 deploy: \d+/12 hosts done · \d+ failed · \d+ running", text)
    ]
    assert lines, shown
    done = {int(re.search(r"(\d+)/12", line).group(1)) for line in lines}  # type: ignore[union-attr]
    assert len(done) >= 2 and max(done) > 0, done  # the card moved on while it ran
    # coalesced: at most one chat.update per window (plus the first and the last), never one per event
    events = 12 * 2 * 2 + 4 * 2  # hosts starting and finishing each step, batches, steps
    assert len(updates) <= took / WINDOW + 3 < events, (len(updates), took)
    # the record keeps the stage's counts; the finished card leaves them out
    assert [(t.stage, t.hosts, t.done, t.failed, t.finished) for t in record] == [("deploy", 12, 12, 0, True)]
    assert "hosts done" not in json.dumps(slack_api.message(card.ts).blocks)
