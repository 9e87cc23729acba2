"""Crash recovery: a process SIGKILLed mid-deploy; the next one finds the run interrupted,
announces it with Resume / Roll back, and Resume finishes the remaining hosts only. The step in
flight outlives the bot (the local step journal) and is recorded from it, not run again."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

from bot.config import parse_config
from bot.domain.deployment import State
from bot.store import open_store
from tests.support.bot_process import kill_bot, start_bot
from tests.support.engines import make_engine
from tests.support.recording import RecordingChat

CONFIG = """
[bot]
data_dir = "{data}"
heartbeat_interval = "0.2s"
[environments.prod]
backend = "local"
hosts = ["h1", "h2", "h3", "h4"]
[environments.prod.strategy]
kind = "sequential"
[[environments.prod.steps.deploy]]
name = "ship"
run = "echo {{host}} >> {data}/done; if [ {{host}} = h2 ] && [ -e {data}/slow ]; then touch {data}/h2-started; while [ -e {data}/slow ]; do sleep 0.05; done; fi"
"""


def test_sigkill_mid_deploy_then_resume_on_the_remaining_hosts(tmp_path: Path, store_url: str) -> None:
    text = CONFIG.format(data=tmp_path)
    (tmp_path / "slow").touch()  # h2 hangs until this file goes
    child = start_bot(tmp_path, text, store_url)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "h2-started").exists():
            assert time.monotonic() < deadline, "the child never reached h2"
            assert child.poll() is None, "the child died early"
            time.sleep(0.05)
    finally:
        kill_bot(child)  # the bot; the step runs on in its own session
    assert (tmp_path / "done").read_text().split() == ["h1", "h2"]

    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    chat = RecordingChat()
    engine = make_engine(config, open_store(store_url), chat)
    try:
        d = engine.store.deployments("prod")[0]
        assert d.state == State.RUNNING  # nothing recorded before the crash was lost
        time.sleep(1.2)  # let the dead process heartbeat go stale (3 x 0.2 s, at least 1 s)
        engine.start()
        interrupted = engine.deployment(d.id)
        assert interrupted.state == State.INTERRUPTED
        alert = chat.of_kind("message")[-1]
        assert "was interrupted" in alert.text and [b.label for b in alert.buttons] == ["Resume", "Roll back"]
        assert engine.store.active("prod").id == d.id  # still holds the env
        # h1 finished before the crash; the resume cursor points at the batch of h2, whose step
        # still runs: Resume reattaches to it
        (tmp_path / "slow").unlink()
        engine.resume("bob", d.id)
        engine.wait_idle(60)
        assert engine.deployment(d.id).state == State.SUCCEEDED
        # neither h1 nor h2 (the one in flight) runs again; h3 and h4 run
        assert (tmp_path / "done").read_text().split() == ["h1", "h2", "h3", "h4"]
        journal = tmp_path / "journal" / "prod"
        assert sorted(p.name for p in journal.glob("*/*")) == ["h1", "h2", "h3", "h4"]
        actions = [e.action for e in engine.store.events(deployment_id=d.id)]
        assert actions.index("interrupt") < actions.index("resume_requested") < actions.index("resume")
    finally:
        engine.shutdown()
        engine.store.close()
