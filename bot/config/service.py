"""The service-wide tables: `[bot]`, `[slack]`, `[repo]` and `[ssh]`.

Named "service" because these four configure the bot itself, once, whatever it deploys; the
per-target tables are read by `environment`. Each parser reads one table, finishes it (unknown
keys) and returns its dataclass; the environment variables that override a key are read here,
beside the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bot.config.reader import Table
from bot.config.rules import between, channel_name, env_var_name, port_number
from bot.config.schema import BotConfig, RepoConfig, SlackConfig, SSHConfig


def parse_bot(b: Table, environ: Mapping[str, str], base_dir: Path) -> BotConfig:
    """`[bot]`; `GONOGO_DATA_DIR` and `GONOGO_STORE_URL` override `data_dir` and `store`."""
    data_dir_text = b.get("data_dir", str, "var")
    data_dir_text = environ.get("GONOGO_DATA_DIR") or data_dir_text
    data_dir = Path(data_dir_text).expanduser()
    if not data_dir.is_absolute():
        data_dir = (base_dir / data_dir).resolve()
    file_store = b.get("store", str, "")
    if file_store and (why := _store_problem(file_store)):
        b.problems.add(b.key("store"), why)  # the URL is never echoed: it holds the password
    store_url = environ.get("GONOGO_STORE_URL") or file_store
    if not store_url:
        store_url = f"sqlite:///{data_dir / 'gonogo.db'}"
    elif not store_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        b.problems.add("bot.store", "must start with sqlite:/// or postgresql://")
    bot = BotConfig(
        name=b.get("name", str, "gonogo"),
        data_dir=data_dir,
        store_url=store_url,
        channel=b.get("channel", str, "#deploys", channel_name).strip(),
        workers=b.get("workers", int, 4, between(1, 256)),
        heartbeat_interval=b.duration("heartbeat_interval", 5.0, positive=True),
        retention_days=float(b.get("retention_days", (int, float), 30, between(1, 3660))),
        event_retention_days=float(b.get("event_retention_days", (int, float), 365, between(0, 36600))),
    )
    b.finish()
    return bot


def _store_problem(url: str) -> str | None:
    """Refuse a database password written in the file (secrets never go in the file)."""
    if not url.startswith(("postgresql://", "postgres://")):
        return None
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "is not a valid postgresql:// URL"
    if password or any(k.lower() == "password" for k in parse_qs(parts.query)):
        return (
            "must not contain a password (secrets never go in the file): set the whole URL in "
            "GONOGO_STORE_URL, or keep the password where libpq finds it (PGPASSWORD or ~/.pgpass)"
        )
    return None


def parse_slack(s: Table, environ: Mapping[str, str]) -> SlackConfig:
    """`[slack]`; `SLACK_API_URL` overrides `api_url` (tokens only ever come from the environment)."""
    slack = SlackConfig(
        api_url=environ.get("SLACK_API_URL") or s.get("api_url", str, "https://slack.com/api/") or "",
    )
    s.finish()
    return slack


def parse_repo(r: Table, *, base_dir: Path | None = None, data_dir: Path | None = None) -> RepoConfig:
    """`[repo]`: the application repository the bot mirrors (see `repo_url` for local paths)."""
    url = r.get("url", str, None)
    repo = RepoConfig(
        url=repo_url(url, base_dir or Path.cwd(), data_dir) if url else url,
        default_branch=r.get("default_branch", str, "main"),
        fetch_timeout=r.duration("fetch_timeout", 30.0),
        push_remote=r.get("push_remote", str, None),
    )
    r.finish()
    return repo


def repo_url(url: str, base_dir: Path, data_dir: Path | None) -> str:
    """The repository URL with `{data_dir}` and `{config_dir}` filled in; a local path (no
    `scheme://`, not scp-like `host:path`) relative to the config file's directory is made
    absolute, as git would otherwise read it relative to wherever the bot was started."""
    url = url.replace("{config_dir}", str(base_dir))
    if data_dir is not None:
        url = url.replace("{data_dir}", str(data_dir))
    if "://" in url or re.match(r"^[^/]*:", url):
        return url
    path = Path(url).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def parse_ssh(h: Table) -> SSHConfig:
    """`[ssh]`: defaults for the SSH backend."""
    ssh = SSHConfig(
        user=h.get("user", str, None),
        port=h.get("port", int, 22, port_number),
        identity_file=h.get("identity_file", str, None),
        known_hosts=h.get("known_hosts", str, None),
        accept_new_host_keys=h.get("accept_new_host_keys", bool, False),
        connect_timeout=h.duration("connect_timeout", 10.0, positive=True),
        max_handshakes=h.get("max_handshakes", int, 10, between(1, 1000)),
        ssh_config=h.get("ssh_config", str, None),
        gateway=h.get("gateway", str, None),
        sudo_password_env=h.get("sudo_password_env", str, None, env_var_name),
        keepalive=h.duration("keepalive", 15.0, positive=True),
        keepalive_count_max=h.get("keepalive_count_max", int, 3, between(1, 100)),
    )
    h.finish()
    return ssh
