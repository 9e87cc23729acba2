"""The Bolt app: slash commands and button clicks in, `commands.handlers` on our own pool.

Every listener acks at once (an empty 200) and hands the work to the adapter's own small
`ThreadPoolExecutor`: not Bolt's listener pool, not lazy listeners (measured: lazy work
shares Bolt's pool and doubled ack p50). The app runs with `process_before_response=True`, so
the ack-only listener runs inline on the request thread and the response goes out without
Bolt's 10 ms ack polling.

Exactly once: every delivery is claimed in the store before it acts (`Store.claim`), keyed by
the slash command's `trigger_id`, or by (action id, value, message ts, user, action_ts) for a
click, or by `event_id` for Events API callbacks, so a retried delivery
(`X-Slack-Retry-Num`) or the same payload twice does one thing. Two *different* clicks are
made safe by the engine's compare-and-set.

Replies go back as the handler says: ephemeral → `chat.postEphemeral` to the user (falling
back to the command's `response_url` where the bot cannot post), public → `chat.postMessage`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_bolt.adapter.asgi.base_handler import BaseSlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.adapter.asgi.http_response import AsgiHttpResponse

from bot.config import Config
from bot.engine import Engine, Refused
from bot.slack.blocks import unescape
from bot.slack.chat import SlackChat
from commands.handlers import Context, Reply, handle_action, handle_text

log = logging.getLogger("gonogo.slack")

EVENTS_PATH = "/slack/events"


class AckGate:
    """Acks before work: queued work waits out a burst of requests (bounded).

    Python threads have no priorities, and the work after an ack (store writes, Web API calls)
    shares the GIL with the next request's ack. So in a burst, work yields: a job starts once
    no request is in hand and none started for `quiet` seconds, or after `max_wait` seconds at
    the latest; and jobs start one at a time, `pace` seconds apart, so a backlog released at
    once cannot stall the next acks. A lone command's work starts `quiet` (20 ms) after its ack.
    Measured with 20 concurrent clients in bench/ack_latency.py.
    """

    def __init__(self, max_wait: float = 0.5, quiet: float = 0.02, pace: float = 0.004) -> None:
        self.max_wait = max_wait
        self.quiet = quiet
        self.pace = pace
        self._busy = 0
        self._last = float("-inf")  # when the latest request started
        self._next = float("-inf")  # the earliest the next job may start
        self._cond = threading.Condition()

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Mark one request as being answered."""
        with self._cond:
            self._busy += 1
            self._last = time.monotonic()
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                if not self._busy:
                    self._cond.notify_all()

    def wait_quiet(self) -> None:
        """Wait for a calm moment (at most about `max_wait`), then take the next start slot."""
        deadline = time.monotonic() + self.max_wait
        with self._cond:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    wait = self._next - now  # past the deadline: only keep the pace
                elif self._busy:
                    wait = deadline - now
                else:
                    wait = max(self._last + self.quiet, self._next) - now
                if wait <= 0:
                    self._next = now + self.pace
                    return
                self._cond.wait(wait)


