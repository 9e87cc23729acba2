"""`gonogo serve [--mode auto|http|socket]`: run the Slack app, in Socket Mode or over HTTP.

- `--mode socket` → Socket Mode (`slack_bolt.adapter.socket_mode`, built-in client): no public
  URL needed; needs `SLACK_APP_TOKEN`.
- `--mode http` → HTTP mode: slash commands, interactivity and events at `POST /slack/events`,
  served by uvicorn (ASGI) on `--port` (default `$PORT`, else 3000), host `$HOST` (default
  0.0.0.0); needs `SLACK_SIGNING_SECRET` (an `SLACK_APP_TOKEN` in the environment is ignored).
- `--mode auto` (the default) → Socket Mode when `SLACK_APP_TOKEN` is set, else HTTP mode.
  The Procfile names the mode of each process type instead of relying on the environment.

The ops endpoints (`/livez`, `/readyz`, `/metrics`, `/status.json`, see `bot.ops`) are served
beside `/slack/events` in HTTP mode, and on the same port by a small side server in Socket Mode.
In HTTP mode the read-only web view (`bot.web`) is served under `/web/` when `[web]` configures
a sign-in.

`SLACK_BOT_TOKEN` is always needed, `SLACK_SIGNING_SECRET` in HTTP mode, `SLACK_APP_TOKEN` in
Socket Mode; a missing one stops start-up with a message naming it and where to find it (exit
code 2). SIGTERM/SIGINT stop
taking requests, finish the ones in hand, let running deployments finish
(`engine.shutdown`), flush card updates, and close the store.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from bot.config import Config
from bot.engine import Engine

log = logging.getLogger("gonogo.serve")

DEFAULT_PORT = 3000
MODES = ("auto", "http", "socket")
ADAPTER_WORKERS = 8
ACK_PRIORITY_WAIT = 1.0  # the longest work waits for acks in a burst (see bot.slack.app.AckGate)

_WHERE = {
    "SLACK_BOT_TOKEN": (
        "the Bot User OAuth Token (xoxb-…): api.slack.com/apps → your app → OAuth & Permissions "
        "(install the app to your workspace first)"
    ),
    "SLACK_SIGNING_SECRET": (
        "api.slack.com/apps → your app → Basic Information → App Credentials → Signing Secret"
    ),
    "SLACK_APP_TOKEN": (
        "an app-level token (xapp-…) with the connections:write scope: api.slack.com/apps → "
        "your app → Basic Information → App-Level Tokens"
    ),
}


class StartupError(Exception):
    """Start-up cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Settings:
    """What serve reads from the environment, and the mode it runs in ("http" or "socket")."""

    bot_token: str
    signing_secret: str | None
    app_token: str | None
    port: int
    host: str
    mode: str = "http"

    @property
    def socket_mode(self) -> bool:
        """True in Socket Mode."""
        return self.mode == "socket"


def settings_from_env(environ: Mapping[str, str], port: int | None = None, mode: str = "auto") -> Settings:
    """Read tokens, port and host for `mode` ("auto": Socket Mode when SLACK_APP_TOKEN is set);
    StartupError naming what is missing and where to get it."""
    if mode not in MODES:
        raise StartupError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    bot_token = environ.get("SLACK_BOT_TOKEN", "").strip()
    app_token = environ.get("SLACK_APP_TOKEN", "").strip() or None
    secret = environ.get("SLACK_SIGNING_SECRET", "").strip() or None
    if not bot_token:
        raise StartupError(f"SLACK_BOT_TOKEN is not set. It is {_WHERE['SLACK_BOT_TOKEN']}.")
    if mode == "auto":
        mode = "socket" if app_token is not None else "http"
        secret_hint = " (HTTP mode; or set SLACK_APP_TOKEN to use Socket Mode instead)"
    else:
        secret_hint = " (--mode http needs it)"
    if mode == "http":
        app_token = None  # not used over HTTP, even when the environment has one
        if secret is None:
            raise StartupError(
                f"SLACK_SIGNING_SECRET is not set. Find it at {_WHERE['SLACK_SIGNING_SECRET']}{secret_hint}."
            )
    else:
        if app_token is None:
            raise StartupError(
                f"SLACK_APP_TOKEN is not set; --mode socket needs {_WHERE['SLACK_APP_TOKEN']}."
            )
        if not app_token.startswith("xapp-"):
            raise StartupError(f"SLACK_APP_TOKEN does not look like {_WHERE['SLACK_APP_TOKEN']}.")
    if port is None:
        raw = environ.get("PORT", "").strip()
        try:
            port = int(raw) if raw else DEFAULT_PORT
        except ValueError:
            raise StartupError(f"PORT must be a number, not {raw!r}") from None
    if not 0 <= port <= 65535:
        raise StartupError(f"the port must be between 0 and 65535, not {port}")
    host = environ.get("HOST", "").strip() or "0.0.0.0"
    return Settings(bot_token, secret, app_token, port, host, mode)


