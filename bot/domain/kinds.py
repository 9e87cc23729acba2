"""What differs between a deploy and a rollback, in one table instead of `kind ==` branches.

A rollback is a deployment (Shipit's `Rollback < Deploy`): the same states, approvals, runs and
records. What it does differently is named here, once, and the engine asks the deployment's
kind (`Deployment.rules`) rather than testing the kind's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.domain.states import State

Kind = Literal["deploy", "rollback"]


@dataclass(frozen=True)
class KindRules:
    """How one kind of deployment behaves, and how it is named."""

    kind: Kind
    #: The card title's verb: "Deploy #3: v2 to prod".
    title: str
    #: How the engine names it in sentences: "prod is busy: deployment #3 of v2 ...".
    noun: str
    #: "#3 deploy v2 ...", as history and status list it.
    short: str
    #: "since ... · deployed by alice".
    verb: str
    #: The stages it runs, in order (each the environment's steps of that name; a rollback's
    #: `undo` is the compensation of the deployment it undoes, see `bot.engine.compensation`).
    stages: tuple[str, ...]
    #: The card's state text while it runs, and once it succeeded.
    running_text: str
    succeeded_text: str
    #: States in which it counts as a success for the DORA figures.
    success_states: frozenset[State]
    #: It ships a release: it may open a monitoring window, go live (deploy tags, sign-off
    #: reminder), be rolled back after a failure, be a rollback's target, and a lock refuses its Go.
    ships_release: bool


DEPLOY = KindRules(
    kind="deploy",
    title="Deploy",
    noun="deployment",
    short="deploy",
    verb="deployed by",
    stages=("pre_deploy", "deploy", "verify"),
    running_text="running",
    succeeded_text="deployed",
    success_states=frozenset({State.SUCCEEDED, State.SIGNED_OFF, State.MONITORING}),
    ships_release=True,
)
ROLLBACK = KindRules(
    kind="rollback",
    title="Rollback",
    noun="rollback",
    short="rollback",
    verb="rolled back by",
    stages=("undo", "rollback"),
    running_text="rolling back",
    succeeded_text="rolled back: the earlier release runs again",
    success_states=frozenset({State.SUCCEEDED, State.SIGNED_OFF}),
    ships_release=False,
)
RULES: dict[str, KindRules] = {"deploy": DEPLOY, "rollback": ROLLBACK}


def rules_for(kind: str) -> KindRules:
    """The rules of `kind` (an unknown kind is treated as a deploy)."""
    return RULES.get(kind, DEPLOY)


__all__ = ["DEPLOY", "ROLLBACK", "RULES", "Kind", "KindRules", "rules_for"]
