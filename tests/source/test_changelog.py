"""The changelog warnings the go/no-go card shows."""

from __future__ import annotations

from bot.source import Changelog, changelog_warnings


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


def test_branch_warning_names_the_rules() -> None:
    cl = Changelog((), 0, False, 0, False, False)
    assert changelog_warnings(cl, branch_ok=False, branches=["stable"]) == [
        "target commit is not on 'stable'"
    ]
    assert changelog_warnings(cl, branch_ok=False, branches=["main", "release/*"]) == [
        "target commit is not on an allowed branch (main, release/*)"
    ]
    assert changelog_warnings(cl, branch_ok=False) == ["target commit is not on the allowed branch"]
