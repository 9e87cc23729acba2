"""Fetching the mirror from the repository URL, and falling back on what it holds when that fails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.source.errors import FetchFailed
from bot.source.gitdir import NET_ENV, GitDir, git_message, redact_url
from bot.source.rules import TAGS

_MARK_FILE = "gonogo-last-fetch"


@dataclass(frozen=True)
class FetchResult:
    """Outcome of :meth:`Mirror.fetch`; ``fetched_at`` is the time of the last good fetch."""

    ok: bool
    stale: bool
    error: str | None
    fetched_at: datetime | None


class Fetching(GitDir):
    """Mirror's fetch: creating the mirror, then updating it from ``url`` (``keep_tags`` left alone)."""

    url: str
    keep_tags: tuple[str, ...]
    fetch_timeout: float
    initial_fetch_timeout: float | None

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
            raise FetchFailed(f"cannot create the mirror at {self.path}: {git_message(err)}")

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
                *(f"^{TAGS}{glob}" for glob in self.keep_tags),
                timeout=timeout,
                env=NET_ENV,
            )
            if status == 0:
                now = datetime.now(UTC)
                (self.path / _MARK_FILE).write_text(now.isoformat() + "\n")
                return FetchResult(ok=True, stale=False, error=None, fetched_at=now)
            where = redact_url(self.url)
            if err.startswith("Timeout:") or status == -9:
                error = f"fetch from {where} timed out after {timeout:g}s"
            else:
                error = f"fetch from {where} failed: {git_message(err)}"
            if not had_data:
                raise FetchFailed(error)
            return FetchResult(ok=False, stale=True, error=error, fetched_at=self._last_fetch())
