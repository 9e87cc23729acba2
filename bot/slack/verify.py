"""Is a request from Slack: the signature over the raw body, and Slack's certificate check."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from slack_sdk.signature import SignatureVerifier

from bot.slack.payloads import header


class RawBodyVerifier(SignatureVerifier):
    """slack_sdk's verifier (5-minute staleness rule included), signing the raw bytes as sent:
    a body that is not UTF-8 is still checked (and refused as unsigned or as malformed)."""

    def __init__(self, signing_secret: str) -> None:
        super().__init__(signing_secret)
        self._key = signing_secret.encode()

    def generate_signature(self, *, timestamp: str, body: str | bytes) -> str | None:
        """`v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""
        if timestamp is None:
            return None
        raw = body.encode() if isinstance(body, str) else body or b""
        base = f"v0:{timestamp}:".encode() + raw
        return "v0=" + hmac.digest(self._key, base, "sha256").hex()  # OpenSSL's one-shot HMAC

    def signed(self, raw: bytes, headers: Mapping[str, Any]) -> bool:
        """True when `raw` carries a valid, fresh signature in the `X-Slack-*` headers."""
        try:
            return self.is_valid(
                raw,
                timestamp=header(headers, "x-slack-request-timestamp"),
                signature=header(headers, "x-slack-signature"),
            )
        except (ValueError, TypeError):  # a timestamp that is not a number
            return False


def is_ssl_check(raw: bytes) -> bool:
    """Is this Slack's `ssl_check=1` probe (which Bolt, too, answers before verifying)?"""
    try:
        form = dict(parse_qsl(raw.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return False
    return form.get("ssl_check") == "1" and "command" not in form and "payload" not in form
