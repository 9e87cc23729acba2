"""Build and send requests exactly as Slack does: signed slash commands and interactivity payloads.

Slack signs every request with `X-Slack-Signature: v0=` + HMAC-SHA256(signing secret,
`v0:{timestamp}:{raw body}`) and sends the timestamp in `X-Slack-Request-Timestamp`. Slash
commands are form-encoded; interactivity (`block_actions`) is a form with one `payload` field
holding JSON. Events API retries add `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0TEAM"
_trigger = itertools.count(1)


def signature(secret: str, timestamp: str, body: str | bytes) -> str:
    """The `X-Slack-Signature` value for a body sent at `timestamp`."""
    base = f"v0:{timestamp}:".encode() + (body.encode() if isinstance(body, str) else body)
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    body: str | bytes,
    *,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    """Headers Slack sends with `body`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(secret, ts, body),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }


def slash_command_body(
    command: str,
    text: str,
    *,
    user: str = "U0ALICE",
    channel: str = "C0DEPLOYS",
    response_url: str = "https://hooks.slack.com/commands/T0TEAM/1/abc",
    trigger_id: str | None = None,
) -> str:
    """A slash command as Slack form-encodes it (`&`, `<`, `>` in text arrive HTML-escaped)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return urlencode(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": TEAM,
            "team_domain": "acme",
            "channel_id": channel,
            "channel_name": "deploys",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": escaped,
            "api_app_id": "A0GONOGO",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or f"{next(_trigger)}.{int(time.time())}.abcdef",
        }
    )


def block_actions_payload(
    *,
    action_id: str,
    value: str | None = None,
    user: str = "U0BOB",
    channel: str = "C0DEPLOYS",
    message_ts: str = "1700000000.000100",
    block_id: str = "actions",
    action_ts: str | None = None,
    selected: list[str] | None = None,
    message_blocks: list[dict[str, Any]] | None = None,
    response_url: str = "https://hooks.slack.com/actions/T0TEAM/1/abc",
) -> dict[str, Any]:
    """A `block_actions` payload for a button (`value`) or checkboxes (`selected` option values)."""
    if selected is None:
        action: dict[str, Any] = {
            "type": "button",
            "value": value,
            "text": {"type": "plain_text", "text": "Go"},
        }
    else:
        action = {
            "type": "checkboxes",
            "selected_options": [
                {"text": {"type": "plain_text", "text": f"item {v}"}, "value": v} for v in selected
            ],
        }
    action.update(
        {
            "action_id": action_id,
            "block_id": block_id,
            "action_ts": action_ts or f"{time.time():.6f}",
        }
    )
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0GONOGO",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"{next(_trigger)}.{int(time.time())}.abcdef",
        "team": {"id": TEAM, "domain": "acme"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "deploys"},
        "message": {
            "type": "message",
            "user": "U0GONOGO",
            "ts": message_ts,
            "bot_id": "B0GONOGO",
            "text": "card",
            "blocks": message_blocks or [],
        },
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def payload_body(payload: dict[str, Any]) -> str:
    """Interactivity body: a form with one `payload` field of JSON."""
    return urlencode({"payload": json.dumps(payload)})


def event_body(event: dict[str, Any], *, event_id: str = "Ev0001") -> str:
    """An Events API `event_callback` envelope (JSON)."""
    return json.dumps(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": TEAM,
            "api_app_id": "A0GONOGO",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": "U0GONOGO", "is_bot": True}],
        }
    )


def post(url: str, body: str | bytes, headers: dict[str, str], *, timeout: float = 10.0) -> tuple[int, str]:
    """POST `body` with `headers`; (status, response text), HTTP errors included."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def send_signed(
    url: str,
    body: str | bytes,
    *,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    retry_num: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> tuple[int, str]:
    """Sign `body` like Slack and POST it."""
    headers = signed_headers(body, secret=secret, timestamp=timestamp, content_type=content_type)
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return post(url, body, headers)
