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

In HTTP mode, `AsgiHandler` checks every request before Bolt sees it: the signature over the
raw body first (slack_sdk's `SignatureVerifier`, timestamps more than 5 minutes off refused)
→ 401; then the body must parse and have the shape its kind needs (`request_problem`) → else
400 with a short reason. Bolt parses the body before it verifies anything and trusts its
shape, so junk would otherwise end in a 500 and a traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_bolt.adapter.asgi.base_handler import BaseSlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.adapter.asgi.http_response import AsgiHttpResponse
from slack_bolt.middleware import Middleware
from slack_sdk.signature import SignatureVerifier

from bot.config import Config
from bot.domain.actions import Action
from bot.engine.engine import Engine, Refused
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
        """A slash command: ack empty, then run it on our pool (a malformed one: ack the reason)."""
        problem = request_problem(body)
        if problem:
            log.warning("malformed slash command ignored: %s", problem)
            ack(f"gonogo could not read this command: {problem}")
            return
        ack()
        self._submit(self.run_command, body)

    def on_action(self, ack: Ack, body: dict[str, Any]) -> None:
        """A click (button or checklist checkbox): ack, then run it on our pool."""
        ack()
        problem = request_problem(body)
        if problem:
            log.warning("malformed click ignored: %s", problem)
            return
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
        user, channel = str(body.get("user_id") or ""), str(body.get("channel_id") or "")
        if not user or not channel:
            log.warning("slash command without user or channel ignored: %s", body.get("command"))
            return
        trigger = body.get("trigger_id")
        if trigger and not self._claim(f"slack:command:{trigger}"):
            log.info("duplicate delivery of %s (trigger %s) ignored", body.get("command"), trigger)
            return
        text = unescape(str(body.get("text") or ""))
        reply = handle_text(self.engine, str(body.get("command") or ""), text, Context(user, channel))
        self.reply(reply, channel=channel, user=user, response_url=body.get("response_url"))

    def run_action(self, body: dict[str, Any]) -> None:
        """Run a click and send the reply (refusals go to the clicker alone)."""
        actions = body.get("actions") or []
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], Mapping):
            log.warning("click without a readable action ignored")
            return
        action = actions[0]
        action_id = str(action.get("action_id", ""))
        user, channel = _user(body), _channel(body)
        if not user or not channel:
            log.warning("click without user or channel ignored: %s", action_id)
            return
        message_ts = _message_ts(body)
        changes: dict[int, bool] | None = None
        if action.get("type") == "checkboxes":
            value = str(action.get("block_id", "")).partition(":")[2]
        else:
            value = str(action.get("value") or "")
        key = f"slack:action:{action_id}:{value}:{message_ts}:{user}:{action.get('action_ts')}"
        if not self._claim(key):
            log.info("duplicate delivery of %s on %s by %s ignored", action_id, message_ts, user)
            return
        if action.get("type") == "checkboxes":
            changes = self._checklist_changes(action_id, value, action, body)
        reply = handle_action(self.engine, action_id, value, Context(user, channel), changes=changes)
        self.reply(reply, channel=channel, user=user, response_url=body.get("response_url"))

    def _checklist_changes(
        self, action_id: str, value: str, action: Mapping[str, Any], body: Mapping[str, Any]
    ) -> dict[int, bool]:
        """What this click changed on the checklist: {item number: ticked} for those items only.

        Slack sends the clicker's whole selection (`selected_options`), which is stale when
        someone else ticked meanwhile; writing it whole would undo their tick. So it is diffed
        against what the clicker's card showed (the `initial_options` of the message in the
        payload) or, when the payload has no card, against the stored checklist; the engine
        applies just these changes under its compare-and-set, so two clicks at the same moment
        both count.
        """
        selected = _option_numbers(action.get("selected_options"))
        seen = _seen_options(body, str(action.get("block_id", "")))
        if seen is None:
            seen = self._stored_ticks(action_id, value)
        return {n: True for n in selected - seen} | {n: False for n in seen - selected}

    def _stored_ticks(self, action_id: str, value: str) -> set[int]:
        """The ticked item numbers the store holds now (a fallback: read outside the engine's CAS)."""
        try:
            d = self.engine.deployment(int(value))
        except (Refused, ValueError):
            return set()
        if action_id == Action.SIGNOFF_CHECKLIST:
            stored = list(d.details.signoff.ticked)
        else:
            stored = list(d.checklist)
        return {i + 1 for i, v in enumerate(stored) if v}

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


