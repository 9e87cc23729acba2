"""A runbook through the terminal chat: a phased checklist, a stage gate answered with `press`,
and the artifact a step published on the card. Real engine, SQLite and local backend."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

from bot.config import parse_config
from bot.console.chat import ConsoleChat
from bot.console.repl import Console
from bot.domain.deployment import State
from bot.store.sqlite import SqliteStore
from tests.support.engines import make_engine

CONFIG = """
[bot]
data_dir = "{data}"
[environments.demo]
backend = "local"
hosts = ["localhost"]
checklist = [
  {{ phase = "Before", items = ["Backup verified", "Migration reviewed"] }},
  {{ phase = "People", items = ["On-call aware"] }},
]
[environments.demo.gates]
deploy = "migration done and verified; Go to deploy the app?"
[[environments.demo.steps.pre_deploy]]
name = "backup"
run = "echo ::gonogo artifact backup_path={data}/backup-{{deploy_id}}.sql"
artifacts = ["backup_path"]
[[environments.demo.steps.deploy]]
name = "switch"
run = "test -n {{artifact.backup_path}}"
"""


def test_a_gated_runbook_in_the_console(tmp_path: Path) -> None:
    config = parse_config(tomllib.loads(CONFIG.format(data=tmp_path)), source=tmp_path / "c.toml", environ={})
    out = io.StringIO()
    chat = ConsoleChat(out=out, channel="#deploys")
    engine = make_engine(config, SqliteStore(tmp_path / "gonogo.db"), chat)
    engine.start(run_scheduler=False)
    try:
        script = "/deploy demo v1\n/as bob\ntick all\npress go\nwait\n/as alice\npress go\n/as carol\npress go\nwait\n"
        assert Console(engine, chat, channel="#deploys").run(io.StringIO(script), interactive=False) == 0
        assert engine.deployment(1).state == State.SUCCEEDED
    finally:
        engine.shutdown(wait=True, grace=5)
        engine.store.close()
    text = out.getvalue()
    assert (
        "│  Before:\n│   [ ] 1. Backup verified\n│   [ ] 2. Migration reviewed\n│  People:\n│   [ ] 3. On-call aware"
        in text
    )
    assert "🚦 waiting at a gate before deploy: migration done and verified; Go to deploy the app?" in text
    assert "│ Go at the gate 0/1: none yet" in text
    assert "(to alice) Refused: you requested this deployment; someone else must approve it" in text
    assert f"│ 📦 backup_path: {tmp_path}/backup-1.sql" in text