class Listeners:
    """What the Bolt listeners do once acked: run a handler and send its reply."""

    def __init__(
        self, engine: Engine, chat: SlackChat, executor: Executor, gate: AckGate | None = None
    ) -> None:
        self.engine = engine
        self.chat = chat
        self.executor = executor
        self.gate = gate or AckGate(max_wait=0)

    # -- Bolt listeners (run on the request thread: ack, hand off, return) -------------------
    def on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        """A slash command: ack empty, then run it on our pool."""
        ack()
        self._submit(self.run_command, body)

    def on_action(self, ack: Ack, body: dict[str, Any]) -> None:
        """A click (button or checklist checkbox): ack, then run it on our pool."""
        ack()
        self._submit(self.run_action, body)

    def _submit(self, fn: Callable[[dict[str, Any]], None], body: dict[str, Any]) -> None:
        try:
            self.executor.submit(self._guard, fn, body)
        except RuntimeError:
            log.warning("shutting down: dropped a Slack request")

    def _guard(self, fn: Callable[[dict[str, Any]], None], body: dict[str, Any]) -> None:
        try:
            self.gate.wait_quiet()
            fn(body)
        except Exception:
            log.exception("Slack request failed")
            user = _user(body)
            channel = _channel(body)
            if user and channel:
                self.chat.post_ephemeral(
                    channel,
                    user,
                    "Something went wrong on gonogo's side; it is logged. Try again, or ask an admin.",
                    response_url=body.get("response_url"),
                )

    # -- the work (on our pool) ------------------------------------------------------------
    def run_command(self, body: dict[str, Any]) -> None:
        """Run a slash command and send its reply."""
        user, channel = str(body["user_id"]), str(body["channel_id"])
        trigger = body.get("trigger_id")
        if trigger and not self._claim(f"slack:command:{trigger}"):
            log.info("duplicate delivery of %s (trigger %s) ignored", body.get("command"), trigger)
            return
        text = unescape(str(body.get("text") or ""))
        reply = handle_text(self.engine, str(body["command"]), text, Context(user, channel))
        self.reply(reply, channel=channel, user=user, response_url=body.get("response_url"))

    def run_action(self, body: dict[str, Any]) -> None:
        """Run a click and send the reply (refusals go to the clicker alone)."""
        actions = body.get("actions") or []
        if not actions:
            return
        action = actions[0]
        action_id = str(action.get("action_id", ""))
        user, channel = _user(body), _channel(body)
        if not user or not channel:
            log.warning("click without user or channel ignored: %s", action_id)
            return
        message_ts = _message_ts(body)
        ticked: set[int] | None = None
        if action.get("type") == "checkboxes":
            value = str(action.get("block_id", "")).partition(":")[2]
        else:
            value = str(action.get("value") or "")
        key = f"slack:action:{action_id}:{value}:{message_ts}:{user}:{action.get('action_ts')}"
        if not self._claim(key):
            log.info("duplicate delivery of %s on %s by %s ignored", action_id, message_ts, user)
            return
        if action.get("type") == "checkboxes":
            ticked = self._ticked(action_id, value, action, body)
        reply = handle_action(self.engine, action_id, value, Context(user, channel), ticked=ticked)
        self.reply(reply, channel=channel, user=user, response_url=body.get("response_url"))

    def _ticked(
        self, action_id: str, value: str, action: Mapping[str, Any], body: Mapping[str, Any]
    ) -> set[int]:
        """The checklist after this click: what the clicker changed, applied to the current state.

        Each click toggles one box, but `selected_options` is the clicker's whole view, which may
        be stale if someone else ticked meanwhile. So diff it against the options the clicker
        saw (the message's `initial_options`) and apply only that change to the stored state.
        """
        selected = {
            int(v) for o in action.get("selected_options") or [] if (v := str(o.get("value"))).isdigit()
        }
        seen = _seen_options(body, str(action.get("block_id", "")))
        if seen is None:
            return selected
        try:
            d = self.engine.deployment(int(value))
        except (Refused, ValueError):
            return selected
        if action_id == "signoff_checklist":
            stored = list(d.details.get("signoff", {}).get("ticked", []))
        else:
            stored = list(d.checklist)
        current = {i + 1 for i, v in enumerate(stored) if v}
        return (current | (selected - seen)) - (seen - selected)

    def on_event_retry(self, body: Mapping[str, Any], headers: Mapping[str, Any]) -> bool:
        """True the first time an Events API `event_id` is seen; retries answer 200 and stop."""
        event_id = body.get("event_id")
        if not event_id:
            return True
        if self._claim(f"slack:event:{event_id}"):
            return True
        log.info(
            "event %s delivered again (retry %s) ignored", event_id, _header(headers, "x-slack-retry-num")
        )
        return False

    def reply(self, reply: Reply | None, *, channel: str, user: str, response_url: str | None = None) -> None:
        """Send a handler's reply: ephemeral to `user`, or public in `channel`."""
        if reply is None or not reply.text:
            return
        if reply.ephemeral:
            self.chat.post_ephemeral(channel, user, reply.text, response_url=response_url)
            return
        if self.chat.post_reply(channel, reply.text) is None and response_url:
            self.chat.respond(response_url, reply.text, ephemeral=False)

    def _claim(self, key: str) -> bool:
        return self.engine.store.claim(key[:500], self.engine.now())


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, list | tuple):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _user(body: Mapping[str, Any]) -> str | None:
    user = body.get("user")
    if isinstance(user, Mapping):
        return str(user.get("id")) if user.get("id") else None
    return str(body["user_id"]) if body.get("user_id") else None


def _channel(body: Mapping[str, Any]) -> str | None:
    channel = body.get("channel")
    if isinstance(channel, Mapping) and channel.get("id"):
        return str(channel["id"])
    container = body.get("container") or {}
    if container.get("channel_id"):
        return str(container["channel_id"])
    return str(body["channel_id"]) if body.get("channel_id") else None


