"""Placeholders in check fields: `{host}`, `{host.address}`, `{host.vars.NAME}`, `{capture.NAME}`,
`{secret.NAME}`, substituted into a check spec before it runs.

Only those namespaces are placeholders: any other brace is literal text, so a PromQL selector
(`up{job="web"}`) or a JSON body needs no escaping. Each field gets values its own way:

* a URL: host values as written; captured values and secrets percent-encoded (a captured
  `../admin` stays one path segment);
* a shell command (a command check): every value shell-quoted, as in step commands;
* a JSON body: a string that is exactly one placeholder becomes the value itself (a captured
  number stays a number); inside longer text, the value as text;
* headers: the value as text; a line break in it is refused (it would smuggle a header);
* other text (a body, a query): the value as text.

Substitution is one pass over the template: a value is never scanned again, so a captured
value that reads `{secret.TOKEN}` stays that text.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from runners.checks.spec import Check, CommandCheck, HttpCheck, MetricsCheck, PrometheusCheck, SqlCheck

PLACEHOLDER = re.compile(
    r"\{(host(?:\.(?:name|address|vars\.[A-Za-z0-9_-]+))?"
    r"|capture\.[A-Za-z_][A-Za-z0-9_]*"
    r"|secret\.[A-Za-z_][A-Za-z0-9_]*)\}"
)

#: The string fields of each check type that take placeholders, and how values go in.
_FIELDS: dict[type, dict[str, str]] = {
    HttpCheck: {"url": "url", "headers": "headers", "body": "text", "json_body": "json"},
    SqlCheck: {"query": "text"},
    CommandCheck: {"command": "shell"},
    PrometheusCheck: {"prometheus_url": "url", "query": "text", "headers": "headers"},
    MetricsCheck: {"url": "url", "labels": "headers", "headers": "headers"},
}


class FillError(ValueError):
    """A value cannot go where its placeholder is (a line break in a header, say)."""


def placeholders(text: str) -> list[str]:
    """The placeholder names in `text` (``host.vars.port``, ``capture.job_id``...), in order."""
    return [m.group(1) for m in PLACEHOLDER.finditer(text)]


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def check_fields(check: Check) -> dict[str, str]:
    """The fields of `check` that take placeholders, with how values go in (url, shell, ...)."""
    return dict(_FIELDS.get(type(check), {}))


def used(check: Check) -> dict[str, list[str]]:
    """The placeholder names each field of `check` uses (fields without any are left out)."""
    out: dict[str, list[str]] = {}
    for name in check_fields(check):
        names = [p for text in _strings(getattr(check, name)) for p in placeholders(text)]
        if names:
            out[name] = names
    return out


def _trusted(name: str) -> bool:
    """Host values come from the config file; captures and secrets do not belong in a URL raw."""
    return name == "host" or name.startswith("host.")


def _encoder(mode: str, name: str) -> Callable[[object], str]:
    if mode == "shell":
        return lambda v: shlex.quote(_text(v))
    if mode == "url" and not _trusted(name):
        return lambda v: quote(_text(v), safe="")
    if mode == "headers":
        return _header
    return _text


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _header(value: object) -> str:
    text = _text(value)
    if "\r" in text or "\n" in text:
        raise FillError("a value with a line break cannot go into a header")
    return text


def fill_text(text: str, values: Mapping[str, object], mode: str = "text") -> str:
    """`text` with the placeholders `values` has substituted (others are left as they are)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            return m.group(0)
        return _encoder(mode, name)(values[name])

    return PLACEHOLDER.sub(sub, text)


def _fill_json(value: object, values: Mapping[str, object]) -> object:
    if isinstance(value, str):
        m = PLACEHOLDER.fullmatch(value)
        if m and m.group(1) in values:
            return values[m.group(1)]
        return fill_text(value, values)
    if isinstance(value, Mapping):
        return {k: _fill_json(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fill_json(v, values) for v in value]
    return value


def _fill_value(value: Any, mode: str, values: Mapping[str, object]) -> Any:
    if value is None:
        return None
    if mode == "json":
        return _fill_json(value, values)
    if isinstance(value, Mapping):
        return {k: fill_text(v, values, mode) if isinstance(v, str) else v for k, v in value.items()}
    return fill_text(value, values, mode)


def fill(check: Check, values: Mapping[str, object], *, name: str | None = None) -> Check:
    """A copy of `check` with the placeholders `values` has substituted, renamed to `name` if
    given. Raises `FillError` when a value cannot go where its placeholder is."""
    changes: dict[str, Any] = {}
    for field_name, mode in check_fields(check).items():
        current = getattr(check, field_name)
        filled = _fill_value(current, mode, values)
        if filled != current:
            changes[field_name] = filled
    if name is not None:
        changes["name"] = name
    return dataclasses.replace(check, **changes) if changes else check


def missing(check: Check) -> list[str]:
    """The run-time placeholders (captures, secrets) still in `check` after filling."""
    return [n for names in used(check).values() for n in names if n.startswith(("capture.", "secret."))]


def waves(checks: list[Check]) -> list[list[int]]:
    """The indices of `checks` in waves: a check that uses `{capture.NAME}` runs in a wave after
    the check that captures NAME (checks in one wave run together). A cycle ends in one wave."""
    producers: dict[str, set[int]] = {}
    for i, check in enumerate(checks):
        for name in getattr(check, "capture", {}) or {}:
            producers.setdefault(f"capture.{name}", set()).add(i)
    needs = [{j for n in missing(c) for j in producers.get(n, ()) if j != i} for i, c in enumerate(checks)]
    done: set[int] = set()
    out: list[list[int]] = []
    while len(done) < len(checks):
        wave = [i for i in range(len(checks)) if i not in done and needs[i] <= done]
        if not wave:  # a cycle: run what is left together, with what values there are
            wave = [i for i in range(len(checks)) if i not in done]
        out.append(wave)
        done.update(wave)
    return out


__all__ = [
    "PLACEHOLDER",
    "FillError",
    "check_fields",
    "fill",
    "fill_text",
    "missing",
    "placeholders",
    "used",
    "waves",
]
