"""Tests for runners.git, on real repositories built in tmp_path (see tests/gitfixtures.py)."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import git
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.source import (
    DEFAULT_MAX_COMMITS,
    AmbiguousRef,
    Changelog,
    FetchFailed,
    GitError,
    InvalidRef,
    Mirror,
    RefNotFound,
    branch_rules,
    changelog_warnings,
    next_tag_name,
    ref_allowed,
    tag_glob,
    validate_ref,
)
from tests.support.gitfixtures import (
    BASE_EPOCH,
    RemoteRepo,
    colliding_commits,
    hanging_git_server,
    make_remote,
    run_git,
)

# --------------------------------------------------------------------------- fixtures


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


def mirror_refs(m: Mirror) -> str:
    return run_git(f"--git-dir={m.path}", "for-each-ref")


# --------------------------------------------------------------------------- validate_ref


@pytest.mark.parametrize(
    "ref",
    [
        "main",
        "feature/login",
        "v1.2.3",
        "release-2024_01",
        "deploy/prod/42",
        "refs/heads/main",
        "abcd",
        "0123456789abcdef0123456789abcdef01234567",
        "user@host",
        "a+b,c=d%",
    ],
)
def test_validate_ref_accepts(ref: str) -> None:
    validate_ref(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "main;rm -rf /",
        "$(id)",
        "`id`",
        "-uhoh",
        "--upload-pack=touch x",
        "a..b",
        "a b",
        "tab\there",
        "nl\nx",
        "nul\x00x",
        "del\x7fx",
        "a|b",
        "a&b",
        "a>b",
        "x'y",
        'x"y',
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[1]",
        "a\\b",
        "@",
        "a@{1}",
        "/a",
        "a/",
        "a//b",
        "a.",
        ".hidden",
        "a/.b",
        "x.lock",
        "a/b.lock/c",
        "{a}",
        "a!b",
        "#x",
        "a\u00a0b",
        "x" * 300,
    ],
)
def test_validate_ref_refuses(ref: str) -> None:
    with pytest.raises(InvalidRef):
        validate_ref(ref)


_ALPHABET = st.sampled_from([*"ab/.-_@{}~^:?*[\\ ;$`'\"lock", "\t", "\x01", "é"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(_ALPHABET, min_size=1, max_size=12))
def test_validate_ref_is_stricter_than_git(ref: str) -> None:
    """Anything validate_ref accepts, git check-ref-format accepts too."""
    try:
        validate_ref(ref)
    except InvalidRef:
        return
    proc = subprocess.run(
        ["git", "check-ref-format", "--allow-onelevel", ref], capture_output=True, check=False
    )
    assert proc.returncode == 0, ref


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


# --------------------------------------------------------------------------- ref_allowed


def test_ref_allowed_globs() -> None:
    patterns = ["main", "v*"]
    assert ref_allowed("main", "branch", patterns) is None
    assert ref_allowed("v1.2", "tag", patterns) is None
    assert ref_allowed("refs/heads/main", "branch", patterns) is None
    assert ref_allowed("Main", "branch", patterns) is not None  # case-sensitive
    assert (
        ref_allowed("feature/x", "branch", patterns, env="prod")
        == "branch 'feature/x' is not allowed in prod (allowed: main, v*; "
        "a pattern without branch:, tag: or sha: matches every kind of ref)"
    )
    # the pitfall the hint is about: an unprefixed "v*" lets a *branch* named v-experimental in
    assert ref_allowed("v-experimental", "branch", patterns) is None
    assert ref_allowed("anything", "sha", []) is None
    # kind-restricted patterns
    kinded = ["branch:main", "tag:v*"]
    assert ref_allowed("v2", "tag", kinded) is None
    assert ref_allowed("v2", "branch", kinded) is not None
    assert ref_allowed("v-experimental", "branch", kinded) == (
        "branch 'v-experimental' is not allowed (allowed: branch:main, tag:v*)"
    )
    assert ref_allowed("refs/tags/v2", "tag", kinded) is None
    assert ref_allowed("main", "tag", kinded) is not None
    assert (
        ref_allowed("abc1234", "sha", kinded)
        == "commit 'abc1234' is not allowed (allowed: branch:main, tag:v*)"
    )
    assert ref_allowed("abc1234", "sha", ["sha:*"]) is None
    assert ref_allowed("release/2024", "branch", ["release/*"]) is None


def test_next_tag_name() -> None:
    assert next_tag_name("deploy/{env}/{n}", "prod", 42) == "deploy/prod/42"
    assert next_tag_name("{env}-{n}", "staging", 1) == "staging-1"
    with pytest.raises(InvalidRef):
        next_tag_name("deploy/{env}/{n}", "pr od", 1)
    with pytest.raises(InvalidRef):
        next_tag_name("deploy/{env.__class__}/{n}", "prod", 1)


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


def test_changelog_warnings() -> None:
    many = Changelog(
        commits=(), total=9, behind=False, behind_count=0, first_deploy=False, unknown_base=False
    )
    assert changelog_warnings(many, max_commits=8, branch_ok=True) == [
        "9 commits to ship (more than 8): check the changelog"
    ]
    assert changelog_warnings(many, max_commits=9, branch_ok=True) == []
    assert changelog_warnings(many, max_commits=9, branch_ok=False, branch="main") == [
        "target commit is not on 'main'"
    ]
    one_behind = Changelog((), 0, True, 1, False, False)
    assert changelog_warnings(one_behind, max_commits=8, branch_ok=True)[0].startswith(
        "target is 1 commit behind"
    )


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


# --------------------------------------------------------------------------- deploy tags and branches


def test_branch_rules_and_tag_globs() -> None:
    assert branch_rules(["branch:main", "tag:v*", "branch:release/*", "v*", "sha:*"]) == ["main", "release/*"]
    assert branch_rules(["main", "v*"]) == []
    assert tag_glob("deploy/{env}/{n}", "prod") == "deploy/prod/*"
    assert tag_glob("{env}-release-{n}-ok", "prod") == "prod-release-*-ok"
    assert tag_glob("d/{n}/{n}", "prod") == "d/*"  # a refspec allows one '*'
    assert tag_glob("deployed-{env}", "prod") == "deployed-prod"
    for bad in ("{n}", "{env} {n}", "../{n}"):
        with pytest.raises(InvalidRef):
            tag_glob(bad, "prod")
    with pytest.raises(InvalidRef):
        Mirror("/nowhere", Path("/tmp/x.git"), keep_tags=["a/*/*"])


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


def test_branches_containing(remote: RemoteRepo, mirror: Mirror) -> None:
    assert mirror.branches() == ["feature/login", "main"]
    assert mirror.branches_containing(remote.rev("main~1")) == ["feature/login", "main"]
    assert mirror.branches_containing(remote.rev("feature/login")) == ["feature/login"]
    assert mirror.branches_containing("ffff" * 10) == []


def test_branch_warning_names_the_rules() -> None:
    cl = Changelog((), 0, False, 0, False, False)
    assert changelog_warnings(cl, branch_ok=False, branches=["stable"]) == [
        "target commit is not on 'stable'"
    ]
    assert changelog_warnings(cl, branch_ok=False, branches=["main", "release/*"]) == [
        "target commit is not on an allowed branch (main, release/*)"
    ]
    assert changelog_warnings(cl, branch_ok=False) == ["target commit is not on the allowed branch"]
