"""The dataclasses of the integration tables: `[github]`, `[pagerduty]`, `[webhook]`, `[web]`.

Read by `bot.config.integrations`; a table left out keeps these defaults, which turn it off.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GitHubConfig:
    """`[github]`: the repository's CI statuses gate deploys; deploys are mirrored as deployments."""

    repository: str | None = None
    api_url: str = "https://api.github.com"
    token_env: str = "GITHUB_TOKEN"
    timeout: float = 10.0
    deployments: bool = True
    poll_interval: float = 30.0


@dataclass(frozen=True)
class PagerDutyConfig:
    """`[pagerduty]`: the Events API v2 service on-call is paged through."""

    routing_key_env: str | None = None
    events_url: str = "https://events.pagerduty.com"
    severity: str = "critical"
    timeout: float = 10.0


@dataclass(frozen=True)
class WebhookConfig:
    """`[webhook]`: pages POSTed as signed JSON to any other tool."""

    url: str | None = None
    secret_env: str = "GONOGO_WEBHOOK_SECRET"
    timeout: float = 10.0


@dataclass(frozen=True)
class WebConfig:
    """`[web]`: the read-only web view, its public URL and how people sign in."""

    url: str | None = None
    token_env: str | None = None
    session_secret_env: str | None = None
    slack_client_id: str | None = None
    slack_client_secret_env: str = "SLACK_CLIENT_SECRET"
    slack_url: str = "https://slack.com"
    slack_team: str | None = None

    @property
    def enabled(self) -> bool:
        """The web view is served only when some way to sign in is configured."""
        return bool(self.token_env or self.slack_client_id)

    def deploy_url(self, deployment_id: int) -> str | None:
        """The page of one deployment, when the public URL is known."""
        return f"{self.url.rstrip('/')}/deploys/{deployment_id}" if self.url and self.enabled else None


@dataclass(frozen=True)
class IntegrationsConfig:
    """Every integration's table."""

    github: GitHubConfig = field(default_factory=GitHubConfig)
    pagerduty: PagerDutyConfig = field(default_factory=PagerDutyConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    web: WebConfig = field(default_factory=WebConfig)

    @property
    def paging(self) -> bool:
        """True when some pager is configured."""
        return bool(self.pagerduty.routing_key_env or self.webhook.url)


__all__ = ["GitHubConfig", "IntegrationsConfig", "PagerDutyConfig", "WebConfig", "WebhookConfig"]
