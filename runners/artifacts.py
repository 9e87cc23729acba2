"""Artifacts: values a step publishes for later steps, undo commands and the card.

A step publishes one by printing a line of its own on stdout (or stderr):

    ::gonogo artifact backup_path=/var/backups/shop-42.sql

Later templates use it as `{artifact.backup_path}`, shell-quoted like every placeholder. Names
are letters, digits and `_`; the value is the rest of the line, trimmed (at most
`MAX_VALUE` characters). Lines are read after redaction, so a secret never becomes an artifact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from runners.template import ARTIFACT_PREFIX

#: The output line that publishes an artifact.
MARKER = "::gonogo artifact "
MAX_VALUE = 1000
_LINE = re.compile(r"^\s*::gonogo artifact ([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def scan(text: str) -> list[tuple[str, str]]:
    """The `(name, value)` artifacts published in `text`, in order (a name again: the later wins)."""
    if MARKER not in text:
        return []
    found: list[tuple[str, str]] = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            found.append((m.group(1), m.group(2).strip()[:MAX_VALUE]))
    return found


def template_variables(artifacts: Mapping[str, Mapping[str, str]], host: str | None = None) -> dict[str, str]:
    """`{artifact.NAME}` values for a command on `host`: the value that host published, else the
    first host's (a `once` step publishes on one host for the whole fleet)."""
    out: dict[str, str] = {}
    for name, by_host in artifacts.items():
        if not by_host:
            continue
        value = by_host.get(host) if host is not None else None
        out[ARTIFACT_PREFIX + name] = value if value is not None else next(iter(by_host.values()))
    return out


def merge(
    into: dict[str, dict[str, str]], host: str, published: Iterable[tuple[str, str]]
) -> dict[str, dict[str, str]]:
    """Add what `host` published to `into` (name → host → value), returning it."""
    for name, value in published:
        into.setdefault(name, {})[host] = value
    return into
