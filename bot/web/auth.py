"""Who may look: a shared token from the environment, or "Sign in with Slack" (OpenID Connect).

A signed-in person carries a session cookie: their name and an expiry, HMAC-SHA256-signed with
the session secret (from `[web] session_secret_env`, else random per process: a restart signs
everyone out). `Authorization: Bearer <token>` works too, for scripts.

Sign in with Slack is the OpenID Connect code flow: `/auth/slack` sends the browser to Slack's
`/openid/connect/authorize` with a `state` (kept in a signed cookie); the callback exchanges the
code at `openid.connect.token`, then reads `openid.connect.userInfo` with the access token (the
answer comes straight from Slack over TLS, so its id token need not be verified separately).
With `[web] slack_team`, only members of that workspace get in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.config import WebConfig

SESSION_COOKIE = "gonogo_session"
STATE_COOKIE = "gonogo_oidc_state"
SESSION_SECONDS = 12 * 3600


class SignInFailed(Exception):
    """The sign-in did not work; the message says why, for the person trying."""


@dataclass(frozen=True)
class WebAuth:
    """The ways in, with their secrets (read from the environment by `from_env`)."""

    web: WebConfig
    token: str | None
    session_secret: bytes
    slack_client_secret: str | None
    slack_api_url: str

    @classmethod
    def from_env(cls, web: WebConfig, environ: Mapping[str, str], slack_api_url: str) -> WebAuth:
        """Secrets from `environ`, by the names the config gives."""
        session = environ.get(web.session_secret_env or "") if web.session_secret_env else None
        return cls(
            web=web,
            token=(environ.get(web.token_env) or None) if web.token_env else None,
            session_secret=session.encode() if session else secrets.token_bytes(32),
            slack_client_secret=environ.get(web.slack_client_secret_env) or None,
            slack_api_url=slack_api_url,
        )

    @property
    def slack(self) -> bool:
        """Sign in with Slack is offered."""
        return bool(self.web.slack_client_id and self.slack_client_secret)

    # -- sessions -----------------------------------------------------------------------------
    def sign(self, data: Mapping[str, Any]) -> str:
        """`data` as a cookie value: base64 JSON and its HMAC."""
        raw = base64.urlsafe_b64encode(json.dumps(dict(data), separators=(",", ":")).encode()).decode()
        mac = hmac.new(self.session_secret, raw.encode(), hashlib.sha256).hexdigest()
        return f"{raw}.{mac}"

    def unsign(self, value: str | None) -> dict[str, Any] | None:
        """The data of a cookie value this process (or one sharing its secret) signed, unexpired."""
        if not value or "." not in value:
            return None
        raw, mac = value.rsplit(".", 1)
        expected = hmac.new(self.session_secret, raw.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(raw.encode()))
        except ValueError:
            return None
        if not isinstance(data, dict) or float(data.get("exp", 0)) < time.time():
            return None
        return data

    def session(self, user: str, via: str) -> str:
        """A fresh session cookie value for `user`."""
        return self.sign({"u": user, "via": via, "exp": time.time() + SESSION_SECONDS})

    def user(self, cookies: Mapping[str, str], authorization: str | None) -> str | None:
        """Who is asking: from the session cookie, or a bearer token; None when nobody is signed in."""
        data = self.unsign(cookies.get(SESSION_COOKIE))
        if data is not None:
            return str(data.get("u") or "someone")
        if authorization and authorization.lower().startswith("bearer ") and self.token_ok(authorization[7:]):
            return "token"
        return None

    def token_ok(self, given: str) -> bool:
        """The shared token, compared in constant time (never when none is configured)."""
        return bool(self.token) and hmac.compare_digest(given.strip().encode(), (self.token or "").encode())

    # -- Sign in with Slack -------------------------------------------------------------------
    def authorize_url(self, redirect_uri: str) -> tuple[str, str]:
        """Where to send the browser, and the signed state cookie to set."""
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        query = {
            "response_type": "code",
            "scope": "openid profile email",
            "client_id": self.web.slack_client_id or "",
            "state": state,
            "nonce": nonce,
            "redirect_uri": redirect_uri,
        }
        if self.web.slack_team:
            query["team"] = self.web.slack_team
        url = f"{self.web.slack_url.rstrip('/')}/openid/connect/authorize?{urlencode(query)}"
        return url, self.sign({"state": state, "exp": time.time() + 600})

    async def finish_slack(self, code: str, state: str, state_cookie: str | None, redirect_uri: str) -> str:
        """Exchange the code; the signed-in person's name. SignInFailed saying why."""
        kept = self.unsign(state_cookie)
        if kept is None or not state or not hmac.compare_digest(str(kept.get("state")), state):
            raise SignInFailed("the sign-in expired or did not start here: try again")
        if not code:
            raise SignInFailed("Slack sent no code back (was the sign-in cancelled?)")
        base = self.slack_api_url.rstrip("/") + "/"
        async with httpx.AsyncClient(timeout=10.0) as client:
            token = await _slack_call(
                client, base + "openid.connect.token",
                data={"client_id": self.web.slack_client_id, "client_secret": self.slack_client_secret,
                      "code": code, "redirect_uri": redirect_uri, "grant_type": "authorization_code"},
            )  # fmt: skip
            access = token.get("access_token")
            if not access:
                raise SignInFailed("Slack's answer had no access token")
            info = await _slack_call(
                client, base + "openid.connect.userInfo", headers={"Authorization": f"Bearer {access}"}
            )
        team = info.get("https://slack.com/team_id")
        if self.web.slack_team and team != self.web.slack_team:
            raise SignInFailed("this workspace may not see this gonogo")
        return str(info.get("name") or info.get("https://slack.com/user_id") or info.get("sub") or "someone")


async def _slack_call(
    client: httpx.AsyncClient, url: str, *, data: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    try:
        response = await client.post(url, data=data, headers=headers)
    except httpx.HTTPError as exc:
        raise SignInFailed(f"could not reach Slack ({type(exc).__name__})") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SignInFailed(f"Slack answered {response.status_code} without JSON")
    if not body.get("ok"):
        raise SignInFailed(f"Slack refused the sign-in: {body.get('error') or response.status_code}")
    return body


__all__ = ["SESSION_COOKIE", "STATE_COOKIE", "SignInFailed", "WebAuth"]
