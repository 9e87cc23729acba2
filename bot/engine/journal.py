"""A deployment's name in the hosts' step journals (`runners.journal`), and the steps a resume is
unsure of: started on a host, their outcome never recorded (the host's journal decides)."""

from __future__ import annotations

from bot.domain.deployment import Deployment
from runners.journal import step_key


def journal_name(d: Deployment) -> str:
    """`d`'s name in the hosts' step journals: its id and when it was made (`17-1796241410`), so a
    new store's deployment 17 never reads an old one's record on a shared host."""
    return f"{d.id}-{int(d.created_at.timestamp())}"


def unsure_steps(d: Deployment) -> dict[str, tuple[str, ...]]:
    """Journal name → the hosts each step started on whose outcome the bot never recorded (the
    run was cut off), as `Pipeline(unsure=...)` takes them."""
    name = journal_name(d)
    return {
        f"{name}/{step_key(r.stage, r.running_batch, r.index, r.step)}": r.unknown()
        for r in d.details.ran
        if r.unknown()
    }


__all__ = ["journal_name", "unsure_steps"]
