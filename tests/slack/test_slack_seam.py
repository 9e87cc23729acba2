"""The chat seam as the engine uses it: `update_message`, and failures named by deployment.

`SlackChat` runs against the fake Web API (real HTTP, real retries); the console and the
recording adapter are checked to accept every call the `Chat` protocol allows, so the engine
can pass the same arguments to whichever adapter it was given.
"""

from __future__ import annotations

import inspect
import io
import logging
from collections.abc import Iterator

import pytest

from bot.chat.base import Chat, MessageRef
from bot.console.chat import ConsoleChat
from bot.domain.card import Button, Card
from bot.domain.deployment import State
from bot.slack import SlackChat, make_client
from tests.support.recording import RecordingChat
from tests.support.slackapi import BOT_TOKEN, FakeSlack, start_fake_slack, stop_fake_slack

CHANNEL = "C0DEPLOYS"
ALERT = (Button("Roll back now", "rollback_now", "12", "danger"), Button("Hold", "hold", "12"))


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    fake = start_fake_slack()
    yield fake
    stop_fake_slack(fake)


@pytest.fixture
def chat(slack_api: FakeSlack) -> Iterator[SlackChat]:
    c = SlackChat(make_client(BOT_TOKEN, slack_api.api_url, max_retries=2), window=0.05)
    yield c
    c.close()


def _actions(slack_api: FakeSlack, ts: str) -> list[str]:
    return [
        e["action_id"] for b in slack_api.message(ts).blocks if b["type"] == "actions" for e in b["elements"]
    ]


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("adapter", [SlackChat, ConsoleChat, RecordingChat])
def test_every_adapter_takes_every_call_the_chat_protocol_allows(adapter: type) -> None:
    for name, member in inspect.getmembers(Chat, inspect.isfunction):
        if name.startswith("_"):
            continue
        wanted = inspect.signature(member).parameters
        got = inspect.signature(getattr(adapter, name)).parameters
        for param in wanted.values():
            assert param.name in got, f"{adapter.__name__}.{name} lacks {param.name}"
            assert got[param.name].kind == param.kind, f"{adapter.__name__}.{name}({param.name})"
            assert got[param.name].default == param.default, f"{adapter.__name__}.{name}({param.name})"


def test_update_message_drops_an_alerts_buttons(slack_api: FakeSlack, chat: SlackChat) -> None:
    ref = chat.post_message(
        CHANNEL, "Deploy #12 FAILED: verify › health", buttons=ALERT, mentions=["U0ALICE1"]
    )
    assert ref is not None and _actions(slack_api, ref.ts) == ["rollback_now", "hold"]
    chat.update_message(ref, "Deploy #12 FAILED: verify › health. Held by U0BOB123.", mentions=["U0ALICE1"])
    assert chat.flush(10)
    updated = slack_api.message(ref.ts)
    assert _actions(slack_api, ref.ts) == []
    assert "Held by <@U0BOB123>" in updated.text and updated.text.startswith("<@U0ALICE1> ")
    assert updated.updates == 1


def test_update_message_is_coalesced_and_retried_like_cards(
    slack_api: FakeSlack, chat: SlackChat, caplog: pytest.LogCaptureFixture
) -> None:
    ref = chat.post_message(CHANNEL, "alert", buttons=ALERT, deployment_id=12)
    assert ref is not None
    slack_api.fail_next("chat.update", 3)  # 429 with Retry-After: 1, more often than the client retries
    for i in range(20):
        chat.update_message(ref, f"alert, version {i}", buttons=ALERT[1:], deployment_id=12)
    assert chat.flush(30)
    updates = slack_api.calls_of("chat.update")
    # the three failed tries, then the latest version: twenty updates coalesced into a few calls
    assert 4 <= len(updates) < 20
    assert "version 19" in slack_api.message(ref.ts).text and _actions(slack_api, ref.ts) == ["hold"]
    assert "deployment #12: message update failed (ratelimited); retrying" in _logged(caplog)


def test_failures_are_logged_with_the_deployment_id_even_after_a_restart(
    slack_api: FakeSlack, chat: SlackChat, caplog: pytest.LogCaptureFixture
) -> None:
    gone = MessageRef(CHANNEL, "1699999999.000001")  # a card posted before the restart, since deleted
    chat.post_thread(gone, "step output", deployment_id=31)
    chat.post_message("", "Deploy #32 is waiting for sign-off", deployment_id=32)  # no buttons
    chat.update_message(gone, "alert, acted on", deployment_id=33)
    chat.update_card(MessageRef(CHANNEL, "1699999999.000002"), Card(34, "Deploy #34", State.RUNNING, "x", ()))
    chat.post_thread(MessageRef(CHANNEL, "1699999999.000002"), "thread under that card")
    chat.post_thread(MessageRef(CHANNEL, "1699999999.000003"), "under a message nobody named")
    assert chat.flush(10)
    logged = _logged(caplog)
    assert "deployment #31: thread post failed: thread_not_found" in logged
    assert "deployment #32: message not posted (channel_not_found)" in logged
    assert "deployment #33: message update failed (message_not_found); giving up" in logged
    assert "deployment #34: card update failed (message_not_found)" in logged
    assert "deployment #34: thread post failed" in logged  # learnt from the card it hangs under
    assert "message 1699999999.000003 in C0DEPLOYS (deployment unknown): thread post failed" in logged
    assert "#?" not in logged