@dataclass
class SlackRuntime:
    """Everything serve wires: client, chat, directory, engine, Bolt app, the adapter's pool."""

    config: Config
    engine: Engine
    app: Any  # slack_bolt.App
    chat: Any  # bot.slack.chat.SlackChat
    executor: ThreadPoolExecutor
    gate: Any  # bot.slack.app.AckGate
    signing_secret: str | None = None  # HTTP mode: requests are verified before Bolt parses them
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def asgi(self, *, threads: int = 8) -> Any:
        """The ASGI app: `POST /slack/events` (every request verified with the signing secret
        before anything reads it), and the ops endpoints (`/livez`, `/readyz`...)."""
        from bot.ops.http import PATHS
        from bot.slack import AsgiHandler

        if not self.signing_secret:
            raise RuntimeError("HTTP mode needs the signing secret (this runtime was built for Socket Mode)")
        handler = AsgiHandler(
            self.app,
            threads=threads,
            ops=self.ops,
            ops_paths=PATHS,
            gate=self.gate,
            signing_secret=self.signing_secret,
        )
        self._closers.append(handler.close)
        web = self.web_app()
        if web is None:
            return handler
        from bot.web import PREFIX, mount

        return mount(PREFIX, web, handler)

    def web_app(self, environ: Mapping[str, str] | None = None) -> Any:
        """The web view (`/web/…`) when `[web]` configures a way to sign in, else None."""
        web = self.config.integrations.web
        if not web.enabled:
            return None
        from bot.web import WebAuth, create_web_app

        auth = WebAuth.from_env(web, os.environ if environ is None else environ, self.config.slack.api_url)
        app = create_web_app(self.engine, auth)
        self._closers.insert(0, app.close)
        return app

    def ops(self, path: str) -> tuple[int, str, bytes]:
        """Answer an ops endpoint (readiness includes whether Slack answers)."""
        from bot.ops.http import ops_response

        return ops_response(self.engine, path, self.chat.reachable)

    def close(self, grace: float = 30.0) -> None:
        """Finish requests in hand, let running steps finish (up to `grace` seconds), flush,
        close the store."""
        for closer in self._closers:
            closer()
        self.executor.shutdown(wait=True)
        self.engine.shutdown(wait=True, grace=grace)
        self.chat.close()
        self.engine.store.close()


def build_runtime(
    config: Config,
    *,
    bot_token: str,
    signing_secret: str | None,
    socket_mode: bool = False,
    token_verification_enabled: bool = False,
    window: float | None = None,
    engine_kwargs: Mapping[str, Any] | None = None,
) -> SlackRuntime:
    """Wire the Slack adapter and the engine for `config` (the engine is not started)."""
    from bot.app.wiring import build_engine
    from bot.slack import DEFAULT_WINDOW, AckGate, SlackChat, SlackDirectory, create_app, make_client

    client = make_client(bot_token, config.slack.api_url)
    chat = SlackChat(client, window=DEFAULT_WINDOW if window is None else window)
    engine = build_engine(config, chat, directory=SlackDirectory(client), **dict(engine_kwargs or {}))
    assert isinstance(engine, Engine)
    executor = ThreadPoolExecutor(max_workers=ADAPTER_WORKERS, thread_name_prefix="gonogo-slack")
    gate = AckGate(max_wait=ACK_PRIORITY_WAIT)
    try:
        app = create_app(
            config,
            engine,
            chat,
            signing_secret,
            executor=executor,
            gate=gate,
            socket_mode=socket_mode,
            token_verification_enabled=token_verification_enabled,
            verified_upstream=not socket_mode,  # `asgi()` verifies every request before Bolt
        )
    except BaseException:
        executor.shutdown(wait=False)
        engine.shutdown(wait=False)
        chat.close(timeout=1)
        engine.store.close()
        raise
    return SlackRuntime(config, engine, app, chat, executor, gate, signing_secret=signing_secret)