def _message_ts(body: Mapping[str, Any]) -> str | None:
    container = body.get("container") or {}
    if container.get("message_ts"):
        return str(container["message_ts"])
    message = body.get("message") or {}
    return str(message["ts"]) if message.get("ts") else None


def _seen_options(body: Mapping[str, Any], block_id: str) -> set[int] | None:
    """Ticked item numbers in the message as the clicker saw it; None when not in the payload."""
    for block in (body.get("message") or {}).get("blocks") or []:
        if block.get("block_id") != block_id:
            continue
        element = block.get("accessory") or {}
        return {int(v) for o in element.get("initial_options") or [] if (v := str(o.get("value"))).isdigit()}
    return None


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
) -> App:
    """The Bolt app with gonogo's listeners, using `chat.client` for the Web API.

    `signing_secret` is required in HTTP mode (Bolt verifies every request's signature and
    rejects timestamps older than 5 minutes); Socket Mode does not sign requests.
    `token_verification_enabled` calls `auth.test` now (serve does; tests need not).
    Work after an ack runs on `executor`, yielding to requests in hand through `gate`.
    """
    if not socket_mode and not signing_secret:
        raise ValueError("HTTP mode needs the signing secret")
    bolt_log = logging.getLogger("gonogo.slack.bolt")
    if not any(isinstance(f, _QuietClientWarning) for f in bolt_log.filters):
        bolt_log.addFilter(_QuietClientWarning())
    app = App(
        name=config.bot.name,
        client=chat.client,
        signing_secret=signing_secret or "",
        process_before_response=True,
        token_verification_enabled=token_verification_enabled,
        request_verification_enabled=not socket_mode,
        logger=bolt_log,
    )
    listeners = Listeners(engine, chat, executor, gate)

    def dedupe_events(req: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse:
        if req.body.get("type") == "event_callback" and not listeners.on_event_retry(req.body, req.headers):
            return BoltResponse(status=200, body="")
        return next()

    app.use(dedupe_events)
    for command in config.slack.commands:
        app.command(command)(listeners.on_command)
    app.block_action(re.compile(r".+"))(listeners.on_action)

    @app.event("tokens_revoked")
    def tokens_revoked(event: dict[str, Any]) -> None:
        log.error("Slack revoked gonogo's tokens: %s; reinstall the app", event.get("tokens"))

    @app.event("app_uninstalled")
    def app_uninstalled() -> None:
        log.error("gonogo was uninstalled from the workspace; Slack calls will fail until it is reinstalled")

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("Bolt listener error (%s): %s", body.get("type") or body.get("command"), error)

    return app


OpsHandler = Callable[[str], tuple[int, str, bytes]]


class AsgiHandler(BaseSlackRequestHandler):
    """ASGI front for a sync Bolt app that keeps the event loop free.

    Bolt's built-in ASGI adapter calls `app.dispatch` on the event loop, so one slow request
    (a first `auth.test`, a store write in a middleware) stalls every other connection. Here
    each dispatch runs on a small thread pool; with `threads=0` it runs inline like Bolt's.
    `GET` on one of `ops_paths` is answered by `ops(path)` (the ops endpoints, `bot.ops`).
    """

    def __init__(
        self,
        app: App,
        path: str = EVENTS_PATH,
        *,
        threads: int = 8,
        ops: OpsHandler | None = None,
        ops_paths: Collection[str] = (),
        gate: AckGate | None = None,
    ) -> None:
        self.app = app
        self.path = path
        self.gate = gate or AckGate()
        self.ops = ops
        self.ops_paths = frozenset(ops_paths)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="gonogo-http") if threads else None

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        """Serve one ASGI connection; an HTTP request counts as "in hand" until answered."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        with self.gate.answering():
            await super().__call__(scope, receive, send)

    async def _get_http_response(self, method: str, path: str, request: AsgiHttpRequest) -> AsgiHttpResponse:
        if method == "GET" and self.ops is not None and path in self.ops_paths:
            loop = asyncio.get_running_loop()
            status, ctype, body = await loop.run_in_executor(self._pool, self.ops, path)
            return AsgiHttpResponse(status=status, headers={"content-type": [ctype]}, body=body.decode())
        return await super()._get_http_response(method, path, request)

    async def dispatch(self, request: AsgiHttpRequest) -> BoltResponse:
        """Dispatch one request to the Bolt app."""
        bolt_request = BoltRequest(
            body=await request.get_raw_body(), query=request.query_string, headers=request.get_headers()
        )
        if self._pool is None:
            return self.app.dispatch(bolt_request)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.app.dispatch, bolt_request)

    def close(self) -> None:
        """Stop the dispatch pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
