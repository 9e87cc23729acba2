"""Shared fixtures: demo configs in temp dirs, stores, engines with a recording chat."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Config, load_config
from demo.history import ensure_demo_repo
from tests.support.prometheus import PrometheusServer, prometheus_binary
from tests.support.recording import RecordingChat
from tests.support.stores import STORE_BACKENDS

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_DEMO_REPO: list[Path] = []


def copy_demo_repo(dest: Path) -> Path:
    """The demo's git history (demo/history.py) at `dest`: made once per test session, then copied."""
    if not _DEMO_REPO:
        made = Path(tempfile.mkdtemp(prefix="gonogo-demo-repo-")) / "demo-repo.git"
        ensure_demo_repo(made)
        atexit.register(shutil.rmtree, made.parent, True)
        _DEMO_REPO.append(made)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(_DEMO_REPO[0], dest)
    return dest


def write_demo_config(tmp_path: Path, *, extra: str = "", replace: dict[str, str] | None = None) -> Path:
    """Copy config.example.toml into tmp_path with a free demo port and its own data dir, in
    which the demo's git history is (as `./scripts/run.sh` makes it)."""
    text = (ROOT / "config.example.toml").read_text()
    text = text.replace('port = "8642"', f'port = "{free_port()}"')
    text = text.replace('data_dir = "var"', f'data_dir = "{tmp_path / "data"}"')
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "demo").symlink_to(ROOT / "demo")
    path = tmp_path / "gonogo.toml"
    path.write_text(text + "\n" + extra)
    copy_demo_repo(tmp_path / "data" / "demo-repo.git")
    return path


def stop_demo_app(data_dir: Path) -> None:
    """Kill the demo app a test started (its pid file lives in the data dir)."""
    for pidfile in data_dir.glob("**/app.pid"):
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own settings must never leak into tests.
    for name in (
        "GONOGO_DATA_DIR",
        "GONOGO_STORE_URL",
        "GONOGO_CONFIG",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def demo_config_path(tmp_path: Path) -> Iterator[Path]:
    """A demo config in tmp_path; the demo app it starts is stopped afterwards."""
    path = write_demo_config(tmp_path)
    yield path
    stop_demo_app(tmp_path / "data")


@pytest.fixture
def demo_config(demo_config_path: Path) -> Config:
    """The loaded demo config."""
    return load_config(demo_config_path)


@pytest.fixture
def chat() -> RecordingChat:
    """A chat that records everything."""
    return RecordingChat()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus server for the session, scraping leased slots (tests/support/prometheus.py).

    Without a prometheus binary a test that needs it is skipped locally and fails in CI
    (`scripts/ensure-prometheus.sh` installs it)."""
    if prometheus_binary() is None:
        message = "no prometheus binary: run scripts/ensure-prometheus.sh (or set GONOGO_PROMETHEUS)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with PrometheusServer(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL for each backend: a SQLite file, or a disposable PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite'}"
        return
    from tests.support.pgfixtures import DisposablePostgresStore

    schema = DisposablePostgresStore()  # creates the schema; dropped at the end
    yield schema.schema_url
    schema.close()
