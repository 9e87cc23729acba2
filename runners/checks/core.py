"""Smoke and monitoring checks: HTTP, SQL and command probes, run in concurrent rounds.

A deploy is not done when the last command exits: after a deploy gonogo runs smoke checks,
then monitoring checks every interval. This module is the check *library*:

* check specs (`HttpCheck`, `SqlCheck`, `CommandCheck`), built from TOML by `parse_check`;
* `run_check` / `run_checks`, which never raise for a failing or unreachable target: every
  problem (connection refused, DNS failure, timeout, TLS error, bad JSON, SQL error, missing
  DSN variable, ...) becomes a `CheckResult` with ``ok=False`` and a short human error;
* `FailureTracker`, a pure, serialisable counter of consecutive failures that says when a
  check reached its failure limit and which checks changed state this round.

Secrets: a `SqlCheck` names the environment variable holding its DSN, never the DSN itself,
and neither the DSN (nor its password) nor HTTP header values (nor a password in a URL) ever
appear in a result; they are redacted from error text.

Nothing here imports from `bot` or `commands`.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

import httpx

from runners.redact import Redactor

__all__ = [
    "OPS",
    "Check",
    "CheckResult",
    "CommandCheck",
    "CommandRunner",
    "FailureTracker",
    "HttpCheck",
    "SqlCheck",
    "Transition",
    "Verdict",
    "compare",
    "run_check",
    "run_checks",
]

Op = Literal["==", "!=", ">=", "<=", ">", "<"]
OPS: tuple[Op, ...] = ("==", "!=", ">=", "<=", ">", "<")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

#: At most this much of an HTTP response body is read (for body_contains / json_field).
MAX_BODY_BYTES = 1024 * 1024
#: Secrets shorter than this are not redacted (as in runners.redact).
_MIN_SECRET_LEN = 3
_MAX_ERROR_LEN = 300
_MAX_OBSERVED_LEN = 80


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class HttpCheck:
    """An HTTP probe: status, optional body/JSON assertions and a latency budget.

    With `json_field` set and `json_equals` left as None, the field must exist and be truthy
    (so `{"db": {"ok": false}}` fails `json_field="db.ok"`). Redirects are not followed: a 301
    is observed as 301. `timeout` bounds each network phase and the body read. Header values
    are secrets: they are hidden from `repr` and redacted from errors.
    """

    name: str
    url: str
    method: str = "GET"
    expect_status: int = 200
    body_contains: str | None = None
    json_field: str | None = None
    json_equals: object = None
    max_latency: float | None = None
    timeout: float = 10.0
    verify_tls: bool = True
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)
    kind: Literal["http"] = field(default="http", init=False)

    def __post_init__(self) -> None:
        # A private copy, so a caller mutating its dict cannot change a frozen check.
        object.__setattr__(self, "headers", dict(self.headers))


@dataclass(frozen=True)
class SqlCheck:
    """A read-only SQL probe: the single value of the single row, compared with `expect`.

    `dsn_env` is the NAME of an environment variable holding the DSN, never the DSN itself.
    The query runs in a read-only session (``default_transaction_read_only``, a READ ONLY
    transaction, the extended protocol so only one statement is accepted) with
    ``statement_timeout``. Numbers (and numeric strings) compare numerically; anything else
    compares as text (booleans as ``true``/``false``). `expect` is keyword-only.
    """

    name: str
    dsn_env: str
    query: str
    op: Op = "=="
    expect: object = field(kw_only=True)
    timeout: float = 10.0
    kind: Literal["sql"] = field(default="sql", init=False)


@dataclass(frozen=True)
class CommandCheck:
    """A shell command run through a `CommandRunner` on one host or all hosts.

    Every host that ran the command must exit with `expect_exit` and, if set, print
    `output_contains`. Output is never copied into the result.
    """

    name: str
    command: str
    on: Literal["one", "all"] = "one"
    expect_exit: int = 0
    output_contains: str | None = None
    timeout: float = 30.0
    kind: Literal["command"] = field(default="command", init=False)


Check = HttpCheck | SqlCheck | CommandCheck


class CommandRunner(Protocol):
    """Runs a shell command on the environment's hosts (the SSH side lives elsewhere).

    Returns one ``(host, exit code or None if it could not run, output)`` per host; with
    ``on="one"`` a single host is expected. Must honour `timeout` (seconds).
    """

    def __call__(self, command: str, on: str, timeout: float) -> Sequence[tuple[str, int | None, str]]:
        """Run `command` and report per-host outcomes."""
        ...


Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check run. `error` is short and human; `latency` is in seconds."""

    name: str
    kind: str
    ok: bool
    observed: str | None
    latency: float
    error: str | None
    at: datetime

    def summary(self) -> str:
        """One chat line, e.g. ``health ✓ 200 (12 ms)`` or ``db ✗ value 3 is not >= 4 (8 ms)``.

        A failure shows its error (which usually embeds what was observed); when the error
        does not mention the observation, both are shown.
        """
        mark = "✓" if self.ok else "✗"
        if self.ok:
            detail = self.observed or "ok"
        elif self.error and self.observed and self.observed not in self.error:
            detail = f"{self.observed}: {self.error}"
        else:
            detail = self.error or self.observed or "failed"
        return f"{self.name} {mark} {detail} ({_fmt_ms(self.latency)})"


