"""Value rules: small `check` callables for `Table.get` (ranges, ports, channels, variable names).

Each returns a problem message or None; they hold no reading logic, so any section may use them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

#: An environment variable name (secrets and DSNs are named, never written in the file).
VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def at_least_one(value: Any) -> str | None:
    """A count of at least one (canary hosts, parallel hosts)."""
    return None if value >= 1 else "must be >= 1"


def between(low: float, high: float) -> Callable[[Any], str | None]:
    """A check that a number is within [low, high] (absurd values are typos, and overflow later)."""

    def check(value: Any) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if value < low:
            return f"must be >= {low:g}"
        if value > high:
            return f"must be <= {high:g}"
        return None

    return check


def channel_name(value: Any) -> str | None:
    """One Slack channel name or id: not blank, no spaces, at most 80 characters."""
    text = value.strip()
    if not text:
        return "must not be empty (a channel name like '#deploys' or a channel id)"
    if any(c.isspace() for c in text) or len(text) > 80:
        return "must be one channel name like '#deploys' or a channel id (no spaces, at most 80 characters)"
    return None


def env_var_name(value: Any) -> str | None:
    """The name of an environment variable (letters, digits and `_`)."""
    return None if VAR_NAME.match(value) else "must be an environment variable name (letters, digits and _)"


def port_number(value: Any) -> str | None:
    """A TCP port, 1-65535."""
    return None if 0 < value < 65536 else "must be a port number (1-65535)"
