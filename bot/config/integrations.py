"""The tables of the team's other tools: `[github]`, `[pagerduty]`, `[webhook]` and `[web]`.

Each names the environment variable its secret is in (a token, a routing key, a signing secret),
never the secret; a table left out turns its integration off. `integration_problems` checks the
environments against them (`required_contexts` needs `[github]`, `page` needs a pager), and
`integration_warnings` says which secrets the environment lacks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from bot.config.integration_tables import (
    GitHubConfig,
    IntegrationsConfig,
    PagerDutyConfig,
    WebConfig,
    WebhookConfig,
)
from bot.config.reader import Problems, Table
from bot.config.rules import env_var_name
from bot.config.schema import Environment

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
SEVERITIES = ("critical", "error", "warning", "info")


def _url(value: str) -> str | None:
    return None if re.match(r"^https?://[^\s/]+", value) else "must be an http:// or https:// URL"


def parse_integrations(root: Table) -> IntegrationsConfig:
    """The four tables (absent ones keep their defaults: off)."""
    return IntegrationsConfig(
        github=_github(root.table("github")),
        pagerduty=_pagerduty(root.table("pagerduty")),
        webhook=_webhook(root.table("webhook")),
        web=_web(root.table("web")),
    )


def _github(t: Table) -> GitHubConfig:
    repository = t.get(
        "repository", str, None, lambda v: None if _REPOSITORY.match(v) else "must be owner/name"
    )
    config = GitHubConfig(
        repository=repository,
        api_url=t.get("api_url", str, "https://api.github.com", _url),
        token_env=t.get("token_env", str, "GITHUB_TOKEN", env_var_name),
        timeout=t.duration("timeout", 10.0, positive=True),
        deployments=t.get("deployments", bool, True),
        poll_interval=t.duration("poll_interval", 30.0, positive=True),
    )
    if t.data and not repository:
        t.problems.add(t.key("repository"), "is required in [github] (owner/name)")
    t.finish()
    return config


def _pagerduty(t: Table) -> PagerDutyConfig:
    config = PagerDutyConfig(
        routing_key_env=t.get("routing_key_env", str, None, env_var_name),
        events_url=t.get("events_url", str, "https://events.pagerduty.com", _url),
        severity=t.get(
            "severity",
            str,
            "critical",
            lambda v: None if v in SEVERITIES else f"must be one of {', '.join(SEVERITIES)}",
        ),
        timeout=t.duration("timeout", 10.0, positive=True),
    )
    if t.data and not config.routing_key_env:
        t.problems.add(
            t.key("routing_key_env"), "is required in [pagerduty] (the variable holding the routing key)"
        )
    t.finish()
    return config


def _webhook(t: Table) -> WebhookConfig:
    config = WebhookConfig(
        url=t.get("url", str, None, _url),
        secret_env=t.get("secret_env", str, "GONOGO_WEBHOOK_SECRET", env_var_name),
        timeout=t.duration("timeout", 10.0, positive=True),
    )
    if t.data and not config.url:
        t.problems.add(t.key("url"), "is required in [webhook]")
    t.finish()
    return config


def _web(t: Table) -> WebConfig:
    config = WebConfig(
        url=t.get("url", str, None, _url),
        token_env=t.get("token_env", str, None, env_var_name),
        session_secret_env=t.get("session_secret_env", str, None, env_var_name),
        slack_client_id=t.get("slack_client_id", str, None),
        slack_client_secret_env=t.get("slack_client_secret_env", str, "SLACK_CLIENT_SECRET", env_var_name),
        slack_url=t.get("slack_url", str, "https://slack.com", _url),
        slack_team=t.get("slack_team", str, None),
    )
    t.finish()
    return config


def integration_problems(
    integrations: IntegrationsConfig, environments: Iterable[Environment], problems: Problems
) -> None:
    """Environments that ask for an integration that is not configured."""
    for env in environments:
        if env.required_contexts and not integrations.github.repository:
            problems.add(
                f"environments.{env.name}.required_contexts", "needs [github] repository (where CI reports)"
            )
        if env.page and not integrations.paging:
            problems.add(f"environments.{env.name}.page", "needs [pagerduty] or [webhook] (where pages go)")


def integration_warnings(
    integrations: IntegrationsConfig, environments: Iterable[Environment], environ: Mapping[str, str]
) -> list[str]:
    """Secrets named by the integrations that are not set, and pagers nothing pages through."""
    out = []
    named = [
        ("github.token_env", integrations.github.token_env if integrations.github.repository else None),
        ("pagerduty.routing_key_env", integrations.pagerduty.routing_key_env),
        ("webhook.secret_env", integrations.webhook.secret_env if integrations.webhook.url else None),
        ("web.token_env", integrations.web.token_env),
        (
            "web.slack_client_secret_env",
            integrations.web.slack_client_secret_env if integrations.web.slack_client_id else None,
        ),
    ]
    for key, var in named:
        if var and not environ.get(var):
            out.append(f"{key}: {var} is not set in the environment")
    if integrations.paging and not any(env.page for env in environments):
        out.append("pagerduty/webhook: configured, but no environment has page = true")
    return out


__all__ = [
    "integration_problems",
    "integration_warnings",
    "parse_integrations",
]
