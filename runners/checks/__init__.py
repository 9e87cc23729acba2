"""Smoke and monitoring checks: HTTP, SQL and command probes, run in concurrent rounds.

A deploy is not done when the last command exits: after a deploy gonogo runs smoke checks,
then monitoring checks every interval. This package is the check *library*:

* check specs (`HttpCheck`, `SqlCheck`, `CommandCheck`), built from TOML by
  `bot.config.checks.parse_check`;
* `run_check` / `run_checks`, which never raise for a failing or unreachable target: every
  problem (connection refused, DNS failure, timeout, TLS error, bad JSON, SQL error, missing
  DSN variable, ...) becomes a `CheckResult` with ``ok=False`` and a short human error;
* `FailureTracker`, a pure, serialisable counter of consecutive failures that says when a
  check reached its failure limit and which checks changed state this round.

Secrets: a `SqlCheck` names the environment variable holding its DSN, never the DSN itself,
and neither the DSN (nor its password) nor HTTP header values (nor a password in a URL) ever
appear in a result; they are redacted from error text.

Modules: `spec` (the check specs), `run` (the runner and the table of probes by check type),
`probe` (what a probe gets and returns), one probe module per check type (`http`, `sql`,
`command`), `compare` (values against expectations), `result`, `secrets`, `tracker`.

Nothing here imports from `bot` or `commands`.
"""

from __future__ import annotations

from runners.checks.compare import NUMBER_RE, compare
from runners.checks.result import CheckResult
from runners.checks.run import run_check, run_checks
from runners.checks.spec import (
    HTTP_METHODS,
    OPS,
    Check,
    CommandCheck,
    CommandRunner,
    HttpCheck,
    Op,
    SqlCheck,
)
from runners.checks.tracker import FailureTracker, Transition, Verdict

__all__ = [
    "HTTP_METHODS",
    "NUMBER_RE",
    "OPS",
    "Check",
    "CheckResult",
    "CommandCheck",
    "CommandRunner",
    "FailureTracker",
    "HttpCheck",
    "Op",
    "SqlCheck",
    "Transition",
    "Verdict",
    "compare",
    "run_check",
    "run_checks",
]
