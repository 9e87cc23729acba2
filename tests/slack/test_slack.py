"""The Slack front door for real: signed requests into the HTTP app under uvicorn, a fake Web API.

The bot runs exactly as `gonogo serve` wires it (`bot.serve.build_runtime` + `http_server`:
Bolt app, uvicorn, SlackChat over a WebClient pointed at `tests.slackapi`), against the demo
config with its real local backend. Requests are built and signed like Slack's
(`tests.slacksign`). Asynchronous results are polled with a deadline, never slept for.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from bot.app.manifest import manifest_yaml
from bot.app.serve import (
    SlackRuntime,
    StartupError,
    build_runtime,
    http_server,
    settings_from_env,
    socket_mode_handler,
)
from bot.config import Config, load_config
from bot.domain.deployment import State
from bot.slack import SlackChat, SlackDirectory, make_client
from tests.conftest import ROOT, free_port, stop_demo_app, write_demo_config
from tests.support.slackapi import (
    BOT_TOKEN,
    FakeSlack,
    FakeSocketMode,
    Message,
    start_fake_slack,
    stop_fake_slack,
)
from tests.support.slacksign import (
    SIGNING_SECRET,
    block_actions_payload,
    event_body,
    payload_body,
    send_signed,
    signed_headers,
    slash_command_body,
)

CHANNEL = "C0DEPLOYS"
ALICE, BOB, CAROL = "U0ALICE1", "U0BOB123", "U0CAROL1"

EXTRA_ENVS = """
[environments.duo]
backend = "local"
hosts = ["localhost"]
deploy_to = "{data_dir}/duo"
[environments.duo.approvals]
required = 2
[[environments.duo.steps.deploy]]
name = "noop"
run = "true"

[environments.grp]
backend = "local"
hosts = ["localhost"]
deploy_to = "{data_dir}/grp"
[environments.grp.approvals]
required = 1
groups = ["S0DEPLOY1"]
[[environments.grp.steps.deploy]]
name = "noop"
run = "true"

