"""Fixtures of the git tests: a remote built once per module, copied per test, and its mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.source import Mirror
from tests.support.gitfixtures import RemoteRepo, make_remote


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> RemoteRepo:
    """origin: main (initial + 4 commits), branch feature/login (2 more), tags v1.0 (lightweight,
    on main~2) and v1.1 (annotated, on main), all pushed. Built once, copied per test."""
    r = make_remote(tmp_path_factory.mktemp("template"))
    r.commits(2)
    r.tag("v1.0")
    r.commits(2)
    r.tag("v1.1", annotated=True)
    r.checkout("feature/login", new=True)
    r.commits(2, prefix="login")
    r.push()
    r.checkout("main")
    r.push()
    r.push_tags()
    return r


@pytest.fixture
def remote(template: RemoteRepo, tmp_path: Path) -> RemoteRepo:
    return template.copy_to(tmp_path)


@pytest.fixture
def mirror(remote: RemoteRepo, tmp_path: Path) -> Mirror:
    m = Mirror(remote.url, tmp_path / "mirror.git", fetch_timeout=10)
    result = m.fetch()
    assert result.ok and not result.stale and result.error is None
    return m
