"""What reaches `/slack/events` that is not a well-formed, signed Slack request.

The bot runs as `gonogo serve` wires it (see `tests.test_slack`). Every kind of request Slack
sends (slash commands, block actions, Events API callbacks) is refused with 401 when it is
unsigned, badly signed, tampered with or stale, and changes nothing; a body that does not parse
or lacks what its kind needs gets 400 with a short reason, never a 500 or a traceback, whether
it is signed or not.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.slack.test_slack import ALICE, BOB, CHANNEL, Bot, find_button, running_bot
from tests.support.slackapi import FakeSlack, start_fake_slack, stop_fake_slack
from tests.support.slacksign import (
    block_actions_payload,
    event_body,
    payload_body,
    post,
    send_signed,
    signed_headers,
    slash_command_body,
)

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    fake = start_fake_slack()
    yield fake
    stop_fake_slack(fake)


@pytest.fixture
def bot(tmp_path: Path, slack_api: FakeSlack) -> Iterator[Bot]:
    with running_bot(tmp_path, slack_api) as b:
        yield b


def _click(**changes: Any) -> dict[str, Any]:
    payload = block_actions_payload(action_id="go", value="1", user=BOB, channel=CHANNEL)
    payload.update(changes)
    return payload


def _command(**drop_or_set: str | None) -> str:
    from urllib.parse import parse_qsl

    fields = dict(parse_qsl(slash_command_body("/deploy", "demo v1", user=ALICE, channel=CHANNEL)))
    for k, v in drop_or_set.items():
        if v is None:
            fields.pop(k, None)
        else:
            fields[k] = v
    return urlencode(fields)


# Bodies that do not parse, or parse into something that is not a request object.
UNPARSABLE: dict[str, tuple[str | bytes, str]] = {
    "interactivity payload that is not JSON": ("payload={x", FORM),
    "JSON body that does not parse": ("{x", JSON),
    "JSON body that is a list": ("[1]", JSON),
    "interactivity payload that is a list": (urlencode({"payload": "[1]"}), FORM),
    "interactivity payload that is a string": (urlencode({"payload": '"go"'}), FORM),
    "body that is not UTF-8": (b"payload=\xff\xfe{", FORM),
    "click whose enterprise is a number": (payload_body(_click(enterprise=5, team=3)), FORM),
    "event whose authorizations is a string": (
        json.dumps({**json.loads(event_body({"type": "tokens_revoked"})), "authorizations": "x"}),
        JSON,
    ),
}

# Bodies that parse but lack what their kind needs (signed, they can still not be acted on).
MISSHAPEN: dict[str, tuple[str, str]] = {
    "click whose actions are not objects": (payload_body(_click(actions=["junk"])), FORM),
    "click whose actions is a string": (payload_body(_click(actions="junk")), FORM),
    "click without actions": (payload_body(_click(actions=[])), FORM),
    "click without a user": (payload_body({k: v for k, v in _click().items() if k != "user"}), FORM),
    "click whose user is a string": (payload_body(_click(user=BOB)), FORM),
    "click whose container is a number": (payload_body(_click(container=5)), FORM),
    "checkbox click whose selected options are a string": (
        payload_body(
            _click(actions=[{"type": "checkboxes", "action_id": "checklist", "selected_options": "1"}])
        ),
        FORM,
    ),
    "event that is a string": (json.dumps({"type": "event_callback", "event": "x", "event_id": "Ev1"}), JSON),
    "event without a type": (json.dumps({"type": "event_callback", "event": {}, "event_id": "Ev2"}), JSON),
    "slash command without user_id": (_command(user_id=None), FORM),
    "slash command without channel_id": (_command(channel_id=None), FORM),
    "slash command with an empty command": (_command(command=""), FORM),
}


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not bad, [r.getMessage() for r in bad]
    assert not [r for r in caplog.records if r.name.startswith("uvicorn") and r.levelno >= logging.ERROR]


def _nothing_happened(bot: Bot) -> None:
    assert bot.runtime.engine.store.deployments("demo") == []
    assert [c.method for c in bot.fake.calls if c.method.startswith("chat.")] == []


def test_unsigned_junk_gets_401_and_signed_junk_gets_400_never_500(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for name, (body, ctype) in {**UNPARSABLE, **MISSHAPEN}.items():
        status, text = post(bot.url, body, {"Content-Type": ctype})
        assert status == 401, (name, status, text)
        status, text = send_signed(bot.url, body, content_type=ctype)
        assert status == 400, (name, status, text)
        assert text.startswith("malformed request: ") and len(text) < 120, (name, text)
    _no_tracebacks(caplog)
    _nothing_happened(bot)
    # the bot still works, and its answer to a good command is the only thing it said
    bot.command("", command="/status")
    bot.ephemeral(ALICE, "nothing deployed yet")
    assert bot.runtime.engine.store.deployments("demo") == []
    assert [c.method for c in bot.fake.calls if c.method.startswith("chat.")] == ["chat.postEphemeral"]
    _no_tracebacks(caplog)


def test_the_reason_names_what_is_missing(bot: Bot) -> None:
    status, text = send_signed(bot.url, _command(user_id=None))
    assert (status, text) == (400, "malformed request: no user_id")
    status, text = send_signed(bot.url, payload_body(_click(actions=["junk"])))
    assert status == 400 and "actions[0] is not an action" in text
    status, text = send_signed(bot.url, "payload={x")
    assert (status, text) == (400, "malformed request: the body could not be parsed")


def test_garbage_signature_headers_get_401(bot: Bot) -> None:
    body = slash_command_body("/deploy", "demo v1", user=ALICE, channel=CHANNEL)
    for ts, sig in (("soon", "v0=00"), ("", ""), (str(int(time.time())), "not-v0")):
        headers = {"Content-Type": FORM, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}
        status, _ = post(bot.url, body, headers)
        assert status == 401, (ts, sig)
    assert post(bot.url, "ssl_check=1&token=x", {"Content-Type": FORM}) == (200, "")  # Slack's probe
    _nothing_happened(bot)


def _bad_signatures(body: str, ctype: str) -> dict[str, dict[str, str]]:
    return {
        "no signature": {"Content-Type": ctype},
        "wrong secret": signed_headers(body, secret="not-the-secret", content_type=ctype),
        "stale timestamp": signed_headers(body, timestamp=int(time.time()) - 6 * 60, content_type=ctype),
        "future timestamp": signed_headers(body, timestamp=int(time.time()) + 6 * 60, content_type=ctype),
        "tampered body": signed_headers(body[:-1] + ("x" if body[-1] != "x" else "y"), content_type=ctype),
    }


def test_badly_signed_clicks_are_rejected_and_change_nothing(bot: Bot) -> None:
    bot.command("demo v1", user=ALICE)
    card = bot.card("Deploy #1: v1 to demo")
    bot.tick(card, BOB, ["1", "2"])
    bot.fake.wait_for(lambda: bot.runtime.engine.deployment(1).checklist == (True, True), what="ticks")
    button = find_button(card, "go")
    click = block_actions_payload(
        action_id="go",
        value=button["value"],
        user=BOB,
        channel=CHANNEL,
        message_ts=card.ts,
        block_id=button["block_id"],
        message_blocks=card.blocks,
    )
    body = payload_body(click)
    for name, headers in _bad_signatures(body, FORM).items():
        status, _ = post(bot.url, body, headers)
        assert status == 401, name
    assert bot.runtime.engine.deployment(1).approvers() == []
    # the same click, signed, is acted on, once: the rejected deliveries neither acted nor
    # claimed the click (a claimed one would make this one a "duplicate")
    status, _ = send_signed(bot.url, body)
    assert status == 200
    bot.fake.wait_for(lambda: bot.runtime.engine.deployment(1).approvers() == [BOB], what="Bob's Go")
    assert [e.action for e in bot.runtime.engine.store.events(deployment_id=1)].count("approve") == 1


def test_badly_signed_events_are_rejected_and_change_nothing(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gonogo.slack")
    body = event_body({"type": "tokens_revoked", "tokens": {"bot": ["U0GONOGO"]}}, event_id="Ev77")
    for name, headers in _bad_signatures(body, JSON).items():
        status, _ = post(bot.url, body, headers)
        assert status == 401, name
    assert not any("revoked" in r.getMessage() for r in caplog.records)
    # the signed event is handled once: the rejected deliveries did not claim its event_id
    status, _ = send_signed(bot.url, body, content_type=JSON)
    assert status == 200
    assert sum("revoked gonogo's tokens" in r.getMessage() for r in caplog.records) == 1


def test_a_malformed_command_over_socket_mode_is_answered_with_the_reason(
    tmp_path: Path, slack_api: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """Socket Mode has no HTTP front: the listener itself checks the shape and acks the reason."""
    from urllib.parse import parse_qsl

    from bot.app.serve import build_runtime, socket_mode_handler
    from bot.config import load_config
    from tests.conftest import write_demo_config
    from tests.support.slackapi import BOT_TOKEN, FakeSocketMode

    caplog.set_level(logging.INFO)
    socket = FakeSocketMode()
    slack_api.socket_url = socket.url
    path = write_demo_config(tmp_path, replace={"[slack]\n": f'[slack]\napi_url = "{slack_api.api_url}"\n'})
    runtime = build_runtime(load_config(path), bot_token=BOT_TOKEN, signing_secret=None, socket_mode=True)
    handler = socket_mode_handler(runtime.app, "xapp-1-A0GONOGO-1-secret")
    try:
        handler.connect()
        slack_api.wait_for(lambda: socket.connections, what="the Socket Mode connection")
        body = dict(parse_qsl(_command(user_id=None)))
        socket.send("slash_commands", body, envelope_id="env-junk")
        acks = slack_api.wait_for(lambda: socket.acks, what="the ack over the socket")
        assert acks[0]["envelope_id"] == "env-junk"
        assert acks[0]["payload"]["text"] == "gonogo could not read this command: no user_id"
        good = dict(parse_qsl(slash_command_body("/status", "", user=ALICE, channel=CHANNEL)))
        socket.send("slash_commands", good, envelope_id="env-good")
        slack_api.wait_for(lambda: slack_api.ok_calls("chat.postEphemeral"), what="the /status reply")
    finally:
        handler.close()
        socket.close()
        runtime.close()
    _no_tracebacks(caplog)


def test_lost_access_events_are_logged_loudly(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gonogo.slack")
    for event, event_id in (({"type": "app_uninstalled"}, "Ev91"), ({"type": "tokens_revoked"}, "Ev92")):
        status, _ = send_signed(bot.url, event_body(event, event_id=event_id), content_type=JSON)
        assert status == 200
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("uninstalled from the workspace" in m for m in logged)
    assert any("revoked gonogo's tokens" in m for m in logged)