[environments.phased]
backend = "local"
hosts = ["localhost"]
deploy_to = "{data_dir}/phased"
checklist = [
  { phase = "Before", items = ["b1", "b2", "b3", "b4", "b5", "b6"] },
  { phase = "Data", items = ["d1", "d2", "d3", "d4", "d5"] },
  { phase = "People", items = ["p1", "p2"] },
]
[environments.phased.gates]
deploy = "migration done and verified; Go to deploy the app?"
[[environments.phased.steps.pre_deploy]]
name = "migrate"
run = "true"
[[environments.phased.steps.deploy]]
name = "switch"
run = "true"
"""


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    fake = start_fake_slack(groups={"S0DEPLOY1": [BOB]})
    yield fake
    stop_fake_slack(fake)


@dataclass
class Bot:
    """A running bot: its events URL, the fake Slack it talks to, its wiring."""

    url: str
    fake: FakeSlack
    runtime: SlackRuntime
    config: Config

    def command(self, text: str, *, user: str = ALICE, command: str = "/deploy", **kw: Any) -> int:
        status, body = send_signed(
            self.url, slash_command_body(command, text, user=user, channel=CHANNEL, **kw)
        )
        assert status == 200 and body == "", (status, body)
        return status

    def click(self, *, retry_num: int | None = None, **kw: Any) -> int:
        kw.setdefault("channel", CHANNEL)
        body = payload_body(block_actions_payload(**kw))
        status, text = send_signed(self.url, body, retry_num=retry_num)
        assert status == 200 and text == "", (status, text)
        return status

    def press(self, card: Message, action: str, user: str, **kw: Any) -> int:
        """Click a button of a card as Slack would send it."""
        button = find_button(card, action)
        return self.click(
            action_id=action,
            value=button["value"],
            user=user,
            message_ts=card.ts,
            block_id=button["block_id"],
            message_blocks=card.blocks,
            **kw,
        )

    def tick(self, card: Message, user: str, items: list[str]) -> int:
        """Tick checklist boxes on a card (Slack sends every selected option)."""
        block = next(b for b in card.blocks if str(b.get("block_id", "")).startswith("checklist:"))
        return self.click(
            action_id="checklist",
            selected=items,
            user=user,
            message_ts=card.ts,
            block_id=block["block_id"],
            message_blocks=card.blocks,
        )

    def card(self, title: str) -> Message:
        """Wait for a card whose header starts with `title`."""

        def find() -> Message | None:
            for m in self.fake.cards():
                if m.blocks and m.blocks[0].get("type") == "header" and header(m).startswith(title):
                    return m
            return None

        return self.fake.wait_for(find, what=f"card {title!r}")

    def wait_card(self, ts: str, needle: str) -> Message:
        """Wait until the card at `ts` shows `needle`."""
        return self.fake.wait_for(
            lambda: (m := self.fake.message(ts)) and needle in dump(m) and m, what=f"card showing {needle!r}"
        )

    def ephemeral(self, user: str, needle: str) -> dict[str, Any]:
        """Wait for an ephemeral message to `user` containing `needle`."""

        def find() -> dict[str, Any] | None:
            for c in self.fake.ok_calls("chat.postEphemeral"):
                if c.params.get("user") == user and needle in str(c.params.get("text")):
                    return c.params
            return None

        return self.fake.wait_for(find, what=f"ephemeral to {user} with {needle!r}")

    def store_state(self, deployment_id: int) -> State:
        return self.runtime.engine.deployment(deployment_id).state


def header(m: Message) -> str:
    return str(m.blocks[0]["text"]["text"])


def ticked(m: Message) -> list[str]:
    """The ticked checklist items a card shows."""
    for block in m.blocks:
        if str(block.get("block_id", "")).startswith("checklist:"):
            return [o["value"] for o in block["accessory"].get("initial_options", [])]
    return []


def dump(m: Message) -> str:
    return m.text + json.dumps(m.blocks, ensure_ascii=False)


def find_button(card: Message, action: str) -> dict[str, Any]:
    for block in card.blocks:
        if block.get("type") == "actions":
            for e in block["elements"]:
                if e["action_id"] == action:
                    return {**e, "block_id": block["block_id"]}
    raise AssertionError(f"no {action} button on the card: {dump(card)}")


@contextmanager
def running_bot(
    tmp_path: Path, fake: FakeSlack, *, window: float = 0.2, store: str | None = None
) -> Iterator[Bot]:
    """Run the bot's HTTP app under uvicorn in a thread, exactly as serve wires it.

    `store` is a store URL (e.g. one PostgreSQL schema shared by several replicas); the
    default is the SQLite file in the bot's own data dir.
    """
    replace = {"[slack]\n": f'[slack]\napi_url = "{fake.api_url}"\n'}
    if store is not None:
        replace["[bot]\n"] = f'[bot]\nstore = "{store}"\n'
    path = write_demo_config(
        tmp_path, extra=EXTRA_ENVS.replace("{data_dir}", str(tmp_path / "data")), replace=replace
    )
    config = load_config(path)
    runtime = build_runtime(config, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, window=window)
    runtime.engine.start()
    port = free_port()
    server = http_server(runtime, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Bot(f"http://127.0.0.1:{port}/slack/events", fake, runtime, config)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        runtime.close()
        stop_demo_app(tmp_path / "data")


@pytest.fixture
def bot(tmp_path: Path, slack_api: FakeSlack) -> Iterator[Bot]:
    with running_bot(tmp_path, slack_api) as b:
        yield b


def demo_health(config: Config) -> dict[str, str]:
    port = config.environments["demo"].vars["port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        return json.loads(resp.read())


# -- the whole flow ------------------------------------------------------------------------------
def test_a_whole_deploy_and_rollback_through_slack(bot: Bot) -> None:
    fake = bot.fake
    bot.command("demo v1 --reason first & best")
    card = bot.card("Deploy #1: v1 to demo")
    posted = fake.ok_calls("chat.postMessage")[0].params
    assert posted["channel"] == CHANNEL and posted["text"].startswith("Deploy #1: v1 to demo")
    assert "first &amp; best" in dump(card)  # unescaped for the parser, escaped again for Slack
    assert find_button(card, "go")["value"] == "1"

    # the requester's own Go is refused, to her alone, with the reason
    bot.press(card, "go", ALICE)
    refusal = bot.ephemeral(ALICE, "you requested this deployment")
    assert refusal["channel"] == CHANNEL

    # Go before the checklist is refused; ticking updates the card in place
    bot.press(card, "go", BOB)
    bot.ephemeral(BOB, "tick every checklist item before Go")
    bot.tick(card, BOB, ["1"])
    fake.wait_for(lambda: ticked(fake.message(card.ts)) == ["1"], what="box 1 ticked")
    # Carol's view is stale (she never saw Bob's tick): her click adds item 2, it does not undo 1
    bot.tick(card, CAROL, ["2"])
    fake.wait_for(lambda: ticked(fake.message(card.ts)) == ["1", "2"], what="both boxes ticked")
    card = fake.message(card.ts)

    # Bob's Go starts it; the card goes through the stages to deployed
    bot.press(card, "go", BOB)
    card = bot.wait_card(card.ts, "✅ deployed")
    assert fake.message(card.ts).updates >= 2
    assert not any(b["type"] == "actions" for b in card.blocks)
    fake.wait_for(lambda: any("verify › health" in t for t in fake.thread(card.ts)), what="thread details")
    assert demo_health(bot.config)["version"] == "v1"

    # /status answers ephemerally with the release
    bot.command("", command="/status", user=CAROL)
    status = bot.ephemeral(CAROL, "*demo*: v1")
    assert "<@U0ALICE1>" in status["text"]

    # a second release, then roll back to v1
    bot.command("demo v2", user=BOB)
    card2 = bot.card("Deploy #2: v2 to demo")
    bot.tick(card2, CAROL, ["1", "2"])
    fake.wait_for(lambda: ticked(fake.message(card2.ts)) == ["1", "2"], what="card 2 ticked")
    bot.press(fake.message(card2.ts), "go", CAROL)
    bot.wait_card(card2.ts, "✅ deployed")
    assert demo_health(bot.config)["version"] == "v2"

    bot.command("demo", command="/rollback", user=CAROL)
    rb = bot.card("Rollback #3: v1 to demo")
    bot.press(rb, "go", CAROL)  # the requester may not approve her own rollback
    bot.ephemeral(CAROL, "you requested this deployment")
    bot.press(rb, "go", ALICE)
    bot.wait_card(rb.ts, "✅ rolled back")  # done (an approved card shows ✅ too)
    bot.wait_card(card2.ts, "rolled back")
    assert demo_health(bot.config)["version"] == "v1"
    assert bot.store_state(2) == State.ROLLED_BACK and bot.store_state(3) == State.SUCCEEDED


def test_bad_or_stale_signatures_are_rejected_and_change_nothing(bot: Bot) -> None:
    body = slash_command_body("/deploy", "demo v1", user=ALICE, channel=CHANNEL)
    cases = {
        "no signature": {"Content-Type": "application/x-www-form-urlencoded"},
        "wrong secret": signed_headers(body, secret="not-the-secret"),
        "stale timestamp": signed_headers(body, timestamp=int(time.time()) - 6 * 60),
        "tampered body": signed_headers(body.replace("v1", "v2")),
    }
    from tests.support.slacksign import post

    for name, headers in cases.items():
        status, _ = post(bot.url, body, headers)
        assert status == 401, name
    # a correctly signed request still works afterwards: the rejections left nothing behind
    bot.command("", command="/status")
    bot.ephemeral(ALICE, "nothing deployed yet")
    assert bot.runtime.engine.store.deployments("demo") == []
    assert [c.method for c in bot.fake.calls if c.method.startswith("chat.")] == ["chat.postEphemeral"]


def test_a_user_outside_the_approver_group_is_refused(bot: Bot) -> None:
    bot.command("grp main", user=ALICE)
    card = bot.card("Deploy #1: main to grp")
    bot.press(card, "go", CAROL)
    bot.ephemeral(CAROL, "you are not an approver for grp")
    lookups = bot.fake.ok_calls("usergroups.users.list")
    assert lookups and lookups[0].params["usergroup"] == "S0DEPLOY1"
    bot.press(card, "go", BOB)  # Bob is in S0DEPLOY1
    bot.wait_card(card.ts, "✅ deployed")
    events = [e.action for e in bot.runtime.engine.store.events(deployment_id=1)]
    assert "refused_approve" in events and events.count("approve") == 1


def test_double_clicks_and_retried_deliveries_act_once(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gonogo.slack")
    bot.command("duo main", user=ALICE)
    card = bot.card("Deploy #1: main to duo")
    button = find_button(card, "go")
    click = dict(
        action_id="go",
        value=button["value"],
        user=BOB,
        message_ts=card.ts,
        block_id=button["block_id"],
        action_ts="1700000123.456789",
    )
    bot.click(**click)
    bot.click(**click)  # the same payload twice (a double delivery)
    bot.click(**click, retry_num=1)  # and a retry
    bot.ephemeral(BOB, "Go recorded for #1; 1 more approval(s) needed")
    bot.fake.wait_for(
        lambda: sum("duplicate delivery of go" in r.getMessage() for r in caplog.records) == 2,
        what="both duplicates seen and dropped",
    )
    d = bot.runtime.engine.deployment(1)
    assert d.approvers() == [BOB] and d.state == State.PENDING
    assert len([c for c in bot.fake.ok_calls("chat.postEphemeral") if c.params["user"] == BOB]) == 1


def test_two_approvers_clicking_at_once_are_both_recorded(bot: Bot) -> None:
    bot.command("duo main", user=ALICE)
    card = bot.card("Deploy #1: main to duo")
    barrier = threading.Barrier(2)

    def go(user: str) -> None:
        barrier.wait()
        bot.press(card, "go", user)

    threads = [threading.Thread(target=go, args=(u,)) for u in (BOB, CAROL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.wait_card(card.ts, "✅ deployed")
    d = bot.runtime.engine.deployment(1)
    assert sorted(d.approvers()) == sorted([BOB, CAROL])
    assert [e.action for e in bot.runtime.engine.store.events(deployment_id=1)].count("approve") == 2


def at_once(*calls: Callable[[], object]) -> None:
    """Run the calls in threads released together (a barrier), and wait for them all."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        call()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_two_people_ticking_at_the_same_moment_both_count(bot: Bot) -> None:
    """Both clickers saw the same card; each click carries only its own change (Slack sends the
    clicker's whole selection), so neither can undo the other's, round after round."""
    fake, engine = bot.fake, bot.runtime.engine
    bot.command("demo v1", user=ALICE)
    card = bot.card("Deploy #1: v1 to demo")

    def checklist_events() -> int:
        return [e.action for e in engine.store.events(deployment_id=1)].count("checklist")

    rounds = 12
    for r in range(rounds):
        view = fake.message(card.ts)  # what both clickers see
        ticking = r % 2 == 0
        # tick: Bob selects 1, Carol 2 on an empty list; untick: each deselects one of 1 and 2
        picks = {BOB: ["1"], CAROL: ["2"]} if ticking else {BOB: ["2"], CAROL: ["1"]}
        at_once(*(partial(bot.tick, view, user, items) for user, items in picks.items()))
        fake.wait_for(lambda r=r: checklist_events() == 2 * (r + 1), what=f"both clicks of round {r}")
        expected = (ticking, ticking)
        assert engine.deployment(1).checklist == expected, f"round {r}: a tick was lost"
        fake.wait_for(
            lambda expected=expected: (
                ticked(fake.message(card.ts)) == [str(i + 1) for i, v in enumerate(expected) if v]
            ),
            what=f"the card after round {r}",
        )


