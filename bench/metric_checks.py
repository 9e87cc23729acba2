"""Benchmark: a monitoring round of 50 Prometheus checks against one check, on a real Prometheus.

    python bench/metric_checks.py [--n 50] [--repeats 21]

Starts a throwaway Prometheus (Debian's binary, as the tests do) scraping the real demo app
every 0.2 s under a little traffic, then times, interleaved so load on the machine hits both
alike:

1. `run_checks`: one round of `n` `type = "prometheus"` checks (distinct error-ratio queries,
   `[10s]` to `[59s]` windows) against a round of one such check;
2. a whole monitoring round (`Monitoring._round` fired by the scheduler: the checks, their
   results stored in SQLite, the failure tracker, the card and the thread) with `n` checks
   against the same round with one.

Target: a round of 50 costs at most 3x one check. Prints a markdown table; exit 1 on a miss.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bot.config import parse_config
from bot.domain.deployment import Deployment, EventRecord, State
from bot.engine.ledger import Ledger
from bot.engine.monitoring import Monitoring
from bot.engine.notify import Notifier
from bot.store.sqlite import SqliteStore
from bot.timing.clock import FakeClock
from bot.timing.scheduler import Scheduler
from runners.backends.local import LocalBackend
from runners.checks import PrometheusCheck, parse_condition, run_checks
from tests.support.demoapp import DemoApp
from tests.support.prometheus import PrometheusServer
from tests.support.recording import RecordingChat

TARGET = 3.0


def query(job: str, i: int) -> str:
    """A real error-ratio query; each check its own window, so no two are the same."""
    window = f"{10 + i % 50}s"
    return (
        f'sum(rate(demo_http_request_failures_total{{job="{job}",path="/health"}}[{window}])) '
        f'/ sum(rate(demo_http_requests_total{{job="{job}",path="/health"}}[{window}]))'
    )


class Traffic:
    """A user hitting the app every 20 ms, so the counters move."""

    def __init__(self, url: str) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url: str) -> None:
        with httpx.Client(timeout=2) as client:
            while not self.stop.wait(0.02):
                try:
                    client.get(url)
                except httpx.HTTPError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


class Round:
    """One environment with `n` Prometheus checks in a monitoring window, fired by hand."""

    def __init__(self, tmp: Path, prometheus: str, job: str, n: int) -> None:
        checks = "".join(
            f"""
[[environments.web.checks]]
name = "errors-{i}"
type = "prometheus"
query = '{query(job, i)}'
condition = "result < 0.1"
on_no_data = "pass"
"""
            for i in range(n)
        )
        text = f"""