def _fmt_ms(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


class _Outcome:
    """Mutable scratch result for one run; turned into a CheckResult at the end."""

    __slots__ = ("error", "observed", "ok")

    def __init__(self, ok: bool, observed: str | None = None, error: str | None = None) -> None:
        self.ok = ok
        self.observed = observed
        self.error = error


# --------------------------------------------------------------------------- secrets


class _Secrets:
    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: object) -> None:
        if not isinstance(value, str) or len(value) < _MIN_SECRET_LEN:
            return
        # Also the escaped forms an exception message may show (repr of str or bytes).
        for form in (value, repr(value)[1:-1], repr(value.encode("utf-8", "replace"))[2:-1]):
            self._values.add(form)

    def redact(self, text: str | None) -> str | None:
        if text is None or not self._values:
            return text
        return Redactor(self._values)(text)


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


# --------------------------------------------------------------------------- running


_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def _verified_ssl_context() -> ssl.SSLContext:
    """One CA-loaded context per process: loading the CA bundle costs tens of ms."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            import certifi

            _ssl_context = ssl.create_default_context(cafile=certifi.where())
        return _ssl_context


def _make_client(*, verify_tls: bool, pool_size: int = 10) -> httpx.Client:
    limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
    verify: ssl.SSLContext | bool = _verified_ssl_context() if verify_tls else False
    # trust_env=False: checks go straight to their target, not through HTTP(S)_PROXY.
    return httpx.Client(verify=verify, limits=limits, trust_env=False, follow_redirects=False)


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
        with _make_client(verify_tls=check.verify_tls, pool_size=1) as own:
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
    secrets = _Secrets()
    start = time.perf_counter()
    try:
        if isinstance(check, HttpCheck):
            if http_client is None:
                raise RuntimeError("no HTTP client")
            outcome = _run_http(check, http_client, secrets)
        elif isinstance(check, SqlCheck):
            outcome = _run_sql(check, env, secrets)
        else:
            outcome = _run_command(check, command_runner)
    except Exception as exc:  # a bug or an odd library error must not kill the round
        outcome = _Outcome(False, error=f"unexpected error: {type(exc).__name__}: {_first_line(str(exc))}")
    latency = time.perf_counter() - start
    return _result(check, outcome, latency, secrets, clock)


def _require_check(check: object) -> None:
    if not isinstance(check, HttpCheck | SqlCheck | CommandCheck):
        raise TypeError(f"not a check: {type(check).__name__}")


def _result(check: Check, outcome: _Outcome, latency: float, secrets: _Secrets, clock: Clock) -> CheckResult:
    at = clock()
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    observed = secrets.redact(outcome.observed)
    error = secrets.redact(outcome.error)
    return CheckResult(
        name=check.name,
        kind=check.kind,
        ok=outcome.ok,
        observed=_short(observed, _MAX_OBSERVED_LEN) if observed is not None else None,
        latency=latency,
        error=_short(error, _MAX_ERROR_LEN) if error is not None else None,
        at=at,
    )


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
    http = [c for c in checks if isinstance(c, HttpCheck)]
    verified = _make_client(verify_tls=True, pool_size=workers) if any(c.verify_tls for c in http) else None
    unverified = (
        _make_client(verify_tls=False, pool_size=workers) if any(not c.verify_tls for c in http) else None
    )
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gonogo-check")
    try:
        futures: list[Future[CheckResult]] = []
        for check in checks:
            client = None
            if isinstance(check, HttpCheck):
                client = verified if check.verify_tls else unverified
            futures.append(pool.submit(_run, check, env, command_runner, client, clock))
        waves = math.ceil(len(checks) / workers)
        deadline = 2 * max(c.timeout for c in checks) * waves + 5.0
        wait(futures, timeout=deadline)
        results: list[CheckResult] = []
        for check, future in zip(checks, futures, strict=True):
            if future.done():
                results.append(future.result())
            else:
                future.cancel()
                outcome = _Outcome(
                    False, error=f"check did not finish within the round deadline of {deadline:.0f}s"
                )
                results.append(_result(check, outcome, deadline, _Secrets(), clock))
        return results
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for client in (verified, unverified):
            if client is not None:
                client.close()


# --------------------------------------------------------------------------- HTTP


class _Deadline(Exception):
    pass


def _host_port(url: httpx.URL) -> str:
    host = url.host or "?"
    if ":" in host:
        host = f"[{host}]"
    port = url.port or {"https": 443, "http": 80}.get(url.scheme, 0)
    return f"{host}:{port}"


_DNS_MARKERS = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated",
    "getaddrinfo failed",
    "name resolution",
)


def _http_error(exc: Exception, url: httpx.URL | None, timeout: float) -> str:
    where = _host_port(url) if url is not None else "target"
    msg = _first_line(str(exc))
    low = msg.lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timeout after {timeout:g}s to {where}"
    if isinstance(exc, httpx.TimeoutException | _Deadline):
        return f"timeout after {timeout:g}s waiting for {where}"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in low:
            return f"connection refused to {where}"
        if any(marker in low for marker in _DNS_MARKERS):
            return f"DNS lookup failed for {url.host if url is not None else where}"
        if "ssl" in low or "certificate" in low or "tls" in low:
            return f"TLS error with {where}: {msg}"
        if "unreachable" in low:
            return f"network unreachable for {where}"
        return f"cannot connect to {where}: {msg or type(exc).__name__}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"invalid URL: {msg}"
    if isinstance(exc, httpx.LocalProtocolError):
        return "invalid request (check the method and header names and values)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error from {where}: {msg}"
    if isinstance(exc, httpx.HTTPError):
        return f"HTTP error with {where}: {msg or type(exc).__name__}"
    return f"HTTP error: {type(exc).__name__}: {msg}"


def _run_http(check: HttpCheck, client: httpx.Client, secrets: _Secrets) -> _Outcome:
    for value in check.headers.values():
        secrets.add(value)
    url: httpx.URL | None = None
    try:
        url = httpx.URL(check.url)
        secrets.add(url.password)
        if url.userinfo:
            secrets.add(url.userinfo.decode("ascii", "replace"))
    except Exception as exc:
        return _Outcome(False, error=f"invalid URL: {_first_line(str(exc))}")

    start = time.perf_counter()
    try:
        with client.stream(
            check.method.upper(),
            url,
            headers=dict(check.headers),
            timeout=httpx.Timeout(check.timeout),
        ) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_BODY_BYTES:
                    break
                if time.perf_counter() - start > check.timeout:
                    raise _Deadline()
            body = b"".join(chunks)[:MAX_BODY_BYTES]
            status = response.status_code
            encoding = response.charset_encoding or "utf-8"
    except Exception as exc:
        return _Outcome(False, error=_http_error(exc, url, check.timeout))
    latency = time.perf_counter() - start

    observed = str(status)
    if status != check.expect_status:
        return _Outcome(False, observed, f"expected status {check.expect_status}, got {status}")
    if check.body_contains is not None:
        try:
            text = body.decode(encoding, "replace")
        except LookupError:
            text = body.decode("utf-8", "replace")
        if check.body_contains not in text:
            return _Outcome(False, observed, f"body does not contain {check.body_contains!r}")
    if check.json_field is not None:
        failure = _check_json(body, check.json_field, check.json_equals)
        if failure is not None:
            json_observed, error = failure
            return _Outcome(False, json_observed or observed, error)
    if check.max_latency is not None and latency > check.max_latency:
        shown = f"latency {latency:.2f}s"
        return _Outcome(False, shown, f"{shown} over limit {check.max_latency:.2f}s")
    return _Outcome(True, observed)


_MISSING = object()


def _json_path(doc: object, path: str) -> object:
    node = doc
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _json_text(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _json_equal(actual: object, expected: object) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return actual == expected
    return actual == expected


def _check_json(body: bytes, path: str, expected: object) -> tuple[str | None, str] | None:
    """None if the JSON assertion holds, else (observed, error)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, "response body is not valid JSON"
    value = _json_path(doc, path)
    if value is _MISSING:
        return None, f"JSON field {path} is missing"
    shown = f"{path}={_json_text(value)}"
    if expected is None:
        if not value:
            return shown, f"JSON {shown}, expected a true value"
        return None
    if not _json_equal(value, expected):
        return shown, f"JSON {shown}, expected {_json_text(expected)}"
    return None


