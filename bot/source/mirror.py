"""Git for gonogo: what a deploy ships is a commit.

A small library around a **bare mirror** of the application repository, driven through
GitPython (every git invocation is an argument list, never a shell string).

Errors (all subclasses of :class:`GitError`)::

    InvalidRef(GitError)      the string can never be a ref (bad syntax, shell metacharacters...)
    RefNotFound(GitError)     .suggestions: list[str]  "unknown ref 'mian'; did you mean 'main'?"
    AmbiguousRef(GitError)    abbreviated sha matching several commits, or branch-and-tag name clash
    FetchFailed(GitError)     a fetch failed and nothing was ever mirrored

Module functions::

    validate_ref(ref: str) -> None                                  # raises InvalidRef
    ref_allowed(ref: str, kind: str, patterns: Sequence[str], *, env: str | None = None) -> str | None
    branch_rules(patterns: Sequence[str]) -> list[str]              # the `branch:` globs
    next_tag_name(pattern: str, env: str, number: int) -> str       # "deploy/{env}/{n}"
    tag_glob(pattern: str, env: str) -> str                         # "deploy/prod/*"
    changelog_warnings(cl: Changelog, *, max_commits: int = DEFAULT_MAX_COMMITS,
                       branch_ok: bool = True, branch: str | None = None,
                       branches: Sequence[str] = ()) -> list[str]
    DEFAULT_MAX_COMMITS = 8

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

import difflib
import fnmatch
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit, urlunsplit

import git

__all__ = [
    "DEFAULT_MAX_COMMITS",
    "AmbiguousRef",
    "Changelog",
    "Commit",
    "FetchFailed",
    "FetchResult",
    "GitError",
    "InvalidRef",
    "Mirror",
    "RefNotFound",
    "ResolvedRef",
    "branch_rules",
    "changelog_warnings",
    "next_tag_name",
    "ref_allowed",
    "tag_glob",
    "validate_ref",
]

DEFAULT_MAX_COMMITS = 8
"""Warn when a deploy ships more commits than this."""

MAX_REF_LENGTH = 255

RefKind = Literal["branch", "tag", "sha"]

_HEX_RE = re.compile(r"[0-9a-fA-F]{4,40}")
# Characters git itself refuses in ref names (check-ref-format rule 4, 5, 10) plus shell
# metacharacters and quoting characters we never want to see in a ref.
_GIT_FORBIDDEN = set(" ~^:?*[\\")
_SHELL_META = set(";&|$`'\"<>(){}!#*?[]\\~")
_MARK_FILE = "gonogo-last-fetch"
_HEADS = "refs/heads/"
_TAGS = "refs/tags/"


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ResolvedRef:
    """A ref resolved to a commit."""

    ref: str
    sha: str
    kind: RefKind
    committed_at: datetime
    subject: str
    author: str

    @property
    def short(self) -> str:
        """The first 7 characters of the sha."""
        return self.sha[:7]


@dataclass(frozen=True)
class FetchResult:
    """Outcome of :meth:`Mirror.fetch`; ``fetched_at`` is the time of the last good fetch."""

    ok: bool
    stale: bool
    error: str | None
    fetched_at: datetime | None


@dataclass(frozen=True)
class Commit:
    """One commit of a changelog."""

    sha: str
    short: str
    author: str
    subject: str
    committed_at: datetime


@dataclass(frozen=True)
class Changelog:
    """What deploying ``to_sha`` over ``from_sha`` changes.

    ``commits`` are the newest first, at most ``limit``; ``total`` counts all of them.
    ``behind`` means ``to_sha`` is a strict ancestor of ``from_sha`` (a rollback) and
    ``behind_count`` is the number of deployed commits the target does not contain.
    """

    commits: tuple[Commit, ...]
    total: int
    behind: bool
    behind_count: int
    first_deploy: bool
    unknown_base: bool

    def more(self) -> int:
        """How many commits are not listed in ``commits`` (for "and N more")."""
        return max(0, self.total - len(self.commits))


# --------------------------------------------------------------------------- pure helpers


def validate_ref(ref: str) -> None:
    """Raise :class:`InvalidRef` unless ``ref`` is a safe branch/tag name or sha.

    Refuses whatever ``git check-ref-format --allow-onelevel`` refuses, plus whitespace,
    control/non-printable characters, shell metacharacters and a leading ``-``.
    Hex shas (4..40 digits) are accepted. Pure Python, never runs git.
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidRef("empty ref")
    shown = ref if ref.isprintable() and len(ref) <= 80 else repr(ref[:80])
    if len(ref) > MAX_REF_LENGTH:
        raise InvalidRef(f"ref {shown} is too long (max {MAX_REF_LENGTH} characters)")
    if _HEX_RE.fullmatch(ref):
        return

    def bad(why: str) -> InvalidRef:
        return InvalidRef(f"invalid ref '{shown}': {why}")

    if ref.startswith("-"):
        raise bad("must not start with '-'")
    for ch in ref:
        if not ch.isprintable() or ch.isspace():
            raise bad("contains whitespace or control characters")
        if ch in _SHELL_META or ch in _GIT_FORBIDDEN:
            raise bad(f"contains {ch!r}")
    if ref == "@":
        raise bad("'@' is not a valid ref")
    if "@{" in ref:
        raise bad("contains '@{'")
    if ".." in ref:
        raise bad("contains '..'")
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        raise bad("empty path component")
    if ref.endswith("."):
        raise bad("must not end with '.'")
    for part in ref.split("/"):
        if part.startswith("."):
            raise bad("a component must not start with '.'")
        if part.endswith(".lock"):
            raise bad("a component must not end with '.lock'")


