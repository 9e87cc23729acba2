"""The contract between the runner and a check type's probe: the probe gets a `Context`, gives
back an `Outcome`; and the text helpers probes share.

A probe is a function ``probe(check, ctx) -> Outcome`` for one check type, registered in
`runners.checks.run.PROBES`. It may raise: the runner turns an unexpected exception into a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from runners.checks.secrets import Secrets
from runners.checks.spec import CommandRunner


class Outcome:
    """Mutable scratch result for one run; turned into a CheckResult at the end.

    `inconclusive` (with ``ok=False``): the check could not judge (no data, `on_no_data =
    "inconclusive"`). `sample` is what a rate check keeps for the next round; `captured` the
    values a passing check captured for later checks and steps.
    """

    __slots__ = ("captured", "error", "inconclusive", "observed", "ok", "sample")

    def __init__(
        self,
        ok: bool,
        observed: str | None = None,
        error: str | None = None,
        *,
        inconclusive: bool = False,
        sample: Mapping[str, float] | None = None,
        captured: Mapping[str, object] | None = None,
    ) -> None:
        self.ok = ok
        self.observed = observed
        self.error = error
        self.inconclusive = inconclusive
        self.sample = sample
        self.captured = captured


@dataclass(frozen=True)
class Context:
    """What a probe may use for one run: the environment, the run's secrets, and the tools.

    A probe adds to `secrets` every secret it handles (a DSN, a header value), so the runner
    can mask them in the result. `previous` is the sample this check kept last round (a rate
    check's baseline), if any.
    """

    env: Mapping[str, str]
    secrets: Secrets
    command_runner: CommandRunner | None = None
    http_client: httpx.Client | None = None
    previous: Mapping[str, float] | None = None


#: A probe for one check type (its first argument is that type's spec).
Probe = Callable[[Any, Context], Outcome]


def no_data(on_no_data: str, why: str) -> Outcome:
    """What a metric check with nothing to judge says, as its `on_no_data` asks."""
    if on_no_data == "pass":
        return Outcome(True, "no data")
    if on_no_data == "inconclusive":
        return Outcome(False, "no data", why, inconclusive=True)
    return Outcome(False, "no data", why)


def short(text: str, limit: int) -> str:
    """`text` on one line (whitespace collapsed), cut to `limit` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(text: str) -> str:
    """The first non-blank line of `text`, stripped (an exception message's headline)."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""
