"""Smoke and monitoring checks: HTTP, SQL, command, Prometheus and metrics probes, run in
concurrent rounds.

A deploy is not done when the last command exits: after a deploy gonogo runs smoke checks,
then monitoring checks every interval. This package is the check *library*:

* check specs (`HttpCheck`, `SqlCheck`, `CommandCheck`, `PrometheusCheck`, `MetricsCheck`),
  built from TOML by `bot.config.checks.parse_check`; conditions on numbers
  (`parse_condition`: ``result < 0.1``, a small grammar, never eval); placeholders in check
  fields (`fill`: ``{host.address}``, ``{capture.job_id}``, ``{secret.TOKEN}``);
* `run_check` / `run_checks`, which never raise for a failing or unreachable target: every
  problem (connection refused, DNS failure, timeout, TLS error, bad JSON, SQL error, missing
  DSN variable, ...) becomes a `CheckResult` with ``ok=False`` and a short human error;
* `FailureTracker`, a pure, serialisable account of failures (consecutive or in all, per
  check `Limit`) and inconclusive results that says when a check reached its limit, which
  checks changed state this round, and keeps each rate check's last sample.

Secrets: a `SqlCheck` names the environment variable holding its DSN, never the DSN itself,
and neither the DSN (nor its password) nor HTTP header values (nor a password in a URL) ever
appear in a result; they are redacted from error text.

Modules: `spec` (the check specs), `run` (the runner and the table of probes by check type),
`probe` (what a probe gets and returns), one probe module per check type (`http`, `sql`,
`command`, `prometheus`, `metrics`), `compare` (values against expectations), `condition`,
`fill`, `result`, `secrets`, `tracker`.

Nothing here imports from `bot` or `commands`.
"""

from __future__ import annotations

from runners.checks.compare import NUMBER_RE, compare
from runners.checks.condition import Condition, ConditionError, parse_condition
from runners.checks.fill import PLACEHOLDER, FillError, fill, placeholders, used
from runners.checks.result import INCONCLUSIVE, CheckResult, is_inconclusive
from runners.checks.run import Samples, run_check, run_checks
from runners.checks.spec import (
    HTTP_METHODS,
    NO_DATA,
    OPS,
    Check,
    CommandCheck,
    CommandRunner,
    HttpCheck,
    MetricsCheck,
    NoData,
    Op,
    PrometheusCheck,
    SqlCheck,
)
from runners.checks.tracker import FailureTracker, Limit, Transition, Verdict

__all__ = [
    "HTTP_METHODS",
    "INCONCLUSIVE",
    "NO_DATA",
    "NUMBER_RE",
    "OPS",
    "PLACEHOLDER",
    "Check",
    "CheckResult",
    "CommandCheck",
    "CommandRunner",
    "Condition",
    "ConditionError",
    "FailureTracker",
    "FillError",
    "HttpCheck",
    "Limit",
    "MetricsCheck",
    "NoData",
    "Op",
    "PrometheusCheck",
    "Samples",
    "SqlCheck",
    "Transition",
    "Verdict",
    "compare",
    "fill",
    "is_inconclusive",
    "parse_condition",
    "placeholders",
    "run_check",
    "run_checks",
    "used",
]