def _short_name(ref: str) -> str:
    for prefix in (_HEADS, _TAGS):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def ref_allowed(ref: str, kind: str, patterns: Sequence[str], *, env: str | None = None) -> str | None:
    """Return None if ``ref`` of ``kind`` matches one of ``patterns``, else a short reason.

    Patterns are case-sensitive globs (:func:`fnmatch.fnmatchcase`; ``*`` also matches ``/``),
    optionally prefixed ``branch:``, ``tag:`` or ``sha:`` to apply to that kind only:
    ``["branch:main", "tag:v*"]`` allows the branch main and tags starting with v. An
    unprefixed pattern applies to **every** kind (``v*`` also allows a branch named
    ``v-experimental``), which the refusal message points out. Empty ``patterns`` allows
    everything. ``refs/heads/``/``refs/tags/`` prefixes of ``ref`` are ignored when matching.
    """
    if not patterns:
        return None
    name = _short_name(ref)
    for pattern in patterns:
        pat_kind, sep, glob = pattern.partition(":")
        if not sep or pat_kind not in ("branch", "tag", "sha"):
            pat_kind, glob = "", pattern
        if pat_kind and pat_kind != kind:
            continue
        if fnmatch.fnmatchcase(name, glob):
            return None
    where = f" in {env}" if env else ""
    label = {"branch": "branch", "tag": "tag", "sha": "commit"}.get(kind, "ref")
    hint = ""
    if any(_pattern_kind(p) == "" for p in patterns):
        hint = "; a pattern without branch:, tag: or sha: matches every kind of ref"
    return f"{label} '{name}' is not allowed{where} (allowed: {', '.join(patterns)}{hint})"


def _pattern_kind(pattern: str) -> str:
    """`branch`, `tag` or `sha` for a prefixed allowed-ref pattern, `` for an unprefixed one."""
    pat_kind, sep, _ = pattern.partition(":")
    return pat_kind if sep and pat_kind in ("branch", "tag", "sha") else ""


def branch_rules(patterns: Sequence[str]) -> list[str]:
    """The branch globs of allowed-ref ``patterns`` (those prefixed ``branch:``), in order.

    ``branch_rules(["branch:main", "branch:release/*", "tag:v*"]) == ["main", "release/*"]``.
    """
    return [p.partition(":")[2] for p in patterns if _pattern_kind(p) == "branch"]