def test_a_rate_limited_card_update_is_retried_and_ends_right(bot: Bot) -> None:
    bot.command("duo main", user=ALICE)
    card = bot.card("Deploy #1: main to duo")
    bot.fake.fail_next("chat.update", 1)  # 429 with Retry-After: 1
    bot.press(card, "go", BOB)
    bot.fake.wait_for(lambda: bot.fake.calls_of("chat.update"), what="the first update")
    bot.press(card, "go", CAROL)
    bot.wait_card(card.ts, "✅ deployed")
    statuses = [c.status for c in bot.fake.calls_of("chat.update")]
    assert statuses[0] == 429 and 200 in statuses
    assert bot.runtime.chat.flush(10)
    final = bot.fake.message(card.ts)
    assert "✅ deployed" in dump(final) and "Approvals 2/2" in dump(final)


def test_a_dropped_connection_is_retried_and_the_card_still_lands(bot: Bot) -> None:
    """The fake closes the connection of a card post and of a card update once, answering nothing."""
    bot.fake.drop_next("chat.postMessage")
    bot.command("duo main", user=ALICE)
    card = bot.card("Deploy #1: main to duo")
    assert [c.status for c in bot.fake.calls_of("chat.postMessage")][:2] == [0, 200]
    assert bot.store_state(1) == State.PENDING  # not cancelled for want of a card
    bot.fake.drop_next("chat.update")
    bot.press(card, "go", BOB)
    bot.press(card, "go", CAROL)
    bot.wait_card(card.ts, "✅ deployed")
    assert bot.fake.calls_of("chat.update")[0].status == 0
    assert "Approvals 2/2" in dump(bot.fake.message(card.ts))


