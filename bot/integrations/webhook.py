"""A generic webhook pager: the page as JSON, POSTed with an HMAC-SHA256 signature of the body.

For other pagers and chat tools. The receiver checks `X-Gonogo-Signature: sha256=<hex>` (the
HMAC-SHA256 of the raw body with the shared secret, GitHub's scheme) and may refuse bodies whose
`sent_at` is old. The secret comes from an environment variable named in the config.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.integrations.base import IntegrationError, Page

SIGNATURE_HEADER = "X-Gonogo-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: `sha256=` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """True when `signature` is the signature of `body` (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, body), signature)


class Webhook:
    """POSTs pages to one URL, signed: implements `Pager`."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str | None,
        *,
        timeout: float = 10.0,
        secret_env: str = "GONOGO_WEBHOOK_SECRET",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.secret_env = secret_env
        self._secret = secret
        self._client = httpx.Client(timeout=timeout, transport=transport, headers={"User-Agent": "gonogo"})

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def body(self, page: Page, now: datetime | None = None) -> dict[str, Any]:
        """The JSON document sent for `page`."""
        return {
            "event": page.action,
            "key": page.key,
            "summary": page.summary,
            "source": page.source,
            "severity": page.severity,
            "details": dict(page.details or {}),
            "links": [{"text": text, "url": url} for text, url in page.links],
            "sent_at": (now or datetime.now(UTC)).isoformat(),
        }

    def send(self, page: Page) -> None:
        """POST the page, signed."""
        what = f"sending the {page.action} of {page.key} to the webhook"
        if not self._secret:
            raise IntegrationError(f"{what}: {self.secret_env} is not set (the webhook's signing secret)")
        raw = json.dumps(self.body(page), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, raw)}
        try:
            response = self._client.post(self.url, content=raw, headers=headers)
        except httpx.TimeoutException:
            raise IntegrationError(f"{what}: no answer within {self._client.timeout.read:g}s") from None
        except httpx.TransportError as exc:
            raise IntegrationError(f"{what}: cannot reach {httpx.URL(self.url).host} ({exc})") from None
        if not response.is_success:
            retry = response.status_code >= 500 or response.status_code in (408, 429)
            raise IntegrationError(f"{what}: it answered {response.status_code}", retry=retry,
                                   status=response.status_code)  # fmt: skip


__all__ = ["SIGNATURE_HEADER", "Webhook", "sign", "verify"]