def socket_mode_handler(app: Any, app_token: str) -> Any:
    """Bolt's Socket Mode handler for `app` (built, not connected)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    return SocketModeHandler(app, app_token)


def http_server(runtime: SlackRuntime, host: str, port: int) -> Any:
    """A uvicorn server for the runtime's ASGI app (call `.run()`; `.should_exit` stops it)."""
    import uvicorn

    config = uvicorn.Config(
        runtime.asgi(),
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=15,
        server_header=False,
    )
    return uvicorn.Server(config)


class _Signals:
    """Turn SIGTERM/SIGINT into an event while serving (restored afterwards)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def serve(
    config: Config,
    port: int | None = None,
    *,
    mode: str = "auto",
    environ: Mapping[str, str] | None = None,
    grace: float = 30.0,
) -> int:
    """Run the Slack app in `mode` (auto, http, socket) until SIGTERM/SIGINT; the exit code.

    On the signal, a running step gets `grace` seconds to finish before its deployment is
    recorded as interrupted."""
    env = os.environ if environ is None else environ
    try:
        settings = settings_from_env(env, port, mode)
    except StartupError as exc:
        print(f"gonogo: {exc}", file=sys.stderr)
        return 2
    if not settings.bot_token.startswith("xoxb-"):
        log.warning("SLACK_BOT_TOKEN does not start with xoxb-: is it the bot token?")
    try:
        runtime = build_runtime(
            config,
            bot_token=settings.bot_token,
            signing_secret=settings.signing_secret,
            socket_mode=settings.socket_mode,
            token_verification_enabled=True,
        )
    except Exception as exc:
        print(f"gonogo: could not start the Slack app: {_why(exc)}", file=sys.stderr)
        return 2
    try:
        runtime.engine.start()
        # Everything built so far lives as long as the process: keep it out of the collector's
        # full passes, which otherwise stall every thread (and acks) for tens of milliseconds.
        gc.collect()
        gc.freeze()
        with _Signals() as signals:
            if settings.socket_mode:
                return _serve_socket_mode(runtime, settings, signals.stop)
            return _serve_http(runtime, settings, signals.stop)
    finally:
        runtime.close(grace)


def _serve_socket_mode(runtime: SlackRuntime, settings: Settings, stop: threading.Event) -> int:
    """Socket Mode: the ops endpoints on their own port, and the Slack connection until `stop`."""
    assert settings.app_token is not None
    from bot.ops.http import OpsServer

    try:
        ops = OpsServer(runtime.engine, settings.port, settings.host, runtime.chat.reachable)
    except OSError as exc:
        print(f"gonogo: could not serve the ops endpoints on port {settings.port}: {exc}", file=sys.stderr)
        return 1
    runtime._closers.append(ops.start().close)
    handler = socket_mode_handler(runtime.app, settings.app_token)
    try:
        handler.connect()
    except Exception as exc:
        print(f"gonogo: could not connect in Socket Mode: {_why(exc)}", file=sys.stderr)
        return 2
    print(
        f"gonogo: connected to Slack in Socket Mode; ops endpoints on port {ops.port}",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    handler.close()
    return 0


def _serve_http(runtime: SlackRuntime, settings: Settings, stop: threading.Event) -> int:
    """HTTP mode: uvicorn serves Slack's requests and the ops endpoints until a signal."""
    server = http_server(runtime, settings.host, settings.port)
    print(
        f"gonogo: starting HTTP mode on http://{settings.host}:{settings.port}/slack/events",
        file=sys.stderr,
        flush=True,
    )
    server.run()
    if server.started is False and not stop.is_set():
        print(f"gonogo: could not listen on {settings.host}:{settings.port}", file=sys.stderr)
        return 1
    return 0


def _why(exc: BaseException) -> str:
    """A one-line reason for a start-up failure (no traceback)."""
    text = str(exc)
    if "apps.connections.open" in text or "not_allowed_token_type" in text:
        return f"Slack refused SLACK_APP_TOKEN ({text}). It must be {_WHERE['SLACK_APP_TOKEN']}."
    if "auth.test" in text or "invalid_auth" in text:
        return f"Slack refused SLACK_BOT_TOKEN ({text}). It must be {_WHERE['SLACK_BOT_TOKEN']}."
    return f"{type(exc).__name__}: {text}"