def next_tag_name(pattern: str, env: str, number: int) -> str:
    """Render a deploy tag name from ``pattern``: ``{env}`` and ``{n}`` are substituted.

    ``next_tag_name("deploy/{env}/{n}", "prod", 42) == "deploy/prod/42"``. The result must be
    a valid ref (:func:`validate_ref`), else :class:`InvalidRef`.
    """
    if number < 0:
        raise InvalidRef(f"tag number must not be negative (got {number})")
    name = pattern.replace("{env}", env).replace("{n}", str(number))
    try:
        validate_ref(name)
    except InvalidRef as exc:
        raise InvalidRef(f"tag pattern {pattern!r} gives an invalid tag name: {exc}") from None
    return name


def tag_glob(pattern: str, env: str) -> str:
    """The glob of short tag names ``pattern`` gives for ``env``, for :class:`Mirror` ``keep_tags``.

    ``{env}`` is substituted and ``{n}`` becomes ``*``; a git refspec allows one ``*``, so with
    several the glob stops at the first: ``tag_glob("deploy/{env}/{n}", "prod") == "deploy/prod/*"``.
    Raises :class:`InvalidRef` when the result cannot name tags.
    """
    glob = pattern.replace("{env}", env).replace("{n}", "*")
    if glob.count("*") > 1:
        glob = glob[: glob.index("*") + 1]
    _check_tag_glob(glob)
    return glob


def _check_tag_glob(glob: str) -> None:
    if glob.count("*") > 1 or glob in ("", "*"):
        raise InvalidRef(f"tag glob {glob!r} must be a tag name with at most one '*' and more than '*'")
    try:
        validate_ref(glob.replace("*", "x"))
    except InvalidRef as exc:
        raise InvalidRef(f"tag glob {glob!r} cannot name tags: {exc}") from None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def changelog_warnings(
    cl: Changelog,
    *,
    max_commits: int = DEFAULT_MAX_COMMITS,
    branch_ok: bool = True,
    branch: str | None = None,
    branches: Sequence[str] = (),
) -> list[str]:
    """Human warnings about a changelog, for the go/no-go card (empty list: nothing to say).

    ``branch_ok`` is whether the target is on an allowed branch (see :meth:`Mirror.contains`
    and :meth:`Mirror.branches_containing`); ``branch`` names the one branch, or ``branches``
    the branch globs, in the message.
    """
    warnings: list[str] = []
    if cl.unknown_base:
        warnings.append(
            "the deployed commit is not on any branch or tag any more (force-push?): "
            "the changelog may be wrong"
        )
    if cl.behind:
        warnings.append(
            f"target is {_plural(cl.behind_count, 'commit')} behind what is deployed: "
            "this is a rollback; use /rollback or --force"
        )
    elif cl.behind_count and not cl.first_deploy:
        warnings.append(
            f"target does not contain {_plural(cl.behind_count, 'deployed commit')} "
            "(history diverged): they would be removed"
        )
    if not cl.first_deploy and not cl.unknown_base and cl.total > max_commits:
        warnings.append(f"{cl.total} commits to ship (more than {max_commits}): check the changelog")
    if not branch_ok:
        names = list(branches) or ([branch] if branch else [])
        if len(names) == 1 and not any(c in names[0] for c in "*?["):
            where = f"'{names[0]}'"
        elif names:
            where = f"an allowed branch ({', '.join(names)})"
        else:
            where = "the allowed branch"
        warnings.append(f"target commit is not on {where}")
    return warnings


def _redact_url(url: str) -> str:
    """Drop any user:password from a URL for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _git_message(stderr: str) -> str:
    """The useful part of git's stderr: fatal/error lines if any, else everything."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    important = [line for line in lines if line.startswith(("fatal:", "error:", "remote:", "!"))]
    return "; ".join(important or lines) or "git failed"


def _when(epoch: str) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=UTC)


def _suggest(word: str, names: Sequence[str]) -> list[str]:
    return difflib.get_close_matches(word, sorted(set(names)), n=3, cutoff=0.6)


def _quote_list(items: Sequence[str]) -> str:
    quoted = [f"'{i}'" for i in items]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


# --------------------------------------------------------------------------- the mirror

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    key = os.path.realpath(path)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


_LOG_FORMAT = "%H%x00%h%x00%ct%x00%an%x00%s%x00"
_NET_ENV = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}


