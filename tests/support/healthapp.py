"""A small real HTTP app whose health can be switched, for tests and benchmarks.

    with HealthApp() as app:
        app.url                      # "http://127.0.0.1:PORT"
        app.health_url               # app.url + "/health"
        app.set_status(503)
        app.set_delay(0.5)           # seconds before /health answers
        app.set_body({"status": "ok", "db": {"ok": True}})   # JSON; a str is sent as text
        app.set_version("v1.2.3")
        app.hits                     # requests served so far (all paths)

Endpoints: ``/health`` (status, body and delay as set; default 200 ``{"status": "ok"}``),
``/version`` (200 ``{"version": ...}``, no delay); anything else is 404. Methods GET, HEAD
and POST are answered. It is a `ThreadingHTTPServer` on 127.0.0.1 with an ephemeral port,
daemon handler threads and a deep accept queue, so hundreds of concurrent clients work.

Run ``python tests/healthapp.py`` to serve one in the foreground (prints its URL).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    app: HealthApp


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like real services behind a pooled client
    # Headers and body go out in separate writes; without TCP_NODELAY a reused keep-alive
    # connection stalls ~40 ms per request on Nagle + delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    def _answer(self, send_body: bool) -> None:
        app = self.server.app
        app._count_hit()
        path = self.path.split("?", 1)[0]
        if path == "/health":
            status, body, content_type, delay = app._snapshot()
            if delay > 0:
                time.sleep(delay)
        elif path == "/version":
            status, body, content_type = (
                200,
                json.dumps({"version": app.version}).encode(),
                "application/json",
            )
        else:
            status, body, content_type = 404, b'{"error": "not found"}', "application/json"
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. a check timeout)

    def do_GET(self) -> None:
        """Serve GET."""
        self._answer(True)

    def do_POST(self) -> None:
        """Serve POST like GET."""
        self._answer(True)

    def do_HEAD(self) -> None:
        """Serve HEAD: headers only."""
        self._answer(False)


class HealthApp:
    """A local HTTP server in a background thread; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._status = 200
        self._body = b'{"status": "ok"}'
        self._content_type = "application/json"
        self._delay = 0.0
        self._hits = 0
        self.version = "v1"
        self._server = _Server((host, port), _Handler)
        self._server.app = self
        bound_host, bound_port = self._server.server_address[:2]
        self.host: str = bound_host.decode() if isinstance(bound_host, bytes | bytearray) else str(bound_host)
        self.port: int = int(bound_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="healthapp"
        )
        self._thread.start()
        self._closed = False

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def health_url(self) -> str:
        """URL of the /health endpoint."""
        return f"{self.url}/health"

    @property
    def hits(self) -> int:
        """Number of requests served so far, on any path."""
        with self._lock:
            return self._hits

    def set_status(self, status: int) -> None:
        """HTTP status /health answers with."""
        with self._lock:
            self._status = status

    def set_delay(self, seconds: float) -> None:
        """Sleep this long before answering /health."""
        with self._lock:
            self._delay = seconds

    def set_body(self, body: object) -> None:
        """Body of /health: a str is sent as text/plain, bytes as-is, anything else as JSON."""
        with self._lock:
            if isinstance(body, bytes):
                self._body, self._content_type = body, "application/octet-stream"
            elif isinstance(body, str):
                self._body, self._content_type = body.encode(), "text/plain; charset=utf-8"
            else:
                self._body, self._content_type = json.dumps(body).encode(), "application/json"

    def set_version(self, version: str) -> None:
        """Version reported by /version."""
        with self._lock:
            self.version = version

    def reset(self) -> None:
        """Back to healthy: 200, ``{"status": "ok"}``, no delay (hits are kept)."""
        self.set_status(200)
        self.set_delay(0.0)
        self.set_body({"status": "ok"})

    def _count_hit(self) -> None:
        with self._lock:
            self._hits += 1

    def _snapshot(self) -> tuple[int, bytes, str, float]:
        with self._lock:
            return self._status, self._body, self._content_type, self._delay

    def close(self) -> None:
        """Stop serving and free the port. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HealthApp:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


if __name__ == "__main__":
    with HealthApp() as served:
        print(served.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
