"""Where deploys meet the team's other tools: the code host (CI gate, deployments) and pagers.

The seams are `CodeHost` and `Pager` (`base`); the real implementations speak the vendors'
public HTTP APIs over httpx: `GitHub` (commit statuses, check runs, deployments), `PagerDuty`
(Events API v2) and `Webhook` (a JSON POST signed with HMAC-SHA256). `verdict` is the gate's
pure rule. Every failure is an `IntegrationError` with a message for people.
"""

from __future__ import annotations

from bot.integrations.base import (
    CodeHost,
    Context,
    ContextState,
    DeploymentState,
    IntegrationError,
    Page,
    Pager,
)
from bot.integrations.gate import ALL, Verdict, verdict
from bot.integrations.github import GitHub
from bot.integrations.pagerduty import PagerDuty
from bot.integrations.webhook import SIGNATURE_HEADER, Webhook, sign, verify

__all__ = [
    "ALL",
    "SIGNATURE_HEADER",
    "CodeHost",
    "Context",
    "ContextState",
    "DeploymentState",
    "GitHub",
    "IntegrationError",
    "Page",
    "Pager",
    "PagerDuty",
    "Verdict",
    "Webhook",
    "sign",
    "verdict",
    "verify",
]
