"""A local stand-in for the Slack Web API: a threaded HTTP server that records every call.

Point a `slack_sdk.WebClient(base_url=fake.api_url)` at it. It answers the methods gonogo uses
the way Slack does (`auth.test`, `chat.postMessage`, `chat.update`, `chat.postEphemeral`,
`usergroups.users.list`, `users.info`, `apps.connections.open`), keeps the messages it was
sent (so a test can read the latest blocks of a card), accepts `response_url` posts under
`/response/...`, counts calls per method at `GET /calls` (each call with its channel and time at
`GET /calls/log`) and lists the top-level messages at
`GET /messages` (for other processes, e.g. the benchmarks).

Like Slack, `chat.postMessage` and `chat.update` refuse blocks that break Block Kit's limits
with `invalid_blocks` (and the JSON pointer of each problem), so every end-to-end test also
checks that gonogo stays inside them (see `block_errors`).

Failures on demand: `fail_next` answers the next N calls of a method with HTTP 429 and
`Retry-After` (or another status); `drop_next` closes the connection of the next N calls
without answering (a network error). Unknown methods answer
`{"ok": false, "error": "unknown_method"}` like Slack.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

BOT_TOKEN = "xoxb-test-token"
# Block Kit's limits, as Slack enforces them (https://docs.slack.dev/reference/block-kit).
MAX_BLOCKS = 50
ID_LENGTH = 255
SECTION_TEXT = 3000
MAX_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
MAX_OPTIONS = 10
OPTION_TEXT = 75
OPTION_VALUE = 150
BOT_USER = "U0GONOGO"
TEAM = "T0TEAM"


@dataclass(frozen=True)
class Call:
    """One request the fake received: the API method and its parameters (JSON, form or query)."""

    method: str
    params: dict[str, Any]
    status: int
    at: float


@dataclass
class Message:
    """A message as the fake stores it (latest version after chat.update)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    updates: int = 0


