"""Configuration: one TOML file, loaded with tomllib into frozen dataclasses.

`load_config(path)` validates everything at load time and raises `ConfigError` listing every
problem with its key path (`environments.prod.approvals.required: must be >= 1`). Secrets are
never in the file: steps name environment variables in `secrets`, checks name DSN variables.

This is the package's face: code outside `bot.config` imports from here. Inside, `schema`
holds the dataclasses, `reader` the one TOML-table reader (with `rules`, its value checks),
`load` the top level, `service` the `[bot]`, `[slack]`, `[repo]` and `[ssh]` tables,
`environment` (with `runbook`, `windows`, `refs` and `checks`) the environment tables,
`warnings` what loads but looks wrong, and `quoting` the shell-quote scanner.
"""

from __future__ import annotations

from bot.config.checks import parse_check
from bot.config.integration_tables import (
    GitHubConfig,
    IntegrationsConfig,
    PagerDutyConfig,
    WebConfig,
    WebhookConfig,
)
from bot.config.load import load_config, parse_config
from bot.config.quoting import quoted_placeholders
from bot.config.reader import KNOWN_KEYS
from bot.config.schema import (
    DEFAULT_SSH_STEP_TIMEOUT,
    ApprovalPolicy,
    BotConfig,
    Config,
    ConfigError,
    Environment,
    MonitorConfig,
    RepoConfig,
    SlackConfig,
    SSHConfig,
)
from bot.config.warnings import secret_warnings, ssh_warnings

__all__ = [
    "DEFAULT_SSH_STEP_TIMEOUT",
    "KNOWN_KEYS",
    "ApprovalPolicy",
    "BotConfig",
    "Config",
    "ConfigError",
    "Environment",
    "GitHubConfig",
    "IntegrationsConfig",
    "MonitorConfig",
    "PagerDutyConfig",
    "RepoConfig",
    "SSHConfig",
    "SlackConfig",
    "WebConfig",
    "WebhookConfig",
    "load_config",
    "parse_check",
    "parse_config",
    "quoted_placeholders",
    "secret_warnings",
    "ssh_warnings",
]
