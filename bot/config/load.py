"""The top level: `load_config` reads a file, `parse_config` validates a parsed document.

Every table is read through one `Problems` collector, so the `ConfigError` raised at the end
lists every problem of the file at once, each with its key path.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.config.environment import parse_environment
from bot.config.reader import Problems, Table
from bot.config.rules import between, channel_name, env_var_name, port_number
from bot.config.schema import BotConfig, Config, ConfigError, Environment, RepoConfig, SlackConfig, SSHConfig
from bot.config.warnings import secret_warnings, ssh_warnings

log = logging.getLogger("gonogo.config")


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


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError with every problem found."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"], str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"], str(path)) from None
    return parse_config(raw, source=path.resolve(), environ=os.environ if environ is None else environ)


def parse_config(
    raw: Mapping[str, Any], *, source: Path | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Validate a parsed TOML document into a Config (raise ConfigError)."""
    environ = os.environ if environ is None else environ
    problems = Problems()
    root = Table(dict(raw), "", problems)
    base_dir = source.parent if source else Path.cwd()

    b = root.table("bot")
    data_dir_text = b.get("data_dir", str, "var")
    data_dir_text = environ.get("GONOGO_DATA_DIR") or data_dir_text
    data_dir = Path(data_dir_text).expanduser()
    if not data_dir.is_absolute():
        data_dir = (base_dir / data_dir).resolve()
    file_store = b.get("store", str, "")
    if file_store and (why := _store_problem(file_store)):
        problems.add(b.key("store"), why)  # the URL is never echoed: it holds the password
    store_url = environ.get("GONOGO_STORE_URL") or file_store
    if not store_url:
        store_url = f"sqlite:///{data_dir / 'gonogo.db'}"
    elif not store_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        problems.add("bot.store", "must start with sqlite:/// or postgresql://")
    bot = BotConfig(
        name=b.get("name", str, "gonogo"),
        data_dir=data_dir,
        store_url=store_url,
        channel=b.get("channel", str, "#deploys", channel_name).strip(),
        workers=b.get("workers", int, 4, between(1, 256)),
        heartbeat_interval=b.duration("heartbeat_interval", 5.0, positive=True),
        retention_days=float(b.get("retention_days", (int, float), 30, between(1, 3660))),
    )
    b.finish()

    s = root.table("slack")
    slack = SlackConfig(
        api_url=environ.get("SLACK_API_URL") or s.get("api_url", str, "https://slack.com/api/") or "",
    )
    s.finish()

    r = root.table("repo")
    repo = RepoConfig(
        url=r.get("url", str, None),
        default_branch=r.get("default_branch", str, "main"),
        fetch_timeout=r.duration("fetch_timeout", 30.0),
        push_remote=r.get("push_remote", str, None),
    )
    r.finish()

    h = root.table("ssh")
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

    envs_table = root.table("environments")
    environments: dict[str, Environment] = {}
    if not envs_table.data:
        problems.add("environments", "at least one environment is required")
    for name, data in envs_table.data.items():
        envs_table.seen.add(name)
        env = parse_environment(name, Table(data, f"environments.{name}", problems))
        if env is not None:
            environments[name] = env
    root.finish()
    if problems.items:
        raise ConfigError(problems.items, str(source or "config"))
    warnings = tuple(
        secret_warnings(environments.values(), environ) + ssh_warnings(ssh, environments.values(), environ)
    )
    for warning in warnings:
        log.warning("%s", warning)
    return Config(
        bot=bot, slack=slack, repo=repo, ssh=ssh, environments=environments, source=source, warnings=warnings
    )
