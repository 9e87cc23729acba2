"""The one TOML-table reader: typed getters that record each problem with its key path.

`Table` reads one table (`environments.prod.hosts[1]`), `Problems` collects what every table
of a document found, `parse_duration` turns `90`, `"90s"`, `"15m"` into seconds. Config
sections and check tables both read through it, so durations mean the same everywhere.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from bot.config.schema import STAGES

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
#: The longest duration any key accepts (a year): beyond it timers overflow, and it is a typo.
MAX_DURATION = 366 * 86400.0
#: The type of a getter's default (`duration(..., None)` may return None).
D = TypeVar("D")


class Problems:
    """Collects problems with their key paths."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        """Record a problem; the same problem at the same path is reported once."""
        item = f"{path}: {message}"
        if item not in self.items:
            self.items.append(item)

    def extend(self, items: list[str]) -> None:
        """Record problems already formatted as `path: message`."""
        for item in items:
            if item not in self.items:
                self.items.append(item)


def parse_duration(value: Any) -> float:
    """`90`, `"90s"`, `"15m"`, `"4h"`, `"1d"`, `"500ms"` → seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30, '90s', '15m' or '4h'")
    seconds: float | None = None
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.match(value.strip())
        if m:
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds is None:
        raise ValueError(f"{value!r} is not a duration like 30, '90s', '15m' or '4h'")
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ValueError("must be at most a year (366d)")
    return seconds


#: Every key the loader reads, as a schema path (`environments.<env>.steps.<stage>[].run`).
#: Filled while parsing; the docs test checks each one is documented in docs/CONFIG.md.
KNOWN_KEYS: set[str] = set()
_STAGE_RE = re.compile(r"\.steps\.(?:" + "|".join(STAGES) + r")\b")


def schema_path(path: str) -> str:
    """`environments.prod.hosts[2].name` → `environments.<env>.hosts[].name`."""
    path = re.sub(r"^environments\.[^.\[]+", "environments.<env>", path)
    path = _STAGE_RE.sub(".steps.<stage>", path)
    return re.sub(r"\[\d+\]", "[]", path)


class Table:
    """A TOML table being read: typed getters that record problems, and unknown-key checks.

    Config sections use `get`, `strings`, `duration` and `table`: a wrong type is reported with
    what was found (`must be a string, not an integer`). Check tables use the short getters
    (`string`, `integer`, `boolean`, `choice`), whose shorter wording they always had. Both
    read durations the same way. With `record_keys`, each key read is added to `KNOWN_KEYS`.
    """

    def __init__(self, data: Any, path: str, problems: Problems, *, record_keys: bool = True) -> None:
        self.path = path
        self.problems = problems
        self.record_keys = record_keys
        if not isinstance(data, Mapping):
            problems.add(path, "must be a table")
            data = {}
        self.data: Mapping[str, Any] = data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        """The key path of `name` in this table (recorded in `KNOWN_KEYS`)."""
        full = self._path(name)
        if self.record_keys:
            KNOWN_KEYS.add(schema_path(full))
        return full

    def _path(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, message: str) -> None:
        """Record a problem at `name` (any key, known or not: it is not recorded as read)."""
        self.problems.add(self._path(name), message)

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """The value of `name` if it is of `kind` and passes `check` (a rule returning a problem
        or None); else the problem is recorded and `default` returned. `default` when absent."""
        self.seen.add(name)
        self.key(name)
        if name not in self.data:
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = False if isinstance(value, bool) and bool not in kinds else isinstance(value, kinds)
        if not ok:
            names = " or ".join(_type_name(k) for k in kinds)
            self.problems.add(self.key(name), f"must be {names}, not {_type_name(type(value))}")
            return default
        if check is not None:
            message = check(value)
            if message:
                self.problems.add(self.key(name), message)
                return default
        return value

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """A list of non-empty strings (each bad item reported with its index and left out)."""
        value = self.get(name, list, None)
        if value is None:
            return default
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item.strip():
                out.append(item)
            else:
                self.problems.add(f"{self.key(name)}[{i}]", "must be a non-empty string")
        return tuple(out)

    def duration(self, name: str, default: D, *, positive: bool = False) -> float | D:
        """A duration in seconds (see `parse_duration`); with `positive`, 0 is refused too."""
        self.seen.add(name)
        self.key(name)
        if name not in self.data:
            return default
        try:
            seconds = parse_duration(self.data[name])
        except ValueError as exc:
            self.problems.add(self.key(name), str(exc))
            return default
        if positive and seconds <= 0:
            self.problems.add(self.key(name), "must be > 0")
            return default
        return seconds

    def table(self, name: str) -> Table:
        """The sub-table `name` (an empty one when absent), reporting to the same problems."""
        self.seen.add(name)
        return Table(self.data.get(name, {}), self.key(name), self.problems, record_keys=self.record_keys)

    def finish(self, extra_known: tuple[str, ...] = ()) -> None:
        """Report every key of the table that was not read (with a close match as a hint)."""
        known = self.seen | set(extra_known)
        for name in self.data:
            if name not in known:
                hint = difflib.get_close_matches(name, sorted(known), n=1)
                suffix = f"; did you mean '{hint[0]}'?" if hint else ""
                path = f"{self.path}.{name}" if self.path else name  # not self.key(): not a known key
                self.problems.add(path, f"unknown key{suffix}")

    # -- the short getters of check tables ---------------------------------------------------
    def _read(self, name: str) -> tuple[bool, Any]:
        """Mark `name` read; `(present, value)`."""
        self.seen.add(name)
        self.key(name)
        return name in self.data, self.data.get(name)

    def string(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        """A string; `required`: present and not blank."""
        present, value = self._read(name)
        if not present:
            if required:
                self.problem(name, "required")
            return default
        if not isinstance(value, str):
            self.problem(name, "must be a string")
            return default
        if required and not value.strip():
            self.problem(name, "must not be empty")
            return default
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        """An integer within [low, high]."""
        present, value = self._read(name)
        if not present:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(name, "must be an integer")
            return default
        if not low <= value <= high:
            self.problem(name, f"must be between {low} and {high}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """true or false."""
        present, value = self._read(name)
        if not present:
            return default
        if not isinstance(value, bool):
            self.problem(name, "must be true or false")
            return default
        return value

    def choice(self, name: str, choices: Sequence[str], default: str) -> str:
        """One of `choices` (a value that is not a string is reported as such, once)."""
        value = self.string(name, default=default)
        if value is None or value not in choices:
            if name in self.data and isinstance(self.data[name], str):
                self.problem(name, f"must be one of: {', '.join(choices)}")
            return default
        return value


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
            dict: "a table"}.get(kind, kind.__name__)  # fmt: skip
