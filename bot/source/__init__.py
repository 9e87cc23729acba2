"""Where a deploy's code comes from: a ref typed in chat resolved to a commit, with its changelog.

`RefResolver` is the seam the engine talks to; `NullResolver` serves when no `[repo]` is
configured, `GitResolver` resolves against a bare mirror of the repository (`Mirror`, GitPython).
The ref rules and the changelog warnings are pure and need no git.

The names backed by GitPython (`GitResolver`, `deploy_tag_globs`, `Mirror`, `FetchResult`,
`ResolvedRef`) are imported on first use, so a bot without `[repo]` never loads GitPython (whose
import fails when no git executable is installed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from bot.source.base import NullResolver, RefError, RefResolver, Resolution
from bot.source.changelog import (
    DEFAULT_MAX_COMMITS,
    Changelog,
    Commit,
    changelog_lines,
    changelog_note,
    changelog_warnings,
)
from bot.source.errors import AmbiguousRef, FetchFailed, GitError, InvalidRef, RefNotFound
from bot.source.rules import branch_rules, next_tag_name, ref_allowed, tag_glob, validate_ref

if _TYPE_CHECKING:
    from bot.source.fetching import FetchResult
    from bot.source.git import GitResolver, deploy_tag_globs
    from bot.source.mirror import Mirror
    from bot.source.resolving import ResolvedRef

__all__ = [
    "DEFAULT_MAX_COMMITS",
    "AmbiguousRef",
    "Changelog",
    "Commit",
    "FetchFailed",
    "FetchResult",
    "GitError",
    "GitResolver",
    "InvalidRef",
    "Mirror",
    "NullResolver",
    "RefError",
    "RefNotFound",
    "RefResolver",
    "Resolution",
    "ResolvedRef",
    "branch_rules",
    "changelog_lines",
    "changelog_note",
    "changelog_warnings",
    "deploy_tag_globs",
    "next_tag_name",
    "ref_allowed",
    "tag_glob",
    "validate_ref",
]


def __getattr__(name: str) -> object:
    """Import the GitPython-backed names when first asked for (see the module docstring)."""
    if name in ("GitResolver", "deploy_tag_globs"):
        from bot.source.git import GitResolver, deploy_tag_globs

        loaded: dict[str, object] = {"GitResolver": GitResolver, "deploy_tag_globs": deploy_tag_globs}
    elif name in ("Mirror", "FetchResult", "ResolvedRef"):
        from bot.source.fetching import FetchResult
        from bot.source.mirror import Mirror
        from bot.source.resolving import ResolvedRef

        loaded = {"Mirror": Mirror, "FetchResult": FetchResult, "ResolvedRef": ResolvedRef}
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals().update(loaded)
    return loaded[name]
