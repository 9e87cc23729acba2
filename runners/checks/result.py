"""`CheckResult`, the outcome of one check run, and its one-line chat summary.

`build_result` turns a probe's `Outcome` into one: stamped, secrets masked, text shortened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from runners.checks.probe import Outcome, short
from runners.checks.secrets import Secrets
from runners.checks.spec import Check

_MAX_ERROR_LEN = 300
_MAX_OBSERVED_LEN = 80
#: How an inconclusive result's error starts (and how a stored one is recognised).
INCONCLUSIVE = "inconclusive: "


#: What stamps a result's `at` (a naive time counts as UTC).
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check run. `error` is short and human; `latency` is in seconds.

    An inconclusive result (``ok=False``, `inconclusive`) could not judge; its error starts
    with ``inconclusive: ``. `sample` (a rate check's reading, for the next round) and
    `captured` (values for later checks and steps) are not stored with the result.
    """

    name: str
    kind: str
    ok: bool
    observed: str | None
    latency: float
    error: str | None
    at: datetime
    inconclusive: bool = False
    sample: Mapping[str, float] | None = field(default=None, compare=False, repr=False)
    captured: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def status(self) -> str:
        """``ok``, ``failed`` or ``inconclusive``."""
        return "ok" if self.ok else "inconclusive" if self.inconclusive else "failed"

    def summary(self) -> str:
        """One chat line, e.g. ``health ✓ 200 (12 ms)`` or ``db ✗ value 3 is not >= 4 (8 ms)``.

        A failure shows its error (which usually embeds what was observed); when the error
        does not mention the observation, both are shown. An inconclusive result is marked ``?``.
        """
        mark = "✓" if self.ok else "?" if self.inconclusive else "✗"
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
    inconclusive = outcome.inconclusive and not outcome.ok
    if inconclusive:
        error = INCONCLUSIVE + (error or "no data").removeprefix(INCONCLUSIVE)
    return CheckResult(
        name=check.name,
        kind=check.kind,
        ok=outcome.ok,
        observed=short(observed, _MAX_OBSERVED_LEN) if observed is not None else None,
        latency=latency,
        error=short(error, _MAX_ERROR_LEN) if error is not None else None,
        at=at,
        inconclusive=inconclusive,
        sample=dict(outcome.sample) if outcome.sample is not None else None,
        captured=dict(outcome.captured or {}) if outcome.ok else {},
    )


def is_inconclusive(ok: bool, error: str | None) -> bool:
    """Whether a stored result (its `ok` and `error`) was inconclusive."""
    return not ok and bool(error) and str(error).startswith(INCONCLUSIVE)
