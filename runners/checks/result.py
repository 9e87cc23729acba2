"""`CheckResult`, the outcome of one check run, and its one-line chat summary.

`build_result` turns a probe's `Outcome` into one: stamped, secrets masked, text shortened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from runners.checks.probe import Outcome, short
from runners.checks.secrets import Secrets
from runners.checks.spec import Check

_MAX_ERROR_LEN = 300
_MAX_OBSERVED_LEN = 80


#: What stamps a result's `at` (a naive time counts as UTC).
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check run. `error` is short and human; `latency` is in seconds."""

    name: str
    kind: str
    ok: bool
    observed: str | None
    latency: float
    error: str | None
    at: datetime

    def summary(self) -> str:
        """One chat line, e.g. ``health ✓ 200 (12 ms)`` or ``db ✗ value 3 is not >= 4 (8 ms)``.

        A failure shows its error (which usually embeds what was observed); when the error
        does not mention the observation, both are shown.
        """
        mark = "✓" if self.ok else "✗"
        if self.ok:
            detail = self.observed or "ok"
        elif self.error and self.observed and self.observed not in self.error:
            detail = f"{self.observed}: {self.error}"
        else:
            detail = self.error or self.observed or "failed"
        return f"{self.name} {mark} {detail} ({_fmt_ms(self.latency)})"


def _fmt_ms(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def build_result(
    check: Check, outcome: Outcome, latency: float, secrets: Secrets, clock: Clock
) -> CheckResult:
    """The `CheckResult` of one run: stamped by `clock` in UTC, secrets masked, text shortened."""
    at = clock()
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    observed = secrets.redact(outcome.observed)
    error = secrets.redact(outcome.error)
    return CheckResult(
        name=check.name,
        kind=check.kind,
        ok=outcome.ok,
        observed=short(observed, _MAX_OBSERVED_LEN) if observed is not None else None,
        latency=latency,
        error=short(error, _MAX_ERROR_LEN) if error is not None else None,
        at=at,
    )
