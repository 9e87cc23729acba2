"""The HTTP front: `AsgiHandler` serves the Bolt app over ASGI, off the event loop.

In HTTP mode, `AsgiHandler` checks every request before Bolt sees it: the signature over the
raw body first (slack_sdk's `SignatureVerifier`, timestamps more than 5 minutes off refused)
→ 401; then the body must parse and have the shape its kind needs (`request_problem`) → else
400 with a short reason. Bolt parses the body before it verifies anything and trusts its
shape, so junk would otherwise end in a 500 and a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.asgi.base_handler import BaseSlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.adapter.asgi.http_response import AsgiHttpResponse

from bot.slack.gate import AckGate
from bot.slack.payloads import request_problem
from bot.slack.verify import RawBodyVerifier, is_ssl_check

log = logging.getLogger("gonogo.slack")

EVENTS_PATH = "/slack/events"
#: What answers the ops endpoints: path -> (status, content type, body).
OpsHandler = Callable[[str], tuple[int, str, bytes]]


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
    dispatch pool, off the event loop. A well-formed click (`early_click`) is answered right
    after its signature check; Bolt parses it and runs its listener after the answer went out.
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
        self._verifier = RawBodyVerifier(signing_secret) if signing_secret else None
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
        if self._verifier is not None and not self._verifier.signed(raw, headers):
            if is_ssl_check(raw):
                return _plain(200, "")  # Slack's certificate check: answered, never acted on
            return _plain(401, "invalid request signature")
        if self._verifier is not None and self._pool is not None and (click := early_click(raw)) is not None:
            # A click's ack is always empty: answer it now, and let Bolt parse the payload (the
            # card's blocks ride in every click) and run the listener after the answer went out.
            self._pool.submit(self._dispatch_after_ack, click, query, dict(headers))
            return _plain(200, "")
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

    def _dispatch_after_ack(self, body: str, query: str, headers: dict[str, Any]) -> None:
        try:
            self.app.dispatch(BoltRequest(body=body, query=query, headers=headers))
        except Exception:
            log.exception("a click failed after its ack")

    def close(self) -> None:
        """Stop the dispatch pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


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


def early_click(raw: bytes) -> str | None:
    """The body of a well-formed `block_actions` click (answered before Bolt runs), else None.

    Read with the standard library's C parsers only (the payload's JSON is most of the body), so
    the ack costs a fraction of Bolt's own parse; anything else, or a click `request_problem`
    refuses, goes the normal way (and gets its 400 there).
    """
    if not raw.startswith(b"payload="):
        return None
    try:
        text = raw.decode("utf-8")
        fields = parse_qs(text, strict_parsing=True)
        payload = json.loads(fields["payload"][0]) if list(fields) == ["payload"] else None
    except (UnicodeDecodeError, ValueError, KeyError):
        return None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions" or request_problem(payload):
        return None
    return text
