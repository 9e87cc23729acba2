"""Check specs: what an HTTP, SQL or command check asks for, as frozen data (no I/O here).

A `SqlCheck` names the environment variable holding its DSN, never the DSN itself; HTTP header
values are secrets, hidden from `repr`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Op = Literal["==", "!=", ">=", "<=", ">", "<"]
OPS: tuple[Op, ...] = ("==", "!=", ">=", "<=", ">", "<")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


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


#: Any check spec. A new check type joins this union and registers its probe in
#: `runners.checks.run.PROBES`.
Check = HttpCheck | SqlCheck | CommandCheck


class CommandRunner(Protocol):
    """Runs a shell command on the environment's hosts (the SSH side lives elsewhere).

    Returns one ``(host, exit code or None if it could not run, output)`` per host; with
    ``on="one"`` a single host is expected. Must honour `timeout` (seconds).
    """

    def __call__(self, command: str, on: str, timeout: float) -> Sequence[tuple[str, int | None, str]]:
        """Run `command` and report per-host outcomes."""
        ...
