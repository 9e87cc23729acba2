"""The Slack Web API client gonogo uses, and how it treats Slack's answers.

`make_client` builds a `slack_sdk.WebClient` for a configurable base URL (tests point it at a
local server) that retries 429 answers after `Retry-After` (`RateLimitErrorRetryHandler`) and
connection errors (`ConnectionErrorRetryHandler`); Bolt adds neither.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

DEFAULT_WINDOW = 1.0
#: chat.postMessage per channel: about 1 a second, with short bursts (Slack's rate limits page).
POST_RATE, POST_BURST = 1.0, 8.0
#: chat.update across the workspace: Tier 3, about 50 a minute, with bursts.
UPDATE_RATE, UPDATE_BURST = 50 / 60, 20.0
MAX_UPDATE_RETRIES = 3
MAX_TRACKED = 2000
# Errors a retry cannot fix (the message or channel is gone, the blocks are wrong, no access).
PERMANENT_ERRORS = frozenset(
    {
        "message_not_found",
        "channel_not_found",
        "cant_update_message",
        "edit_window_closed",
        "invalid_blocks",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "not_in_channel",
        "is_archived",
        "missing_scope",
    }
)


def make_client(token: str, base_url: str, *, timeout: int = 15, max_retries: int = 3) -> WebClient:
    """A WebClient for `base_url` that retries rate limits and connection errors."""
    if not base_url.endswith("/"):
        base_url += "/"
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ],
    )


__all__ = [
    "DEFAULT_WINDOW",
    "MAX_TRACKED",
    "MAX_UPDATE_RETRIES",
    "PERMANENT_ERRORS",
    "POST_BURST",
    "POST_RATE",
    "UPDATE_BURST",
    "UPDATE_RATE",
    "make_client",
]
