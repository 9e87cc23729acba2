"""The HTTP probe: one request (with an optional text or JSON body), its status, body and JSON
assertions, latency, captured values, and errors.

Also the httpx clients checks use: no proxies from the environment, no redirects followed,
one CA-loaded TLS context per process.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from typing import NamedTuple

import httpx

from runners.checks.compare import check_json, compare_json, json_value
from runners.checks.probe import Context, Outcome, first_line
from runners.checks.spec import HttpCheck

#: At most this much of an HTTP response body is read (for body_contains / json_field).
MAX_BODY_BYTES = 1024 * 1024


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


def make_client(*, verify_tls: bool, pool_size: int = 10) -> httpx.Client:
    """An httpx client for checks, pooled to `pool_size` connections."""
    limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
    verify: ssl.SSLContext | bool = _verified_ssl_context() if verify_tls else False
    # trust_env=False: checks go straight to their target, not through HTTP(S)_PROXY.
    return httpx.Client(verify=verify, limits=limits, trust_env=False, follow_redirects=False)


class _Deadline(Exception):
    """The body did not arrive within the check's timeout (httpx bounds each read, not the sum)."""


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


def http_error(exc: Exception, url: httpx.URL | None, timeout: float) -> str:
    """A short human line for an httpx error (refused, DNS, timeout, TLS, ...) naming the target."""
    where = _host_port(url) if url is not None else "target"
    msg = first_line(str(exc))
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


def run_http(check: HttpCheck, ctx: Context) -> Outcome:
    """Send the request (through `ctx.http_client`) and judge status, body, JSON field and latency."""
    if ctx.http_client is None:
        raise RuntimeError("no HTTP client")
    for value in check.headers.values():
        ctx.secrets.add(value)
    try:
        url = httpx.URL(check.url)
        ctx.secrets.add(url.password)
        if url.userinfo:
            ctx.secrets.add(url.userinfo.decode("ascii", "replace"))
    except Exception as exc:
        return Outcome(False, error=f"invalid URL: {first_line(str(exc))}")
    try:
        response = _fetch(check, ctx.http_client, url)
    except Exception as exc:
        return Outcome(False, error=http_error(exc, url, check.timeout))
    return _judge(check, response)


class _Response(NamedTuple):
    status: int
    body: bytes
    encoding: str
    latency: float


def _fetch(check: HttpCheck, client: httpx.Client, url: httpx.URL) -> _Response:
    """Send the request and read at most `MAX_BODY_BYTES` of the body within `check.timeout`."""
    start = time.perf_counter()
    content: bytes | None = None
    headers = dict(check.headers)
    if check.json_body is not None:
        content = json.dumps(check.json_body, ensure_ascii=False).encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    elif check.body is not None:
        content = check.body.encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "text/plain; charset=utf-8"
    with client.stream(
        check.method.upper(),
        url,
        headers=headers,
        content=content,
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
    return _Response(status, body, encoding, time.perf_counter() - start)


def _judge(check: HttpCheck, response: _Response) -> Outcome:
    """The response held against the check: status, then body, JSON field and latency."""
    status, body, encoding, latency = response
    observed = str(status)
    if status != check.expect_status:
        return Outcome(False, observed, f"expected status {check.expect_status}, got {status}")
    if check.body_contains is not None:
        try:
            text = body.decode(encoding, "replace")
        except LookupError:
            text = body.decode("utf-8", "replace")
        if check.body_contains not in text:
            return Outcome(False, observed, f"body does not contain {check.body_contains!r}")
    if check.json_field is not None:
        if check.op is not None:
            failure = compare_json(body, check.json_field, check.op, check.expect)
        else:
            failure = check_json(body, check.json_field, check.json_equals)
        if failure is not None:
            json_observed, error = failure
            return Outcome(False, json_observed or observed, error)
    if check.max_latency is not None and latency > check.max_latency:
        shown = f"latency {latency:.2f}s"
        return Outcome(False, shown, f"{shown} over limit {check.max_latency:.2f}s")
    captured: dict[str, object] = {}
    for name, path in check.capture.items():
        value = json_value(body, path)
        if isinstance(value, str):  # what is wrong: not JSON, or the field is missing
            return Outcome(False, observed, f"capture {name}: {value}")
        captured[name] = value[0]
    return Outcome(True, observed, captured=captured)