def test_events_api_retries_are_deduplicated(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gonogo.slack")
    body = event_body({"type": "tokens_revoked", "tokens": {"bot": ["U0GONOGO"]}}, event_id="Ev42")
    for retry in (None, 1, 2):
        status, _ = send_signed(bot.url, body, retry_num=retry, content_type="application/json")
        assert status == 200
    assert sum("revoked gonogo's tokens" in r.getMessage() for r in caplog.records) == 1
    assert sum("event Ev42 delivered again" in r.getMessage() for r in caplog.records) == 2


def test_ops_endpoints_are_served_beside_slack_events(bot: Bot) -> None:
    base = bot.url.removesuffix("/slack/events")
    with urllib.request.urlopen(base + "/livez", timeout=5) as resp:
        assert resp.status == 200
    with urllib.request.urlopen(base + "/readyz", timeout=5) as resp:
        report = json.loads(resp.read())
        assert report["ready"] is True and report["slack"] == "ok"


# -- the adapter's parts on their own ----------------------------------------------------------------
def test_card_updates_are_coalesced_and_the_last_state_always_lands(slack_api: FakeSlack) -> None:
    from bot.domain.card import Card

    chat = SlackChat(make_client(BOT_TOKEN, slack_api.api_url), window=0.5)
    try:
        first = Card(deployment_id=9, title="Deploy #9", state=State.RUNNING, status_line="step 0", fields=())
        ref = chat.post_card(CHANNEL, first)
        assert ref is not None and ref.channel == CHANNEL
        for i in range(1, 31):
            chat.update_card(ref, Card(9, "Deploy #9", State.RUNNING, f"step {i}", ()))
        assert chat.flush(10)
        updates = slack_api.calls_of("chat.update")
        assert 1 <= len(updates) <= 3
        assert "step 30" in slack_api.message(ref.ts).text
    finally:
        chat.close()


def test_send_failures_are_logged_with_the_deployment_and_never_raise(
    slack_api: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.chat.base import MessageRef
    from bot.domain.card import Card

    chat = SlackChat(make_client(BOT_TOKEN, slack_api.api_url, max_retries=1), window=0.05)
    try:
        card = Card(deployment_id=77, title="Deploy #77", state=State.PENDING, status_line="⏳", fields=())
        assert chat.post_card("", card) is None  # channel_not_found
        slack_api.fail_next("chat.postMessage", 5, status=429)
        assert chat.post_card(CHANNEL, card) is None  # still rate limited after the retries
        chat.update_card(MessageRef(CHANNEL, "1.2"), card)  # message_not_found: permanent
        chat.post_thread(MessageRef(CHANNEL, "1.2"), "details")
        chat.post_ephemeral(CHANNEL, ALICE, "hi")
        assert chat.flush(10)
    finally:
        chat.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "deployment #77: could not post its card in : channel_not_found" in logged
    assert "deployment #77: could not post its card in C0DEPLOYS: ratelimited" in logged
    assert "deployment #77: card update failed (message_not_found); giving up" in logged
    dead = SlackChat(make_client(BOT_TOKEN, "http://127.0.0.1:9/api/"), window=0.05)
    try:
        assert dead.post_card(CHANNEL, card) is None and not dead.reachable()
    finally:
        dead.close()


def test_the_directory_caches_groups_and_fails_closed(slack_api: FakeSlack) -> None:
    now = [0.0]
    directory = SlackDirectory(make_client(BOT_TOKEN, slack_api.api_url), ttl=300, clock=lambda: now[0])
    assert directory.members("S0DEPLOY1") == frozenset({BOB})
    assert directory.members("S0DEPLOY1") == frozenset({BOB})
    assert len(slack_api.calls_of("usergroups.users.list")) == 1
    now[0] = 301
    slack_api.groups["S0DEPLOY1"] = [BOB, CAROL]
    assert directory.members("S0DEPLOY1") == frozenset({BOB, CAROL})
    assert directory.members("S0NOSUCH1") == frozenset()  # no_such_subteam: empty, never raises
    dead = SlackDirectory(make_client(BOT_TOKEN, "http://127.0.0.1:9/api/"))
    assert dead.members("S0DEPLOY1") == frozenset()


def test_socket_mode_builds_the_handler_with_the_app_token(tmp_path: Path, slack_api: FakeSlack) -> None:
    path = write_demo_config(tmp_path, replace={"[slack]\n": f'[slack]\napi_url = "{slack_api.api_url}"\n'})
    runtime = build_runtime(load_config(path), bot_token=BOT_TOKEN, signing_secret=None, socket_mode=True)
    try:
        handler = socket_mode_handler(runtime.app, "xapp-1-A0GONOGO-1-secret")
        assert handler.app_token == "xapp-1-A0GONOGO-1-secret"
        assert handler.client.app_token == "xapp-1-A0GONOGO-1-secret"
        assert handler.client.web_client.base_url == slack_api.api_url
        handler.client.close()
    finally:
        runtime.close()
    settings = settings_from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    assert settings.socket_mode and settings.signing_secret is None and settings.port == 3000


def test_manifest_declares_commands_interactivity_and_scopes(demo_config: Config) -> None:
    http = manifest_yaml(demo_config, socket_mode=False)
    for needle in (
        'name: "gonogo"',
        '- command: "/deploy"',
        '- command: "/signoff"',
        'url: "https://YOUR-HOST/slack/events"',
        'request_url: "https://YOUR-HOST/slack/events"',
        'usage_hint: "[env]"',
        "socket_mode_enabled: false",
        '- "usergroups:read"',
        '- "chat:write.public"',
    ):
        assert needle in http, needle
    socket = manifest_yaml(demo_config, socket_mode=True)
    assert "socket_mode_enabled: true" in socket and "YOUR-HOST/slack" not in socket.split("\n", 5)[-1]
    assert '- "tokens_revoked"' in socket
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.app.cli",
            "manifest",
            "--socket-mode",
            "--config",
            str(ROOT / "config.example.toml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "socket_mode_enabled: true" in out


# -- gonogo serve as a process -------------------------------------------------------------------------
def _serve(config: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    return subprocess.Popen(
        [sys.executable, "-m", "bot.app.cli", "serve", "--config", str(config), *args],
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("env", "args", "named", "where"),
    [
        ({}, (), "SLACK_BOT_TOKEN", "OAuth & Permissions"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, (), "SLACK_SIGNING_SECRET", "Basic Information"),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-oops"},
            (),
            "SLACK_APP_TOKEN",
            "App-Level Tokens",
        ),
        # the chosen mode decides what is needed, whatever else the environment has
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"},
            ("--mode", "socket"),
            "SLACK_APP_TOKEN is not set; --mode socket needs",
            "App-Level Tokens",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1-A0GONOGO-1-secret"},
            ("--mode", "http"),
            "SLACK_SIGNING_SECRET is not set",
            "--mode http needs it",
        ),
    ],
)
def test_serve_without_its_secrets_stops_with_a_clear_message(
    demo_config_path: Path, env: dict[str, str], args: tuple[str, ...], named: str, where: str
) -> None:
    proc = _serve(demo_config_path, env, *args)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert named in err and where in err and "Traceback" not in err


def test_the_mode_comes_from_the_flag_and_auto_from_the_app_token() -> None:
    both = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_APP_TOKEN": "xapp-1"}
    assert settings_from_env(both).socket_mode  # auto: the app token selects Socket Mode
    http = settings_from_env(both, mode="http")
    assert not http.socket_mode and http.app_token is None and http.signing_secret == "s"
    assert settings_from_env(both, mode="socket").socket_mode
    assert not settings_from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}).socket_mode
    socket_only = settings_from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, mode="socket")
    assert socket_only.socket_mode and socket_only.signing_secret is None
    with pytest.raises(StartupError, match="--mode must be one of auto, http, socket"):
        settings_from_env(both, mode="websocket")


