"""The ref seam: turning a ref typed in chat into a commit, and describing what changes.

`NullResolver` is used when no `[repo]` is configured (the demo): the ref is taken as given
and the card says that no changelog is available. `bot.source.git.GitResolver` is the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class RefError(Exception):
    """A ref that cannot be deployed (unknown, ambiguous, invalid, not allowed); user-facing."""


@dataclass(frozen=True)
class Resolution:
    """A resolved ref with what the card shows about it."""

    ref: str
    sha: str | None
    committed_at: datetime | None = None
    changelog: tuple[str, ...] = ()
    changelog_note: str | None = None
    warnings: tuple[str, ...] = ()
    behind: bool = False
    extra: dict[str, object] = field(default_factory=dict)


class RefResolver(Protocol):
    """Resolves refs for an environment relative to what it currently runs."""

    def resolve(self, env: str, ref: str | None, current_sha: str | None, *, force: bool) -> Resolution:
        """Resolve `ref` (None = the environment's default); raise RefError with a clear message."""
        ...

    def after_success(self, env: str, deploy_id: int, sha: str | None) -> str | None:
        """Hook after a successful deploy (deploy tags); returns a note for the thread or None."""
        ...


class NullResolver:
    """No repository configured: refs are labels, there is no changelog."""

    def __init__(self, default_ref: str = "main") -> None:
        self.default_ref = default_ref

    def resolve(self, env: str, ref: str | None, current_sha: str | None, *, force: bool) -> Resolution:
        """Take the ref as given."""
        return Resolution(
            ref=ref or self.default_ref,
            sha=None,
            changelog_note="No changelog: no [repo] is configured for this bot.",
        )

    def after_success(self, env: str, deploy_id: int, sha: str | None) -> str | None:
        """Nothing to tag."""
        return None
