"""Deploy tags in the mirror: creating, pushing, and keeping them through fetches."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.source import GitError, Mirror, RefNotFound, next_tag_name
from tests.support.gitfixtures import RemoteRepo, run_git

# --------------------------------------------------------------------------- tags


def test_create_and_push_tag(remote: RemoteRepo, mirror: Mirror) -> None:
    target = remote.rev("main~1")
    name = next_tag_name("deploy/{env}/{n}", "prod", 7)
    mirror.create_tag(name, target, "deploy #7 to prod by @ada")
    assert mirror.resolve(name, "main").sha == target
    obj = run_git(f"--git-dir={mirror.path}", "cat-file", "-p", f"refs/tags/{name}")
    assert obj.startswith(f"object {target}\ntype commit\ntag {name}\ntagger gonogo <gonogo@localhost>")
    assert "deploy #7 to prod by @ada" in obj

    mirror.create_tag(name, target[:10], "again")  # same sha: no-op
    with pytest.raises(GitError, match="already exists"):
        mirror.create_tag(name, remote.rev("main"), "moved")
    with pytest.raises(GitError, match="a branch has that name"):
        mirror.create_tag("main", target, "x")
    with pytest.raises(RefNotFound):
        mirror.create_tag("deploy/prod/8", "ffff" * 10, "x")

    mirror.push_tag(name, remote.url)
    assert remote.rev(f"refs/tags/{name}", in_origin=True) == target
    assert remote.git_origin("cat-file", "-t", f"refs/tags/{name}").strip() == "tag"
    mirror.push_tag(name, remote.url)  # idempotent
    # a fetch keeps it now that it is on the remote
    assert mirror.fetch().ok
    assert mirror.resolve(name, "main").sha == target


def test_push_tag_errors_are_git_errors(remote: RemoteRepo, mirror: Mirror, tmp_path: Path) -> None:
    mirror.create_tag("deploy/x/1", remote.rev("main"), "one")
    with pytest.raises(GitError, match="failed") as exc:
        mirror.push_tag("deploy/x/1", str(tmp_path / "nowhere"))
    assert "Traceback" not in str(exc.value)
    with pytest.raises(RefNotFound):
        mirror.push_tag("deploy/x/2", remote.url)
    # the remote already has a different tag with that name: rejected
    remote.tag("deploy/x/1", "main~1")
    remote.push_tags()
    with pytest.raises(GitError, match=r"rejected|already exists"):
        mirror.push_tag("deploy/x/1", remote.url)
    with pytest.raises(GitError, match="invalid remote"):
        mirror.push_tag("deploy/x/1", "--upload-pack=evil")


def test_deploy_tags_survive_the_next_fetch_without_a_push(remote: RemoteRepo, tmp_path: Path) -> None:
    mirror = Mirror(remote.url, tmp_path / "kept.git", fetch_timeout=10, keep_tags=["deploy/prod/*"])
    assert mirror.fetch().ok
    main = remote.rev("main")
    mirror.create_tag("deploy/prod/1", main, "deploy #1 to prod")
    mirror.create_tag("deploy/staging/1", main, "not in keep_tags")
    # the remote still prunes and moves every other tag
    remote.git("push", "--quiet", "origin", "--delete", "v1.0")
    assert mirror.fetch().ok
    assert mirror.fetch().ok
    assert mirror.resolve("deploy/prod/1", "main").sha == main
    tags = run_git(f"--git-dir={mirror.path}", "tag", "--list").split()
    assert "deploy/staging/1" not in tags and "v1.0" not in tags and "v1.1" in tags
    # and it can still be pushed later
    mirror.push_tag("deploy/prod/1", remote.url)
    assert remote.rev("deploy/prod/1", in_origin=True) == main
    assert mirror.fetch().ok and mirror.resolve("deploy/prod/1", "main").sha == main


def test_without_keep_tags_an_unpushed_tag_is_pruned(remote: RemoteRepo, mirror: Mirror) -> None:
    mirror.create_tag("deploy/prod/1", remote.rev("main"), "x")
    assert mirror.fetch().ok
    with pytest.raises(RefNotFound):
        mirror.resolve("deploy/prod/1", "main")