@dataclass
class FakeSlack:
    """The fake's state. Thread-safe; every public method may be called from tests."""

    groups: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    token: str = BOT_TOKEN
    socket_url: str = "ws://127.0.0.1:1/link"
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(100))
    _fail: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)
    _drop: dict[str, int] = field(default_factory=dict)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    server: ThreadingHTTPServer | None = None
    #: Sign in with Slack (OpenID Connect): client id -> secret, who signs in at /openid/connect/authorize.
    oidc_clients: dict[str, str] = field(default_factory=dict)
    oidc_user: tuple[str, str] = ("U0ALICE1", "alice")
    oidc_team: str = ""
    _oidc_codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    _oidc_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)

    # -- control ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL of the server (no trailing slash)."""
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """What to pass as `WebClient(base_url=...)` / `SLACK_API_URL`."""
        return self.url + "/api/"

    def fail_next(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 429,
        retry_after: int = 1,
        error: str = "ratelimited",
    ) -> None:
        """Answer the next `times` calls of `method` with `status` and `error` (429 carries
        Retry-After; `status=200` with an `error` is how Slack refuses, e.g. `missing_scope`)."""
        with self._lock:
            self._fail.setdefault(method, []).extend([(status, retry_after, error)] * times)

    def drop_next(self, method: str, times: int = 1) -> None:
        """Close the connection of the next `times` calls of `method` without any answer."""
        with self._lock:
            self._drop[method] = self._drop.get(method, 0) + times

    def take_drop(self, method: str, params: dict[str, Any]) -> bool:
        """True (recorded with status 0) when this call of `method` is to be dropped."""
        with self._lock:
            if not self._drop.get(method):
                return False
            self._drop[method] -= 1
            self._record(method, params, 0)
            return True

    def calls_of(self, method: str) -> list[Call]:
        """Recorded calls of one method, oldest first (failed attempts included)."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def ok_calls_snapshot(self) -> list[Call]:
        """Every call answered 200, oldest first."""
        with self._lock:
            return [c for c in self.calls if c.status == 200]

    def ok_calls(self, method: str) -> list[Call]:
        """Recorded calls of one method that were answered 200."""
        return [c for c in self.calls_of(method) if c.status == 200]

    def message(self, ts: str) -> Message:
        """A snapshot of the stored message with this ts."""
        with self._lock:
            return copy.deepcopy(self.messages[ts])

    def cards(self) -> list[Message]:
        """Snapshots of the top-level messages with blocks (cards and alerts), oldest first."""
        with self._lock:
            return [copy.deepcopy(m) for m in self.messages.values() if m.blocks and m.thread_ts is None]

    def thread(self, ts: str) -> list[str]:
        """Texts posted in the thread of `ts`, oldest first."""
        with self._lock:
            return [m.text for m in self.messages.values() if m.thread_ts == ts]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
        """Poll `predicate` until it returns something truthy; fail the test after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; calls: {self.summary()}")
            with self._lock:
                self._lock.wait(0.05)

    def summary(self) -> str:
        """The calls so far, one short line each (for failure messages)."""
        with self._lock:
            return "\n".join(f"{c.status} {c.method} {str(c.params)[:160]}" for c in self.calls)

    # -- request handling --------------------------------------------------------------------
    def handle(
        self, method: str, params: dict[str, Any], auth: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one API call: (status, JSON body, extra headers)."""
        with self._lock:
            queued = self._fail.get(method)
            if queued:
                status, retry_after, error = queued.pop(0)
                self._record(method, params, status)
                headers = {"Retry-After": str(retry_after)} if status == 429 else {}
                return status, {"ok": False, "error": error}, headers
            self._record(method, params, 200)
            if method.startswith("openid.connect."):
                return 200, self._openid(method, params, auth), {}
            if method == "apps.connections.open":
                if not (auth or "").startswith("Bearer xapp-"):
                    return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
            elif not method.startswith("response/") and auth != f"Bearer {self.token}":
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            return 200, self._answer(method, params), {}

    def authorize(self, query: dict[str, str]) -> str:
        """`/openid/connect/authorize`: the person (`oidc_user`) says yes; where Slack sends them back."""
        code = f"code-{next(self._ts)}"
        with self._lock:
            self._oidc_codes[code] = self.oidc_user
            self.calls.append(Call("openid.connect.authorize", dict(query), 302, time.monotonic()))
        sep = "&" if "?" in query.get("redirect_uri", "") else "?"
        return f"{query.get('redirect_uri', '')}{sep}code={code}&state={query.get('state', '')}"

    def _openid(self, method: str, p: dict[str, Any], auth: str | None) -> dict[str, Any]:
        """`openid.connect.token` (code for an access token) and `openid.connect.userInfo`."""
        if method == "openid.connect.token":
            if not p.get("client_id") or self.oidc_clients.get(str(p["client_id"])) != p.get("client_secret"):
                return {"ok": False, "error": "invalid_client_id"}
            who = self._oidc_codes.pop(str(p.get("code", "")), None)
            if who is None:
                return {"ok": False, "error": "invalid_code"}
            access = f"xoxp-oidc-{next(self._ts)}"
            self._oidc_tokens[access] = who
            return {"ok": True, "access_token": access, "token_type": "Bearer", "id_token": "e30.e30.sig"}
        who = self._oidc_tokens.get((auth or "").removeprefix("Bearer "))
        if who is None:
            return {"ok": False, "error": "invalid_auth"}
        return {
            "ok": True, "sub": who[0], "https://slack.com/user_id": who[0],
            "https://slack.com/team_id": self.oidc_team or TEAM, "name": who[1], "email": f"{who[1]}@example.com",
        }  # fmt: skip

    def _record(self, method: str, params: dict[str, Any], status: int) -> None:
        self.calls.append(Call(method, params, status, time.monotonic()))
        self._lock.notify_all()

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _answer(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        blocks = _blocks(p.get("blocks"))
        if method in ("chat.postMessage", "chat.update") and "blocks" in p:
            errors = block_errors(blocks)
            if errors:
                return {
                    "ok": False,
                    "error": "invalid_blocks",
                    "errors": errors,
                    "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
                }
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://acme.slack.com/",
                "team": "Acme",
                "user": "gonogo",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": "B0GONOGO",
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            channel = _channel_id(str(p.get("channel", "")))
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            if not p.get("text") and not blocks:
                return {"ok": False, "error": "no_text"}
            ts = self._next_ts()
            thread = p.get("thread_ts")
            if thread is not None and thread not in self.messages:
                return {"ok": False, "error": "thread_not_found"}
            msg = Message(channel, ts, str(p.get("text", "")), blocks, thread)
            self.messages[ts] = msg
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"type": "message", "text": msg.text, "blocks": blocks, "ts": ts},
            }
        if method == "chat.update":
            ts = str(p.get("ts", ""))
            stored = self.messages.get(ts)
            if stored is None or stored.channel != p.get("channel"):
                return {"ok": False, "error": "message_not_found"}
            stored.text = str(p.get("text", stored.text))
            if "blocks" in p:
                stored.blocks = blocks
            stored.updates += 1
            return {"ok": True, "channel": stored.channel, "ts": ts, "text": stored.text}
        if method == "chat.postEphemeral":
            if not p.get("channel") or not p.get("user"):
                return {"ok": False, "error": "invalid_arguments"}
            if str(p.get("channel")).startswith("CNOTIN"):
                return {"ok": False, "error": "not_in_channel"}
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "usergroups.users.list":
            group = str(p.get("usergroup", ""))
            if group not in self.groups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(self.groups[group])}
        if method == "users.info":
            user = str(p.get("user", ""))
            if user not in self.users:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": user, "name": self.users[user], "team_id": TEAM}}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_url}
        if method.startswith("response/"):
            return {"ok": True}
        return {"ok": False, "error": "unknown_method"}


def _channel_id(channel: str) -> str:
    if channel.startswith("#"):
        return "C0" + channel[1:].upper().replace("-", "")[:9]
    return channel


def _blocks(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return ["<not JSON>"]
    return list(raw) if isinstance(raw, list) else ["<not a list>"]


def block_errors(blocks: list[Any]) -> list[str]:
    """What Slack would refuse in `blocks` (its wording, with a JSON pointer); empty when valid.

    Checks the limits gonogo can run into: 50 blocks, block_id/action_id 255 characters,
    section text 3000 and at most 10 fields of 2000, header 150, 10 context elements,
    25 elements per actions block, button text 75 and value 2000, 10 checkbox options
    (text 75, value 150; initial options among the options).
    """
    errors: list[str] = []

    def longer(value: Any, limit: int, where: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            errors.append(f"must be less than {limit + 1} characters [json-pointer:{where}]")

    def more(items: Any, limit: int, where: str) -> None:
        if isinstance(items, list) and len(items) > limit:
            errors.append(f"no more than {limit} items allowed [json-pointer:{where}]")

    def text_of(obj: Any) -> Any:
        return obj.get("text") if isinstance(obj, dict) else None

    def element(e: Any, where: str) -> None:
        if not isinstance(e, dict):
            errors.append(f"must be an object [json-pointer:{where}]")
            return
        longer(e.get("action_id"), ID_LENGTH, f"{where}/action_id")
        if e.get("type") == "button":
            longer(text_of(e.get("text")), BUTTON_TEXT, f"{where}/text/text")
            longer(e.get("value"), BUTTON_VALUE, f"{where}/value")
        if e.get("type") == "checkboxes":
            options = e.get("options") or []
            more(options, MAX_OPTIONS, f"{where}/options")
            for k, o in enumerate(options if isinstance(options, list) else []):
                longer(
                    text_of(o.get("text")) if isinstance(o, dict) else None,
                    OPTION_TEXT,
                    f"{where}/options/{k}/text/text",
                )
                longer(
                    o.get("value") if isinstance(o, dict) else None,
                    OPTION_VALUE,
                    f"{where}/options/{k}/value",
                )
            initial = e.get("initial_options") or []
            if (
                isinstance(initial, list)
                and isinstance(options, list)
                and any(o not in options for o in initial)
            ):
                errors.append(
                    f"each initial option must be one of the options [json-pointer:{where}/initial_options]"
                )

    more(blocks, MAX_BLOCKS, "/blocks")
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"must provide an object with a type [json-pointer:{at}]")
            continue
        kind = block["type"]
        longer(block.get("block_id"), ID_LENGTH, f"{at}/block_id")
        if kind == "section":
            longer(text_of(block.get("text")), SECTION_TEXT, f"{at}/text/text")
            fields = block.get("fields") or []
            more(fields, MAX_FIELDS, f"{at}/fields")
            for k, f in enumerate(fields if isinstance(fields, list) else []):
                longer(text_of(f), FIELD_TEXT, f"{at}/fields/{k}/text")
            if block.get("accessory") is not None:
                element(block["accessory"], f"{at}/accessory")
        elif kind == "header":
            longer(text_of(block.get("text")), HEADER_TEXT, f"{at}/text/text")
        elif kind == "context":
            more(block.get("elements"), MAX_CONTEXT_ELEMENTS, f"{at}/elements")
        elif kind == "actions":
            elements = block.get("elements") or []
            more(elements, MAX_ACTIONS, f"{at}/elements")
            for k, e in enumerate(elements if isinstance(elements, list) else []):
                element(e, f"{at}/elements/{k}")
    return errors


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        params: dict[str, Any] = dict(parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type", "")
        if body:
            if "json" in ctype:
                params.update(json.loads(body))
            else:
                params.update(parse_qsl(body.decode()))
        path = url.path
        if path == "/openid/connect/authorize":
            self.send_response(302)
            self.send_header("Location", self.server.fake.authorize(dict(parse_qsl(url.query))))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/messages":  # for other processes (benchmarks): the top-level messages
            found = [
                {"channel": m.channel, "ts": m.ts, "text": m.text, "blocks": m.blocks}
                for m in self.server.fake.cards()
            ]
            self._send(200, {"ok": True, "messages": found}, {})
            return
        if path == "/calls/log":  # for other processes (benchmarks): every answered call, in order
            log = [
                {"method": c.method, "channel": c.params.get("channel"), "at": c.at}
                for c in self.server.fake.ok_calls_snapshot()
            ]
            self._send(200, {"ok": True, "calls": log}, {})
            return
        if path == "/calls":  # for other processes (benchmarks): how many calls of each method
            counts: dict[str, int] = {}
            for c in self.server.fake.ok_calls_snapshot():
                counts[c.method] = counts.get(c.method, 0) + 1
            self._send(200, {"ok": True, "calls": counts}, {})
            return
        if path.startswith("/api/"):
            method = path[len("/api/") :]
        elif path.startswith("/response/"):
            method = path.lstrip("/")
        else:
            self._send(404, {"ok": False, "error": "not_found"}, {})
            return
        if self.server.fake.take_drop(method, params):
            self.close_connection = True  # no answer at all: the client sees the connection close
            return
        status, answer, headers = self.server.fake.handle(method, params, self.headers.get("Authorization"))
        self._send(status, answer, headers)

    def _send(self, status: int, answer: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSlack


def start_fake_slack(**kwargs: Any) -> FakeSlack:
    """Start a fake Slack Web API on a free loopback port (stop it with `stop_fake_slack`)."""
    fake = FakeSlack(**kwargs)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.server = server
    threading.Thread(target=server.serve_forever, name="fake-slack", daemon=True).start()
    return fake


def stop_fake_slack(fake: FakeSlack) -> None:
    """Shut the fake's server down."""
    if fake.server is not None:
        fake.server.shutdown()
        fake.server.server_close()


class FakeSocketMode:
    """A Socket Mode WebSocket endpoint: says hello, sends envelopes, records the acks.

    Point `FakeSlack.socket_url` at `url`; `apps.connections.open` hands it to the client.
    """

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.acks: list[dict[str, Any]] = []
        self.connections = 0
        self._outbox: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link"
        threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True).start()

    def send(self, envelope_type: str, payload: dict[str, Any], envelope_id: str) -> None:
        """Queue an envelope for the connected client."""
        with self._cond:
            self._outbox.append(
                {
                    "envelope_id": envelope_id,
                    "type": envelope_type,
                    "payload": payload,
                    "accepts_response_payload": envelope_type != "events_api",
                    "retry_attempt": 0,
                    "retry_reason": "",
                }
            )
            self._cond.notify_all()

    def _handle(self, ws: Any) -> None:
        with self._cond:
            self.connections += 1
        ws.send(
            json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0GONOGO"}})
        )
        while True:
            with self._cond:
                outgoing, self._outbox = self._outbox, []
            for envelope in outgoing:
                ws.send(json.dumps(envelope))
            try:
                raw = ws.recv(timeout=0.05)
            except TimeoutError:
                continue
            except Exception:
                return
            with self._cond:
                self.acks.append(json.loads(raw))
                self._cond.notify_all()

    def close(self) -> None:
        """Stop the server."""
        self._server.shutdown()


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    """A running fake Slack Web API."""
    fake = start_fake_slack()
    yield fake
    stop_fake_slack(fake)