def test_the_console_prints_the_update_and_forgets_dropped_buttons() -> None:
    out = io.StringIO()
    console = ConsoleChat(out)
    ref = console.post_message("#deploys", "Deploy #12 FAILED", buttons=ALERT, mentions=["alice"])
    assert ref is not None and console.latest is not None and console.latest.buttons == ALERT
    console.update_message(ref, "Deploy #12 FAILED; held by bob", mentions=["alice"])
    assert console.latest is None  # nothing left to press on it
    assert "[#deploys] @alice (updated) Deploy #12 FAILED; held by bob" in out.getvalue()
    console.update_message(ref, "Deploy #12 FAILED; resume?", buttons=ALERT[1:])
    assert console.latest is not None and console.latest.buttons == ALERT[1:]


def test_the_recording_chat_records_message_updates() -> None:
    rec = RecordingChat()
    ref = rec.post_message("#d", "alert", buttons=ALERT, deployment_id=12)
    assert ref is not None
    rec.update_message(ref, "alert, held", deployment_id=12)
    update = rec.of_kind("message_update")[0]
    assert (update.ts, update.text, update.buttons, update.deployment_id) == (ref.ts, "alert, held", (), 12)
    assert rec.message(ref.ts) is update


def test_a_send_failure_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    dead = SlackChat(make_client(BOT_TOKEN, "http://127.0.0.1:9/api/", max_retries=0), window=0.01)
    try:
        dead.update_message(MessageRef(CHANNEL, "1.2"), "x", deployment_id=5)
        dead.post_thread(MessageRef(CHANNEL, "1.2"), "x", deployment_id=5)
        assert dead.flush(30)
    finally:
        dead.close()
    assert "deployment #5: message update failed (URLError" in _logged(caplog)


def test_the_directory_says_why_a_group_could_not_be_checked(slack_api: FakeSlack) -> None:
    """Fail closed (no members) but say why, so a refusal need not claim "not an approver"."""
    from bot.chat.base import StaticDirectory
    from bot.slack import SlackDirectory

    slack_api.groups["S0DEPLOY1"] = ["U0BOB123"]
    directory = SlackDirectory(make_client(BOT_TOKEN, slack_api.api_url, max_retries=0))
    slack_api.fail_next("usergroups.users.list", status=200, error="missing_scope")
    failed = directory.lookup("S0DEPLOY1")
    assert failed.members == frozenset()
    assert failed.problem == (
        "could not check group S0DEPLOY1: missing_scope "
        "(the Slack app lacks the usergroups:read scope; reinstall it with that scope)"
    )
    worked = directory.lookup("S0DEPLOY1")  # failures are not cached
    assert worked.members == frozenset({"U0BOB123"}) and worked.problem is None
    missing = directory.lookup("S0NOSUCH1")
    assert missing.members == frozenset()
    assert "could not check group S0NOSUCH1: no_such_subteam" in str(missing.problem)
    dead = SlackDirectory(make_client(BOT_TOKEN, "http://127.0.0.1:9/api/", max_retries=0))
    unreachable = dead.lookup("S0DEPLOY1")
    assert unreachable.members == frozenset()
    assert unreachable.problem == "could not check group S0DEPLOY1: Slack could not be reached (URLError)"
    assert StaticDirectory({"g": ["u"]}).lookup("g").problem is None


def test_a_refusal_says_when_a_group_could_not_be_checked(slack_api: FakeSlack) -> None:
    """The policy still refuses when the group lookup fails, and says so instead of guessing."""
    import tomllib
    from datetime import UTC, datetime

    from bot.config import parse_config
    from bot.domain.deployment import Deployment
    from bot.engine.policy import may_approve
    from bot.slack import SlackDirectory

    config = parse_config(
        tomllib.loads(
            '[environments.prod]\nbackend = "local"\nhosts = ["h1"]\n'
            '[environments.prod.approvals]\ngroups = ["S0DEPLOY1"]\n'
            '[[environments.prod.steps.deploy]]\nname = "ship"\nrun = "true"\n'
        ),
        environ={},
    )
    env = config.environments["prod"]
    d = Deployment(env="prod", requester="U0ALICE12", ref="v1", sha=None, created_at=datetime.now(UTC))
    slack_api.groups["S0DEPLOY1"] = ["U0BOB123"]
    directory = SlackDirectory(make_client(BOT_TOKEN, slack_api.api_url, max_retries=0))
    slack_api.fail_next("usergroups.users.list", status=200, error="missing_scope")
    refusal = may_approve(env, d, "U0BOB123", directory)
    assert refusal is not None and refusal.startswith("could not check group S0DEPLOY1: missing_scope")
    assert refusal.endswith(
        "gonogo cannot tell whether you are an approver for prod, so it refuses (try again, or ask an admin)"
    )
    assert may_approve(env, d, "U0BOB123", directory) is None  # the next lookup works
    assert may_approve(env, d, "U0MALLORY", directory) == "you are not an approver for prod"
