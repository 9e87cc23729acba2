"""The errors of the ref rules and the mirror: each a :class:`GitError` whose message users can read.

::

    InvalidRef(GitError)      the string can never be a ref (bad syntax, shell metacharacters...)
    RefNotFound(GitError)     .suggestions: list[str]  "unknown ref 'mian'; did you mean 'main'?"
    AmbiguousRef(GitError)    abbreviated sha matching several commits, or branch-and-tag name clash
    FetchFailed(GitError)     a fetch failed and nothing was ever mirrored
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class GitError(Exception):
    """Base class for every error of the ref rules and the mirror (message is user-presentable)."""


class InvalidRef(GitError):
    """The string is not acceptable as a ref name or sha."""


class RefNotFound(GitError):
    """The ref does not exist in the mirror; ``suggestions`` holds close branch/tag names."""

    def __init__(self, message: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.suggestions: list[str] = list(suggestions)


class AmbiguousRef(GitError):
    """The ref matches several things (sha prefix of several commits, branch and tag...)."""

    def __init__(self, message: str, candidates: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.candidates: list[str] = list(candidates)


class FetchFailed(GitError):
    """A fetch failed and there is no previously mirrored data to fall back on."""


def not_found(what: str, word: str, names: Sequence[str]) -> RefNotFound:
    """``unknown <what>``, with the names close to ``word`` as suggestions (``did you mean ...?``)."""
    suggestions = _suggest(word, names)
    message = f"unknown {what}"
    if suggestions:
        message += f"; did you mean {_quote_list(suggestions)}?"
    return RefNotFound(message, suggestions)


def _suggest(word: str, names: Sequence[str]) -> list[str]:
    return difflib.get_close_matches(word, sorted(set(names)), n=3, cutoff=0.6)


def _quote_list(items: Sequence[str]) -> str:
    quoted = [f"'{i}'" for i in items]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
