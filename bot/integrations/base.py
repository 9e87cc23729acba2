"""The seams to the team's other tools: the code host (CI contexts, deployments) and pagers.

Each is a small `Protocol` the engine talks to; the real implementations speak the vendors'
HTTP APIs over httpx (`github`, `pagerduty`, `webhook`). Every failure is an `IntegrationError`
whose message says what went wrong in words a person can act on (never a traceback, never a
token), and whether trying again later can help (`retry`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

#: What a CI context says about a commit, reduced to what the gate needs.
ContextState = Literal["success", "pending", "failure"]
#: The states of a code host deployment status (GitHub's names).
DeploymentState = Literal["queued", "in_progress", "success", "failure", "error", "inactive"]


class IntegrationError(Exception):
    """A call to another tool failed; `str(exc)` is the reason for people, `retry` whether later may work."""

    def __init__(self, message: str, *, retry: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.status = status


@dataclass(frozen=True)
class Context:
    """One CI context of a commit: a commit status or a check run."""

    name: str
    state: ContextState
    url: str | None = None
    description: str | None = None


class CodeHost(Protocol):
    """Where the code lives: CI results of a commit, and deployments shown beside it."""

    name: str

    def commit_contexts(self, sha: str) -> list[Context]:
        """Every CI context reported for `sha` (commit statuses and check runs); IntegrationError."""
        ...

    def create_deployment(
        self, *, ref: str, sha: str, environment: str, description: str, payload: Mapping[str, Any]
    ) -> str:
        """Create a deployment of `sha` to `environment`; its id. IntegrationError."""
        ...

    def deployment_status(
        self,
        deployment_id: str,
        *,
        state: DeploymentState,
        description: str,
        environment_url: str | None,
        log_url: str | None,
    ) -> None:
        """Add a status to a deployment; IntegrationError."""
        ...


@dataclass(frozen=True)
class Page:
    """What a pager is told: open (`trigger`) or close (`resolve`) the incident `key`."""

    action: Literal["trigger", "resolve"]
    key: str
    summary: str
    source: str
    severity: str = "critical"
    details: Mapping[str, Any] | None = None
    links: Sequence[tuple[str, str]] = ()  # (text, url)


class Pager(Protocol):
    """Something that wakes people up: PagerDuty, or any tool behind a signed webhook."""

    name: str

    def send(self, page: Page) -> None:
        """Deliver one page; IntegrationError."""
        ...


__all__ = ["CodeHost", "Context", "ContextState", "DeploymentState", "IntegrationError", "Page", "Pager"]
