"""The secrets of one check run (DSN, password, header values), redacted from its result."""

from __future__ import annotations

from runners.redact import Redactor

#: Secrets shorter than this are not redacted (as in runners.redact).
_MIN_SECRET_LEN = 3


class Secrets:
    """The secret values one check run came across, to be masked in its result."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: object) -> None:
        """Remember `value` as a secret (non-strings and very short strings are ignored)."""
        if not isinstance(value, str) or len(value) < _MIN_SECRET_LEN:
            return
        # Also the escaped forms an exception message may show (repr of str or bytes).
        for form in (value, repr(value)[1:-1], repr(value.encode("utf-8", "replace"))[2:-1]):
            self._values.add(form)

    def redact(self, text: str | None) -> str | None:
        """`text` with every remembered secret masked (None stays None)."""
        if text is None or not self._values:
            return text
        return Redactor(self._values)(text)
