"""Running checks: `run_check` for one, `run_checks` for a concurrent round with a deadline.

Neither raises for a failing or unreachable target: every problem (connection refused, DNS
failure, timeout, TLS error, bad JSON, SQL error, missing DSN variable, ...) becomes a
`CheckResult` with ``ok=False`` and a short human error.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from runners.checks.batch import BATCH_SIZE, batchable, key, run_batch
from runners.checks.command import run_command
from runners.checks.fill import FillError, fill, missing, waves
from runners.checks.http import make_client, run_http
from runners.checks.metrics import run_metrics
from runners.checks.probe import Context, Outcome, Probe, first_line
from runners.checks.prometheus import run_prometheus
from runners.checks.result import CheckResult, Clock, build_result
from runners.checks.secrets import Secrets
from runners.checks.spec import (
    WEB_CHECKS,
    Check,
    CommandCheck,
    CommandRunner,
    HttpCheck,
    MetricsCheck,
    PrometheusCheck,
    SqlCheck,
)
from runners.checks.sql import run_sql

#: The probe of each check type. A new check type is a module with its probe, registered here
#: (its spec goes in `runners.checks.spec`, with the `Check` union).
PROBES: dict[type, Probe] = {
    HttpCheck: run_http,
    SqlCheck: run_sql,
    CommandCheck: run_command,
    PrometheusCheck: run_prometheus,
    MetricsCheck: run_metrics,
}
#: The samples checks kept last round, by check name (a rate check's baseline).
Samples = Mapping[str, Mapping[str, float]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def run_check(
    check: Check,
    *,
    env: Mapping[str, str],
    command_runner: CommandRunner | None = None,
    http_client: httpx.Client | None = None,
    clock: Clock = _utc_now,
    previous: Mapping[str, float] | None = None,
    secrets: Sequence[str] = (),
    values: Mapping[str, object] | None = None,
) -> CheckResult:
    """Run one check and return its result; never raises for a failing or unreachable target.

    `env` is where a `SqlCheck` finds its DSN variable. `http_client`, if given, is used for
    HTTP, Prometheus and metrics checks with ``verify_tls=True`` and must verify certificates;
    checks with ``verify_tls=False`` always get their own non-verifying client. `clock` stamps
    `at` (latency uses a monotonic timer). `previous` is the sample the check kept last round;
    `values` fill its run-time placeholders (``capture.NAME``, ``secret.NAME``: secrets are
    masked in the result, as are `secrets`).
    """
    if isinstance(check, WEB_CHECKS) and (http_client is None or not check.verify_tls):
        with make_client(verify_tls=check.verify_tls, pool_size=1) as own:
            return _run(check, env, command_runner, own, clock, previous, secrets, values)
    return _run(check, env, command_runner, http_client, clock, previous, secrets, values)


def _run(
    check: Check,
    env: Mapping[str, str],
    command_runner: CommandRunner | None,
    http_client: httpx.Client | None,
    clock: Clock,
    previous: Mapping[str, float] | None = None,
    secrets: Sequence[str] = (),
    values: Mapping[str, object] | None = None,
) -> CheckResult:
    _require_check(check)
    probe = next(p for kind, p in PROBES.items() if isinstance(check, kind))
    ctx = Context(env, Secrets(), command_runner, http_client, previous)
    for value in (*secrets, *(str(v) for k, v in (values or {}).items() if k.startswith("secret."))):
        ctx.secrets.add(value)
        ctx.secrets.add(quote(value, safe=""))  # as it goes into a URL
    start = time.perf_counter()
    try:
        check, unfilled = _filled(check, values or {})
        outcome = unfilled or probe(check, ctx)
    except Exception as exc:  # a bug or an odd library error must not kill the round
        outcome = Outcome(False, error=f"unexpected error: {type(exc).__name__}: {first_line(str(exc))}")
    latency = time.perf_counter() - start
    return build_result(check, outcome, latency, ctx.secrets, clock)


def _filled(check: Check, values: Mapping[str, object]) -> tuple[Check, Outcome | None]:
    """`check` with its run-time placeholders filled, or the failure of a value it lacks."""
    try:
        check = fill(check, values)
    except FillError as exc:
        return check, Outcome(False, error=str(exc))
    lacking = missing(check)
    if lacking:
        name = lacking[0]
        why = (
            "no value captured yet (the check that captures it has not passed)"
            if name.startswith("capture.")
            else "the secret is not set in gonogo's environment"
        )
        return check, Outcome(False, error=f"{{{name}}}: {why}")
    return check, None


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
    previous: Samples | None = None,
    secrets: Sequence[str] = (),
    values: Mapping[str, object] | None = None,
) -> list[CheckResult]:
    """Run a round of checks concurrently; results come back in input order.

    The process's check threads (at most `POOL_SIZE` at once, started once: a round does not pay
    for starting threads) and one `httpx.Client` per TLS mode (pooled to `max_workers`
    connections) serve the whole round. A check that does not finish within a generous round
    deadline (derived from the checks' timeouts) is reported failed instead of hanging the
    round. `previous` holds last round's samples by check name; `values` fill run-time
    placeholders, and a check that uses a value another check of the round captures runs
    after it (in a later wave); `secrets` are masked in every result.
    """
    if not checks:
        return []
    for check in checks:
        _require_check(check)
    workers = max(1, min(max_workers, len(checks)))
    clients = _round_clients(checks, workers)
    pool = _shared_pool()
    known = dict(values or {})
    pending: list[Future[list[CheckResult]]] = []
    results: dict[int, CheckResult] = {}
    try:
        for wave in waves(list(checks)):
            futures: list[tuple[list[int], Future[list[CheckResult]]]] = []
            for group, batch in _groups(checks, wave, known):
                first = checks[group[0]]
                client = clients.get(first.verify_tls) if isinstance(first, WEB_CHECKS) else None
                if batch:
                    future = pool.submit(_run_batch, batch, env, client, clock, secrets)
                else:
                    kept = (previous or {}).get(first.name)
                    args = (first, env, command_runner, client, clock, kept, secrets, dict(known))
                    future = pool.submit(_run_alone, args)
                futures.append((group, future))
                pending.append(future)
            wave_checks = [checks[i] for i in wave]
            deadline = _round_deadline(wave_checks, workers)
            wait([f for _, f in futures], timeout=deadline)
            for group, future in futures:
                for i, result in zip(
                    group, _finished([checks[i] for i in group], future, deadline, clock), strict=True
                ):
                    results[i] = result
                    known.update({f"capture.{k}": v for k, v in result.captured.items()})
        return [results[i] for i in range(len(checks))]
    finally:
        for future in pending:
            future.cancel()  # what never started (a round that overran its deadline)
        for client in clients.values():
            client.close()


#: Check threads of the process, shared by every round.
POOL_SIZE = 64
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="gonogo-check")
        return _pool


def _run_alone(args: tuple[Any, ...]) -> list[CheckResult]:
    return [_run(*args)]


def _groups(
    checks: Sequence[Check], wave: Sequence[int], values: Mapping[str, object]
) -> list[tuple[list[int], list[Check]]]:
    """The wave's checks as tasks: Prometheus checks to the same server in batches of up to
    `batch.BATCH_SIZE` (one request each, with the checks filled), every other check on its own
    (no filled checks: it fills itself)."""
    tasks: list[tuple[list[int], list[Check]]] = []
    batches: dict[object, list[tuple[int, Check]]] = {}
    for i in wave:
        check = checks[i]
        if isinstance(check, PrometheusCheck):
            filled, unfilled = _filled(check, values)
            if unfilled is None and isinstance(filled, PrometheusCheck) and batchable(filled):
                batches.setdefault(key(filled), []).append((i, filled))
                continue
        tasks.append(([i], []))
    for members in batches.values():
        for n in range(0, len(members), BATCH_SIZE):
            chunk = members[n : n + BATCH_SIZE]
            if len(chunk) == 1:
                tasks.append(([chunk[0][0]], []))
            else:
                tasks.append(([i for i, _ in chunk], [c for _, c in chunk]))
    return tasks


def _run_batch(
    checks: list[Check],
    env: Mapping[str, str],
    client: httpx.Client | None,
    clock: Clock,
    secrets: Sequence[str],
) -> list[CheckResult]:
    """Prometheus checks judged from one request (see `runners.checks.batch`)."""
    ctx = Context(env, Secrets(), None, client)
    for value in secrets:
        ctx.secrets.add(value)
        ctx.secrets.add(quote(value, safe=""))
    prometheus = [c for c in checks if isinstance(c, PrometheusCheck)]
    start = time.perf_counter()
    try:
        outcomes = run_batch(prometheus, ctx)
    except Exception as exc:  # a bug or an odd library error must not kill the round
        error = f"unexpected error: {type(exc).__name__}: {first_line(str(exc))}"
        outcomes = [Outcome(False, error=error) for _ in prometheus]
    latency = time.perf_counter() - start
    return [
        build_result(c, o, latency, ctx.secrets, clock) for c, o in zip(prometheus, outcomes, strict=True)
    ]


def _round_clients(checks: Sequence[Check], workers: int) -> dict[bool, httpx.Client]:
    """The round's shared HTTP clients by `verify_tls`: one for each TLS mode its web checks use."""
    modes = {c.verify_tls for c in checks if isinstance(c, WEB_CHECKS)}
    return {
        verify: make_client(verify_tls=verify, pool_size=workers)
        for verify in (True, False)
        if verify in modes
    }


def _round_deadline(checks: Sequence[Check], workers: int) -> float:
    """Seconds a round may take: twice the longest timeout for each wave of `workers` checks, plus 5."""
    waves = math.ceil(len(checks) / workers)
    return 2 * max(c.timeout for c in checks) * waves + 5.0


def _finished(
    group: Sequence[Check], future: Future[list[CheckResult]], deadline: float, clock: Clock
) -> list[CheckResult]:
    """The group's results, or failures if it did not finish within the round deadline."""
    if future.done():
        return future.result()
    future.cancel()
    outcome = Outcome(False, error=f"check did not finish within the round deadline of {deadline:.0f}s")
    return [build_result(check, outcome, deadline, Secrets(), clock) for check in group]