def _obj(value: Any) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else an empty one (payload fields may be anything)."""
    return value if isinstance(value, Mapping) else {}


def _user(body: Mapping[str, Any]) -> str | None:
    user = body.get("user")
    if isinstance(user, Mapping):
        return str(user.get("id")) if user.get("id") else None
    return str(body["user_id"]) if body.get("user_id") else None


def _channel(body: Mapping[str, Any]) -> str | None:
    channel = body.get("channel")
    if isinstance(channel, Mapping) and channel.get("id"):
        return str(channel["id"])
    container = _obj(body.get("container"))
    if container.get("channel_id"):
        return str(container["channel_id"])
    return str(body["channel_id"]) if body.get("channel_id") else None


def _message_ts(body: Mapping[str, Any]) -> str | None:
    container = _obj(body.get("container"))
    if container.get("message_ts"):
        return str(container["message_ts"])
    message = _obj(body.get("message"))
    return str(message["ts"]) if message.get("ts") else None


def _seen_options(body: Mapping[str, Any], block_id: str) -> set[int] | None:
    """Ticked item numbers in the message as the clicker saw it; None when not in the payload."""
    blocks = _obj(body.get("message")).get("blocks")
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, Mapping) or block.get("block_id") != block_id:
            continue
        return _option_numbers(_obj(block.get("accessory")).get("initial_options"))
    return None


def _option_numbers(options: Any) -> set[int]:
    """The item numbers among checkbox options (their values), ignoring anything else."""
    if not isinstance(options, list):
        return set()
    return {int(v) for o in options if isinstance(o, Mapping) and (v := str(o.get("value"))).isdigit()}


def _text_fields(body: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            return f"no {name}"
    return None


def request_problem(body: Any) -> str | None:
    """Why a (verified) request body cannot be acted on, in a few words; None when it can.

    Checks the shape of what gonogo and Bolt read: slash commands need `command`, `user_id`
    and `channel_id`; clicks (`block_actions`) a `user` with an id and a list of action objects
    with an `action_id`; Events API callbacks an `event` object with a `type`. Other kinds go
    on to Bolt, which answers what it has no listener for with 404.
    """
    if not isinstance(body, Mapping):
        return "the body is not an object"
    kind = body.get("type")
    if "command" in body:
        return _text_fields(body, "command", "user_id", "channel_id")
    if kind == "block_actions":
        user = body.get("user")
        if not isinstance(user, Mapping) or not isinstance(user.get("id"), str) or not user["id"]:
            return "block_actions without a user id"
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without a list of actions"
        for i, action in enumerate(actions):
            if not isinstance(action, Mapping) or not isinstance(action.get("action_id"), str):
                return f"block_actions: actions[{i}] is not an action with an action_id"
            selected = action.get("selected_options")
            if selected is not None and not isinstance(selected, list):
                return f"block_actions: actions[{i}].selected_options is not a list"
        for name in ("container", "channel", "message", "state", "team"):
            if body.get(name) is not None and not isinstance(body[name], Mapping):
                return f"block_actions: {name} is not an object"
        return None
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
            return "event_callback without an event object with a type"
        if body.get("event_id") is not None and not isinstance(body["event_id"], str):
            return "event_callback: event_id is not a string"
    return None


class _EventDedupe(Middleware):
    """Events API deliveries already seen (`event_id`) answer 200 and go no further.

    A class middleware: Bolt calls it directly, without building injected arguments."""

    def __init__(self, listeners: Listeners) -> None:
        self.listeners = listeners

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        """Stop a retried event; pass everything else on."""
        if req.body.get("type") == "event_callback" and not self.listeners.on_event_retry(
            req.body, req.headers
        ):
            return BoltResponse(status=200, body="")
        return next()


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
    bolt_log = logging.getLogger("gonogo.slack.bolt")
    if not any(isinstance(f, _QuietClientWarning) for f in bolt_log.filters):
        bolt_log.addFilter(_QuietClientWarning())
    app = App(
        name=config.bot.name,
        client=chat.client,
        signing_secret=signing_secret or "",
        process_before_response=True,
        token_verification_enabled=token_verification_enabled,
        request_verification_enabled=not socket_mode and not verified_upstream,
        logger=bolt_log,
    )
    listeners = Listeners(engine, chat, executor, gate)
    # Few listeners, few matchers: Bolt builds the injected arguments of every matcher it tries
    # and of every function middleware, on the request thread before the ack; with one
    # listener per command that cost more than the rest of the ack (bench/ack_latency.py).
    app.use(_EventDedupe(listeners))
    commands = "|".join(re.escape(c) for c in config.slack.commands)
    app.command(re.compile(f"^(?:{commands})$"))(listeners.on_command)
    app.block_action(re.compile(r".+"))(listeners.on_action)

    @app.event("tokens_revoked")
    def tokens_revoked(event: dict[str, Any]) -> None:
        log.error("Slack revoked gonogo's tokens: %s; reinstall the app", event.get("tokens"))

    @app.event("app_uninstalled")
    def app_uninstalled(event: dict[str, Any]) -> None:
        log.error("gonogo was uninstalled from the workspace; Slack calls will fail until it is reinstalled")

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("Bolt listener error (%s): %s", body.get("type") or body.get("command"), error)

    return app


OpsHandler = Callable[[str], tuple[int, str, bytes]]


class _RawBodyVerifier(SignatureVerifier):
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


def _plain(status: int, text: str) -> BoltResponse:
    return BoltResponse(status=status, body=text, headers={"content-type": "text/plain; charset=utf-8"})


class AsgiHandler(BaseSlackRequestHandler):
    """ASGI front for a sync Bolt app that keeps the event loop free.

    Bolt's built-in ASGI adapter calls `app.dispatch` on the event loop, so one slow request
    (a first `auth.test`, a store write in a middleware) stalls every other connection. Here
    each dispatch runs on a small thread pool; with `threads=0` it runs inline like Bolt's.
    `GET` on one of `ops_paths` is answered by `ops(path)` (the ops endpoints, `bot.ops`).

    With `signing_secret`, a request is verified on its raw body before anything parses it
    (401 when unsigned, badly signed or stale), and a body that does not parse or lacks what
    its kind needs gets 400 with a short reason (`request_problem`), never a 500; the app can
    then skip Bolt's own check (`create_app(verified_upstream=True)`). All of it runs on the
    dispatch pool, off the event loop.
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
        signing_secret: str | None = None,
    ) -> None:
        self.app = app
        self.path = path
        self._verifier = _RawBodyVerifier(signing_secret) if signing_secret else None
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
        """Read one request, then verify, parse, check and dispatch it off the event loop."""
        raw = await _raw_body(request)
        headers = request.get_headers()
        if self._pool is None:
            return self.handle(raw, request.query_string, headers)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.handle, raw, request.query_string, headers)

    def handle(self, raw: bytes, query: str, headers: Mapping[str, Any]) -> BoltResponse:
        """Verify the signature on the raw body (401), parse and check it (400), run Bolt."""
        if self._verifier is not None and not self._signed(raw, headers):
            if _is_ssl_check(raw):
                return _plain(200, "")  # Slack's certificate check: answered, never acted on
            return _plain(401, "invalid request signature")
        try:
            bolt_request = BoltRequest(body=raw.decode("utf-8"), query=query, headers=dict(headers))
        except Exception as exc:  # Bolt parses (and reads fields) in its constructor
            log.warning("malformed Slack request refused (400): %s: %.200s", type(exc).__name__, exc)
            return _plain(400, "malformed request: the body could not be parsed")
        problem = request_problem(bolt_request.body)
        if problem:
            log.warning("malformed Slack request refused (400): %s", problem)
            return _plain(400, f"malformed request: {problem}")
        return self.app.dispatch(bolt_request)

    def _signed(self, raw: bytes, headers: Mapping[str, Any]) -> bool:
        assert self._verifier is not None
        try:
            return self._verifier.is_valid(
                raw,
                timestamp=_header(headers, "x-slack-request-timestamp"),
                signature=_header(headers, "x-slack-signature"),
            )
        except (ValueError, TypeError):  # a timestamp that is not a number
            return False

    def close(self) -> None:
        """Stop the dispatch pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _is_ssl_check(raw: bytes) -> bool:
    """Is this Slack's `ssl_check=1` probe (which Bolt, too, answers before verifying)?"""
    try:
        form = dict(parse_qsl(raw.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return False
    return form.get("ssl_check") == "1" and "command" not in form and "payload" not in form


async def _raw_body(request: AsgiHttpRequest) -> bytes:
    """The request body as sent (Bolt's reader decodes it, failing on bytes that are not UTF-8)."""
    chunks = bytearray()
    while True:
        chunk = await request.receive()
        if chunk["type"] != "http.request":
            raise ConnectionError("the client went away before sending the whole body")
        chunks.extend(chunk.get("body", b""))
        if not chunk.get("more_body", False):
            return bytes(chunks)