# --------------------------------------------------------------------------- SQL


def _run_sql(check: SqlCheck, env: Mapping[str, str], secrets: _Secrets) -> _Outcome:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    dsn = env.get(check.dsn_env)
    if dsn is None:
        return _Outcome(False, error=f"DSN env var {check.dsn_env} is not set")
    if not dsn.strip():
        return _Outcome(False, error=f"DSN env var {check.dsn_env} is empty")
    secrets.add(dsn)
    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        return _Outcome(False, error=f"DSN in env var {check.dsn_env} is not a valid connection string")
    secrets.add(params.get("password"))
    where = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"

    timeout_ms = max(1, round(check.timeout * 1000))
    options = (
        f"{params.get('options') or ''} -c default_transaction_read_only=on -c statement_timeout={timeout_ms}"
    )
    extra: dict[str, Any] = {"options": options.strip(), "connect_timeout": max(2, math.ceil(check.timeout))}
    if not params.get("application_name"):
        extra["application_name"] = "gonogo-check"
    try:
        conn = psycopg.connect(dsn, **extra)
    except psycopg.Error as exc:
        msg = _pg_message(exc)
        low = msg.lower()
        if "refused" in low:
            return _Outcome(False, error=f"connection refused to {where}")
        if "timeout expired" in low:
            return _Outcome(False, error=f"connect timeout after {check.timeout:g}s to {where}")
        if "could not translate host name" in low or "failed to resolve host" in low:
            return _Outcome(False, error=f"DNS lookup failed for {params.get('host')}")
        return _Outcome(False, error=f"cannot connect to {where}: {msg}")
    try:
        conn.read_only = True
        rows: list[tuple[Any, ...]] = []
        with conn.cursor() as cur:
            # stream() forces the extended protocol: exactly one statement, no "COMMIT; ...".
            for row in cur.stream(check.query):
                rows.append(tuple(row))
                if len(rows) > 1:
                    break
    except psycopg.errors.QueryCanceled:
        return _Outcome(False, error=f"query timed out after {check.timeout:g}s")
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        return _Outcome(False, error=f"refused, checks are read-only: {_pg_message(exc)}")
    except psycopg.Error as exc:
        return _Outcome(False, error=f"SQL error: {_pg_message(exc)}")
    finally:
        with contextlib.suppress(Exception):
            conn.close()

    if not rows:
        return _Outcome(False, error="query returned no row")
    if len(rows) > 1:
        return _Outcome(False, error="query returned more than one row")
    if len(rows[0]) != 1:
        return _Outcome(False, error=f"query returned {len(rows[0])} columns, expected exactly one")
    value = rows[0][0]
    shown = f"value {_render(value)}"
    if value is None:
        return _Outcome(False, shown, "query returned NULL")
    verdict = compare(value, check.op, check.expect)
    if verdict is None:
        return _Outcome(False, shown, f"cannot compare {_render(value)} {check.op} {_render(check.expect)}")
    if not verdict:
        return _Outcome(False, shown, f"{shown} is not {check.op} {_render(check.expect)}")
    return _Outcome(True, shown)