[environments.web]
backend = "local"
hosts = ["localhost"]
prometheus_url = "{prometheus}"
[[environments.web.steps.deploy]]
name = "deploy"
run = "true"
[environments.web.monitor]
interval = "1m"
duration = "1000m"
failure_limit = 3
{checks}"""
        config = parse_config(tomllib.loads(text), environ={})
        self.store = SqliteStore(tmp / f"round-{n}.db")
        self.clock = FakeClock()
        ledger = Ledger(config, self.store, self.clock)
        notify = Notifier(RecordingChat(), ledger, self.store, single_process=True)
        self.timers = Scheduler(self.store, self.clock)
        self.monitoring = Monitoring(
            ledger, self.store, notify, self.timers, _NoFailures(), lambda env, dry: LocalBackend(),  # type: ignore[arg-type]
            lambda d: None,
        )  # fmt: skip
        d = Deployment(env="web", requester="alice", ref="v2", sha=None, created_at=self.clock.now(),
                       state=State.MONITORING, channel="#deploys")  # fmt: skip
        d = self.store.create_deployment(d, EventRecord(at=self.clock.now(), actor="alice", action="bench"))
        self.monitoring.start_window(d)

    def fire(self) -> None:
        self.clock.advance(minutes=1)
        if self.timers.run_due() != 1:
            raise SystemExit("a monitoring round did not run")


class _NoFailures:
    def on_failure(self, d: Deployment, why: str, *, automatic: bool = True) -> None:
        raise SystemExit(f"a round failed: {why}")


def interleaved(
    a: Callable[[], object], b: Callable[[], object], repeats: int
) -> tuple[float, float, float, float]:
    """Median wall and CPU seconds of `a` and `b`, run alternately."""
    wall: dict[int, list[float]] = {0: [], 1: []}
    cpu: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeats):
        for k, fn in ((0, a), (1, b)):
            started, cpu_started = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - started)
            cpu[k].append(time.process_time() - cpu_started)
    return (
        statistics.median(wall[0]),
        statistics.median(wall[1]),
        statistics.median(cpu[0]),
        statistics.median(cpu[1]),
    )


def probe_rounds(prometheus: str, job: str, n: int) -> tuple[Callable[[], object], Callable[[], object]]:
    def checks(count: int) -> list[PrometheusCheck]:
        return [
            PrometheusCheck(
                f"errors-{i}", prometheus, query(job, i), parse_condition("result < 0.1"), on_no_data="pass"
            )
            for i in range(count)
        ]

    one, many = checks(1), checks(n)

    def run(batch: list[PrometheusCheck]) -> None:
        failed = [r for r in run_checks(batch, env={}) if not r.ok]
        if failed:
            raise SystemExit(f"{len(failed)} checks failed, e.g. {failed[0].summary()}")

    return (lambda: run(one)), (lambda: run(many))


Timing = tuple[float, float, float, float]


def measure(tmp: Path, prom: PrometheusServer, n: int, repeats: int) -> tuple[Timing, Timing]:
    """Both comparisons, with the demo app scraped under traffic."""
    with prom.slot() as slot, DemoApp(tmp / "app", port=slot.port) as app:
        traffic = Traffic(f"{app.url}/health")
        try:
            prom.wait_for(f"{query(slot.job, 0)} >= 0", timeout=60)
            one, many = probe_rounds(prom.url, slot.job, n)
            probe = interleaved(one, many, repeats)
            small, big = Round(tmp, prom.url, slot.job, 1), Round(tmp, prom.url, slot.job, n)
            return probe, interleaved(small.fire, big.fire, repeats)
        finally:
            traffic.close()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="checks in the big round (default 50)")
    parser.add_argument("--repeats", type=int, default=21, help="samples of each (default 21)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, PrometheusServer(Path(tmp) / "prom", slots=1) as prom:
        probe, monitor = measure(Path(tmp), prom, args.n, args.repeats)
    rows = [("`run_checks`", probe), ("monitoring round (`Monitoring._round`, SQLite, chat)", monitor)]
    print(f"## Prometheus checks: a round of {args.n} vs a round of one (real Prometheus {prom_version()})\n")
    print(
        f"| what | one check | {args.n} checks | ratio | client CPU (one / {args.n}) | target ≤ {TARGET:g}x |"
    )
    print("|---|---|---|---|---|---|")
    missed = False
    for label, (w1, wn, c1, cn) in rows:
        ratio = wn / w1
        missed = missed or ratio > TARGET
        verdict = "ok" if ratio <= TARGET else "missed"
        print(
            f"| {label} | {w1 * 1000:.1f} ms | {wn * 1000:.1f} ms | {ratio:.1f}x | {c1 * 1000:.1f} / {cn * 1000:.1f} ms | {verdict} |"
        )
    load = os.getloadavg()[0]
    print(
        f"\nMedians of {args.repeats} interleaved samples; 1-min load average {load:.1f} on {os.cpu_count()} cores."
        f" The {args.n} checks go to Prometheus in batches of 10 queries per request"
        " (runners/checks/batch.py), the batches at once; without batching the same round measured"
        " 32x one check (one request per check, about 1 ms of client CPU each under the GIL)."
    )
    return 1 if missed else 0


def prom_version() -> str:
    import subprocess

    from tests.support.prometheus import prometheus_binary

    binary = prometheus_binary()
    if binary is None:
        return "?"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout + ""
    return out.split()[2] if len(out.split()) > 2 else "?"


if __name__ == "__main__":
    sys.exit(main())
