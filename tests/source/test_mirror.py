"""The mirror's reads on real repositories built in tmp_path: resolve, changelog, ancestry, branches."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import git
import pytest

from bot.source import (
    DEFAULT_MAX_COMMITS,
    AmbiguousRef,
    Changelog,
    InvalidRef,
    Mirror,
    RefNotFound,
    changelog_warnings,
)
from tests.support.gitfixtures import BASE_EPOCH, RemoteRepo, colliding_commits, run_git


def mirror_refs(m: Mirror) -> str:
    return run_git(f"--git-dir={m.path}", "for-each-ref")


# --------------------------------------------------------------------------- resolve


def test_resolve_branch_tag_sha_and_default(remote: RemoteRepo, mirror: Mirror) -> None:
    main = remote.rev("main")
    r = mirror.resolve(None, "main")
    assert (r.ref, r.sha, r.kind) == ("main", main, "branch")
    assert r.subject == "change 5"
    assert r.author == "Ada Tester"
    assert r.committed_at.tzinfo is not None and r.committed_at.utcoffset() == UTC.utcoffset(None)
    assert r.committed_at == datetime.fromtimestamp(BASE_EPOCH + 60 * 5, tz=UTC)

    assert mirror.resolve("main", "main") == r
    feature = mirror.resolve("feature/login", "main")
    assert (feature.kind, feature.sha, feature.subject) == ("branch", remote.rev("feature/login"), "login 7")

    light = mirror.resolve("v1.0", "main")
    assert (light.kind, light.sha) == ("tag", remote.rev("main~2"))
    annotated = mirror.resolve("v1.1", "main")  # annotated tag: peeled to the commit
    assert (annotated.kind, annotated.sha) == ("tag", main)
    assert annotated.sha != remote.git("rev-parse", "v1.1").strip()

    full = mirror.resolve(main, "main")
    assert (full.kind, full.sha, full.ref) == ("sha", main, main)
    short = mirror.resolve(main[:7], "main")
    assert (short.kind, short.sha, short.ref) == ("sha", main, main[:7])
    assert mirror.resolve(main[:7].upper(), "main").sha == main
    assert mirror.resolve("refs/tags/v1.0", "main").kind == "tag"


def test_unknown_ref_suggests(mirror: Mirror) -> None:
    with pytest.raises(RefNotFound) as exc:
        mirror.resolve("mian", "main")
    assert exc.value.suggestions == ["main"]
    assert str(exc.value) == "unknown ref 'mian'; did you mean 'main'?"

    with pytest.raises(RefNotFound) as exc:
        mirror.resolve("v1.2", "main")
    assert set(exc.value.suggestions) == {"v1.0", "v1.1"}

    with pytest.raises(RefNotFound) as exc:
        mirror.resolve("completely-different", "main")
    assert exc.value.suggestions == []
    assert "did you mean" not in str(exc.value)

    with pytest.raises(RefNotFound, match="default branch 'mainline'; did you mean 'main'"):
        mirror.resolve(None, "mainline")
    with pytest.raises(RefNotFound, match=r"^unknown default branch 'master'$"):
        mirror.resolve(None, "master")  # too far from 'main' for a suggestion
    with pytest.raises(RefNotFound):
        mirror.resolve("ffff", "main")


def test_ambiguous_abbreviated_sha(remote: RemoteRepo, tmp_path: Path) -> None:
    a, b = colliding_commits(remote)
    m = Mirror(remote.url, tmp_path / "m.git")
    assert m.fetch().ok
    with pytest.raises(AmbiguousRef) as exc:
        m.resolve(a[:4], "main")
    assert set(exc.value.candidates) == {a, b}
    assert "2 commits start with it" in str(exc.value)
    assert a[:7] in str(exc.value) and b[:7] in str(exc.value)
    # one more digit (where they differ) resolves
    n = next(i for i in range(4, 40) if a[i] != b[i]) + 1
    assert m.resolve(a[:n], "main").sha == a


def test_ambiguous_branch_and_tag(remote: RemoteRepo, tmp_path: Path) -> None:
    remote.checkout("release", new=True)
    remote.commit("on release branch")
    remote.push()
    remote.tag("release", "main")
    remote.push_tags()
    m = Mirror(remote.url, tmp_path / "m.git")
    m.fetch()
    with pytest.raises(AmbiguousRef, match="both a branch and a tag"):
        m.resolve("release", "main")
    assert m.resolve("refs/heads/release", "main").sha == remote.rev("refs/heads/release")
    assert m.resolve("refs/tags/release", "main").sha == remote.rev("main")


def test_hex_name_clashing_with_sha_is_ambiguous(remote: RemoteRepo, mirror: Mirror) -> None:
    prefix = remote.rev("main")[:6]
    remote.tag(prefix, "main~1")
    remote.push_tags()
    mirror.fetch()
    with pytest.raises(AmbiguousRef, match="start of commit"):
        mirror.resolve(prefix, "main")


@pytest.mark.parametrize("bad", ["main;rm -rf /", "$(id)", "-uhoh", "a..b", "--upload-pack=x", "main\n"])
def test_dangerous_refs_never_reach_git(
    bad: str, mirror: Mirror, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = mirror_refs(mirror)
    calls: list[object] = []

    def no_git(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise AssertionError("git must not run")

    monkeypatch.setattr(git.Git, "execute", no_git)
    with pytest.raises(InvalidRef):
        mirror.resolve(bad, "main")
    with pytest.raises(InvalidRef):
        mirror.contains(bad, "abcd")
    with pytest.raises(InvalidRef):
        mirror.create_tag(bad, "abcd", "x")
    with pytest.raises(InvalidRef):
        mirror.push_tag(bad, str(tmp_path))
    with pytest.raises(InvalidRef):
        mirror.changelog(bad, "abcd")
    assert calls == []
    monkeypatch.undo()
    assert mirror_refs(mirror) == before


# --------------------------------------------------------------------------- changelog


def test_changelog_contents_order_limit(remote: RemoteRepo, mirror: Mirror) -> None:
    base = remote.rev("main")
    new = remote.commits(5, prefix="ship")
    remote.push()
    mirror.fetch()
    cl = mirror.changelog(base, new[-1])
    assert [c.sha for c in cl.commits] == new[::-1]  # newest first
    assert [c.subject for c in cl.commits] == [f"ship {i}" for i in range(12, 7, -1)]
    assert cl.total == 5 and cl.more() == 0
    assert not cl.behind and cl.behind_count == 0 and not cl.first_deploy and not cl.unknown_base
    first = cl.commits[0]
    assert first.short == first.sha[:7] and first.author == "Ada Tester"
    assert first.committed_at > cl.commits[1].committed_at

    limited = mirror.changelog(base[:8], new[-1][:8], limit=2)
    assert [c.sha for c in limited.commits] == [new[-1], new[-2]]
    assert limited.total == 5 and limited.more() == 3

    same = mirror.changelog(base, base)
    assert same == Changelog((), 0, False, 0, False, False)


def test_changelog_first_deploy(remote: RemoteRepo, mirror: Mirror) -> None:
    cl = mirror.changelog(None, remote.rev("main"), limit=3)
    assert cl.first_deploy and cl.total == 5 and len(cl.commits) == 3 and cl.more() == 2
    assert changelog_warnings(cl, max_commits=1, branch_ok=True) == []


def test_changelog_behind_is_a_rollback(remote: RemoteRepo, mirror: Mirror) -> None:
    deployed = remote.rev("main")
    target = remote.rev("main~3")
    cl = mirror.changelog(deployed, target)
    assert cl.behind and cl.behind_count == 3 and cl.total == 0 and cl.commits == ()
    assert mirror.is_ancestor(target, deployed) and not mirror.is_ancestor(deployed, target)
    assert changelog_warnings(cl, max_commits=DEFAULT_MAX_COMMITS, branch_ok=True) == [
        "target is 3 commits behind what is deployed: this is a rollback; use /rollback or --force"
    ]


def test_changelog_diverged(remote: RemoteRepo, mirror: Mirror) -> None:
    remote.commit("hotfix on main")
    remote.push()
    mirror.fetch()
    cl = mirror.changelog(remote.rev("feature/login"), remote.rev("main"))
    assert not cl.behind and cl.behind_count == 2 and cl.total == 1
    assert [c.subject for c in cl.commits] == ["hotfix on main"]
    assert any("diverged" in w for w in changelog_warnings(cl, max_commits=8, branch_ok=True))


def test_unknown_base_after_force_push(remote: RemoteRepo, mirror: Mirror) -> None:
    deployed = remote.commit("doomed")
    remote.push()
    mirror.fetch()
    new = remote.force_rewrite(drop=1, message="rewritten history")
    fetched = mirror.fetch()
    assert fetched.ok
    assert mirror.resolve("main", "main").sha == new
    cl = mirror.changelog(deployed, new)
    assert cl.unknown_base and not cl.first_deploy
    # the old object is still in the mirror: the range is computed anyway
    assert [c.sha for c in cl.commits] == [new] and cl.behind_count == 1 and not cl.behind
    # an object that was never mirrored at all
    gone = mirror.changelog("deadbeef" * 5, new, limit=2)
    assert gone.unknown_base and gone.total == 6 and len(gone.commits) == 2
    warnings = changelog_warnings(gone, max_commits=1, branch_ok=True)
    assert warnings == [
        "the deployed commit is not on any branch or tag any more (force-push?): the changelog may be wrong"
    ]
    assert not mirror.contains("main", deployed)


def test_is_ancestor_and_contains(remote: RemoteRepo, mirror: Mirror) -> None:
    main, feature = remote.rev("main"), remote.rev("feature/login")
    assert mirror.contains("main", remote.rev("main~1"))
    assert mirror.contains("feature/login", main)
    assert not mirror.contains("main", feature)
    assert not mirror.contains("main", "ffff" * 10)  # unknown commit: not contained
    with pytest.raises(RefNotFound, match="did you mean 'main'"):
        mirror.contains("mainn", main)
    with pytest.raises(RefNotFound):
        mirror.is_ancestor("ffff" * 10, main)
    with pytest.raises(InvalidRef):
        mirror.is_ancestor("main", main)


def test_branches_containing(remote: RemoteRepo, mirror: Mirror) -> None:
    assert mirror.branches() == ["feature/login", "main"]
    assert mirror.branches_containing(remote.rev("main~1")) == ["feature/login", "main"]
    assert mirror.branches_containing(remote.rev("feature/login")) == ["feature/login"]
    assert mirror.branches_containing("ffff" * 10) == []
