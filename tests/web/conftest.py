"""A running engine with the web view under uvicorn (real HTTP), and a fake Slack for sign-in."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from bot.config import parse_config
from bot.engine import Engine
from bot.store.sqlite import SqliteStore
from bot.web import WebApp, WebAuth, create_web_app
from tests.conftest import free_port
from tests.support.engines import make_engine
from tests.support.recording import RecordingChat
from tests.support.slackapi import FakeSlack, start_fake_slack, stop_fake_slack

TOKEN = "web-token-0123456789"
CLIENT_ID = "1234.5678"
CLIENT_SECRET = "oidc-client-secret"
CONFIG = """
[bot]
data_dir = "{data}"
[slack]
api_url = "{slack}/api/"
[web]
url = "http://127.0.0.1:{port}/web"
token_env = "WEB_TOKEN"
slack_client_id = "{client_id}"
slack_url = "{slack}"
[environments.staging]
backend = "local"
hosts = ["h1", "h2"]
deploy_to = "{data}/staging"
[environments.staging.approvals]
required = 1
[[environments.staging.steps.deploy]]
name = "hello"
run = "echo deployed {{ref}} on {{host}}"
[[environments.staging.steps.deploy]]
name = "slow"
run = "test ! -e {data}/slow || sleep 3"
"""


@dataclass
class Site:
    url: str
    engine: Engine
    app: WebApp
    slack: FakeSlack
    data: Path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    slack = start_fake_slack()
    slack.oidc_clients[CLIENT_ID] = CLIENT_SECRET
    port = free_port()
    text = CONFIG.format(data=tmp_path, slack=slack.url, port=port, client_id=CLIENT_ID)
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    engine = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    environ = {"WEB_TOKEN": TOKEN, "SLACK_CLIENT_SECRET": CLIENT_SECRET}
    app = create_web_app(engine, WebAuth.from_env(config.integrations.web, environ, config.slack.api_url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           access_log=False, timeout_graceful_shutdown=1))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Site(f"http://127.0.0.1:{port}/web", engine, app, slack, tmp_path)
    finally:
        app.close()
        server.should_exit = True
        thread.join(timeout=10)
        engine.shutdown()
        stop_fake_slack(slack)


def ship(engine: Engine, ref: str, reason: str | None = None) -> int:
    """Request, approve and run a deploy to staging; its id."""
    d = engine.request_deploy("alice", "#deploys", "staging", ref, reason=reason)
    engine.approve("bob", d.id)
    engine.wait_idle(30)
    return d.id
