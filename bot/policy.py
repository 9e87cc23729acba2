"""Who may do what in an environment. Pure functions returning a refusal reason or None.

Membership of a user group comes from the directory. When a lookup fails the answer is still
no (fail closed), but the refusal says that the group could not be checked rather than
claiming the user is not in it.
"""

from __future__ import annotations

from bot.chat.base import Directory
from bot.config import Environment
from bot.domain import Deployment


def _member(user: str, users: tuple[str, ...], groups: tuple[str, ...], directory: Directory) -> bool:
    if user in users:
        return True
    return any(user in directory.members(g) for g in groups)


def _refusal(reason: str, question: str, directory: Directory, *group_lists: tuple[str, ...]) -> str:
    """`reason`, unless a group that could have let the user in was not looked up: then why.

    `question` completes "gonogo cannot tell whether ...", e.g. "you are an approver for prod".
    """
    for groups in group_lists:
        for group in groups:
            problem = directory.problem(group)
            if problem:
                return f"{problem}; gonogo cannot tell whether {question}, so it refuses (try again, or ask an admin)"
    return reason


def may_request(env: Environment, user: str, directory: Directory) -> str | None:
    """Refusal reason if `user` may not request deploys/rollbacks in `env`, else None."""
    if not env.requesters and not env.requester_groups:
        return None
    if _member(user, env.requesters, env.requester_groups, directory):
        return None
    if _member(user, env.approvals.approvers, env.approvals.groups, directory):
        return None
    return _refusal(
        f"you are not allowed to deploy to {env.name}",
        f"you may deploy to {env.name}",
        directory,
        env.requester_groups,
        env.approvals.groups,
    )


def may_approve(env: Environment, d: Deployment, user: str, directory: Directory) -> str | None:
    """Refusal reason if `user` may not approve `d`, else None. The requester never may."""
    if user == d.requester:
        return "you requested this deployment; someone else must approve it"
    if not env.approvals.approvers and not env.approvals.groups:
        return None
    if _member(user, env.approvals.approvers, env.approvals.groups, directory):
        return None
    return _refusal(
        f"you are not an approver for {env.name}",
        f"you are an approver for {env.name}",
        directory,
        env.approvals.groups,
    )


def may_operate(env: Environment, user: str, directory: Directory) -> str | None:
    """Refusal reason for lock/unlock/abort/checklist: requesters and approvers may."""
    if may_request(env, user, directory) is None:
        return None
    if _member(user, env.approvals.approvers, env.approvals.groups, directory):
        return None
    return _refusal(
        f"you are not allowed to operate {env.name}",
        f"you may operate {env.name}",
        directory,
        env.requester_groups,
        env.approvals.groups,
    )


def may_sign_off(env: Environment, user: str, directory: Directory) -> str | None:
    """Refusal reason for sign-off: `signoff_by`/`signoff_groups`, else whoever may operate."""
    if env.signoff_by or env.signoff_groups:
        if _member(user, env.signoff_by, env.signoff_groups, directory):
            return None
        return _refusal(
            f"you are not allowed to sign off {env.name}",
            f"you may sign off {env.name}",
            directory,
            env.signoff_groups,
        )
    return may_operate(env, user, directory)


def may_force(env: Environment, user: str, directory: Directory) -> str | None:
    """Refusal reason for --force (break glass): only the environment's break-glass users/groups."""
    if _member(user, env.break_glass, env.break_glass_groups, directory):
        return None
    return _refusal(
        f"--force in {env.name} is only for its break-glass group",
        f"you are in {env.name}'s break-glass group",
        directory,
        env.break_glass_groups,
    )
