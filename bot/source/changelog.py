"""What a deploy ships: the commits of a changelog and the warnings the card shows about them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

DEFAULT_MAX_COMMITS = 8
"""Warn when a deploy ships more commits than this."""


@dataclass(frozen=True)
class Commit:
    """One commit of a changelog."""

    sha: str
    short: str
    author: str
    subject: str
    committed_at: datetime


@dataclass(frozen=True)
class Changelog:
    """What deploying ``to_sha`` over ``from_sha`` changes.

    ``commits`` are the newest first, at most ``limit``; ``total`` counts all of them.
    ``behind`` means ``to_sha`` is a strict ancestor of ``from_sha`` (a rollback) and
    ``behind_count`` is the number of deployed commits the target does not contain.
    """

    commits: tuple[Commit, ...]
    total: int
    behind: bool
    behind_count: int
    first_deploy: bool
    unknown_base: bool

    def more(self) -> int:
        """How many commits are not listed in ``commits`` (for "and N more")."""
        return max(0, self.total - len(self.commits))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def changelog_warnings(
    cl: Changelog,
    *,
    max_commits: int = DEFAULT_MAX_COMMITS,
    branch_ok: bool = True,
    branch: str | None = None,
    branches: Sequence[str] = (),
) -> list[str]:
    """Human warnings about a changelog, for the go/no-go card (empty list: nothing to say).

    ``branch_ok`` is whether the target is on an allowed branch (see :meth:`Mirror.contains`
    and :meth:`Mirror.branches_containing`); ``branch`` names the one branch, or ``branches``
    the branch globs, in the message.
    """
    warnings: list[str] = []
    if cl.unknown_base:
        warnings.append(
            "the deployed commit is not on any branch or tag any more (force-push?): "
            "the changelog may be wrong"
        )
    if cl.behind:
        warnings.append(
            f"target is {_plural(cl.behind_count, 'commit')} behind what is deployed: "
            "this is a rollback; use /rollback or --force"
        )
    elif cl.behind_count and not cl.first_deploy:
        warnings.append(
            f"target does not contain {_plural(cl.behind_count, 'deployed commit')} "
            "(history diverged): they would be removed"
        )
    if not cl.first_deploy and not cl.unknown_base and cl.total > max_commits:
        warnings.append(f"{cl.total} commits to ship (more than {max_commits}): check the changelog")
    if not branch_ok:
        names = list(branches) or ([branch] if branch else [])
        if len(names) == 1 and not any(c in names[0] for c in "*?["):
            where = f"'{names[0]}'"
        elif names:
            where = f"an allowed branch ({', '.join(names)})"
        else:
            where = "the allowed branch"
        warnings.append(f"target commit is not on {where}")
    return warnings


def changelog_lines(cl: Changelog) -> tuple[str, ...]:
    """The card's changelog, one line per listed commit: `` `short` subject (author) ``, newest first."""
    return tuple(f"`{c.short}` {c.subject} ({c.author})" for c in cl.commits)


def changelog_note(cl: Changelog, env: str, target: str) -> str:
    """The line over the card's changelog: what deploying ``target`` (its short sha) to ``env`` changes."""
    if cl.behind:
        return f"{target} is {cl.behind_count} commit(s) behind what {env} runs"
    if cl.first_deploy:
        return f"First deploy of {env}: {cl.total} commit(s) in history"
    if cl.total == 0:
        return "No new commits: redeploying what runs now"
    return f"{cl.total} commit(s)" + (f", …and {cl.more()} more" if cl.more() else "")