def _pg_message(exc: BaseException) -> str:
    msg = _first_line(str(exc))
    # libpq: 'connection failed: connection to server at "h" (...), port 9 failed: Connection refused'
    if msg.startswith("connection failed: ") and " failed: " in msg[len("connection failed: ") :]:
        msg = msg.rsplit(" failed: ", 1)[1]
    return msg or type(exc).__name__


def _render(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _as_number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        return Decimal(value.strip())
    return None


def compare(actual: object, op: str, expected: object) -> bool | None:
    """Compare a query value with an expectation; numerically when both sides are numbers.

    Numeric strings count as numbers; otherwise both sides compare as text (booleans as
    ``true``/``false``). Returns None when the comparison is impossible (NaN, unknown op).
    """
    left_n, right_n = _as_number(actual), _as_number(expected)
    left: Decimal | str
    right: Decimal | str
    if left_n is not None and right_n is not None:
        left, right = left_n, right_n
    else:
        left, right = _render(actual), _render(expected)
    fn = _OPERATORS.get(op)
    if fn is None:
        return None
    try:
        return bool(fn(left, right))
    except (InvalidOperation, TypeError):
        return None


# --------------------------------------------------------------------------- commands


def _run_command(check: CommandCheck, runner: CommandRunner | None) -> _Outcome:
    if runner is None:
        return _Outcome(False, error="no command runner configured")
    try:
        outcomes = list(runner(check.command, check.on, check.timeout))
    except Exception as exc:
        return _Outcome(False, error=f"command runner failed: {_first_line(str(exc)) or type(exc).__name__}")
    if not outcomes:
        return _Outcome(False, error="command ran on no host")
    problems: list[str] = []
    for host, code, output in outcomes:
        if code is None:
            problems.append(f"{host}: could not run ({_short(_first_line(output) or 'error', 80)})")
        elif code != check.expect_exit:
            problems.append(f"{host}: exit {code}, expected {check.expect_exit}")
        elif check.output_contains is not None and check.output_contains not in (output or ""):
            problems.append(f"{host}: output does not contain {check.output_contains!r}")
    if len(outcomes) == 1:
        code = outcomes[0][1]
        observed = f"exit {code}" if code is not None else "not run"
    else:
        observed = f"{len(outcomes) - len(problems)}/{len(outcomes)} hosts ok"
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return _Outcome(False, observed, problems[0] + more)
    return _Outcome(True, observed)


# --------------------------------------------------------------------------- failure tracking


@dataclass(frozen=True)
class Transition:
    """A check that changed state this round: ok→failing (`failing=True`) or back."""

    name: str
    failing: bool
    consecutive_failures: int
    result: CheckResult


@dataclass(frozen=True)
class Verdict:
    """What one round means.

    `failed` is True when any check has `failure_limit` or more consecutive failures
    (`failed_checks`); `newly_failed_checks` are those that reached the limit this very
    round. `transitions` lists only state changes, for chat to post.
    """

    failed: bool
    failed_checks: tuple[str, ...]
    newly_failed_checks: tuple[str, ...]
    transitions: tuple[Transition, ...]
    consecutive: Mapping[str, int]

    @property
    def newly_failing(self) -> tuple[Transition, ...]:
        """Transitions ok→failing."""
        return tuple(t for t in self.transitions if t.failing)

    @property
    def recovered(self) -> tuple[Transition, ...]:
        """Transitions failing→ok."""
        return tuple(t for t in self.transitions if not t.failing)


_TRACKER_VERSION = 1


@dataclass
class FailureTracker:
    """Consecutive failure counts per check name, across rounds. Pure: no I/O, no clock.

    Fails (Verdict.failed) when a check's consecutive failures >= `failure_limit`. A check
    seen for the first time counts as previously ok: its first failure is a transition, its
    first success is not. Checks absent from a round keep their count. Store it between rounds
    with `to_dict` / `from_dict`.
    """

    failure_limit: int = 3
    consecutive: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.failure_limit, bool) or not isinstance(self.failure_limit, int):
            raise ValueError("failure_limit must be an integer")
        if self.failure_limit < 1:
            raise ValueError("failure_limit must be at least 1")

    def record(self, results: Iterable[CheckResult]) -> Verdict:
        """Fold one round of results in and return the verdict for that round.

        Several results with the same name in one round count as one observation, failing
        if any of them failed.
        """
        by_name: dict[str, list[CheckResult]] = {}
        for result in results:
            by_name.setdefault(result.name, []).append(result)
        transitions: list[Transition] = []
        newly_failed: list[str] = []
        for name, group in by_name.items():
            failing = [r for r in group if not r.ok]
            before = self.consecutive.get(name, 0)
            if failing:
                after = before + 1
                self.consecutive[name] = after
                if before == 0:
                    transitions.append(Transition(name, True, after, failing[0]))
                if after == self.failure_limit:
                    newly_failed.append(name)
            else:
                self.consecutive[name] = 0
                if before > 0:
                    transitions.append(Transition(name, False, before, group[0]))
        failed_checks = self.failed_checks()
        return Verdict(
            failed=bool(failed_checks),
            failed_checks=failed_checks,
            newly_failed_checks=tuple(newly_failed),
            transitions=tuple(transitions),
            consecutive=dict(self.consecutive),
        )

    def failed_checks(self) -> tuple[str, ...]:
        """The checks at or over `failure_limit` consecutive failures, sorted."""
        return tuple(sorted(n for n, c in self.consecutive.items() if c >= self.failure_limit))

    def reset(self, names: Iterable[str] | None = None) -> None:
        """Forget counts (all, or just `names`), e.g. after a rollback or a new deploy."""
        if names is None:
            self.consecutive.clear()
        else:
            for name in names:
                self.consecutive.pop(name, None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "version": _TRACKER_VERSION,
            "failure_limit": self.failure_limit,
            "consecutive": dict(self.consecutive),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailureTracker:
        """Rebuild from `to_dict` output; raises ValueError on malformed data."""
        if not isinstance(data, Mapping):
            raise ValueError("tracker state must be a mapping")
        if data.get("version", _TRACKER_VERSION) != _TRACKER_VERSION:
            raise ValueError(f"unsupported tracker state version {data.get('version')!r}")
        limit = data.get("failure_limit")
        counts = data.get("consecutive", {})
        if not isinstance(counts, Mapping):
            raise ValueError("consecutive must be a mapping of check name to count")
        clean: dict[str, int] = {}
        for name, count in counts.items():
            if (
                not isinstance(name, str)
                or isinstance(count, bool)
                or not isinstance(count, int)
                or count < 0
            ):
                raise ValueError(f"bad consecutive count for {name!r}")
            clean[name] = count
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ValueError("failure_limit must be an integer")
        return cls(failure_limit=limit, consecutive=clean)
