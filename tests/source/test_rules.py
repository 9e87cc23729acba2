"""The pure ref rules: ref syntax (checked against git itself), allowed refs, deploy tag names and globs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.source import InvalidRef, Mirror, branch_rules, next_tag_name, ref_allowed, tag_glob, validate_ref

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
