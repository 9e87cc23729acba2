"""Rules that need the whole runbook to judge: where artifacts come from, whose variables a host
has, which checks a step's `verify` names, and what a gate stops before.

- `{artifact.NAME}` may appear only where an earlier step publishes NAME (`artifacts = [...]`):
  a deploy step's `run` sees what steps before it publish (pre_deploy, then deploy, then
  verify), its `undo` also what the step itself publishes; rollback and restore steps see what
  any deploy step publishes, and what earlier steps of their own stage do.
- `{host.vars.NAME}` must be set on every host the step runs on (its roles; `once`: the first).
- `verify` names checks of the environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.config.reader import Table
from bot.config.schema import GATED_STAGES, Environment
from runners.base import Host, Step
from runners.template import ARTIFACT_PREFIX, HOST_VARS_PREFIX, placeholders

#: Stages in the order a deploy runs them; the others run after (rollback) or on demand (restore).
_DEPLOY_ORDER = ("pre_deploy", "deploy", "verify")
_AFTER = ("rollback", "restore")
#: A gate's question shows on the card; keep it a sentence.
MAX_GATE_TEXT = 300


def check_runbook(t: Table, env: Environment) -> None:
    """Report artifacts used before they are published, host variables hosts lack, and `verify`
    names that are not checks, each at its step's key path."""
    published: dict[str, str] = {}  # artifact → where it is first published
    for stage in _DEPLOY_ORDER:
        for i, step in enumerate(env.stage(stage)):
            where = f"{t.path}.steps.{stage}[{i}]"
            _artifacts(t, f"{where}.run", step.command, published, _later(env, stage, i))
            own = {**published, **{a: where for a in step.artifacts}}
            if step.undo:
                _artifacts(t, f"{where}.undo", step.undo, own, _later(env, stage, i + 1))
            published.update({a: where for a in step.artifacts if a not in published})
    for stage in _AFTER:
        seen = dict(published)
        for i, step in enumerate(env.stage(stage)):
            _artifacts(t, f"{t.path}.steps.{stage}[{i}].run", step.command, seen, {})
            seen.update({a: f"{t.path}.steps.{stage}[{i}]" for a in step.artifacts})
    check_names = {c.name for c in env.checks}
    for stage, steps in env.steps.items():
        for i, step in enumerate(steps):
            where = f"{t.path}.steps.{stage}[{i}]"
            for key, template in (("run", step.command), ("undo", step.undo)):
                if template:
                    _host_vars(t, f"{where}.{key}", template, _targets(env.hosts, step))
            for k, name in enumerate(step.verify):
                if name not in check_names:
                    known = ", ".join(sorted(check_names)) or "none are defined"
                    t.problems.add(f"{where}.verify[{k}]", f"unknown check {name!r} (checks: {known})")


def _later(env: Environment, stage: str, start: int) -> dict[str, str]:
    """Artifacts published from step `start` of `stage` on (for a clearer message)."""
    out: dict[str, str] = {}
    for s in _DEPLOY_ORDER[_DEPLOY_ORDER.index(stage) :]:
        for i, step in enumerate(env.stage(s)):
            if s == stage and i < start:
                continue
            for a in step.artifacts:
                out.setdefault(a, f"{s}[{i}] {step.name!r}")
    return out


def _artifacts(
    t: Table, path: str, template: str, available: Mapping[str, str], later: Mapping[str, str]
) -> None:
    for name in placeholders(template):
        if not name.startswith(ARTIFACT_PREFIX):
            continue
        artifact = name.removeprefix(ARTIFACT_PREFIX)
        if artifact in available:
            continue
        if artifact in later:
            why = f"it is published only later, by {later[artifact]}"
        else:
            known = ", ".join(sorted(available)) or "none"
            why = f"no step publishes it (a step publishes with artifacts = [...]; available here: {known})"
        t.problems.add(path, f"unknown artifact {{{name}}}: {why}")


def _targets(hosts: Iterable[Host], step: Step) -> list[tuple[int, Host]]:
    """The hosts (with their index in `hosts`) a step can run on."""
    matching = [(i, h) for i, h in enumerate(hosts) if not step.roles or set(step.roles) & set(h.roles)]
    return matching[:1] if step.once else matching


def _host_vars(t: Table, path: str, template: str, targets: list[tuple[int, Host]]) -> None:
    for name in placeholders(template):
        if not name.startswith(HOST_VARS_PREFIX):
            continue
        var = name.removeprefix(HOST_VARS_PREFIX)
        for i, host in targets:
            if var not in dict(host.vars):
                t.problems.add(
                    path,
                    f"{{{name}}} is not set for host {host.name} (add {var} to {t.path}.hosts[{i}].vars)",
                )
                break


def parse_gates(t: Table, steps: Mapping[str, tuple[Step, ...]]) -> dict[str, str]:
    """`[gates]`: stage → the question a human answers Go to before that stage starts."""
    g = t.table("gates")
    gates: dict[str, str] = {}
    for stage in GATED_STAGES:
        question = g.get(stage, str, None)
        if question is None:
            continue
        if not question.strip():
            g.problems.add(g.key(stage), "must be the question the card asks (not empty)")
        elif len(question) > MAX_GATE_TEXT:
            g.problems.add(g.key(stage), f"must be at most {MAX_GATE_TEXT} characters")
        elif not steps.get(stage):
            g.problems.add(
                g.key(stage), f"the environment has no {stage} steps, so this gate would never be asked"
            )
        else:
            gates[stage] = question.strip()
    for name in g.data:
        if name not in GATED_STAGES:
            g.problem(name, f"a gate stops before one of: {', '.join(GATED_STAGES)}")
    return gates
