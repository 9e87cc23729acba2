"""`gonogo doctor` on real things: sshd hosts, a stopped one, an unknown host key, SQLite and
PostgreSQL stores (a wrong DSN), the local Slack Web API fake (a bad token), a git repository
and a health URL. Each problem is named with its fix; the exit status says whether a deploy
would stop.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app.doctor import run_doctor
from bot.store import open_store
from bot.store.postgres_migrations import MIGRATIONS
from demo.history import ensure_demo_repo
from tests.support.healthapp import HealthApp
from tests.support.pgfixtures import drop_schema, new_schema_name, require_postgres, schema_url
from tests.support.slackapi import BOT_TOKEN, FakeSlack, start_fake_slack, stop_fake_slack
from tests.support.sshd import SSHFleet, start_fleet

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh

CONFIG = """
[bot]
data_dir = "{data}"
[repo]
url = "{repo}"
[ssh]
user = "{user}"
identity_file = "{key}"
known_hosts = "{known}"
ssh_config = "{ssh_config}"
connect_timeout = "3s"
[environments.prod]
hosts = [{hosts}]
deploy_to = "{srv}/shop"
[[environments.prod.steps.deploy]]
name = "noop"
run = "true"
[[environments.prod.checks]]
name = "health"
type = "http"
url = "{health}"
timeout = "2s"
[environments.staging]
backend = "local"
hosts = ["localhost"]
deploy_to = "{srv}/staging"
[[environments.staging.steps.deploy]]
name = "noop"
run = "true"
"""


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = start_fake_slack()
    yield fake
    stop_fake_slack(fake)


@pytest.fixture
def app() -> Iterator[HealthApp]:
    with HealthApp() as served:
        yield served


def write_config(tmp_path: Path, fleet: SSHFleet, app: HealthApp, *, ports: list[int] | None = None) -> Path:
    repo = tmp_path / "shop.git"
    ensure_demo_repo(repo)
    ports = ports or [s.port for s in fleet.servers]
    hosts = ", ".join(
        f'{{ name = "app{i + 1}", address = "127.0.0.1", port = {p} }}' for i, p in enumerate(ports)
    )
    path = tmp_path / "gonogo.toml"
    path.write_text(CONFIG.format(
        data=tmp_path / "data", repo=repo, user=fleet.user, key=fleet.key, known=fleet.known_hosts,
        ssh_config=fleet.root / "ssh_config", hosts=hosts, srv=tmp_path / "srv", health=app.health_url,
    ))  # fmt: skip
    return path


def doctor(path: Path, env: dict[str, str] | None = None, only: str | None = None) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = run_doctor(str(path), only, environ=env or {}, out=out)
    return status, out.getvalue().splitlines()


def line(lines: list[str], start: str) -> str:
    found = [entry for entry in lines if entry.startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


def test_a_good_setup_passes_with_each_handshake_timed(
    tmp_path: Path,
    sshd_hosts,
    app: HealthApp,
    slack: FakeSlack,  # type: ignore[no-untyped-def]
) -> None:
    fleet = sshd_hosts(2)
    path = write_config(tmp_path, fleet, app)
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s3cret", "SLACK_API_URL": slack.api_url}
    status, lines = doctor(path, env)
    assert status == 0, "\n".join(lines)
    assert line(lines, "✓ config: ").endswith("loads (2 environment(s): prod, staging)")
    assert line(lines, "✓ store: ").startswith(
        f"✓ store: SQLite {tmp_path / 'data' / 'gonogo.db'} is created at the first start"
    )
    assert line(lines, "✓ slack: ") == f"✓ slack: auth.test at {slack.api_url}: bot gonogo in team Acme"
    assert line(lines, "✓ git: ") == f"✓ git: {tmp_path / 'shop.git'} is reachable; main is cd4e1e3"
    for i, server in enumerate(fleet.servers, 1):
        ssh = line(lines, f"✓ ssh prod/app{i}: ")
        assert (
            f"{fleet.user}@127.0.0.1:{server.port}, host key known, the bot's key accepted (handshake 0."
            in ssh
        )
        assert line(lines, f"✓ path prod/app{i}: ").endswith(
            f"{tmp_path / 'srv' / 'shop'} does not exist yet; {tmp_path} is writable, the first deploy creates it"
        )
    assert line(lines, "✓ local staging/localhost: ") == "✓ local staging/localhost: runs on this machine"
    assert line(lines, "✓ health prod/health: ").startswith(
        f"✓ health prod/health: {app.health_url} answers: health ✓ 200"
    )
    assert lines[-1] == f"{len(lines) - 1} checks: nothing would stop a deploy, 0 worth a look."
    assert slack.calls_of("auth.test")


def test_unknown_host_key_stopped_host_bad_token_and_a_down_health_url(
    tmp_path: Path,
    sshd_hosts,
    app: HealthApp,
    slack: FakeSlack,  # type: ignore[no-untyped-def]
) -> None:
    fleet = sshd_hosts(2)
    stopped = start_fleet(1, tmp_path / "stopped")
    stopped_port = stopped.servers[0].port
    stopped.stop()  # a host whose sshd is down
    path = write_config(
        tmp_path, fleet, app, ports=[fleet.servers[0].port, fleet.servers[1].port, stopped_port]
    )
    unknown = fleet.servers[1]
    known = tmp_path / "known_hosts"
    known.write_text(fleet.servers[0].known_hosts_line() + "\n")  # app2's key is not in it
    path.write_text(path.read_text().replace(str(fleet.known_hosts), str(known)))
    app.set_status(503)
    env = {"SLACK_BOT_TOKEN": "xoxb-revoked", "SLACK_APP_TOKEN": "xapp-1-ok", "SLACK_API_URL": slack.api_url}
    status, lines = doctor(path, env, only="prod")
    assert status == 1, "\n".join(lines)
    assert line(lines, "✓ ssh prod/app1: ")
    assert line(lines, "✗ ssh prod/app2: ") == (
        f"✗ ssh prod/app2: unknown host key for [127.0.0.1]:{unknown.port} (ssh-ed25519 {unknown.fingerprint()}) — "
        f"fix: check the fingerprint with the host's owner, then: ssh-keyscan -p {unknown.port} 127.0.0.1 >> {known}"
    )
    assert known.read_text().count("\n") == 1  # doctor never accepts a key
    assert line(lines, "✗ ssh prod/app3: ") == (
        f"✗ ssh prod/app3: {fleet.user}@127.0.0.1:{stopped_port}: connection refused — fix: is sshd running on "
        f"127.0.0.1 port {stopped_port}, and is that the right address? try: ssh -p {stopped_port} {fleet.user}@127.0.0.1"
    )
    assert not [
        entry
        for entry in lines
        if entry.startswith("✓ path prod/app2") or entry.startswith("✓ path prod/app3")
    ]
    assert line(lines, "✗ slack: ").startswith(
        f"✗ slack: auth.test at {slack.api_url} refused SLACK_BOT_TOKEN (invalid_auth) — fix: copy the Bot User OAuth Token"
    )
    assert line(lines, "✓ slack: ") == "✓ slack: Socket Mode: apps.connections.open accepted SLACK_APP_TOKEN"
    health = line(lines, "! health prod/health: ")
    assert "expected status 200, got 503" in health and "before the first deploy this is expected" in health
    assert not [entry for entry in lines[1:] if "staging" in entry]  # --env prod
    assert lines[-1].endswith("3 would stop a deploy, 1 worth a look.")


def test_a_wrong_dsn_and_a_database_not_migrated_yet(tmp_path: Path, sshd_hosts, app: HealthApp) -> None:  # type: ignore[no-untyped-def]
    fleet = sshd_hosts(2)
    path = write_config(tmp_path, fleet, app)
    status, lines = doctor(
        path, {"GONOGO_STORE_URL": "postgresql://postgres@127.0.0.1:1/test"}, only="staging"
    )
    assert status == 1
    wrong = line(lines, "✗ store: ")
    assert wrong.startswith("✗ store: cannot connect to PostgreSQL at postgres@127.0.0.1:1/test: ")
    assert (
        "— fix: check [bot] store or GONOGO_STORE_URL (host, port, database, user; the password in PGPASSWORD"
        in wrong
    )
    dsn = require_postgres()
    schema = new_schema_name()
    url = schema_url(dsn, schema)
    try:
        status, lines = doctor(path, {"GONOGO_STORE_URL": url}, only="staging")
        assert status == 0, "\n".join(lines)
        pending = f"connects; {len(MIGRATIONS)} migration(s) pending (m001_initial,"
        assert pending in line(lines, "! store: ")
        open_store(url).close()  # what the bot does at start
        status, lines = doctor(path, {"GONOGO_STORE_URL": url}, only="staging")
        assert line(lines, "✓ store: ").endswith("connects and is migrated")
    finally:
        drop_schema(schema)


def test_the_command_line(tmp_path: Path, sshd_hosts, app: HealthApp) -> None:  # type: ignore[no-untyped-def]
    fleet = sshd_hosts(2)
    path = write_config(tmp_path, fleet, app)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GONOGO_"))}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.app.cli", "doctor", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    good = run("--config", str(path), "--env", "staging")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "- slack: SLACK_BOT_TOKEN is not set" in good.stdout
    bad_env = run("--config", str(path), "--env", "qa")
    assert bad_env.returncode == 2 and "no such environment (prod, staging)" in bad_env.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[environments.prod]\nhosts = []\n")
    failed = run("--config", str(broken))
    assert failed.returncode == 1
    assert (
        "✗ config: environments.prod.hosts: at least one host is required — fix: gonogo config check"
        in failed.stdout
    )
