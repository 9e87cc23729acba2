"""Block Kit rendering: every card state validates, and oversized content is cut within Slack's limits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block

from bot.config import Environment
from bot.domain.card import Button, Card, ChecklistItem
from bot.domain.deployment import Approval, Deployment, Lock, State
from bot.domain.details import Details, Signoff
from bot.engine.cards import build_card, build_signoff_card
from bot.slack import make_client
from bot.slack.blocks import (
    MAX_BLOCKS,
    card_blocks,
    card_text,
    escape,
    message_blocks,
    thread_text,
    truncate,
    truncate_tail,
    unescape,
)
from tests.support.slackapi import BOT_TOKEN, block_errors, start_fake_slack, stop_fake_slack

T0 = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
ENV = Environment(name="prod", checklist=("Backup verified", "Migrations reviewed"))


def deployment(state: State, **changes: Any) -> Deployment:
    d = Deployment(
        env="prod",
        requester="U0ALICE1",
        ref="v2.4.0",
        sha="0123456789abcdef0123456789abcdef01234567",
        created_at=T0,
        id=42,
        state=state,
        checklist=(True, False),
        required_approvals=2,
        approvals=(Approval("U0BOB123", T0),),
        channel="C0DEPLOYS",
        reason="hotfix",
        details=Details(changelog=("abc1234 Fix login (bob)",), warnings=("behind main",)),
    )
    return replace(d, **changes)


def validate(blocks: list[dict[str, Any]]) -> None:
    """Parse every block back with slack_sdk and re-validate it; check the universal limits."""
    assert 0 < len(blocks) <= MAX_BLOCKS
    assert block_errors(blocks) == []  # what the fake Web API (like Slack) would refuse
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        assert block.to_dict() == raw  # to_dict() validates lengths and counts
        assert len(raw.get("block_id", "")) <= 255
        if raw["type"] == "section":
            assert len(raw.get("text", {}).get("text", "")) <= 3000
            assert len(raw.get("fields", [])) <= 10
            for f in raw.get("fields", []):
                assert len(f["text"]) <= 2000
            accessory = raw.get("accessory")
            if accessory and accessory["type"] == "checkboxes":
                assert len(accessory["options"]) <= 10
                assert all(len(o["text"]["text"]) <= 75 for o in accessory["options"])
                values = {o["value"] for o in accessory["options"]}
                assert {o["value"] for o in accessory.get("initial_options", [])} <= values
        if raw["type"] == "header":
            assert len(raw["text"]["text"]) <= 150
        if raw["type"] == "context":
            assert len(raw["elements"]) <= 10
        if raw["type"] == "actions":
            for e in raw["elements"]:
                assert len(e["text"]["text"]) <= 75 and len(e.get("value", "")) <= 2000


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


@pytest.mark.parametrize("state", list(State))
def test_every_card_state_renders_and_validates(state: State) -> None:
    lock = Lock("prod", "U0CAROL1", "incident 42", T0)
    card = build_card(deployment(state, progress="deploy › switch on web1", error="boom"), ENV, lock)
    blocks = card_blocks(card)
    validate(blocks)
    header = blocks[0]
    assert header["type"] == "header" and header["text"]["text"] == "Deploy #42: v2.4.0 to prod"
    assert header["block_id"] == "title:42"
    assert card_text(card).startswith("Deploy #42: v2.4.0 to prod: ")
    status = next(b for b in blocks if b.get("block_id") == "status:42")
    assert card.status_line.split(":")[0] in status["text"]["text"]
    assert "🔒 prod is locked by <@U0CAROL1>: incident 42" in texts(blocks)


def test_pending_card_has_checklist_buttons_and_mentions() -> None:
    blocks = card_blocks(build_card(deployment(State.PENDING), ENV))
    validate(blocks)
    checklist = next(b for b in blocks if b.get("block_id") == "checklist:42")
    box = checklist["accessory"]
    assert box["action_id"] == "checklist"
    assert [o["value"] for o in box["options"]] == ["1", "2"]
    assert [o["value"] for o in box["initial_options"]] == ["1"]
    actions = next(b for b in blocks if b["type"] == "actions")
    assert [(e["action_id"], e["value"], e.get("style")) for e in actions["elements"]] == [
        ("go", "42", "primary"),
        ("nogo", "42", "danger"),
    ]
    fields = next(b for b in blocks if b.get("block_id") == "fields:42")["fields"]
    assert {"type": "mrkdwn", "text": "*Requested by*\n<@U0ALICE1>"} in fields
    assert "Approvals 1/2: <@U0BOB123>" in texts(blocks)
    assert "⚠️ behind main" in texts(blocks)
    assert "abc1234 Fix login (bob)" in texts(blocks)


def test_closed_checklist_is_text_and_nothing_is_clickable_when_done() -> None:
    blocks = card_blocks(build_card(deployment(State.SUCCEEDED, checklist=(True, True)), ENV))
    validate(blocks)
    assert not any(b.get("accessory") for b in blocks)
    assert not any(b["type"] == "actions" for b in blocks)
    assert "☑ 1. Backup verified" in texts(blocks)


def test_signoff_card_validates() -> None:
    env = replace(ENV, signoff_checklist=("Smoke tests passed", "No error spike"))
    d = deployment(State.MONITORING, details=Details(signoff=Signoff(ticked=(True,))))
    blocks = card_blocks(build_signoff_card(d, env))
    validate(blocks)
    assert "Sign-off checklist" in texts(blocks)
    checklist = next(b for b in blocks if b.get("block_id") == "signoff_checklist:42")
    assert checklist["accessory"]["action_id"] == "signoff_checklist"
    assert [o["value"] for o in checklist["accessory"]["initial_options"]] == ["1"]
    actions = next(b for b in blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == ["keep", "signoff_rollback"]


def test_huge_changelog_long_texts_and_eleven_items_are_cut_within_limits() -> None:
    changelog = tuple(f"{i:07x} {'very long subject ' * 30}" for i in range(500))
    card = Card(
        deployment_id=7,
        title="Deploy #7: " + "x" * 400,
        state=State.PENDING,
        status_line="⏳ " + "s" * 5000,
        fields=tuple((f"Field {i}" * 10, "v" * 3000) for i in range(14)),
        changelog=changelog,
        changelog_note="n" * 4000,
        warnings=tuple("w" * 2000 for _ in range(5)),
        checklist=tuple(ChecklistItem(i, f"item {i} " + "t" * 100, i % 2 == 0) for i in range(1, 12)),
        checklist_open=True,
        approvals_line="Approvals " + "a" * 4000,
        buttons=tuple(Button("B" * 100, f"act{i}", "7:" + "v" * 3000) for i in range(30)),
        footer="f" * 5000,
        lines=tuple("l" * 1000 for _ in range(10)),
    )
    blocks = card_blocks(card)
    validate(blocks)
    assert blocks[0]["text"]["text"].endswith("…") and len(blocks[0]["text"]["text"]) == 150
    changelog_block = next(b for b in blocks if b.get("block_id") == "changelog:7")
    assert "more" in changelog_block["text"]["text"]
    # eleven items are two checkbox groups: every item can be ticked
    first = next(b for b in blocks if b.get("block_id") == "checklist:7:1-10")
    second = next(b for b in blocks if b.get("block_id") == "checklist:7:11-11")
    assert len(first["accessory"]["options"]) == 10
    assert [o["value"] for o in second["accessory"]["options"]] == ["11"]
    assert len(card_text(card)) <= 3000


def test_changelog_note_counts_what_was_cut() -> None:
    changelog = tuple(f"{i:07x} subject number {i}" for i in range(400))
    card = build_card(deployment(State.PENDING, details=Details(changelog=tuple(changelog))), ENV)
    block = next(b for b in card_blocks(card) if b.get("block_id") == "changelog:42")
    text = block["text"]["text"]
    assert len(text) <= 3000
    shown = text.count("\n• ")
    assert f"…and {400 - shown} more" in text


def test_many_blocks_are_capped_at_fifty_keeping_buttons() -> None:
    from bot.slack.blocks import cap_blocks

    blocks = [{"type": "divider"} for _ in range(60)] + [{"type": "actions", "elements": []}]
    capped = cap_blocks(blocks)
    assert len(capped) == 50 and capped[-1]["type"] == "actions"


def test_user_text_cannot_ping_or_forge_links() -> None:
    d = deployment(State.PENDING, reason="<!channel> & <https://evil|click>", ref="main")
    blocks = card_blocks(build_card(d, ENV))
    validate(blocks)
    dumped = texts(blocks)
    assert "<!channel>" not in dumped and "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;" in dumped


def test_message_with_buttons_mentions_and_alert_block_id() -> None:
    text, blocks = message_blocks(
        "Deploy #3 FAILED: verify › health",
        (Button("Roll back now", "rollback_now", "3", "danger"), Button("Hold", "hold", "3")),
        ("U0ALICE1", "U0ALICE1", "S0ONCALL1", "oncall-bot"),
    )
    validate(blocks)
    assert text.startswith("<@U0ALICE1> <!subteam^S0ONCALL1> oncall-bot Deploy #3 FAILED")
    assert blocks[1]["block_id"] == "alert:3"


def test_escaping_truncation_and_thread_tails() -> None:
    assert unescape(escape("a & <b> &amp;")) == "a & <b> &amp;"
    assert truncate("abc", 3) == "abc" and truncate("abcdef", 4) == "abc…"
    cut = truncate(escape("x" * 10 + "&&&&"), 13)
    assert cut.endswith("…") and "&am…" not in cut and len(cut) <= 13
    log = "\n".join(f"line {i}" for i in range(2000))
    tail = truncate_tail(log, 3000)
    assert len(tail) <= 3000 and tail.endswith("line 1999") and "earlier characters cut" in tail
    assert len(thread_text(log)) <= 3000
    assert thread_text("Capitalised WORDS ARE not USERS") == "Capitalised WORDS ARE not USERS"


def _button(text: str = "Go", value: str = "1", action_id: str = "go") -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "value": value,
        "action_id": action_id,
    }


def _option(n: int, text: str = "item") -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text}, "value": str(n)}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


OVER_LIMIT = {
    "51 blocks": [_section("x") for _ in range(51)],
    "section text 3001": [_section("x" * 3001)],
    "header 151": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
    "button text 76": [{"type": "actions", "elements": [_button(text="b" * 76)]}],
    "button value 2001": [{"type": "actions", "elements": [_button(value="v" * 2001)]}],
    "11 checkbox options": [
        {
            **_section("list"),
            "accessory": {
                "type": "checkboxes",
                "action_id": "checklist",
                "options": [_option(i) for i in range(11)],
            },
        }
    ],
    "action_id 256": [{"type": "actions", "elements": [_button(action_id="a" * 256)]}],
    "block_id 256": [{**_section("x"), "block_id": "b" * 256}],
    "11 fields": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
    "11 context elements": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
}


@pytest.mark.parametrize("case", list(OVER_LIMIT))
def test_the_fake_web_api_refuses_blocks_over_slacks_limits_like_slack(case: str) -> None:
    """The fake answers invalid_blocks (with a JSON pointer) to posts and updates over a limit."""
    fake = start_fake_slack()
    try:
        client = make_client(BOT_TOKEN, fake.api_url)
        posted = client.chat_postMessage(channel="C0DEPLOYS", text="ok", blocks=[_section("fine")])
        with pytest.raises(SlackApiError) as refused:
            client.chat_postMessage(channel="C0DEPLOYS", text="x", blocks=OVER_LIMIT[case])
        assert refused.value.response["error"] == "invalid_blocks"
        assert "json-pointer:/blocks" in refused.value.response["errors"][0]
        with pytest.raises(SlackApiError) as refused:
            client.chat_update(channel="C0DEPLOYS", ts=posted["ts"], text="x", blocks=OVER_LIMIT[case])
        assert refused.value.response["error"] == "invalid_blocks"
        assert fake.message(posted["ts"]).blocks == [_section("fine")]  # the refused update changed nothing
    finally:
        stop_fake_slack(fake)


def test_limits_just_inside_are_accepted() -> None:
    inside = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        {**_section("x" * 3000), "block_id": "b" * 255},
        {
            **_section("list"),
            "accessory": {
                "type": "checkboxes",
                "action_id": "c" * 255,
                "options": [_option(i, "t" * 75) for i in range(10)],
                "initial_options": [_option(3, "t" * 75)],
            },
        },
        {"type": "actions", "elements": [_button(text="b" * 75, value="v" * 2000)]},
        *[_section("filler") for _ in range(46)],
    ]
    assert len(inside) == 50 and block_errors(inside) == []


def test_alert_messages_with_long_text_and_many_buttons_stay_inside_the_limits() -> None:
    buttons = tuple(Button("L" * 200, "a" * 300, "3:" + "v" * 3000) for _ in range(40))
    _, blocks = message_blocks("t" * 10000, buttons, ("U0ALICE1",) * 20)
    validate(blocks)


# -- checklists in phases and groups (more than 10 items) ----------------------------------------
SEED_SIGNOFF = (
    (
        "During the deploy",
        ("Backup taken", "Migration ran", "Columns added = 4", "Old tables = 0", "Release switched"),
    ),
    (
        "After the deploy",
        ("Smoke tests", "Jobs create", "Jobs approve", "No error spike", "Latency < 5 s", "Memory < 80%"),
    ),
    ("Decision", ("GO: KEEP", "NO-GO: ROLL BACK")),
)


def phased_env(phases: tuple[tuple[str, tuple[str, ...]], ...]) -> Environment:
    items = tuple(i for _, phase in phases for i in phase)
    counts = tuple((name, len(phase)) for name, phase in phases)
    return Environment(
        name="prod", checklist=items, checklist_phases=counts, signoff_checklist=items, signoff_phases=counts
    )


def test_a_thirteen_item_signoff_checklist_in_three_phases_renders_as_sections() -> None:
    env = phased_env(SEED_SIGNOFF)
    d = deployment(State.SUCCEEDED, details=Details(signoff=Signoff(ticked=(True,) * 6)))
    blocks = card_blocks(build_signoff_card(d, env))
    validate(blocks)
    groups = [b for b in blocks if str(b.get("block_id", "")).startswith("signoff_checklist:")]
    assert [b["block_id"] for b in groups] == [
        "signoff_checklist:42:1-5",
        "signoff_checklist:42:6-11",
        "signoff_checklist:42:12-13",
    ]
    assert groups[0]["text"]["text"] == "*Sign-off checklist*\n*During the deploy*"
    assert groups[2]["text"]["text"] == "*Decision*"
    assert [o["value"] for o in groups[1]["accessory"]["initial_options"]] == ["6"]  # 6 of 13 ticked
    assert [o["text"]["text"] for o in groups[2]["accessory"]["options"]] == ["GO: KEEP", "NO-GO: ROLL BACK"]


def test_the_longest_checklist_config_allows_fits_one_card() -> None:
    # 20 groups (the config's limit): ten phases of 11 items, each taking two groups
    phases = tuple((f"Phase {p}", tuple(f"p{p} item {i}" for i in range(11))) for p in range(10))
    env = phased_env(phases)
    for state in (State.PENDING, State.RUNNING):
        d = deployment(state, checklist=(False,) * 110)
        blocks = card_blocks(build_card(d, env))
        validate(blocks)
        shown = [b for b in blocks if "Phase" in str(b)]
        assert len(shown) == 20 and len(blocks) < MAX_BLOCKS  # nothing cut
        assert "_Phase 0, continued_" in json.dumps(blocks)
        if state == State.RUNNING:  # closed: the items as text, still grouped
            assert all("accessory" not in b for b in shown)
            assert "☐ 110. p9 item 10" in json.dumps(blocks, ensure_ascii=False)
