"""Who may do what in an environment, and when. Pure functions returning a refusal reason or None.

Membership of a user group comes from the directory. When a lookup fails the answer is still
no (fail closed), but the refusal says that the group could not be checked rather than
claiming the user is not in it.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.chat.base import Directory
from bot.config import Environment
from bot.domain.deployment import Deployment
from bot.domain.windows import check_window, format_next_open

#: (users, groups) pairs: a user listed, or in one of the groups, is in.
Members = tuple[tuple[str, ...], tuple[str, ...]]


def _check(user: str, directory: Directory, *lists: Members) -> tuple[bool, str | None]:
    """(whether `user` is in any list, the first failed group lookup when not)."""
    problem = None
    for users, groups in lists:
        if user in users:
            return True, None
        for group in groups:
            found = directory.lookup(group)
            if user in found.members:
                return True, None
            problem = problem or found.problem
    return False, problem


def _decide(
    user: str, directory: Directory, lists: tuple[Members, ...], reason: str, question: str
) -> str | None:
    """None when `user` is in `lists`; else `reason`, or why a group could not be checked.

    `question` completes "gonogo cannot tell whether ...", e.g. "you are an approver for prod".
    """
    allowed, problem = _check(user, directory, *lists)
    if allowed:
        return None
    if problem:
        return f"{problem}; gonogo cannot tell whether {question}, so it refuses (try again, or ask an admin)"
    return reason


def _requesters(env: Environment) -> tuple[Members, ...]:
    """Who may request in `env`: its requesters and, always, its approvers."""
    return ((env.requesters, env.requester_groups), (env.approvals.approvers, env.approvals.groups))


def may_request(env: Environment, user: str, directory: Directory) -> str | None:
    """Refusal reason if `user` may not request deploys/rollbacks in `env`, else None."""
    if not env.requesters and not env.requester_groups:
        return None
    return _decide(
        user,
        directory,
        _requesters(env),
        f"you are not allowed to deploy to {env.name}",
        f"you may deploy to {env.name}",
    )


def may_approve(env: Environment, d: Deployment, user: str, directory: Directory) -> str | None:
    """Refusal reason if `user` may not approve `d`, else None. The requester never may."""
    if user == d.requester:
        return "you requested this deployment; someone else must approve it"
    if not env.approvals.approvers and not env.approvals.groups:
        return None
    return _decide(
        user,
        directory,
        ((env.approvals.approvers, env.approvals.groups),),
        f"you are not an approver for {env.name}",
        f"you are an approver for {env.name}",
    )


def may_operate(env: Environment, user: str, directory: Directory) -> str | None:
    """Refusal reason for lock/unlock/abort/checklist: whoever may request (requesters and approvers)."""
    if not env.requesters and not env.requester_groups:
        return None
    return _decide(
        user,
        directory,
        _requesters(env),
        f"you are not allowed to operate {env.name}",
        f"you may operate {env.name}",
    )


def may_sign_off(env: Environment, user: str, directory: Directory) -> str | None:
    """Refusal reason for sign-off: `signoff_by`/`signoff_groups`, else whoever may operate."""
    if not env.signoff_by and not env.signoff_groups:
        return may_operate(env, user, directory)
    return _decide(
        user,
        directory,
        ((env.signoff_by, env.signoff_groups),),
        f"you are not allowed to sign off {env.name}",
        f"you may sign off {env.name}",
    )


def may_force(env: Environment, user: str, directory: Directory) -> str | None:
    """Refusal reason for --force (break glass): only the environment's break-glass users/groups."""
    return _decide(
        user,
        directory,
        ((env.break_glass, env.break_glass_groups),),
        f"--force in {env.name} is only for its break-glass group",
        f"you are in {env.name}'s break-glass group",
    )


def window_refusal(env: Environment, when: datetime) -> str | None:
    """Why `env` takes no deploys at `when` (outside its windows, or in a freeze), with when the
    next window opens; None when deploys are allowed then."""
    if not env.deploy_windows and not env.freeze_periods:
        return None
    decision = check_window(when, env.deploy_windows, env.freeze_periods, ZoneInfo(env.timezone))
    if decision.open:
        return None
    nxt = f"; next window opens {format_next_open(decision.next_open)}" if decision.next_open else ""
    return f"{env.name}: {decision.reason}{nxt}"
