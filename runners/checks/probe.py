"""What a probe hands back to the round runner (`Outcome`), and the text helpers probes share."""

from __future__ import annotations


class Outcome:
    """Mutable scratch result for one run; turned into a CheckResult at the end."""

    __slots__ = ("error", "observed", "ok")

    def __init__(self, ok: bool, observed: str | None = None, error: str | None = None) -> None:
        self.ok = ok
        self.observed = observed
        self.error = error


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
