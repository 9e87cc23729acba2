"""Redact secret values from anything recorded or posted.

Every non-empty secret is masked, however short: a value that is configured as a secret is
never shown. A very short secret (under `MIN_SECRET_LENGTH` characters) is masked wherever
those characters appear, also in unrelated output, so `weak_secrets` lets a config check warn
about it. Overlapping occurrences of several secrets are masked as one span, so no fragment of
any of them survives.

Streams are redacted in pieces (chunks of output as they arrive): `safe_cut` says where a
piece may end without splitting an occurrence of a secret, whole or still arriving.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "[redacted]"
#: Secrets shorter than this are still masked, but reported by `weak_secrets`.
MIN_SECRET_LENGTH = 8


def weak_secrets(secrets: Iterable[str]) -> list[str]:
    """The non-empty secrets shorter than `MIN_SECRET_LENGTH` (for a config check to warn about)."""
    return [s for s in secrets if s and len(s) < MIN_SECRET_LENGTH]


class Redactor:
    """Replaces every occurrence of the given secret values with a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first: cheap early exits below look at the long ones first.
        self._secrets: tuple[str, ...] = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        #: Some secret holds a line break: output may then not be split even at a line end.
        self.multiline = any("\n" in s or "\r" in s for s in self._secrets)

    def extended(self, more: Iterable[str]) -> Redactor:
        """A redactor masking these secrets plus `more`."""
        return Redactor((*self._secrets, *more))

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Merged (start, end) spans covering every occurrence of every secret in `text`."""
        spans: list[tuple[int, int]] = []
        for secret in self._secrets:
            start = text.find(secret)
            while start != -1:
                spans.append((start, start + len(secret)))
                start = text.find(secret, start + 1)
        if not spans:
            return spans
        spans.sort()
        merged = [spans[0]]
        for start, end in spans[1:]:
            last_start, last_end = merged[-1]
            if start <= last_end:
                merged[-1] = (last_start, max(last_end, end))
            else:
                merged.append((start, end))
        return merged

    def __call__(self, text: str) -> str:
        """Return `text` with every secret masked (overlapping occurrences as one mask)."""
        if not self._secrets:
            return text
        spans = self._spans(text)
        if not spans:
            return text
        parts: list[str] = []
        pos = 0
        for start, end in spans:
            parts.append(text[pos:start])
            parts.append(MASK)
            pos = end
        parts.append(text[pos:])
        return "".join(parts)

    def safe_cut(self, text: str, cut: int) -> int:
        """The largest position <= `cut` at which `text` may be split for separate redaction.

        No occurrence of a secret may straddle the split, and neither may the beginning of one
        at the end of `text` that later output could complete (so a secret of any length, or
        one containing newlines, is masked even when it arrives in pieces).
        """
        if not self._secrets or cut <= 0:
            return max(cut, 0)
        spans = self._spans(text)
        while True:
            moved = cut
            for start, end in spans:
                if start < moved < end:
                    moved = start
            for secret in self._secrets:
                # A proper prefix of `secret` at the very end of `text`, starting before the cut.
                first = max(0, len(text) - len(secret) + 1)
                start = text.find(secret[0], first)
                while start != -1 and start < moved:
                    if secret.startswith(text[start:]):
                        moved = start
                        break
                    start = text.find(secret[0], start + 1)
            if moved == cut:
                return cut
            cut = moved

    def __bool__(self) -> bool:
        return bool(self._secrets)
