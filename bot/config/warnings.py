"""Warnings: what loads but will fail or mislead at run time (an SSH key not set, a secret too short).

Named after `Config.warnings`, where they end up; they are judged against the environment the
bot runs in, so they never stop a load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.config.schema import Environment, SSHConfig
from runners.redact import MIN_SECRET_LENGTH, weak_secrets


def ssh_warnings(
    ssh: SSHConfig, environments: Iterable[Environment], environ: Mapping[str, str]
) -> list[str]:
    """What will stop SSH environments at run time although the file itself is valid."""
    uses_ssh = [env.name for env in environments if env.backend == "ssh"]
    out = []
    if uses_ssh and not ssh.identity_file:
        out.append(
            f"ssh.identity_file: not set, so every host of {', '.join(uses_ssh)} will be refused "
            "(gonogo offers only its own key: no agent, no ~/.ssh keys)"
        )
    if uses_ssh and ssh.sudo_password_env and not environ.get(ssh.sudo_password_env):
        out.append(f"ssh.sudo_password_env: {ssh.sudo_password_env} is not set in the environment")
    return out


def secret_warnings(environments: Iterable[Environment], environ: Mapping[str, str]) -> list[str]:
    """Warnings for secrets whose value (set in `environ`) is too short to be redacted safely.

    Values come from the environment, so this can only be judged where the bot runs; the
    warning names the variable, never its value.
    """
    out = []
    for env in environments:
        named = [(f"secrets[{i}]", name) for i, name in enumerate(env.secrets)]
        named += [
            (f"steps.{stage}[{i}].secrets[{k}]", name)
            for stage, steps in env.steps.items()
            for i, step in enumerate(steps)
            for k, name in enumerate(step.secrets)
        ]
        for where, name in named:
            if weak_secrets([environ.get(name) or ""]):
                out.append(
                    f"environments.{env.name}.{where}: the value of {name} is shorter than "
                    f"{MIN_SECRET_LENGTH} characters: it is masked wherever those characters appear, "
                    "also in unrelated output, and a value that short is easy to guess; use a longer secret"
                )
    return out