def test_the_procfile_names_the_mode_of_each_process_type() -> None:
    processes = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert "gonogo serve --mode http " in processes["web"] and "--port ${PORT" in processes["web"]
    assert "gonogo serve --mode socket " in processes["worker"]


@pytest.mark.parametrize(
    ("extra_env", "args"),
    [({}, ()), ({"SLACK_APP_TOKEN": "xapp-1-A0GONOGO-1-secret"}, ("--mode", "http"))],
    ids=["auto", "mode-http-despite-an-app-token"],
)
def test_serve_runs_http_mode_and_stops_cleanly_on_sigterm(
    demo_config_path: Path, slack_api: FakeSlack, extra_env: dict[str, str], args: tuple[str, ...]
) -> None:
    port = free_port()
    proc = _serve(
        demo_config_path,
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack_api.api_url,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            **extra_env,
        },
        *args,
    )
    try:
        url = f"http://127.0.0.1:{port}/slack/events"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                status, _ = send_signed(url, slash_command_body("/status", "", user=ALICE, channel=CHANNEL))
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not listen"
                time.sleep(0.05)
        assert status == 200
        slack_api.wait_for(lambda: slack_api.ok_calls("chat.postEphemeral"), what="the /status reply")
        assert slack_api.calls_of("auth.test"), "serve verifies the token at start-up"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "starting HTTP mode" in err
        assert not slack_api.calls_of("apps.connections.open")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_serve_in_socket_mode_acks_over_the_websocket_and_replies(
    demo_config_path: Path, slack_api: FakeSlack
) -> None:
    socket = FakeSocketMode()
    slack_api.socket_url = socket.url
    proc = _serve(
        demo_config_path,
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": "xapp-1-A0GONOGO-1-secret",
            "SLACK_API_URL": slack_api.api_url,
            "PORT": str(free_port()),
            "HOST": "127.0.0.1",
        },
        "--mode",
        "socket",  # as the Procfile's worker runs it
    )
    try:
        slack_api.wait_for(lambda: socket.connections, timeout=30, what="the Socket Mode connection")
        body = dict(parse_qsl(slash_command_body("/status", "demo", user=ALICE, channel=CHANNEL)))
        socket.send("slash_commands", body, envelope_id="env-1")
        slack_api.wait_for(lambda: socket.acks, what="the ack over the socket")
        assert socket.acks[0]["envelope_id"] == "env-1"
        reply = slack_api.wait_for(lambda: slack_api.ok_calls("chat.postEphemeral"), what="the /status reply")
        assert "*demo*: nothing deployed yet" in reply[0].params["text"]
        assert [c.params for c in slack_api.calls_of("apps.connections.open")]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Socket Mode" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        socket.close()


