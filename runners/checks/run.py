"""Running checks: `run_check` for one, `run_checks` for a concurrent round with a deadline.

Neither raises for a failing or unreachable target: every problem (connection refused, DNS
failure, timeout, TLS error, bad JSON, SQL error, missing DSN variable, ...) becomes a
`CheckResult` with ``ok=False`` and a short human error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime

import httpx

from runners.checks.command import run_command
from runners.checks.http import make_client, run_http
from runners.checks.probe import Context, Outcome, Probe, first_line
from runners.checks.result import CheckResult, Clock, build_result
from runners.checks.secrets import Secrets
from runners.checks.spec import Check, CommandCheck, CommandRunner, HttpCheck, SqlCheck
from runners.checks.sql import run_sql

#: The probe of each check type. A new check type is a module with its probe, registered here
#: (its spec goes in `runners.checks.spec`, with the `Check` union).
PROBES: dict[type, Probe] = {
    HttpCheck: run_http,
    SqlCheck: run_sql,
    CommandCheck: run_command,
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def run_check(
    check: Check,
    *,
    env: Mapping[str, str],
    command_runner: CommandRunner | None = None,
    http_client: httpx.Client | None = None,
    clock: Clock = _utc_now,
) -> CheckResult:
    """Run one check and return its result; never raises for a failing or unreachable target.

    `env` is where a `SqlCheck` finds its DSN variable. `http_client`, if given, is used for
    HTTP checks with ``verify_tls=True`` and must verify certificates; checks with
    ``verify_tls=False`` always get their own non-verifying client. `clock` stamps `at`
    (latency uses a monotonic timer).
    """
    if isinstance(check, HttpCheck) and (http_client is None or not check.verify_tls):
        with make_client(verify_tls=check.verify_tls, pool_size=1) as own:
            return _run(check, env, command_runner, own, clock)
    return _run(check, env, command_runner, http_client, clock)


def _run(
    check: Check,
    env: Mapping[str, str],
    command_runner: CommandRunner | None,
    http_client: httpx.Client | None,
    clock: Clock,
) -> CheckResult:
    _require_check(check)
    probe = next(p for kind, p in PROBES.items() if isinstance(check, kind))
    ctx = Context(env, Secrets(), command_runner, http_client)
    start = time.perf_counter()
    try:
        outcome = probe(check, ctx)
    except Exception as exc:  # a bug or an odd library error must not kill the round
        outcome = Outcome(False, error=f"unexpected error: {type(exc).__name__}: {first_line(str(exc))}")
    latency = time.perf_counter() - start
    return build_result(check, outcome, latency, ctx.secrets, clock)


def _require_check(check: object) -> None:
    if not isinstance(check, tuple(PROBES)):
        raise TypeError(f"not a check: {type(check).__name__}")


def run_checks(
    checks: Sequence[Check],
    *,
    env: Mapping[str, str],
    command_runner: CommandRunner | None = None,
    max_workers: int = 32,
    clock: Clock = _utc_now,
) -> list[CheckResult]:
    """Run a round of checks concurrently; results come back in input order.

    One thread pool and one shared `httpx.Client` per TLS mode (pooled to `max_workers`
    connections) serve the whole round. A check that does not finish within a generous round
    deadline (derived from the checks' timeouts) is reported failed instead of hanging the
    round.
    """
    if not checks:
        return []
    for check in checks:
        _require_check(check)
    workers = max(1, min(max_workers, len(checks)))
    clients = _round_clients(checks, workers)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gonogo-check")
    try:
        futures: list[Future[CheckResult]] = []
        for check in checks:
            client = clients.get(check.verify_tls) if isinstance(check, HttpCheck) else None
            futures.append(pool.submit(_run, check, env, command_runner, client, clock))
        deadline = _round_deadline(checks, workers)
        wait(futures, timeout=deadline)
        return [_finished(c, f, deadline, clock) for c, f in zip(checks, futures, strict=True)]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for client in clients.values():
            client.close()


def _round_clients(checks: Sequence[Check], workers: int) -> dict[bool, httpx.Client]:
    """The round's shared HTTP clients by `verify_tls`: one for each TLS mode its HTTP checks use."""
    modes = {c.verify_tls for c in checks if isinstance(c, HttpCheck)}
    return {
        verify: make_client(verify_tls=verify, pool_size=workers)
        for verify in (True, False)
        if verify in modes
    }


def _round_deadline(checks: Sequence[Check], workers: int) -> float:
    """Seconds a round may take: twice the longest timeout for each wave of `workers` checks, plus 5."""
    waves = math.ceil(len(checks) / workers)
    return 2 * max(c.timeout for c in checks) * waves + 5.0


def _finished(check: Check, future: Future[CheckResult], deadline: float, clock: Clock) -> CheckResult:
    """The check's result, or a failure if it did not finish within the round deadline."""
    if future.done():
        return future.result()
    future.cancel()
    outcome = Outcome(False, error=f"check did not finish within the round deadline of {deadline:.0f}s")
    return build_result(check, outcome, deadline, Secrets(), clock)
