"""The mirror's fetch: updates, pruning, fallback on failure, timeouts, redaction, serialisation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bot.source import FetchFailed, GitError, Mirror, RefNotFound
from tests.support.gitfixtures import RemoteRepo, hanging_git_server

# --------------------------------------------------------------------------- fetch


def test_fetch_picks_up_new_commits_tags_and_deletions(remote: RemoteRepo, mirror: Mirror) -> None:
    new = remote.commit("brand new")
    remote.tag("v2.0", annotated=True)
    remote.push()
    remote.push_tags()
    remote.git("push", "--quiet", "origin", "--delete", "feature/login")
    with pytest.raises(RefNotFound):
        mirror.resolve("v2.0", "main")
    result = mirror.fetch()
    assert result.ok and result.fetched_at is not None
    assert mirror.resolve("main", "main").sha == new
    assert mirror.resolve("v2.0", "main").sha == new
    with pytest.raises(RefNotFound):
        mirror.resolve("feature/login", "main")  # pruned


def test_fetch_failure_missing_path_falls_back(remote: RemoteRepo, mirror: Mirror, tmp_path: Path) -> None:
    good = mirror.fetch()
    broken = Mirror(str(tmp_path / "does-not-exist"), mirror.path)
    result = broken.fetch()
    assert not result.ok and result.stale
    assert result.error is not None and "does not appear to be a git repository" in result.error
    assert result.fetched_at == good.fetched_at
    assert broken.resolve("main", "main").sha == remote.rev("main")


def test_fetch_timeout_falls_back(remote: RemoteRepo, mirror: Mirror) -> None:
    with hanging_git_server() as url:
        slow = Mirror(url, mirror.path, fetch_timeout=1)
        started = time.monotonic()
        result = slow.fetch()
        elapsed = time.monotonic() - started
    assert not result.ok and result.stale
    assert result.error == "fetch from git://127.0.0.1:" + url.split(":")[2] + " timed out after 1s"
    assert elapsed < 5
    assert slow.resolve(None, "main").sha == remote.rev("main")


def test_first_fetch_failure_raises(tmp_path: Path) -> None:
    m = Mirror(str(tmp_path / "nope"), tmp_path / "m.git")
    with pytest.raises(FetchFailed, match="does not appear"):
        m.fetch()
    with hanging_git_server() as url, pytest.raises(FetchFailed, match="timed out"):
        Mirror(url, tmp_path / "m2.git", fetch_timeout=0.5).fetch()
    with pytest.raises(GitError, match="fetch\\(\\) first"):
        Mirror("x", tmp_path / "never").resolve("main", "main")


def test_credentials_are_redacted(mirror: Mirror, tmp_path: Path) -> None:
    leaky = Mirror("https://bot:s3cret-token@127.0.0.1:1/repo.git", mirror.path, fetch_timeout=5)
    result = leaky.fetch()
    assert not result.ok and result.error is not None
    assert "s3cret" not in result.error and "127.0.0.1:1" in result.error
    assert "s3cret" not in repr(leaky)
    mirror.create_tag("t1", mirror.resolve(None, "main").sha, "x")
    with pytest.raises(GitError) as exc:
        mirror.push_tag("t1", "https://bot:s3cret-token@127.0.0.1:1/repo.git")
    assert "s3cret" not in str(exc.value)
    with pytest.raises(GitError, match="fetch\\(\\) first"):
        Mirror("x", tmp_path / "never").resolve(None, "main")


def test_fetch_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "file").write_text("x")
    with pytest.raises(FetchFailed, match="not a git mirror"):
        Mirror(str(tmp_path), tmp_path / "stuff").fetch()


def test_concurrent_fetches_are_serialised(
    remote: RemoteRepo, mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    active = 0
    peak = 0
    guard = threading.Lock()
    real_run = Mirror._run

    def tracking_run(self: Mirror, *args: str, **kwargs: object) -> tuple[int, str, str]:
        nonlocal active, peak
        if args and args[0] == "fetch":
            with guard:
                active += 1
                peak = max(peak, active)
            time.sleep(0.05)
            try:
                return real_run(self, *args, **kwargs)  # type: ignore[arg-type]
            finally:
                with guard:
                    active -= 1
        return real_run(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Mirror, "_run", tracking_run)
    other = Mirror(remote.url, mirror.path)  # another object for the same path shares the lock
    results = []
    threads = [
        threading.Thread(target=lambda m=m: results.append(m.fetch())) for m in (mirror, other, mirror, other)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 1 and len(results) == 4 and all(r.ok for r in results)