def test_serve_with_a_bad_token_stops_at_start_up(demo_config_path: Path, slack_api: FakeSlack) -> None:
    proc = _serve(
        demo_config_path,
        {"SLACK_BOT_TOKEN": "xoxb-wrong", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": slack_api.api_url},
        "--port",
        str(free_port()),
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "SLACK_BOT_TOKEN" in err and "invalid_auth" in err, err
    assert "Traceback" not in err


# -- checklists in phases, and a stage gate -------------------------------------------------
def checklist_blocks(m: Message) -> list[dict[str, Any]]:
    return [b for b in m.blocks if str(b.get("block_id", "")).startswith("checklist:")]


def test_a_phased_checklist_ticks_group_by_group_and_a_gate_waits_for_go(bot: Bot) -> None:
    fake = bot.fake
    bot.command("phased v1")
    card = bot.card("Deploy #1: v1 to phased")
    groups = checklist_blocks(card)  # the fake Web API refused nothing: within Block Kit limits
    assert [g["block_id"] for g in groups] == ["checklist:1:1-6", "checklist:1:7-11", "checklist:1:12-13"]
    assert [g["text"]["text"] for g in groups] == ["*Pre-deploy checklist*\n*Before*", "*Data*", "*People*"]
    # each group is its own checkbox element: a click in one never unticks another
    for group in groups:
        values = [o["value"] for o in group["accessory"]["options"]]
        bot.click(
            action_id="checklist", selected=values, user=BOB, message_ts=card.ts,
            block_id=group["block_id"], message_blocks=fake.message(card.ts).blocks,
        )  # fmt: skip
    fake.wait_for(lambda: bot.runtime.engine.deployment(1).checklist == (True,) * 13, what="all 13 ticked")
    # a click whose payload carries no card is diffed against the stored ticks of its group only
    bot.click(
        action_id="checklist", selected=["13"], user=BOB, message_ts=card.ts, block_id=groups[2]["block_id"]
    )
    want = (True,) * 11 + (False, True)
    fake.wait_for(lambda: bot.runtime.engine.deployment(1).checklist == want, what="only item 12 unticked")
    bot.click(
        action_id="checklist",
        selected=["12", "13"],
        user=BOB,
        message_ts=card.ts,
        block_id=groups[2]["block_id"],
    )
    fake.wait_for(lambda: all(bot.runtime.engine.deployment(1).checklist), what="item 12 ticked again")
    bot.press(fake.message(card.ts), "go", BOB)
    card = bot.wait_card(card.ts, "waiting at a gate before deploy")
    assert bot.store_state(1) == State.GATED
    bot.press(card, "gate_go", ALICE)  # the requester may not pass her own gate
    bot.ephemeral(ALICE, "you requested this deployment")
    bot.press(fake.message(card.ts), "gate_go", CAROL)
    bot.wait_card(card.ts, "✅ deployed")
    assert bot.store_state(1) == State.SUCCEEDED
