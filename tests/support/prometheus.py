"""A real, throwaway Prometheus server for tests and benchmarks (Debian's `prometheus` binary).

    with PrometheusServer(tmp_dir) as prom:
        with prom.slot() as slot:         # a local port Prometheus scrapes every 0.2 s
            start_app(port=slot.port)     # anything serving /metrics there
            prom.wait_for(f'up{{job="{slot.job}"}} == 1')
            prom.query(f'demo_http_requests_total{{job="{slot.job}"}}')

The server has its own config, port and data directory. Prometheus applies a changed target
list at most every 5 s, so instead of reconfiguring per test it scrapes a fixed set of *slots*
from the start: local ports chosen when it starts, each its own job (`slot0`, `slot1`, ...).
A test leases a slot, serves on its port, and gives it back; a slot is handed out again only
after a quiet period, so one test's series never leak into the next test's range queries.

The binary is `$GONOGO_PROMETHEUS`, else `prometheus` on PATH, else /usr/bin/prometheus
(`scripts/ensure-prometheus.sh` installs it). `prometheus_binary()` is None when there is none.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

SCRAPE_INTERVAL = 0.2
#: A released slot is leased again only after this many seconds without a target on it.
QUIET_PERIOD = 12.0


def prometheus_binary() -> str | None:
    """The Prometheus server binary to run, or None when this machine has none."""
    configured = os.environ.get("GONOGO_PROMETHEUS")
    if configured and os.access(configured, os.X_OK):
        return configured
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Slot:
    """A scrape target reserved for one test: serve `/metrics` on `port`; its series carry `job`."""

    port: int
    job: str

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the `instance` label of its series."""
        return f"127.0.0.1:{self.port}"


class PrometheusServer:
    """A Prometheus process scraping `slots` local ports; see the module docstring."""

    def __init__(self, root: Path, *, slots: int = 12, binary: str | None = None) -> None:
        binary = binary or prometheus_binary()
        if binary is None:
            raise RuntimeError("no prometheus binary (run scripts/ensure-prometheus.sh)")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._slots = [Slot(_free_port(), f"slot{i}") for i in range(slots)]
        self._released: dict[str, float] = {s.job: 0.0 for s in self._slots}
        self._leased: set[str] = set()
        self._lock = threading.Condition()
        config = root / "prometheus.yml"
        config.write_text(self._config())
        self._log = (root / "prometheus.log").open("wb")
        self._proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={root / 'data'}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._client = httpx.Client(base_url=self.url, timeout=5.0, trust_env=False)
        try:
            self._wait_ready()
        except Exception:
            self.close()
            raise

    def _config(self) -> str:
        jobs = "".join(
            f"  - job_name: {s.job}\n    static_configs:\n      - targets: ['{s.address}']\n"
            for s in self._slots
        )
        interval = f"{int(SCRAPE_INTERVAL * 1000)}ms"
        return (
            f"global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n"
            f"  evaluation_interval: 10s\nscrape_configs:\n{jobs}"
        )

    def _wait_ready(self, timeout: float = 30.0) -> None:
        """Until the server answers and has applied its targets (it does so within about 5 s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):  # not up yet
                active = self._client.get("/api/v1/targets").json()["data"]["activeTargets"]
                if len(active) == len(self._slots):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"prometheus did not become ready within {timeout:g}s: {self.log_tail()}")

    def log_tail(self) -> str:
        """The end of the server's log (for failure messages)."""
        try:
            return (self.root / "prometheus.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    # -- slots -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def slot(self, timeout: float = 60.0) -> Iterator[Slot]:
        """Lease a scrape target for the duration of the block (waits for a quiet one)."""
        chosen = self._acquire(timeout)
        try:
            yield chosen
        finally:
            with self._lock:
                self._leased.discard(chosen.job)
                self._released[chosen.job] = time.monotonic()
                self._lock.notify_all()

    def _acquire(self, timeout: float) -> Slot:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                now = time.monotonic()
                free = [s for s in self._slots if s.job not in self._leased]
                quiet = [s for s in free if now - self._released[s.job] >= QUIET_PERIOD]
                if quiet:
                    chosen = min(quiet, key=lambda s: self._released[s.job])
                    self._leased.add(chosen.job)
                    return chosen
                if now >= deadline:
                    raise RuntimeError("no Prometheus slot became free")
                soonest = min((self._released[s.job] + QUIET_PERIOD - now for s in free), default=1.0)
                self._lock.wait(timeout=max(0.05, min(soonest, deadline - now)))

    # -- queries ---------------------------------------------------------------------------
    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query (the `data.result` list); raises on a query error."""
        body = self._client.get("/api/v1/query", params={"query": expr}).json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {expr!r} failed: {body.get('error')}")
        result = body["data"]["result"]
        return result if isinstance(result, list) else [{"value": result}]

    def wait_for(self, expr: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Poll `expr` until it returns at least one series; its result."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"{expr!r} returned nothing within {timeout:g}s")
            time.sleep(SCRAPE_INTERVAL / 2)

    def close(self) -> None:
        """Stop the server and remove its data. Idempotent."""
        self._client.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        shutil.rmtree(self.root / "data", ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
