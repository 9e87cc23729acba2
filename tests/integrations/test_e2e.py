"""End to end, each integration through the terminal chat and through signed Slack requests:
a red required context refuses Go, a deploy mirrors every status, a failed deploy pages and the
rollback resolves it, and the web view shows the deploy that just ran (401 without a sign-in)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.app.serve import build_runtime, http_server
from bot.config import load_config
from bot.domain.deployment import State
from tests.conftest import free_port, stop_demo_app, write_demo_config
from tests.slack.test_slack import ALICE, BOB, Bot, dump, ticked
from tests.support.slackapi import BOT_TOKEN, FakeSlack, start_fake_slack, stop_fake_slack
from tests.support.slacksign import SIGNING_SECRET
from tests.support.vendors import ENVIRON, Vendors, config_toml, start_vendors, stop_vendors

WEB_TOKEN = ENVIRON["TEST_WEB_TOKEN"]
DEMO = {
    "[environments.demo]\n": '[environments.demo]\nrequired_contexts = ["ci/build", "ci/test"]\npage = true\n'
    "auto_rollback = true\n"
}
BREAKABLE = """
[[environments.demo.steps.deploy]]
name = "breakable"
run = "test ! -e {data}/broken"
"""


@pytest.fixture
def vendors() -> Iterator[Vendors]:
    fake = start_vendors()
    yield fake
    stop_vendors(fake)


def _config(tmp_path: Path, vendors: Vendors, web_port: int, replace: dict[str, str] | None = None) -> Path:
    extra = config_toml(vendors, web_url=f"http://127.0.0.1:{web_port}/web") + BREAKABLE.format(data=tmp_path)
    return write_demo_config(tmp_path, extra=extra, replace={**DEMO, **(replace or {})})


def _ci(vendors: Vendors, config: Path) -> None:
    """CI of the demo history's tags (statuses are by commit): v1 fails its tests."""
    repo = load_config(config).repo.url
    shas = subprocess.run(
        ["git", f"--git-dir={repo}", "rev-parse", "v1", "v2", "v3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    sha = dict(zip(("v1", "v2", "v3"), shas, strict=True))
    vendors.set_status(sha["v1"], "ci/build", "success")
    vendors.set_check_run(sha["v1"], "ci/test", "completed", "failure")
    for ref in ("v2", "v3"):
        vendors.set_status(sha[ref], "ci/build", "success")
        vendors.set_check_run(sha[ref], "ci/test", "completed", "success")


def _pages_and_resolves(vendors: Vendors, failed_id: int) -> None:
    key = f"gonogo-demo-{failed_id}"
    vendors.wait_for(
        lambda: (
            [(e["event_action"], e["dedup_key"]) for e in vendors.events]
            == [("trigger", key), ("resolve", key)]
        ),
        what="a trigger, then its resolve",
        timeout=60,  # delivered in the background, in order, through the scheduler's polling
    )
    vendors.wait_for(
        lambda: [(h["event"], h["key"]) for h in vendors.hooks] == [("trigger", key), ("resolve", key)],
        what="the webhook's trigger, then its resolve",
        timeout=60,
    )


def _web_shows(url: str, deployment_id: int, ref: str) -> None:
    assert httpx.get(f"{url}/web/deploys/{deployment_id}", timeout=10).status_code == 401
    page = httpx.get(f"{url}/web/", headers={"Authorization": f"Bearer {WEB_TOKEN}"}, timeout=10)
    assert page.status_code == 200 and f"#{deployment_id}" in page.text and f"<code>{ref}</code>" in page.text


# -- the terminal chat -------------------------------------------------------------------------
def test_integrations_through_the_terminal_chat(tmp_path: Path, vendors: Vendors) -> None:
    web_port = free_port()
    path = _config(tmp_path, vendors, web_port)
    _ci(vendors, path)
    env = {**os.environ, **ENVIRON}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.app.cli", "console", "--config", str(path), "--web-port", str(web_port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()

    def say(*lines: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write("\n".join(lines) + "\n")
        proc.stdin.flush()

    def shown(needle: str) -> None:
        vendors.wait_for(lambda: needle in "".join(out), what=f"console output {needle!r}")

    try:
        say("/deploy demo v1", "/as bob", "tick all", "press go")
        shown("CI is failing: ci/test")
        shown("CI: ❌ failing: ci/test")
        say("press no-go", "/as alice", "/deploy demo v2", "/as bob", "tick all", "press go", "wait")
        vendors.wait_for(
            lambda: vendors.states_of(2) == ["queued", "in_progress", "success"], what="v2 mirrored"
        )
        _web_shows(f"http://127.0.0.1:{web_port}", 2, "v2")
        (tmp_path / "broken").touch()
        say("/as alice", "/deploy demo v3", "/as bob", "tick all", "press go", "wait")
        shown("Rolling back automatically")
        vendors.wait_for(lambda: vendors.events, what="a page")
        (tmp_path / "broken").unlink()
        _pages_and_resolves(vendors, 3)
        vendors.wait_for(lambda: vendors.states_of(3)[-1:] == ["inactive"], what="#3 inactive: rolled back")
        say("quit")
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_demo_app(tmp_path / "data")
    assert "Traceback" not in "".join(out)


# -- signed Slack requests ------------------------------------------------------------------------
@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    fake = start_fake_slack()
    yield fake
    stop_fake_slack(fake)


def test_integrations_through_signed_slack_requests(
    tmp_path: Path, vendors: Vendors, slack_api: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    path = _config(tmp_path, vendors, port, {"[slack]\n": f'[slack]\napi_url = "{slack_api.api_url}"\n'})
    _ci(vendors, path)
    config = load_config(path)
    runtime = build_runtime(config, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, window=0.2)
    runtime.engine.start()
    server = http_server(runtime, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    bot = Bot(f"http://127.0.0.1:{port}/slack/events", slack_api, runtime, config)
    try:
        bot.command("demo v1")
        card = bot.wait_card(bot.card("Deploy #1: v1 to demo").ts, "failing: ci/test")
        assert "github.example/acme/shop/runs/" in dump(card)  # the failing context, linked
        assert f"http://127.0.0.1:{port}/web/deploys/1" in dump(card)  # and the web view
        bot.tick(card, BOB, ["1", "2"])
        slack_api.wait_for(lambda: ticked(slack_api.message(card.ts)) == ["1", "2"], what="ticked")
        bot.press(slack_api.message(card.ts), "go", BOB)
        bot.ephemeral(BOB, "CI is failing: ci/test")
        assert bot.store_state(1) == State.PENDING
        bot.press(slack_api.message(card.ts), "nogo", BOB)
        # the click is acked first and handled in the background: wait for it before the next request
        slack_api.wait_for(lambda: bot.store_state(1) == State.DECLINED, what="#1 declined")

        bot.command("demo v2")
        card2 = bot.wait_card(bot.card("Deploy #2: v2 to demo").ts, "passed (ci/build, ci/test)")
        bot.tick(card2, BOB, ["1", "2"])
        slack_api.wait_for(lambda: ticked(slack_api.message(card2.ts)) == ["1", "2"], what="ticked")
        bot.press(slack_api.message(card2.ts), "go", BOB)
        bot.wait_card(card2.ts, "✅ deployed")
        vendors.wait_for(
            lambda: vendors.states_of(2) == ["queued", "in_progress", "success"], what="mirrored"
        )
        _web_shows(f"http://127.0.0.1:{port}", 2, "v2")

        (tmp_path / "broken").touch()
        bot.command("demo v3", user=ALICE)
        card3 = bot.wait_card(bot.card("Deploy #3: v3 to demo").ts, "passed")
        bot.tick(card3, BOB, ["1", "2"])
        slack_api.wait_for(lambda: ticked(slack_api.message(card3.ts)) == ["1", "2"], what="ticked")
        bot.press(slack_api.message(card3.ts), "go", BOB)
        vendors.wait_for(lambda: vendors.events, what="a page")
        (tmp_path / "broken").unlink()
        _pages_and_resolves(vendors, 3)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        runtime.close()
        stop_demo_app(tmp_path / "data")
