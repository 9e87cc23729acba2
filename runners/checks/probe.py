"""What a probe hands back to the round runner (`_Outcome`), and the text helpers probes share."""

from __future__ import annotations


class _Outcome:
    """Mutable scratch result for one run; turned into a CheckResult at the end."""

    __slots__ = ("error", "observed", "ok")

    def __init__(self, ok: bool, observed: str | None = None, error: str | None = None) -> None:
        self.ok = ok
        self.observed = observed
        self.error = error


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""
