"""Operational endpoints: `/livez`, `/readyz`, `/metrics`, `/status.json`.

`ops_response(engine, path)` answers one of them as (status, content type, body); the Slack
HTTP app mounts them beside `/slack/events`, and `OpsServer` serves them on a side port in
Socket Mode (where there is no HTTP app).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from bot.ops import metrics

if TYPE_CHECKING:
    from bot.engine import Engine, EnvStatus

PATHS = ("/livez", "/readyz", "/metrics", "/status.json")


def _deployment(d: Any) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "id": d.id,
        "kind": d.kind,
        "state": d.state.value,
        "ref": d.ref,
        "sha": d.sha,
        "requester": d.requester,
        "approvers": d.approvers(),
        "created_at": d.created_at.isoformat(),
        "finished_at": d.finished_at.isoformat() if d.finished_at else None,
        "progress": d.progress,
    }


def status_document(statuses: list[EnvStatus]) -> dict[str, Any]:
    """What `/status` shows, as JSON-ready data."""
    return {
        "environments": [
            {
                "env": s.env,
                "current": _deployment(s.current),
                "in_flight": _deployment(s.active),
                "lock": {
                    "owner": s.lock.owner,
                    "reason": s.lock.reason,
                    "at": s.lock.at.isoformat(),
                    "automatic": s.lock.automatic,
                }
                if s.lock
                else None,
                "checks": [
                    {
                        "name": c.name,
                        "ok": c.ok,
                        "observed": c.observed,
                        "error": c.error,
                        "at": c.at.isoformat(),
                    }
                    for c in s.checks
                ],
            }
            for s in statuses
        ]
    }


def readiness(engine: Engine, slack_ok: Callable[[], bool] | None = None) -> tuple[bool, dict[str, Any]]:
    """Ready when the store answers; reports scheduler leadership and Slack reachability."""
    report: dict[str, Any] = {"scheduler": "leading" if engine.scheduler.leading else "following"}
    ready = True
    try:
        engine.store.get_lock("__readyz__")
        report["store"] = "ok"
    except Exception as exc:  # any driver error means not ready
        report["store"] = f"unreachable: {type(exc).__name__}"
        ready = False
    if slack_ok is not None:
        try:
            report["slack"] = "ok" if slack_ok() else "unreachable"
        except Exception:
            report["slack"] = "unreachable"
    report["ready"] = ready
    return ready, report


def ops_response(
    engine: Engine, path: str, slack_ok: Callable[[], bool] | None = None
) -> tuple[int, str, bytes]:
    """Answer an ops path: (HTTP status, content type, body)."""
    if path == "/livez":
        return 200, "text/plain; charset=utf-8", b"ok\n"
    if path == "/readyz":
        ready, report = readiness(engine, slack_ok)
        return (200 if ready else 503), "application/json", json.dumps(report).encode()
    if path == "/metrics":
        return 200, "text/plain; version=0.0.4; charset=utf-8", metrics.render()
    if path == "/status.json":
        try:
            body = json.dumps(status_document(engine.status()), default=str).encode()
        except Exception as exc:
            return (
                503,
                "application/json",
                json.dumps({"error": f"store unreachable: {type(exc).__name__}"}).encode(),
            )
        return 200, "application/json", body
    return 404, "text/plain; charset=utf-8", b"not found\n"


class OpsServer:
    """The ops endpoints on their own small HTTP server (Socket Mode's side port)."""

    def __init__(
        self, engine: Engine, port: int, host: str = "0.0.0.0", slack_ok: Callable[[], bool] | None = None
    ) -> None:
        ops = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, ctype, body = ops_response(engine, self.path.split("?", 1)[0], slack_ok)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="gonogo-ops", daemon=True)
        _ = ops

    def start(self) -> OpsServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
