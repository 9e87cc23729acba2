"""The Bolt app: slash commands and button clicks in, `commands.handlers` on our own pool.

Every listener acks at once (an empty 200) and hands the work to the adapter's own small
`ThreadPoolExecutor`: not Bolt's listener pool, not lazy listeners (measured: lazy work
shares Bolt's pool and doubled ack p50). The app runs with `process_before_response=True`, so
the ack-only listener runs inline on the request thread and the response goes out without
Bolt's 10 ms ack polling.

See `bot.slack.listeners` for what the listeners do and `bot.slack.asgi` for the HTTP front.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App

from bot.config import Config
from bot.engine import Engine
from bot.slack.chat import SlackChat
from bot.slack.gate import AckGate
from bot.slack.listeners import EventDedupe, Listeners

log = logging.getLogger("gonogo.slack")


class _QuietClientWarning(logging.Filter):
    """Drop Bolt's "`token` will be unused" warning: Bolt reads SLACK_BOT_TOKEN itself even
    when given a client, and gonogo always gives one (built with that same token)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for that one warning."""
        return "`token` will be unused" not in record.getMessage()


def create_app(
    config: Config,
    engine: Engine,
    chat: SlackChat,
    signing_secret: str | None,
    *,
    executor: Executor,
    gate: AckGate | None = None,
    socket_mode: bool = False,
    token_verification_enabled: bool = False,
    verified_upstream: bool = False,
) -> App:
    """The Bolt app with gonogo's listeners, using `chat.client` for the Web API.

    `signing_secret` is required in HTTP mode (every request's signature is verified and
    timestamps older than 5 minutes are rejected); Socket Mode does not sign requests. Bolt
    verifies unless `verified_upstream`: the app is served only behind
    `AsgiHandler(signing_secret=...)`, which verifies first (on the raw body, before parsing),
    so a second check would only cost time (hashing a large body hands the GIL over).
    `token_verification_enabled` calls `auth.test` now (serve does; tests need not).
    Work after an ack runs on `executor`, yielding to requests in hand through `gate`.
    """
    if not socket_mode and not signing_secret:
        raise ValueError("HTTP mode needs the signing secret")
    app = App(
        name=config.bot.name,
        client=chat.client,
        signing_secret=signing_secret or "",
        process_before_response=True,
        token_verification_enabled=token_verification_enabled,
        request_verification_enabled=not socket_mode and not verified_upstream,
        logger=_bolt_logger(),
    )
    _listen(app, Listeners(engine, chat, executor, gate), config.slack.commands)
    _log_lost_access(app)
    return app


def _bolt_logger() -> logging.Logger:
    """The logger Bolt writes to, without the warning gonogo's own client makes pointless."""
    bolt_log = logging.getLogger("gonogo.slack.bolt")
    if not any(isinstance(f, _QuietClientWarning) for f in bolt_log.filters):
        bolt_log.addFilter(_QuietClientWarning())
    return bolt_log


def _listen(app: App, listeners: Listeners, commands: Iterable[str]) -> None:
    """Route the slash `commands` and every click to `listeners`, retried events to nowhere."""
    # Few listeners, few matchers: Bolt builds the injected arguments of every matcher it tries
    # and of every function middleware, on the request thread before the ack; with one
    # listener per command that cost more than the rest of the ack (bench/ack_latency.py).
    app.use(EventDedupe(listeners))
    names = "|".join(re.escape(c) for c in commands)
    app.command(re.compile(f"^(?:{names})$"))(listeners.on_command)
    app.block_action(re.compile(r".+"))(listeners.on_action)


def _log_lost_access(app: App) -> None:
    """Log the two events that mean gonogo lost its access, and errors of Bolt's own listeners."""

    @app.event("tokens_revoked")
    def tokens_revoked(event: dict[str, Any]) -> None:
        log.error("Slack revoked gonogo's tokens: %s; reinstall the app", event.get("tokens"))

    @app.event("app_uninstalled")
    def app_uninstalled(event: dict[str, Any]) -> None:
        log.error("gonogo was uninstalled from the workspace; Slack calls will fail until it is reinstalled")

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("Bolt listener error (%s): %s", body.get("type") or body.get("command"), error)
