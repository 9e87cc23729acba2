"""One HTTP call to another tool, with every way it can fail turned into a clear `IntegrationError`.

Unreachable hosts, slow answers, bad tokens, missing repositories, rate limits and server errors
each get their own sentence; the token is never part of any message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from bot.integrations.base import IntegrationError

#: Statuses worth trying again later (the service is down, busy or rate limiting).
_TRANSIENT = {408, 409, 425, 429, 500, 502, 503, 504}


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    service: str,
    what: str,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    token_hint: str | None = None,
) -> httpx.Response:
    """`method url`, returning the 2xx response; IntegrationError saying what went wrong otherwise.

    `what` names the call for people ("reading CI status of abc1234"); `token_hint` says where the
    credential comes from ("GITHUB_TOKEN"), for the 401/403 messages.
    """
    try:
        response = client.request(method, url, json=json, params=params, headers=headers)
    except httpx.TimeoutException:
        timeout = client.timeout.read or client.timeout.connect
        raise IntegrationError(f"{what}: {service} did not answer within {timeout:g}s") from None
    except httpx.TransportError as exc:
        where = _origin(str(client.base_url.join(url)))
        raise IntegrationError(f"{what}: cannot reach {service} at {where} ({_short(exc)})") from None
    if response.is_success:
        return response
    raise _status_error(response, service=service, what=what, token_hint=token_hint)


def _status_error(
    response: httpx.Response, *, service: str, what: str, token_hint: str | None
) -> IntegrationError:
    status = response.status_code
    said = _message(response)
    said = f": {said}" if said else ""
    hint = f" (check {token_hint})" if token_hint else ""
    if status == 401:
        return IntegrationError(f"{what}: {service} refused the credentials (401{said}){hint}", status=status)
    if status == 403 and response.headers.get("x-ratelimit-remaining") == "0":
        return IntegrationError(f"{what}: {service} rate limit reached (403{said})", status=status)
    if status == 403:
        return IntegrationError(
            f"{what}: {service} says the credentials may not do this (403{said}){hint}", status=status
        )
    if status == 404:
        return IntegrationError(
            f"{what}: {service} found nothing there (404{said}): is the name right, and can the credentials see it?",
            status=status,
        )
    if status == 429:
        wait = response.headers.get("retry-after")
        later = f", retry after {wait}s" if wait else ""
        return IntegrationError(f"{what}: {service} is rate limiting (429{later})", status=status)
    if status >= 500:
        return IntegrationError(f"{what}: {service} had an error ({status}{said})", status=status)
    return IntegrationError(
        f"{what}: {service} refused the request ({status}{said})", retry=status in _TRANSIENT, status=status
    )


def _message(response: httpx.Response) -> str:
    """The service's own short reason (`message`, `error`), when the body says one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, Mapping):
        return ""
    for key in ("message", "error", "status"):
        value = body.get(key)
        if isinstance(value, str) and value:
            errors = body.get("errors")
            extra = (
                f" ({'; '.join(str(e) for e in errors[:3])})" if isinstance(errors, list) and errors else ""
            )
            return (value + extra)[:200]
    return ""


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:160]


__all__ = ["request"]
