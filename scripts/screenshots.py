#!/usr/bin/env python3
"""Screenshots of every page of the web view for the README, in a real headless Chromium.

Builds a throwaway bot (SQLite, local backend) with a few weeks of history made on a fake
clock (deploys, a failure and its rollback), serves the web view on a loopback port, signs in
with a token and saves one PNG per page under docs/screenshots/.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from bot.app.backends import backend_factory  # noqa: E402
from bot.chat.base import Chat  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from bot.timing.clock import FakeClock  # noqa: E402
from bot.web import WebAuth, create_web_app  # noqa: E402

TOKEN = "screenshot-token"
CONFIG = """
[bot]
name = "gonogo"
data_dir = "{data}"
[web]
url = "http://127.0.0.1:{port}/web"
token_env = "WEB_TOKEN"
[environments.staging]
backend = "local"
hosts = ["app1", "app2"]
deploy_to = "{data}/staging"
[environments.staging.approvals]
required = 1
[[environments.staging.steps.deploy]]
name = "release"
run = "echo released {{ref}} on {{host}}"
[environments.prod]
backend = "local"
hosts = ["web1", "web2", "web3"]
deploy_to = "{data}/prod"
[environments.prod.approvals]
required = 1
[[environments.prod.steps.deploy]]
name = "release"
run = "echo released {{ref}} on {{host}}; test ! -e {data}/broken"
[[environments.prod.steps.rollback]]
name = "switch back"
run = "echo back to {{ref}} on {{host}}"
"""


class QuietChat:
    """A chat that says nothing (the screenshots are of the web view)."""

    def __getattr__(self, name: str) -> object:
        from bot.chat.base import MessageRef

        counter = iter(range(1, 10**6))
        return lambda *a, **k: MessageRef("#deploys", f"{next(counter)}.0")


def history(engine: Engine, clock: FakeClock, data: Path) -> None:
    """Three weeks of releases on both environments, one broken prod deploy and its rollback."""
    for week in range(3):
        for n, env in enumerate(("staging", "prod", "staging", "prod")):
            version = f"v2.{week}.{n}"
            d = engine.request_deploy("alice", "#deploys", env, version, reason=f"release {version}")
            clock.advance(minutes=20)
            engine.approve("bob" if n % 2 else "carol", d.id)
            engine.wait_idle(30)
            clock.advance(hours=30)
    (data / "broken").touch()
    bad = engine.request_deploy("dave", "#deploys", "prod", "v2.3.0", reason="new checkout <beta>")
    engine.approve("bob", bad.id)
    engine.wait_idle(30)
    (data / "broken").unlink()
    clock.advance(minutes=25)
    rollback = engine.rollback_failed("bob", bad.id)
    if engine.deployment(rollback.id).state.value == "pending":
        engine.approve("carol", rollback.id)
    engine.wait_idle(30)


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    out = Path(args.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="gonogo-shots-"))
    port = _free_port()
    config = parse_config(
        tomllib.loads(CONFIG.format(data=data, port=port)), source=data / "c.toml", environ={}
    )
    clock = FakeClock(datetime.now(UTC) - timedelta(days=24))
    chat: Chat = QuietChat()  # type: ignore[assignment]
    engine = Engine(
        config, SqliteStore(data / "db.sqlite"), chat, backends=backend_factory(config), clock=clock
    )
    history(engine, clock, data)
    app = create_web_app(engine, WebAuth.from_env(config.integrations.web, {"WEB_TOKEN": TOKEN}, ""))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}/web"
    profile = tempfile.mkdtemp(prefix="gonogo-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,1000", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(flag)
    browser = webdriver.Chrome(
        options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    )
    try:
        browser.get(base + "/")
        browser.save_screenshot(str(out / "login.png"))
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()
        time.sleep(0.5)
        last = engine.store.deployments(limit=1)[0].id
        pages = {
            "environments": "/",
            "history": "/deploys",
            "deploy": f"/deploys/{last - 1}",
            "dora": "/dora?env=prod",
        }
        for name, path in pages.items():
            browser.get(base + path)
            time.sleep(0.4)
            browser.save_screenshot(str(out / f"{name}.png"))
            print(f"wrote {out / f'{name}.png'}")
    finally:
        browser.quit()
        server.should_exit = True
        app.close()
        engine.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
