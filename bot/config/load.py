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

from bot.config.environment import parse_environment
from bot.config.integrations import integration_problems, integration_warnings, parse_integrations
from bot.config.reader import Problems, Table
from bot.config.schema import Config, ConfigError, Environment
from bot.config.service import parse_bot, parse_repo, parse_slack, parse_ssh
from bot.config.warnings import secret_warnings, ssh_warnings

log = logging.getLogger("gonogo.config")


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
    bot = parse_bot(root.table("bot"), environ, base_dir)
    slack = parse_slack(root.table("slack"), environ)
    repo = parse_repo(root.table("repo"), base_dir=base_dir, data_dir=bot.data_dir)
    ssh = parse_ssh(root.table("ssh"))
    environments = _parse_environments(root.table("environments"))
    integrations = parse_integrations(root)
    integration_problems(integrations, environments.values(), problems)
    root.finish()
    if problems.items:
        raise ConfigError(problems.items, str(source or "config"))
    warnings = tuple(
        secret_warnings(environments.values(), environ)
        + ssh_warnings(ssh, environments.values(), environ)
        + integration_warnings(integrations, environments.values(), environ)
    )
    for warning in warnings:
        log.warning("%s", warning)
    return Config(
        bot=bot, slack=slack, repo=repo, ssh=ssh, environments=environments, source=source, warnings=warnings,
        integrations=integrations,
    )  # fmt: skip


def _parse_environments(envs_table: Table) -> dict[str, Environment]:
    """`[environments.*]`: each table becomes an Environment (at least one is required)."""
    environments: dict[str, Environment] = {}
    if not envs_table.data:
        envs_table.problems.add("environments", "at least one environment is required")
    for name, data in envs_table.data.items():
        envs_table.seen.add(name)
        env = parse_environment(name, Table(data, f"environments.{name}", envs_table.problems))
        if env is not None:
            environments[name] = env
    return environments
