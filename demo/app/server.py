"""The demo application gonogo deploys: a tiny HTTP server reporting its release.

GET /health -> 200 {"status": "ok", "version": ...}; GET /version -> the VERSION file.
GET /metrics -> Prometheus text: requests and failures per path, and a latency histogram
(`demo_http_requests_total`, `demo_http_request_failures_total`,
`demo_http_request_duration_seconds`), the process' own `process_*` figures (resident memory,
CPU seconds) and `demo_memory_limit_bytes` (the memory the app may use: 512 MiB, or the
`MEMORY_LIMIT` file's number of bytes), via prometheus_client. A failure is an answer >= 500.
POST /jobs -> 201 {"id": "1", "status": "queued"} (the JSON body is echoed back as "job");
POST /jobs/<id>/approve -> 200 {"id": ..., "status": "approved"}, 404 for an unknown id.
GET /jobs/<id> -> the job.
Probes: GET /livez -> 200 {"status": "alive"} while the process serves; GET /readyz -> 200
{"status": "ready", "version": ...}, or 503 {"status": "draining"} once POST /drain was asked
(this process then takes no new work: a load balancer stops sending it requests).

SIGTERM is a graceful stop: the port is released at once (a new process can bind it), the
requests in flight are answered (for up to 10 s), then the process exits.

Faults, for demos and tests, as files next to this script (read on every request):
- `UNHEALTHY`: /health answers 503.
- `FAIL_RATE`: a number from 0 to 1: that share of requests (every path but /metrics) answers 500.
- `DELAY`: seconds every request (but /metrics) waits before answering.
- `TOKEN`: /jobs needs `Authorization: Bearer <the file's contents>` (else 401).
- `MEMORY_LIMIT`: bytes reported as `demo_memory_limit_bytes` (a tiny one makes memory alerts fire).

Once it has bound its port it prints `listening on 127.0.0.1:PORT (pid N)`, which is how
`demo/restart.sh` knows that *this* process, not another one, owns the port. A port already
taken is one clear line on stderr and exit status 3. Without prometheus_client installed
/metrics answers 501 and everything else works.
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        ProcessCollector,
        generate_latest,
    )
except ImportError:  # the demo still serves its release without it
    REGISTRY = None
else:
    REGISTRY = CollectorRegistry()
    REQUESTS = Counter("demo_http_requests", "Requests answered, by path", ["path"], registry=REGISTRY)
    FAILURES = Counter(
        "demo_http_request_failures",
        "Requests answered with a 5xx status, by path",
        ["path"],
        registry=REGISTRY,
    )
    LATENCY = Histogram(
        "demo_http_request_duration_seconds", "Time to answer a request, by path", ["path"], registry=REGISTRY
    )
    for _path in ("/", "/health", "/version", "/jobs"):  # every series from the start, at 0
        REQUESTS.labels(_path)
        FAILURES.labels(_path)
    # process_resident_memory_bytes, process_cpu_seconds_total...: what memory and CPU alerts watch
    ProcessCollector(registry=REGISTRY)
    MEMORY_LIMIT = Gauge(
        "demo_memory_limit_bytes", "The memory the app may use (MEMORY_LIMIT)", registry=REGISTRY
    )

HERE = os.path.dirname(os.path.abspath(__file__))
_JOB_PATH = re.compile(r"^/jobs/([0-9]+)(/approve)?$")
_jobs: dict[str, dict[str, object]] = {}
_jobs_lock = threading.Lock()
_served = 0  # requests answered, for FAIL_RATE's deterministic spread
_in_flight = 0  # requests being answered now (a graceful stop waits for them)
_draining = threading.Event()  # POST /drain: /readyz answers 503
#: How long a graceful stop waits for the requests in flight.
STOP_GRACE = 10.0


def read(name: str, default: str = "") -> str:
    try:
        with open(os.path.join(HERE, name)) as fh:
            return fh.read().strip()
    except OSError:
        return default


def number(name: str) -> float:
    try:
        return float(read(name, "0") or 0)
    except ValueError:
        return 0.0


def injected_failure() -> bool:
    """True for FAIL_RATE's share of requests, spread evenly (every 4th for 0.25, all for 1)."""
    global _served
    rate = min(1.0, max(0.0, number("FAIL_RATE")))
    with _jobs_lock:
        _served += 1
        n = _served
    return rate > 0 and int(n * rate) != int((n - 1) * rate)


