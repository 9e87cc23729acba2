"""Compensation: what a rollback undoes of the deployment it rolls back, as a saga.

A rollback first runs the `undo` of every step the undone deployment finished, newest first
(batch by batch, the last batch first; each undo on exactly the hosts where its step finished
in that batch: one host for a `once` step), then the environment's rollback steps. A run goes
stage by stage, batch by batch, step by step, so that is the reverse of the order they ran in. What it runs comes from the undone deployment's
record (`details.ran`), so it is exact also after an interrupted run: a host whose outcome was
never recorded (the process died mid-step) is not undone blindly, and the plan says so. A step
without `undo` is skipped, and the plan says that too.

An irreversible step stops the saga unless a human chose what to do about it (`recovery`):
"undo" runs its undo like any other, "restore" runs the environment's restore steps in its
place (once, for every irreversible step that ran). Without a choice the undo stops at the
step: it and the steps before it are not undone (an automatic rollback never gets this far:
`Failures` asks the humans first).

Every undo sees the variables of the deployment it undoes (its release dir, ref, artifacts),
never those of the release the rollback puts back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.config import Environment
from bot.domain.deployment import Deployment
from bot.domain.details import StepRun
from runners import Host, Planned, Step

#: The pseudo-stage a rollback runs its compensation in, before its rollback steps.
UNDO_STAGE = "undo"
#: The order of the stages a deploy runs (its record is undone in reverse).
_STAGE_ORDER = {"pre_deploy": 0, "deploy": 1, "verify": 2}
#: What a human may choose after an irreversible step ran.
CHOICE_LABELS = {
    "undo": "Undo: run its undo",
    "restore": "Restore from backup",
    "hold": "Hold: change nothing",
}


@dataclass(frozen=True)
class UndoPlan:
    """The undo steps a rollback runs, in order, and a line for each step it skips."""

    steps: tuple[Planned, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Irreversible:
    """An irreversible step that ran (or may have: its outcome is unknown) somewhere."""

    run: StepRun
    step: Step

    def describe(self) -> str:
        """`deploy › drop old tables (on db1)`."""
        hosts = (*self.run.hosts(), *self.run.unknown())
        return f"{self.run.stage} › {self.step.name} (on {', '.join(hosts)})"


def config_step(env: Environment, run: StepRun) -> Step | None:
    """The configured step a record names (by position, else by name; None: no longer configured)."""
    steps = env.stage(run.stage)
    if 0 <= run.index < len(steps) and steps[run.index].name == run.step:
        return steps[run.index]
    return next((s for s in steps if s.name == run.step), None)


def irreversible_ran(env: Environment, d: Deployment) -> list[Irreversible]:
    """The irreversible steps of `d` that finished (or may have) somewhere, newest first."""
    out = []
    for run in sorted(d.details.ran, key=lambda r: (_STAGE_ORDER.get(r.stage, 9), r.index), reverse=True):
        step = config_step(env, run)
        if step is not None and step.irreversible and (run.finished or run.unknown()):
            out.append(Irreversible(run, step))
    return out


def choices(found: Sequence[Irreversible]) -> tuple[str, ...]:
    """The choices every irreversible step that ran offers (in their configured order)."""
    if not found:
        return ()
    common = [c for c in found[0].step.on_failure if all(c in f.step.on_failure for f in found)]
    return tuple(common) or ("hold",)


def compensates(env: Environment) -> bool:
    """True when some step of `env` can be undone or stands for a choice (an environment without
    any `undo` or irreversible step has nothing to compensate, and says nothing about it)."""
    return any(
        s.undo or s.irreversible for stage in ("pre_deploy", "deploy", "verify") for s in env.stage(stage)
    )


def _units(runs: Sequence[StepRun]) -> list[tuple[StepRun, tuple[str, ...]]]:
    """Each step's hosts per batch, newest first: the reverse of the order they ran in (a step
    cut off mid-run is a unit without hosts: nothing to undo, but an irreversible one stops)."""
    units = [
        ((_STAGE_ORDER.get(run.stage, 9), batch, run.index), run, hosts)
        for run in runs
        for batch, hosts in run.batches().items()
    ]
    units += [((_STAGE_ORDER.get(r.stage, 9), r.running_batch, r.index), r, ()) for r in runs if r.running]
    units.sort(key=lambda u: u[0], reverse=True)
    return [(run, hosts) for _, run, hosts in units]


def plan_undo(
    env: Environment,
    undone: Deployment,
    variables: Mapping[str, object],
    recovery: str | None = None,
) -> UndoPlan:
    """The compensation of `undone` (see the module docstring); `variables` are its own."""
    known = {h.name: h for h in env.hosts}
    steps: list[Planned] = []
    notes: list[str] = [
        f"not undone on {', '.join(run.unknown())}: {run.stage} › {run.step} was cut off there, its outcome is unknown"
        for run in undone.details.ran
        if run.unknown()
    ]
    restored = False
    for run, hosts in _units(undone.details.ran):
        step = config_step(env, run)
        where = f"{run.stage} › {run.step}"
        if step is None:
            _note(notes, f"skipped {where}: it is no longer in the config")
        elif not hosts and not step.irreversible:
            continue  # cut off there: said above
        elif step.irreversible and recovery not in ("undo", "restore"):
            notes.append(
                f"stopped at {where}: it is irreversible and nobody chose how to undo it; it and earlier steps are not undone"
            )
            break
        elif step.irreversible and recovery == "restore":
            if not restored:
                steps.extend(_restore_steps(env, variables))
                notes.append(f"restore steps run in place of the undo of {where}")
            restored = True
        elif not step.undo:
            _note(notes, f"skipped {where}: it has no undo")
        elif hosts:
            targets = tuple(known[h] for h in hosts if h in known)
            if missing := [h for h in hosts if h not in known]:
                notes.append(f"not undone on {', '.join(missing)}: no longer a host of {env.name}")
            undo = Step(
                name=where, command=step.undo, timeout=step.timeout, sudo=step.sudo, secrets=step.secrets
            )
            steps.append(Planned(undo, targets, variables))
            notes.append(f"undo {where} on {', '.join(h.name for h in targets)}")
    return UndoPlan(tuple(steps), tuple(notes))


def _note(notes: list[str], note: str) -> None:
    if note not in notes:
        notes.append(note)


def _restore_steps(env: Environment, variables: Mapping[str, object]) -> list[Planned]:
    """The environment's restore steps, each on its hosts (roles; `once`: the first)."""
    out = []
    for step in env.stage("restore"):
        targets: tuple[Host, ...] = tuple(
            h for h in env.hosts if not step.roles or set(step.roles) & set(h.roles)
        )
        if step.once:
            targets = targets[:1]
        named = Step(
            name=f"restore › {step.name}",
            command=step.command,
            timeout=step.timeout,
            sudo=step.sudo,
            secrets=step.secrets,
            artifacts=step.artifacts,
        )
        out.append(Planned(named, targets, variables))
    return out


__all__ = [
    "CHOICE_LABELS",
    "UNDO_STAGE",
    "Irreversible",
    "UndoPlan",
    "choices",
    "compensates",
    "config_step",
    "irreversible_ran",
    "plan_undo",
]
