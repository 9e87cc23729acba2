"""The read-only web view of deploys (Starlette, Jinja2, SVG charts), behind a sign-in.

`create_web_app(engine, auth)` builds it; `WebAuth.from_env` reads the shared token, the
session secret and Slack's client secret from the environment; `mount` serves it beside
another ASGI app (the Slack endpoints) under its prefix.
"""

from __future__ import annotations

from bot.web.app import PREFIX, WebApp, create_web_app
from bot.web.auth import SESSION_COOKIE, SignInFailed, WebAuth
from bot.web.mount import mount

__all__ = ["PREFIX", "SESSION_COOKIE", "SignInFailed", "WebApp", "WebAuth", "create_web_app", "mount"]
