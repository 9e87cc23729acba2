"""The errors of refs and the mirror: each a :class:`GitError` whose message can be shown to users."""

from __future__ import annotations

from collections.abc import Sequence


class GitError(Exception):
    """Base class for every error raised by this module (message is user-presentable)."""


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
