"""PagerDuty as a pager, over the Events API v2 (`POST /v2/enqueue`, httpx).

A `trigger` opens (or, with the same `dedup_key`, updates) one incident per gonogo deployment;
a `resolve` with that key closes it. The routing key (integration key) comes from an
environment variable named in the config; the base URL is configurable.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.integrations.base import IntegrationError, Page
from bot.integrations.http import request

SEVERITIES = ("critical", "error", "warning", "info")


class PagerDuty:
    """One PagerDuty service (its Events API v2 routing key): implements `Pager`."""

    name = "PagerDuty"

    def __init__(
        self,
        routing_key: str | None,
        *,
        events_url: str = "https://events.pagerduty.com",
        timeout: float = 10.0,
        routing_key_env: str = "PAGERDUTY_ROUTING_KEY",
        client_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._key = routing_key
        self.routing_key_env = routing_key_env
        self.client_url = client_url
        self._client = httpx.Client(
            base_url=events_url.rstrip("/") + "/", timeout=timeout, transport=transport,
            headers={"User-Agent": "gonogo"},
        )  # fmt: skip

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def send(self, page: Page) -> None:
        """`POST /v2/enqueue` with one trigger or resolve event."""
        what = f"sending the {page.action} of {page.key} to PagerDuty"
        if not self._key:
            raise IntegrationError(f"{what}: {self.routing_key_env} is not set (the routing key)")
        request(
            self._client, "POST", "v2/enqueue", service="PagerDuty", what=what, json=self.event(page),
            token_hint=self.routing_key_env,
        )  # fmt: skip

    def event(self, page: Page) -> dict[str, Any]:
        """The Events API v2 body for `page`."""
        event: dict[str, Any] = {
            "routing_key": self._key,
            "event_action": page.action,
            "dedup_key": page.key,
        }
        if page.action == "trigger":
            event["payload"] = {
                "summary": page.summary[:1024],
                "source": page.source,
                "severity": page.severity if page.severity in SEVERITIES else "critical",
                "component": "gonogo",
                "group": page.source,
                "class": "deploy",
                "custom_details": dict(page.details or {}),
            }
            event["client"] = "gonogo"
            if self.client_url:
                event["client_url"] = self.client_url
            if page.links:
                event["links"] = [{"href": url, "text": text} for text, url in page.links]
        return event


__all__ = ["SEVERITIES", "PagerDuty"]
