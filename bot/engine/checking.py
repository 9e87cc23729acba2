"""Which checks a deployment runs, as what, and with which values.

- `applicable`: the checks whose rule applies to the deployment (`on` its kind, `since` its
  release: a rollback runs the checks of the release it returns to).
- `concrete`: a check written once for every host becomes one check per host, `name@host`
  (or only for some hosts: a step's `verify`, for the hosts the step ran on).
- `values`: what placeholders are filled with at run time: the values earlier checks captured
  (the deployment's record) and the secrets the checks are given (from the environment).
- `limits`: how each (concrete) check's failures count in the window.

Pure functions over the configuration and the deployment: no store, no chat.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace

from bot.config import Environment
from bot.domain.deployment import Deployment
from runners.checks import Check, CommandCheck, Limit, fill

#: How a per-host copy is named: `health@app1`.
HOST_SEPARATOR = "@"


def applicable(env: Environment, d: Deployment, checks: Iterable[Check]) -> tuple[Check, ...]:
    """The checks that apply to `d` (its kind, and the release it puts in place)."""
    return tuple(c for c in checks if env.rule(c.name).applies(d.kind, d.ref))


def concrete(env: Environment, checks: Iterable[Check], on: Collection[str] | None = None) -> list[Check]:
    """The checks as they run: a per-host check becomes one copy per host, named `name@host`,
    its host placeholders filled (a command check runs on its own host). `on`: only the copies
    for these hosts (a step's `verify` probes the hosts the step just ran on)."""
    out: list[Check] = []
    for check in checks:
        rule = env.rule(check.name)
        if not rule.per_host:
            out.append(check)
            continue
        for host in rule.hosts(env.hosts):
            if on is not None and host.name not in on:
                continue
            copy = fill(check, host.variables(), name=f"{check.name}{HOST_SEPARATOR}{host.name}")
            if isinstance(copy, CommandCheck):
                copy = _on_host(copy, host.name)
            out.append(copy)
    return out


def _on_host(check: CommandCheck, host: str) -> CommandCheck:
    return replace(check, on=host)


def values(
    env: Environment, d: Deployment, checks: Sequence[Check], environ: Mapping[str, str]
) -> tuple[dict[str, object], list[str]]:
    """The run-time values of `checks` (``capture.NAME`` from the record, ``secret.NAME`` from
    `environ` for the secrets they are given) and the secret values, to mask in results."""
    out: dict[str, object] = {f"capture.{k}": v for k, v in d.details.captures.items()}
    secrets: list[str] = []
    names = set(env.secrets)
    for check in checks:
        names.update(env.rule(check.name).secrets)
    for name in sorted(names):
        value = environ.get(name)
        if value:
            out[f"secret.{name}"] = value
            secrets.append(value)
    return out, secrets


def limits(env: Environment, names: Iterable[str]) -> dict[str, Limit]:
    """Each check's limit, by (concrete) name."""
    return {name: env.rule(name).limit for name in names}


def base_name(name: str) -> str:
    """The name a check is written with (`health` for its copy `health@app1`)."""
    return name.split(HOST_SEPARATOR, 1)[0]


__all__ = ["HOST_SEPARATOR", "applicable", "base_name", "concrete", "limits", "values"]
