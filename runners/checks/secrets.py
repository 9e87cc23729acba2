"""The secrets of one check run (DSN, password, header values), redacted from its result.

The masking is `runners.redact.Redactor`'s; this only collects what a run came across, in the
forms an error message may show it. Unlike a configured secret, which the redactor masks however
short, a value seen here is incidental (any header value), so very short ones are left alone.
"""

from __future__ import annotations

from runners.redact import Redactor

#: Values shorter than this are not redacted: a header value such as "1" would otherwise mask
#: every "1" in an error like "connection refused to 127.0.0.1:8080".
_MIN_SECRET_LEN = 3


class Secrets:
    """The secret values one check run came across, to be masked in its result."""

    def __init__(self) -> None:
        self._redactor = Redactor()

    def add(self, value: object) -> None:
        """Remember `value` as a secret (non-strings and very short strings are ignored)."""
        if not isinstance(value, str) or len(value) < _MIN_SECRET_LEN:
            return
        # Also the escaped forms an exception message may show (repr of str or bytes).
        forms = (value, repr(value)[1:-1], repr(value.encode("utf-8", "replace"))[2:-1])
        self._redactor = self._redactor.extended(forms)

    def redact(self, text: str | None) -> str | None:
        """`text` with every remembered secret masked (None stays None)."""
        if text is None or not self._redactor:
            return text
        return self._redactor(text)