class Mirror:
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
            _check_tag_glob(glob)
        self.keep_tags = tuple(dict.fromkeys(keep_tags))
        self.url = url
        self.path = Path(path)
        self.fetch_timeout = fetch_timeout
        self.initial_fetch_timeout = initial_fetch_timeout
        self._lock = _lock_for(self.path)
        self._git = git.Git()

    def __repr__(self) -> str:
        return f"Mirror({_redact_url(self.url)!r}, {str(self.path)!r})"

    # ---------------------------------------------------------------- plumbing

    def _run(
        self,
        *args: str,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        bare: bool = True,
    ) -> tuple[int, str, str]:
        """Run git with an argument list (no shell); returns (status, stdout, stderr)."""
        cmd = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"]
        if bare:
            cmd.append(f"--git-dir={self.path}")
        cmd.extend(args)
        try:
            result = self._git.execute(
                cmd,
                with_extended_output=True,
                with_exceptions=False,
                kill_after_timeout=timeout,
                env=env,
                strip_newline_in_stdout=False,
            )
        except git.GitCommandNotFound as exc:
            raise GitError(f"git is not installed: {exc}") from None
        status, out, err = cast(tuple[int, str | bytes, str], result)
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        return status, out, err

    def _out(self, *args: str) -> str:
        status, out, err = self._run(*args)
        if status != 0:
            raise GitError(f"git {args[0]} failed: {_git_message(err)}")
        return out

    def _exists(self) -> bool:
        return (self.path / "HEAD").is_file() and (self.path / "objects").is_dir()

    def _require_mirror(self) -> None:
        if not self._exists():
            raise GitError(f"the mirror at {self.path} does not exist yet: fetch() first")

    def _refs(self) -> dict[str, str]:
        """Every branch and tag of the mirror: full refname -> object sha (not peeled)."""
        if not self._exists():
            return {}
        out = self._out("for-each-ref", "--format=%(objectname) %(refname)", _HEADS, _TAGS)
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            if name:
                refs[name] = sha
        return refs

    def _peel(self, rev: str) -> str | None:
        """Full commit sha of ``rev`` (a full refname or hex sha), or None."""
        status, out, _ = self._run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
        )
        return out.strip() if status == 0 and out.strip() else None

    def _parse_log(self, out: str) -> list[Commit]:
        fields = out.split("\x00")
        commits: list[Commit] = []
        for i in range(0, len(fields) - 4, 5):
            sha, short, ct, author, subject = fields[i : i + 5]
            commits.append(
                Commit(
                    sha=sha.strip(),
                    short=short.strip(),
                    author=author,
                    subject=subject,
                    committed_at=_when(ct),
                )
            )
        return commits

    def _log(self, *revs: str, limit: int) -> list[Commit]:
        if limit <= 0:
            return []
        out = self._out(
            "log", f"--max-count={limit}", f"--format={_LOG_FORMAT}", "--end-of-options", *revs, "--"
        )
        return self._parse_log(out)

    def _count(self, *revs: str) -> int:
        return int(self._out("rev-list", "--count", "--end-of-options", *revs, "--").strip() or 0)

    def _commit(self, sha: str) -> Commit:
        commits = self._log(sha, limit=1)
        if not commits:  # pragma: no cover - sha was verified by the caller
            raise RefNotFound(f"unknown commit '{sha}'")
        return commits[0]

    def _sha_arg(self, sha: str, what: str = "commit") -> str:
        """Validate a hex sha argument and expand it to a full commit sha (RefNotFound if absent)."""
        if not isinstance(sha, str) or not _HEX_RE.fullmatch(sha):
            raise InvalidRef(f"invalid {what} sha {sha!r}: expected 4 to 40 hex digits")
        full = self._peel(sha.lower())
        if full is None:
            raise RefNotFound(f"unknown {what} '{sha}'")
        return full

    def _reachable(self, sha: str) -> bool:
        """Is the commit reachable from any mirrored branch or tag?"""
        out = self._out(
            "for-each-ref", "--count=1", "--format=%(refname)", f"--contains={sha}", _HEADS, _TAGS
        )
        return bool(out.strip())

    # ---------------------------------------------------------------- fetch

    def _last_fetch(self) -> datetime | None:
        try:
            return datetime.fromisoformat((self.path / _MARK_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    def _ever_mirrored(self) -> bool:
        if not self._exists():
            return False
        return self._last_fetch() is not None or bool(self._refs())

    def _init(self) -> None:
        if self._exists():
            return
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise FetchFailed(f"{self.path} exists and is not a git mirror")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        status, _, err = self._run("init", "--bare", "--quiet", "--", str(self.path), bare=False)
        if status != 0:
            raise FetchFailed(f"cannot create the mirror at {self.path}: {_git_message(err)}")

    def fetch(self) -> FetchResult:
        """Update the mirror from ``url`` (creating it the first time).

        Returns ``ok=True`` on success. On failure returns ``ok=False, stale=True`` with the
        error and keeps the previously mirrored data; raises :class:`FetchFailed` only when
        nothing was ever mirrored. Concurrent calls for the same path run one at a time.
        """
        with self._lock:
            self._init()
            had_data = self._ever_mirrored()
            timeout = self.fetch_timeout
            if not had_data and self.initial_fetch_timeout is not None:
                timeout = self.initial_fetch_timeout
            status, _, err = self._run(
                "fetch",
                "--quiet",
                "--prune",
                "--force",
                "--no-write-fetch-head",
                "--end-of-options",
                self.url,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
                *(f"^{_TAGS}{glob}" for glob in self.keep_tags),
                timeout=timeout,
                env=_NET_ENV,
            )
            if status == 0:
                now = datetime.now(UTC)
                (self.path / _MARK_FILE).write_text(now.isoformat() + "\n")
                return FetchResult(ok=True, stale=False, error=None, fetched_at=now)
            where = _redact_url(self.url)
            if err.startswith("Timeout:") or status == -9:
                error = f"fetch from {where} timed out after {timeout:g}s"
            else:
                error = f"fetch from {where} failed: {_git_message(err)}"
            if not had_data:
                raise FetchFailed(error)
            return FetchResult(ok=False, stale=True, error=error, fetched_at=self._last_fetch())

    # ---------------------------------------------------------------- resolve

    def resolve(self, ref: str | None, default_branch: str) -> ResolvedRef:
        """Resolve ``ref`` (None: ``default_branch``) to a commit.

        Accepts branch and tag names, ``refs/heads/…``/``refs/tags/…`` and full or
        abbreviated (>= 4 hex) shas. Raises InvalidRef, RefNotFound (with suggestions) or
        AmbiguousRef.
        """
        if ref is None:
            validate_ref(default_branch)
            self._require_mirror()
            name = _short_name(default_branch)
            refs = self._refs()
            if _HEADS + name not in refs:
                branches = [_short_name(r) for r in refs if r.startswith(_HEADS)]
                raise self._not_found(f"default branch '{name}'", name, branches)
            return self._resolved(name, _HEADS + name, "branch")

        validate_ref(ref)
        self._require_mirror()
        refs = self._refs()
        if ref.startswith((_HEADS, _TAGS)):
            kind: RefKind = "branch" if ref.startswith(_HEADS) else "tag"
            if ref not in refs:
                raise self._not_found(f"{kind} '{_short_name(ref)}'", _short_name(ref), self._names(refs))
            return self._resolved(ref, ref, kind)

        named: list[tuple[str, RefKind]] = []
        if _HEADS + ref in refs:
            named.append((_HEADS + ref, "branch"))
        if _TAGS + ref in refs:
            named.append((_TAGS + ref, "tag"))
        shas = self._commits_with_prefix(ref) if _HEX_RE.fullmatch(ref) else []

        if len(named) == 2:
            raise AmbiguousRef(
                f"ref '{ref}' is both a branch and a tag; say 'refs/heads/{ref}' or 'refs/tags/{ref}'",
                [r for r, _ in named],
            )
        if named and shas:
            raise AmbiguousRef(
                f"ref '{ref}' is both a {named[0][1]} and the start of commit {shas[0][:12]}; "
                f"say '{named[0][0]}' or give more of the sha",
                [named[0][0], *shas],
            )
        if named:
            return self._resolved(ref, *named[0])
        if len(shas) > 1:
            described = ", ".join(
                f"{c.short} ({c.subject[:40]})" for c in (self._commit(s) for s in shas[:5])
            )
            raise AmbiguousRef(
                f"sha '{ref}' is ambiguous: {len(shas)} commits start with it ({described}); give more digits",
                shas,
            )
        if shas:
            return self._resolved(ref, shas[0], "sha")
        raise self._not_found(f"ref '{ref}'", ref, self._names(refs))

    @staticmethod
    def _names(refs: dict[str, str]) -> list[str]:
        return [_short_name(r) for r in refs]

    @staticmethod
    def _not_found(what: str, word: str, names: Sequence[str]) -> RefNotFound:
        suggestions = _suggest(word, names)
        message = f"unknown {what}"
        if suggestions:
            message += f"; did you mean {_quote_list(suggestions)}?"
        return RefNotFound(message, suggestions)

    def _commits_with_prefix(self, prefix: str) -> list[str]:
        """Distinct commits whose sha (or whose annotated tag object's sha) starts with prefix."""
        status, out, _ = self._run("rev-parse", f"--disambiguate={prefix.lower()}")
        if status != 0:
            return []
        commits: list[str] = []
        for candidate in out.split():
            peeled = self._peel(candidate)
            if peeled is not None and peeled not in commits:
                commits.append(peeled)
        return commits

    def _resolved(self, ref: str, rev: str, kind: RefKind) -> ResolvedRef:
        sha = self._peel(rev)
        if sha is None:
            raise GitError(f"{kind} '{_short_name(ref)}' does not point at a commit")
        c = self._commit(sha)
        return ResolvedRef(
            ref=ref, sha=c.sha, kind=kind, committed_at=c.committed_at, subject=c.subject, author=c.author
        )

    # ---------------------------------------------------------------- history

    def changelog(self, from_sha: str | None, to_sha: str, *, limit: int = 20) -> Changelog:
        """The commits deploying ``to_sha`` over the deployed ``from_sha`` would ship.

        ``from_sha`` None is a first deploy. See :class:`Changelog` and the module docstring
        for ``behind`` and ``unknown_base``.
        """
        if from_sha is not None and (not isinstance(from_sha, str) or not _HEX_RE.fullmatch(from_sha)):
            raise InvalidRef(f"invalid deployed sha {from_sha!r}: expected 4 to 40 hex digits")
        self._require_mirror()
        to = self._sha_arg(to_sha, "target commit")
        if from_sha is None:
            return Changelog(
                commits=tuple(self._log(to, limit=limit)),
                total=self._count(to),
                behind=False,
                behind_count=0,
                first_deploy=True,
                unknown_base=False,
            )
        base = self._peel(from_sha.lower())
        if base is None:
            return Changelog(
                commits=tuple(self._log(to, limit=limit)),
                total=self._count(to),
                behind=False,
                behind_count=0,
                first_deploy=False,
                unknown_base=True,
            )
        unknown = not self._reachable(base)
        if base == to:
            return Changelog((), 0, False, 0, False, unknown)
        behind_count = self._count(f"^{to}", base)
        return Changelog(
            commits=tuple(self._log(f"^{base}", to, limit=limit)),
            total=self._count(f"^{base}", to),
            behind=self._is_ancestor(to, base),
            behind_count=behind_count,
            first_deploy=False,
            unknown_base=unknown,
        )

    def _is_ancestor(self, a: str, b: str) -> bool:
        status, _, err = self._run("merge-base", "--is-ancestor", "--end-of-options", a, b)
        if status in (0, 1):
            return status == 0
        raise GitError(f"git merge-base failed: {_git_message(err)}")

    def is_ancestor(self, a: str, b: str) -> bool:
        """Is commit ``a`` an ancestor of (or equal to) commit ``b``? Both are hex shas.

        Raises RefNotFound if either commit is not in the mirror.
        """
        self._require_mirror()
        return self._is_ancestor(self._sha_arg(a), self._sha_arg(b))

    def contains(self, branch: str, sha: str) -> bool:
        """Is commit ``sha`` reachable from ``branch``? False if the commit is unknown.

        Raises RefNotFound (with suggestions) if the branch does not exist.
        """
        validate_ref(branch)
        self._require_mirror()
        name = _short_name(branch)
        refs = self._refs()
        if _HEADS + name not in refs:
            branches = [_short_name(r) for r in refs if r.startswith(_HEADS)]
            raise self._not_found(f"branch '{name}'", name, branches)
        try:
            commit = self._sha_arg(sha)
        except RefNotFound:
            return False
        return self._is_ancestor(commit, _HEADS + name)

    def branches(self) -> list[str]:
        """Every mirrored branch (short names, sorted)."""
        return sorted(_short_name(r) for r in self._refs() if r.startswith(_HEADS))

    def branches_containing(self, sha: str) -> list[str]:
        """The mirrored branches (short names, sorted) from which commit ``sha`` is reachable.

        Empty when the commit is unknown. One git call, however many branches there are.
        """
        self._require_mirror()
        try:
            commit = self._sha_arg(sha)
        except RefNotFound:
            return []
        out = self._out("for-each-ref", "--format=%(refname)", f"--contains={commit}", _HEADS)
        return sorted(_short_name(line.strip()) for line in out.splitlines() if line.strip())

    # ---------------------------------------------------------------- tags

    def create_tag(
        self,
        name: str,
        sha: str,
        message: str,
        *,
        tagger_name: str = "gonogo",
        tagger_email: str = "gonogo@localhost",
    ) -> None:
        """Create the annotated tag ``name`` on commit ``sha`` in the mirror.

        A no-op if the tag already exists on that commit; GitError if it exists elsewhere or a
        branch has the same name. The next fetch prunes it unless it matches ``keep_tags`` or
        was pushed to the mirrored remote.
        """
        validate_ref(name)
        if name.startswith("refs/"):
            raise InvalidRef(f"give the short tag name, not '{name}'")
        with self._lock:
            self._require_mirror()
            commit = self._sha_arg(sha)
            refs = self._refs()
            if _HEADS + name in refs:
                raise GitError(f"cannot create tag '{name}': a branch has that name")
            if _TAGS + name in refs:
                existing = self._peel(_TAGS + name)
                if existing == commit:
                    return
                shown = existing[:12] if existing else "a non-commit"
                raise GitError(f"tag '{name}' already exists on {shown}, not on {commit[:12]}")
            env = {
                "GIT_COMMITTER_NAME": tagger_name,
                "GIT_COMMITTER_EMAIL": tagger_email,
            }
            status, _, err = self._run(
                "tag",
                "--annotate",
                f"--message={message or name}",
                "--end-of-options",
                name,
                commit,
                env=env,
            )
            if status != 0:
                raise GitError(f"cannot create tag '{name}': {_git_message(err)}")

    def push_tag(self, name: str, remote: str) -> None:
        """Push tag ``name`` from the mirror to ``remote`` (URL or path).

        Runs with ``fetch_timeout``; any failure (rejected, unreachable, timeout) raises
        GitError carrying git's message.
        """
        validate_ref(name)
        if not remote or remote.startswith("-") or not remote.isprintable():
            raise GitError(f"invalid remote {remote!r}")
        with self._lock:
            self._require_mirror()
            if _TAGS + name not in self._refs():
                raise self._not_found(
                    f"tag '{name}'", name, [_short_name(r) for r in self._refs() if r.startswith(_TAGS)]
                )
            status, _, err = self._run(
                "push",
                "--quiet",
                "--end-of-options",
                remote,
                f"{_TAGS}{name}:{_TAGS}{name}",
                timeout=self.fetch_timeout,
                env=_NET_ENV,
            )
            if status == 0:
                return
            where = _redact_url(remote)
            if err.startswith("Timeout:") or status == -9:
                raise GitError(f"push of tag '{name}' to {where} timed out after {self.fetch_timeout:g}s")
            raise GitError(f"push of tag '{name}' to {where} failed: {_git_message(err)}")
