"""Git for gonogo: what a deploy ships is a commit.

A small library around a **bare mirror** of the application repository, driven through
GitPython (every git invocation is an argument list, never a shell string).

It is built from one class per concern, each on :class:`~bot.source.gitdir.GitDir` (running
git and reading refs, commits and counts): ``Fetching`` (fetching.py), ``Resolving``
(resolving.py), ``History`` (history.py) and ``Tagging`` (tagging.py). The pure ref rules
(validation, allowed refs, tag names) are in rules.py, commits, changelogs and their warnings in
changelog.py, the errors (all :class:`GitError`) in errors.py.

Data (frozen dataclasses)::

    ResolvedRef(ref, sha, kind: "branch" | "tag" | "sha", committed_at, subject, author)
    FetchResult(ok, stale, error, fetched_at)
    Commit(sha, short, author, subject, committed_at)
    Changelog(commits, total, behind, behind_count, first_deploy, unknown_base)  .more() -> int

The mirror::

    m = Mirror(url, path, *, fetch_timeout=30.0, initial_fetch_timeout=None, keep_tags=())
    m.fetch() -> FetchResult
    m.resolve(ref: str | None, default_branch: str) -> ResolvedRef
    m.changelog(from_sha: str | None, to_sha: str, *, limit=20) -> Changelog
    m.is_ancestor(a: str, b: str) -> bool
    m.contains(branch: str, sha: str) -> bool
    m.branches() -> list[str]
    m.branches_containing(sha: str) -> list[str]
    m.create_tag(name: str, sha: str, message: str, *, tagger_name="gonogo",
                 tagger_email="gonogo@localhost") -> None
    m.push_tag(name: str, remote: str) -> None

Behaviour worth knowing:

* ``fetch()`` mirrors ``+refs/heads/*:refs/heads/*`` and ``+refs/tags/*:refs/tags/*`` with
  ``--prune --force`` straight from the URL, so deleted branches/tags and force-pushes are
  mirrored too, **except** the tags matching ``keep_tags`` (globs of short tag names with at
  most one ``*``, e.g. ``deploy/prod/*``): they are left out of the fetch with negative
  refspecs (``^refs/tags/deploy/prod/*``, git >= 2.29), so the remote neither prunes nor
  overwrites them. gonogo's own deploy tags live there: made with ``create_tag`` and not
  pushed, they stay in the mirror.
* A failed fetch (unreachable URL, timeout: the git process is killed) returns
  ``FetchResult(ok=False, stale=True, error=..., fetched_at=<last good fetch or None>)`` and keeps
  the mirrored data; it raises :class:`FetchFailed` only when nothing was ever mirrored.
  Fetches, tag creation and pushes on the same mirror path are serialised by a per-path
  ``threading.Lock`` (shared by all ``Mirror`` objects of the process for that path).
* ``resolve`` accepts a branch name, a tag name (annotated tags are peeled to their commit),
  ``refs/heads/<b>`` / ``refs/tags/<t>`` to disambiguate, or a full/abbreviated sha (4..40 hex).
  A hex string that is both a ref name and a commit prefix is ambiguous. Only commits count when
  disambiguating a sha prefix (blobs/trees sharing the prefix are ignored).
* ``changelog`` treats ``from_sha`` as the deployed commit. ``unknown_base`` is set when it is not
  reachable from any mirrored branch or tag (e.g. force-pushed away); if its object is still in
  the mirror the range is computed anyway, otherwise ``commits``/``total`` describe the whole
  history of ``to_sha`` (as for a first deploy).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import git

from bot.source.errors import GitError
from bot.source.fetching import Fetching
from bot.source.gitdir import lock_for, redact_url
from bot.source.history import History
from bot.source.resolving import Resolving
from bot.source.rules import check_tag_glob
from bot.source.tagging import Tagging


class Mirror(Fetching, Resolving, History, Tagging):
    """A bare mirror of the repository at ``url``, kept at ``path`` (see the module docstring)."""

    def __init__(
        self,
        url: str,
        path: Path,
        *,
        fetch_timeout: float = 30.0,
        initial_fetch_timeout: float | None = None,
        keep_tags: Sequence[str] = (),
    ) -> None:
        """Describe the mirror; nothing touches the disk or network until :meth:`fetch`.

        ``initial_fetch_timeout`` (default: ``fetch_timeout``) applies while nothing has
        been mirrored yet, since a first clone is much slower than an update. ``keep_tags``
        are globs of tags the fetch leaves alone (see the module docstring).
        """
        if not url or url.startswith("-"):
            raise GitError(f"invalid repository url {url!r}")
        for glob in keep_tags:
            check_tag_glob(glob)
        self.keep_tags = tuple(dict.fromkeys(keep_tags))
        self.url = url
        self.path = Path(path)
        self.fetch_timeout = fetch_timeout
        self.initial_fetch_timeout = initial_fetch_timeout
        self._lock = lock_for(self.path)
        self._git = git.Git()

    def __repr__(self) -> str:
        return f"Mirror({redact_url(self.url)!r}, {str(self.path)!r})"
