"""Redact secret values from anything recorded or posted."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "[redacted]"


class Redactor:
    """Replaces every occurrence of the given secret values with a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """Return `text` with every secret masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._secrets)
