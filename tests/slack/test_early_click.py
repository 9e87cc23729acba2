"""A well-formed click is answered right after its signature check (its ack is always empty);
anything else goes through Bolt and its checks before the answer."""

from __future__ import annotations

from bot.slack.asgi import early_click
from tests.support.slacksign import block_actions_payload, payload_body, slash_command_body


def test_only_a_well_formed_click_is_answered_before_bolt_parses_it() -> None:
    click = payload_body(block_actions_payload(action_id="go", value="7"))
    assert early_click(click.encode()) == click
    assert early_click(slash_command_body("/deploy", "prod v1").encode()) is None
    assert early_click(payload_body({"type": "view_submission", "view": {}}).encode()) is None
    no_user = block_actions_payload(action_id="go", value="7")
    del no_user["user"]
    assert early_click(payload_body(no_user).encode()) is None  # goes on to its 400
    assert early_click(b"payload=%7Bnot json") is None
    assert early_click(b"payload=\xff\xfe") is None
