"""A local stand-in for GitHub's REST API, PagerDuty's Events API v2 and a webhook receiver.

It answers with the shapes of the vendors' public docs: the combined status
(`GET /repos/{owner}/{repo}/commits/{ref}/status`: `state`, `statuses[]` with `context`,
`state`, `target_url`), check runs (`GET .../commits/{ref}/check-runs`: `total_count`,
`check_runs[]` with `name`, `status`, `conclusion`, `html_url`), deployments
(`POST .../deployments` → 201 with `id`; `POST .../deployments/{id}/statuses` → 201), and
`POST /v2/enqueue` (202 `{"status": "success", "dedup_key": ...}`, 400 `invalid event`). A bad
token gets GitHub's 401 `Bad credentials`. Tests set what CI reports, inject failures
(`fail_next`), slow answers (`slow_next`) and read what was sent (`deployments`, `events`).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from bot.integrations import verify

GITHUB_TOKEN = "ghp_test_token_0123456789"
ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"
WEBHOOK_SECRET = "webhook-secret-0123456789"
REPO = "acme/shop"

_STATUS = re.compile(r"^/repos/([^/]+/[^/]+)/commits/([^/]+)/status$")
_RUNS = re.compile(r"^/repos/([^/]+/[^/]+)/commits/([^/]+)/check-runs$")
_DEPLOYMENTS = re.compile(r"^/repos/([^/]+/[^/]+)/deployments$")
_DSTATUS = re.compile(r"^/repos/([^/]+/[^/]+)/deployments/(\d+)/statuses$")


@dataclass
class Vendors:
    """The fake's state; thread-safe."""

    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # PagerDuty events accepted
    hooks: list[dict[str, Any]] = field(default_factory=list)  # webhook bodies accepted (signature checked)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))
    _fail: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    _slow: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Base URL (no trailing slash)."""
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what CI says -------------------------------------------------------------------------
    def set_status(self, sha: str, context: str, state: str, url: str | None = None) -> None:
        """A commit status (newest first per context, as GitHub lists them)."""
        with self._lock:
            rows = [s for s in self.statuses.get(sha, []) if s["context"] != context]
            row = {"context": context, "state": state, "target_url": url or f"https://ci.example/{context}",
                   "description": f"{context} {state}", "id": next(self._ids)}  # fmt: skip
            self.statuses[sha] = [row, *rows]

    def set_check_run(self, sha: str, name: str, status: str, conclusion: str | None = None) -> None:
        """A check run (`status` queued/in_progress/completed, `conclusion` when completed)."""
        with self._lock:
            runs = [r for r in self.check_runs.get(sha, []) if r["name"] != name]
            run_id = next(self._ids)
            runs.append({"id": run_id, "name": name, "status": status, "conclusion": conclusion,
                         "html_url": f"https://github.example/{REPO}/runs/{run_id}",
                         "details_url": f"https://ci.example/runs/{run_id}"})  # fmt: skip
            self.check_runs[sha] = runs

    # -- faults -------------------------------------------------------------------------------
    def fail_next(self, prefix: str, status: int, times: int = 1, body: dict[str, Any] | None = None) -> None:
        """The next `times` requests whose path starts with `prefix` answer `status`."""
        with self._lock:
            self._fail.setdefault(prefix, []).extend([(status, body or {"message": "Server Error"})] * times)

    def slow_next(self, prefix: str, seconds: float, times: int = 1) -> None:
        """The next `times` requests under `prefix` wait `seconds` before answering."""
        with self._lock:
            self._slow.setdefault(prefix, []).extend([seconds] * times)

    def _take(self, table: dict[str, list[Any]], path: str) -> Any:
        with self._lock:
            for prefix, queue in table.items():
                if path.startswith(prefix) and queue:
                    return queue.pop(0)
        return None

    # -- reading back -------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
        """Poll `predicate` until truthy (or fail naming `what`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; requests: {self.requests[-12:]}")

    def states_of(self, gonogo_id: int) -> list[str]:
        """The statuses posted to the GitHub deployment of gonogo deployment `gonogo_id`, in order."""
        with self._lock:
            for dep in self.deployments.values():
                if dep["payload"].get("gonogo_id") == gonogo_id:
                    return [s["state"] for s in dep["statuses"]]
        return []

    # -- answering ----------------------------------------------------------------------------
    def answer(self, method: str, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, Any]]:
        """One request: (status, JSON body)."""
        slow = self._take(self._slow, path)
        if slow:
            time.sleep(slow)
        failed = self._take(self._fail, path)
        if failed:
            return failed
        if path == "/v2/enqueue":
            return self._pagerduty(json.loads(raw or b"{}"))
        if path == "/hook":
            if not verify(WEBHOOK_SECRET, raw, headers.get("X-Gonogo-Signature", "")):
                return 401, {"error": "bad signature"}
            with self._lock:
                self.hooks.append(json.loads(raw))
            return 200, {"ok": True}
        if headers.get("Authorization") != f"Bearer {GITHUB_TOKEN}":
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        return self._github(method, path, json.loads(raw) if raw else {})

    def _github(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if (m := _STATUS.match(path)) and method == "GET" and m[1] == REPO:
            with self._lock:
                rows = list(self.statuses.get(m[2], []))
            states = {s["state"] for s in rows}
            state = (
                "failure"
                if states & {"failure", "error"}
                else "pending"
                if "pending" in states or not rows
                else "success"
            )
            return 200, {"state": state, "sha": m[2], "total_count": len(rows), "statuses": rows}
        if (m := _RUNS.match(path)) and method == "GET" and m[1] == REPO:
            with self._lock:
                runs = list(self.check_runs.get(m[2], []))
            return 200, {"total_count": len(runs), "check_runs": runs}
        if (m := _DEPLOYMENTS.match(path)) and method == "POST" and m[1] == REPO:
            if not body.get("ref") or not body.get("environment"):
                return 422, {"message": "Validation Failed", "errors": [{"field": "ref", "code": "missing"}]}
            with self._lock:
                dep_id = next(self._ids)
                self.deployments[dep_id] = dict(body, id=dep_id, statuses=[])
            return 201, {"id": dep_id, "sha": body["ref"], "ref": body["ref"], "environment": body["environment"],
                         "task": body.get("task", "deploy"), "description": body.get("description")}  # fmt: skip
        if (m := _DSTATUS.match(path)) and method == "POST" and m[1] == REPO:
            with self._lock:
                dep = self.deployments.get(int(m[2]))
                if dep is None:
                    return 404, {"message": "Not Found"}
                if body.get("state") not in (
                    "error",
                    "failure",
                    "inactive",
                    "in_progress",
                    "queued",
                    "pending",
                    "success",
                ):
                    return 422, {"message": "Validation Failed"}
                dep["statuses"].append(body)
            return 201, {"id": next(self._ids), "state": body["state"], "environment_url": body.get("environment_url"),
                         "log_url": body.get("log_url")}  # fmt: skip
        return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}

    def _pagerduty(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        problems = []
        if event.get("routing_key") != ROUTING_KEY:
            problems.append("'routing_key' is invalid")
        if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
            problems.append("'event_action' is invalid")
        if event.get("event_action") == "trigger":
            payload = event.get("payload") or {}
            for name in ("summary", "source", "severity"):
                if not payload.get(name):
                    problems.append(f"'payload.{name}' is missing or blank")
        if problems:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": problems}
        with self._lock:
            self.events.append(event)
        return 202, {"status": "success", "message": "Event processed", "dedup_key": event.get("dedup_key")}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            status, body = self.server.fake.answer(method, path, self.headers, raw)
        except (ValueError, KeyError) as exc:
            status, body = 400, {"message": f"Problems parsing JSON: {exc}"}
        with self.server.fake._lock:
            self.server.fake.requests.append((method, path, status))
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: Vendors


def start_vendors() -> Vendors:
    """Start the fake on a free loopback port."""
    fake = Vendors()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.server = server
    threading.Thread(target=server.serve_forever, name="fake-vendors", daemon=True).start()
    return fake


def stop_vendors(fake: Vendors) -> None:
    """Shut it down."""
    if fake.server is not None:
        fake.server.shutdown()
        fake.server.server_close()


def config_toml(fake: Vendors, *, web_url: str = "http://127.0.0.1:9/web") -> str:
    """The integration tables pointing at `fake` (append to a config file)."""
    return f"""
[github]
repository = "{REPO}"
api_url = "{fake.url}"
token_env = "TEST_GITHUB_TOKEN"
timeout = "2s"
poll_interval = "1s"

[pagerduty]
routing_key_env = "TEST_PD_ROUTING_KEY"
events_url = "{fake.url}"
timeout = "2s"

[webhook]
url = "{fake.url}/hook"
secret_env = "TEST_WEBHOOK_SECRET"
timeout = "2s"

[web]
url = "{web_url}"
token_env = "TEST_WEB_TOKEN"
"""


ENVIRON = {
    "TEST_GITHUB_TOKEN": GITHUB_TOKEN,
    "TEST_PD_ROUTING_KEY": ROUTING_KEY,
    "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "TEST_WEB_TOKEN": "web-token-0123456789",
}
