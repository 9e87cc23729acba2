"""Check specs: what an HTTP, SQL, command, Prometheus or metrics check asks for, as frozen
data (no I/O here).

A `SqlCheck` names the environment variable holding its DSN, never the DSN itself; HTTP header
values are secrets, hidden from `repr`. String fields may hold placeholders (`{host.address}`,
`{capture.job_id}`, `{secret.TOKEN}`) that `runners.checks.fill` substitutes before a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from runners.checks.condition import Condition

Op = Literal["==", "!=", ">=", "<=", ">", "<"]
OPS: tuple[Op, ...] = ("==", "!=", ">=", "<=", ">", "<")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: What a metric check with no data to judge says (`on_no_data`).
NoData = Literal["fail", "pass", "inconclusive"]
NO_DATA: tuple[NoData, ...] = ("fail", "pass", "inconclusive")


@dataclass(frozen=True)
class HttpCheck:
    """An HTTP probe: status, optional body/JSON assertions and a latency budget.

    With `json_field` set and `json_equals` left as None, the field must exist and be truthy
    (so `{"db": {"ok": false}}` fails `json_field="db.ok"`); with `op` and `expect` it is
    compared like a SQL value (numerically when both sides are numbers). Redirects are not
    followed: a 301 is observed as 301. `timeout` bounds each network phase and the body read.
    Header values are secrets: they are hidden from `repr` and redacted from errors.

    A request may carry a `body` (text) or `json_body` (sent as JSON). `capture` names values
    to keep from a passing response's JSON (name -> dotted path), for later checks and steps.
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
    op: Op | None = None
    expect: object = field(default=None, hash=False)
    body: str | None = field(default=None, repr=False)
    json_body: object = field(default=None, repr=False, hash=False)
    capture: Mapping[str, str] = field(default_factory=dict, hash=False)
    kind: Literal["http"] = field(default="http", init=False)

    def __post_init__(self) -> None:
        # A private copy, so a caller mutating its dict cannot change a frozen check.
        object.__setattr__(self, "headers", dict(self.headers))
        object.__setattr__(self, "capture", dict(self.capture))


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
    #: "one" (the first host), "all", or the name of one host (a check expanded per host).
    on: str = "one"
    expect_exit: int = 0
    output_contains: str | None = None
    timeout: float = 30.0
    kind: Literal["command"] = field(default="command", init=False)


@dataclass(frozen=True)
class PrometheusCheck:
    """A PromQL instant query against a Prometheus server, its value(s) held to `condition`.

    A vector result is judged series by series (the failing ones are named by their labels);
    a scalar is one value. An empty result (or NaN) is *no data*: `on_no_data` says whether
    that fails, passes or is inconclusive. `prometheus_url` is the server's base URL (a path
    prefix is kept); header values are secrets.
    """

    name: str
    prometheus_url: str
    query: str
    condition: Condition
    on_no_data: NoData = "fail"
    timeout: float = 10.0
    verify_tls: bool = True
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)
    kind: Literal["prometheus"] = field(default="prometheus", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", dict(self.headers))


@dataclass(frozen=True)
class MetricsCheck:
    """A scrape of a Prometheus text endpoint (`/metrics`), one number held to `condition`.

    The number is the sum of the samples named `metric` whose labels include `labels`
    (a counter may be named without its `_total`). With `per`, it is divided by the same sum of
    the `per` samples (failures / total; no `metric` samples beside them count as 0). With `rate`, it is the change since the previous
    round's sample instead: Δmetric / Δper, or Δmetric per second without `per` (a counter
    reset counts from zero, as in Prometheus). The first sample of a rate is its baseline: it
    passes. No samples, or no change in `per`, is *no data* (`on_no_data`).
    """

    name: str
    url: str
    metric: str
    condition: Condition
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    per: str | None = None
    rate: bool = False
    on_no_data: NoData = "fail"
    timeout: float = 10.0
    verify_tls: bool = True
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)
    kind: Literal["metrics"] = field(default="metrics", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", dict(self.headers))
        object.__setattr__(self, "labels", dict(self.labels))


#: Any check spec. A new check type joins this union and registers its probe in
#: `runners.checks.run.PROBES`.
Check = HttpCheck | SqlCheck | CommandCheck | PrometheusCheck | MetricsCheck
#: The check types that speak HTTP (they share a round's pooled clients, by `verify_tls`).
WebCheck = HttpCheck | PrometheusCheck | MetricsCheck
WEB_CHECKS = (HttpCheck, PrometheusCheck, MetricsCheck)


class CommandRunner(Protocol):
    """Runs a shell command on the environment's hosts (the SSH side lives elsewhere).

    Returns one ``(host, exit code or None if it could not run, output)`` per host; with
    ``on="one"`` (the first host) or the name of a host a single host is expected, with
    ``on="all"`` every host. Must honour `timeout` (seconds). `name` is the check's.
    """

    def __call__(
        self, command: str, on: str, timeout: float, *, name: str
    ) -> Sequence[tuple[str, int | None, str]]:
        """Run `command` and report per-host outcomes."""
        ...
