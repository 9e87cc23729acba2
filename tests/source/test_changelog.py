"""What the go/no-go card says about a changelog: its lines, the note over them, its warnings."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.source import Changelog, Commit, changelog_lines, changelog_note, changelog_warnings


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


def test_changelog_lines_and_note_for_the_card() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    commits = (
        Commit("b" * 40, "bbbbbbb", "Ada Tester", "second", when),
        Commit("a" * 40, "aaaaaaa", "Bob", "first", when),
    )
    listed = Changelog(commits, 5, False, 0, False, False)
    assert changelog_lines(listed) == ("`bbbbbbb` second (Ada Tester)", "`aaaaaaa` first (Bob)")
    assert changelog_note(listed, "prod", "bbbbbbb") == "5 commit(s), …and 3 more"
    assert changelog_note(Changelog(commits, 2, False, 0, False, False), "prod", "x") == "2 commit(s)"
    assert changelog_note(Changelog((), 0, False, 0, False, False), "prod", "x") == (
        "No new commits: redeploying what runs now"
    )
    assert changelog_note(Changelog(commits, 7, False, 0, True, False), "prod", "x") == (
        "First deploy of prod: 7 commit(s) in history"
    )
    assert changelog_note(Changelog((), 0, True, 3, False, False), "prod", "ccccccc") == (
        "ccccccc is 3 commit(s) behind what prod runs"
    )
