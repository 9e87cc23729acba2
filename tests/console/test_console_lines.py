"""The console's own words on a real engine: `press`/`tick` targeting, and no line ever raises.

The engine, SQLite store and local backend are real; the environment's steps are harmless
(`true`), so arbitrary lines may well start deployments.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.config import parse_config
from bot.console.chat import ConsoleChat
from bot.console.repl import Console, split_target
from bot.domain.deployment import State
from bot.engine.engine import Engine
from bot.store.sqlite import SqliteStore

CONFIG = """
[bot]
data_dir = "{data}"
[environments.demo]
backend = "local"
hosts = ["localhost"]
checklist = ["Changelog reviewed", "Someone is watching the app"]
signoff_checklist = ["Smoke tests passed"]
[environments.demo.approvals]
required = 1
[[environments.demo.steps.deploy]]
name = "noop"
run = "true"
[[environments.demo.steps.rollback]]
name = "noop"
run = "true"
"""


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """A console over a real engine on SQLite, printing into a buffer (`console.chat.out`)."""
    config = parse_config(
        tomllib.loads(CONFIG.format(data=tmp_path / "data")), source=tmp_path / "c.toml", environ={}
    )
    chat = ConsoleChat(out=io.StringIO(), channel="#deploys")
    engine = Engine(config, SqliteStore(tmp_path / "gonogo.db"), chat)
    engine.start(run_scheduler=False)
    yield Console(engine, chat, channel="#deploys")
    engine.shutdown(wait=True, grace=5)
    engine.store.close()


def said(console: Console) -> str:
    """Everything the console printed so far."""
    out = console.chat.out
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def run(console: Console, script: str) -> str:
    """Run a script through the console's own loop; return what it printed for it."""
    before = len(said(console))
    assert console.run(io.StringIO(script), interactive=False) == 0
    return said(console)[before:]


def test_press_with_a_non_ascii_digit_is_refused_not_a_crash(console: Console) -> None:
    out = run(console, "/deploy demo v1\n/as bob\ntick all\npress ²\ntick ²\npress ١\npress go\nwait\n")
    assert "no button '²' on the latest card of #1 (buttons: 1=Go, 2=No-go)" in out
    assert "usage: tick <n> [n...] [#id] | tick all [#id]" in out
    assert console.engine.deployment(1).state == State.SUCCEEDED


def test_press_after_a_dry_run_acts_on_the_pending_card(console: Console) -> None:
    out = run(
        console,
        "/deploy demo v1\n/deploy demo v2 --dry-run\nwait\n/as bob\ntick all\npress go\nwait\n",
    )
    assert "there is no button to press" not in out, out
    assert console.engine.deployment(1).state == State.SUCCEEDED
    assert console.engine.deployment(2).dry_run


def test_press_and_tick_name_the_deployment(console: Console) -> None:
    run(console, "/deploy demo v1\n/as bob\n/deploy demo v2 --dry-run\nwait\n")
    assert console.engine.deployment(2).state == State.SUCCEEDED
    out = run(console, "tick all #2\npress go #2\ntick all #1\npress go #7\npress go #1\nwait\n")
    assert "there is no checklist to tick on #2" in out
    assert "there is no button to press on #2" in out
    assert "there is no button to press on #7" in out
    assert console.engine.deployment(1).state == State.SUCCEEDED
    assert console.engine.deployment(1).approvers() == ["bob"]


def test_split_target() -> None:
    assert split_target("go #12") == ("go", 12)
    assert split_target("roll back now #3") == ("roll back now", 3)
    assert split_target("#3") == ("", 3)
    assert split_target("go") == ("go", None)
    assert split_target("go#3") == ("go#3", None)


words = st.sampled_from(
    ["/as", "/as bob", "/as alice", "/deploy", "/deploy demo", "/deploy demo v1 -n", "/rollback demo",
     "/status", "/status demo", "/signoff demo", "tick", "tick all", "press", "press go", "press 1",
     "help", "wait", "#1", "²", "٣", "1", "99999999999999999999", "-1", "all", "go", "\x00"]
)  # fmt: skip
lines = st.one_of(
    st.text(max_size=120),
    st.lists(st.one_of(words, st.text(max_size=12)), min_size=1, max_size=5).map(" ".join),
)


def test_no_console_line_ever_raises(console: Console) -> None:
    @given(st.lists(lines, max_size=6))
    @settings(max_examples=300, deadline=None)
    @example(["press ²"])
    @example(["/deploy demo v1", "/as bob", "tick ²", "press ²", "press 1 #²", "tick all #1"])
    def check(script: list[str]) -> None:
        for line in script:
            console.execute(line)

    check()

    # a script of arbitrary text through the loop itself, too
    @given(st.text(max_size=300))
    @settings(max_examples=100, deadline=None)
    def check_run(text: str) -> None:
        assert console.run(io.StringIO(text), interactive=False) == 0

    check_run()


def test_a_script_with_bad_bytes_and_odd_digits_runs_to_the_end(demo_config_path: Path) -> None:
    script = b"press \xc2\xb2\n\xff\xfe junk\n/as \xe2\x80\xae\n/status\n"
    proc = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "console", "--config", str(demo_config_path)],
        input=script,
        capture_output=True,
        timeout=120,
    )
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, out + err
    assert "Traceback" not in out + err, out + err
    assert "there is no button to press" in out
    assert "usage: /as <user>" in out
    assert "*demo*: nothing deployed yet" in out
