"""The read-only web view: environments, deploy history, one deploy's timeline, DORA charts.

A small Starlette app under a path prefix (`/web`), served beside the Slack endpoints by
`gonogo serve` (`bot.app.serve`) or on its own port by `gonogo console --web-port`. Pages are
Jinja2 templates with autoescaping on (reasons, refs and commit subjects are user input);
charts are SVG drawn on the server; a page showing live data follows `/events` (server-sent
events) and swaps in its fresh content, with a few lines of inline script and no build step.
Every page needs a signed-in person (`auth.WebAuth`): anyone else gets 401 and the sign-in form.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from bot.web.auth import SESSION_COOKIE, SESSION_SECONDS, STATE_COOKIE, SignInFailed, WebAuth
from bot.web.views import Views

if TYPE_CHECKING:
    from bot.engine import Engine

PREFIX = "/web"
#: How often a live page's stream looks for changes, and how long one stream lasts (the browser reconnects).
POLL_SECONDS = 1.0
STREAM_SECONDS = 20.0
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(default=True)
)


class WebApp:
    """The web view of one engine, behind `auth`."""

    def __init__(self, engine: Engine, auth: WebAuth, *, prefix: str = PREFIX) -> None:
        self.engine = engine
        self.auth = auth
        self.prefix = prefix.rstrip("/")
        self.views = Views(engine)
        self.closing = False
        p = self.prefix
        page = self._page
        self.app = Starlette(
            routes=[
                Route(f"{p}/", page(self.views.index)),
                Route(p, lambda r: RedirectResponse(f"{p}/", 303)),
                Route(f"{p}/deploys", page(self.views.history)),
                Route(f"{p}/deploys/{{deployment_id:int}}", page(self.views.deploy)),
                Route(f"{p}/envs/{{env}}", page(self.views.history)),
                Route(f"{p}/dora", page(self.views.dora)),
                Route(f"{p}/events", self._events),
                Route(f"{p}/login", self._login_form, methods=["GET"]),
                Route(f"{p}/login", self._login, methods=["POST"]),
                Route(f"{p}/logout", self._logout, methods=["POST"]),
                Route(f"{p}/auth/slack", self._slack_start),
                Route(f"{p}/auth/slack/callback", self._slack_callback),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI entry point."""
        await self.app(scope, receive, send)

    def close(self) -> None:
        """End live streams (at shutdown)."""
        self.closing = True

    # -- rendering ----------------------------------------------------------------------------
    def render(self, name: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        """A template with what every page needs (prefix, who is signed in, the bot's name)."""
        context.setdefault("title", self.engine.config.bot.name)
        html = _TEMPLATES.get_template(name).render(
            base=self.prefix, bot_name=self.engine.config.bot.name, user=self._user(request), **context
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def _user(self, request: Request) -> str | None:
        return self.auth.user(request.cookies, request.headers.get("authorization"))

    def _page(
        self, view: Callable[[Request], tuple[str, dict[str, Any]] | Response]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if self._user(request) is None:
                return self._login_page(request, status=401)
            result = await run_in_threadpool(view, request)
            if isinstance(result, Response):
                return result
            name, context = result
            return self.render(name, request, **context)

        return endpoint

    def _login_page(self, request: Request, *, status: int = 200, error: str | None = None) -> HTMLResponse:
        next_path = request.query_params.get("next") or request.url.path
        if not next_path.startswith(self.prefix) or next_path.startswith(f"{self.prefix}/login"):
            next_path = f"{self.prefix}/"
        return self.render(
            "login.html", request, status=status, title="Sign in", error=error, next=next_path,
            token=bool(self.auth.token), slack=self.auth.slack, live=False,
        )  # fmt: skip

    def _signed_in(self, user: str, via: str, next_path: str) -> Response:
        target = (
            next_path
            if next_path.startswith(self.prefix + "/") and "//" not in next_path
            else f"{self.prefix}/"
        )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE, self.auth.session(user, via), max_age=SESSION_SECONDS, httponly=True,
            samesite="lax", path=self.prefix or "/", secure=self._secure(),
        )  # fmt: skip
        return response

    def _secure(self) -> bool:
        return (self.auth.web.url or "").startswith("https://")

    # -- sign-in ------------------------------------------------------------------------------
    async def _login_form(self, request: Request) -> Response:
        return self._login_page(request)

    async def _login(self, request: Request) -> Response:
        # a url-encoded form of two fields: parsed here, no multipart parser needed
        form = parse_qs((await request.body())[:8192].decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        next_path = (form.get("next") or [f"{self.prefix}/"])[0]
        if not self.auth.token_ok(token):
            return self._login_page(request, status=401, error="That token is not right.")
        return self._signed_in("token", "token", next_path)

    async def _logout(self, request: Request) -> Response:
        response = RedirectResponse(f"{self.prefix}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=self.prefix or "/")
        return response

    def _redirect_uri(self, request: Request) -> str:
        base = (
            self.auth.web.url.rstrip("/")
            if self.auth.web.url
            else str(request.base_url).rstrip("/") + self.prefix
        )
        return f"{base}/auth/slack/callback"

    async def _slack_start(self, request: Request) -> Response:
        if not self.auth.slack:
            return PlainTextResponse("Sign in with Slack is not configured", status_code=404)
        url, state = self.auth.authorize_url(self._redirect_uri(request))
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            STATE_COOKIE, state, max_age=600, httponly=True, samesite="lax", path=self.prefix or "/"
        )
        return response

    async def _slack_callback(self, request: Request) -> Response:
        q = request.query_params
        if q.get("error"):
            return self._login_page(request, status=401, error=f"Slack did not sign you in: {q.get('error')}")
        try:
            user = await self.auth.finish_slack(
                q.get("code", ""),
                q.get("state", ""),
                request.cookies.get(STATE_COOKIE),
                self._redirect_uri(request),
            )
        except SignInFailed as exc:
            return self._login_page(request, status=401, error=str(exc))
        response = self._signed_in(user, "slack", f"{self.prefix}/")
        response.delete_cookie(STATE_COOKIE, path=self.prefix or "/")
        return response

    # -- live ---------------------------------------------------------------------------------
    async def _events(self, request: Request) -> Response:
        if self._user(request) is None:
            return PlainTextResponse("sign in first", status_code=401)
        return StreamingResponse(
            self._stream(request), media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    async def _stream(self, request: Request) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_SECONDS
        last = await run_in_threadpool(self.views.fingerprint)
        yield "retry: 1500\n\n"
        while loop.time() < deadline and not self.closing:
            await asyncio.sleep(POLL_SECONDS)
            if await request.is_disconnected():
                return
            now = await run_in_threadpool(self.views.fingerprint)
            if now != last:
                last = now
                yield f"data: {quote(now)}\n\n"


def create_web_app(engine: Engine, auth: WebAuth, *, prefix: str = PREFIX) -> WebApp:
    """The web view of `engine` under `prefix`."""
    return WebApp(engine, auth, prefix=prefix)


__all__ = ["PREFIX", "WebApp", "create_web_app"]
