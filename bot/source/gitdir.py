"""The plumbing under the mirror: git run as an argument list, and reading refs, commits and counts."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import git

from bot.source.changelog import Commit
from bot.source.errors import GitError, InvalidRef, RefNotFound
from bot.source.rules import HEADS, HEX_RE, TAGS


def redact_url(url: str) -> str:
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


def git_message(stderr: str) -> str:
    """The useful part of git's stderr: fatal/error lines if any, else everything."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    important = [line for line in lines if line.startswith(("fatal:", "error:", "remote:", "!"))]
    return "; ".join(important or lines) or "git failed"


def _when(epoch: str) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=UTC)


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def lock_for(path: Path) -> threading.Lock:
    """The lock serialising writers of the mirror at ``path``, one per real path in the process."""
    key = os.path.realpath(path)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


_LOG_FORMAT = "%H%x00%h%x00%ct%x00%an%x00%s%x00"
# For fetch and push: git must never wait for a password on the terminal (or a credential manager).
NET_ENV = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}


class GitDir:
    """The bare repository at ``path``, read and written through git: the base of :class:`Mirror`'s parts.

    The attributes are set by ``Mirror.__init__``; each part declares the ones it uses.
    """

    path: Path
    _git: git.Git
    _lock: threading.Lock

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
            raise GitError(f"git {args[0]} failed: {git_message(err)}")
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
        out = self._out("for-each-ref", "--format=%(objectname) %(refname)", HEADS, TAGS)
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
        if not isinstance(sha, str) or not HEX_RE.fullmatch(sha):
            raise InvalidRef(f"invalid {what} sha {sha!r}: expected 4 to 40 hex digits")
        full = self._peel(sha.lower())
        if full is None:
            raise RefNotFound(f"unknown {what} '{sha}'")
        return full

    def _reachable(self, sha: str) -> bool:
        """Is the commit reachable from any mirrored branch or tag?"""
        out = self._out("for-each-ref", "--count=1", "--format=%(refname)", f"--contains={sha}", HEADS, TAGS)
        return bool(out.strip())