def label(path: str) -> str:
    """The path as a metric label: job ids folded, unknown paths as one label."""
    if path in ("/", "/health", "/version", "/jobs"):
        return path
    m = _JOB_PATH.match(path)
    if m:
        return "/jobs/:id/approve" if m.group(2) else "/jobs/:id"
    return "other"


def memory_limit() -> float:
    """The `MEMORY_LIMIT` file's bytes, else 512 MiB (as a container's limit would say)."""
    return number("MEMORY_LIMIT") or 512 * 1024 * 1024


if REGISTRY is not None:
    MEMORY_LIMIT.set_function(memory_limit)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.answer("GET")

    def do_POST(self) -> None:
        self.answer("POST")

    def answer(self, method: str) -> None:
        global _in_flight
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self.metrics()
            return
        with _jobs_lock:
            _in_flight += 1
        try:
            self._answer(method, path)
        finally:
            with _jobs_lock:
                _in_flight -= 1

    def _answer(self, method: str, path: str) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        delay = number("DELAY")
        if delay > 0:
            time.sleep(min(delay, 60.0))
        if injected_failure():
            status, body = 500, b'{"error": "injected failure (FAIL_RATE)"}\n'
        else:
            status, body = self.route(method, path, payload)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if REGISTRY is not None:
            where = label(path)
            REQUESTS.labels(where).inc()
            if status >= 500:
                FAILURES.labels(where).inc()
            LATENCY.labels(where).observe(time.perf_counter() - started)

    def route(self, method: str, path: str, payload: bytes) -> tuple[int, bytes]:
        version = read("VERSION", "unknown")
        if path == "/health":
            healthy = not os.path.exists(os.path.join(HERE, "UNHEALTHY"))
            body = json.dumps({"status": "ok" if healthy else "failing", "version": version}).encode()
            return (200 if healthy else 503), body
        if path == "/version":
            return 200, version.encode()
        if path == "/livez":
            return 200, b'{"status": "alive"}'
        if path == "/readyz":
            if _draining.is_set():
                return 503, b'{"status": "draining"}'
            return 200, json.dumps({"status": "ready", "version": version}).encode()
        if path == "/drain" and method == "POST":
            _draining.set()
            return 200, b'{"status": "draining"}'
        if path == "/jobs" or _JOB_PATH.match(path):
            return self.jobs(method, path, payload)
        return 200, b"demo app\n"

    def jobs(self, method: str, path: str, payload: bytes) -> tuple[int, bytes]:
        token = read("TOKEN")
        if token and self.headers.get("Authorization") != f"Bearer {token}":
            return 401, b'{"error": "missing or wrong token"}\n'
        with _jobs_lock:
            if path == "/jobs" and method == "POST":
                try:
                    job_input = json.loads(payload or b"null")
                except ValueError:
                    return 400, b'{"error": "body is not JSON"}\n'
                job_id = str(len(_jobs) + 1)
                _jobs[job_id] = {"id": job_id, "status": "queued", "job": job_input}
                return 201, json.dumps(_jobs[job_id]).encode()
            m = _JOB_PATH.match(path)
            job = _jobs.get(m.group(1)) if m else None
            if job is None:
                return 404, b'{"error": "no such job"}\n'
            if m and m.group(2) and method == "POST":
                job["status"] = "approved"
            return 200, json.dumps(job).encode()

    def metrics(self) -> None:
        if REGISTRY is None:
            body, status, kind = b"prometheus_client is not installed\n", 501, "text/plain"
        else:
            body, status, kind = generate_latest(REGISTRY), 200, CONTENT_TYPE_LATEST
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    except OSError as exc:
        print(f"demo app: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    server.daemon_threads = True
    # SIGTERM: stop the accept loop (from another thread: serve_forever runs in this one)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"listening on 127.0.0.1:{args.port} (pid {os.getpid()})", flush=True)
    server.serve_forever()
    server.server_close()  # the port is free for the next process from now on
    deadline = time.monotonic() + STOP_GRACE
    while _in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
