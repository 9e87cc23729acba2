"""The variables a deployment's step commands see: `{ref}`, `{sha}`, `{release_dir}`..., and
`{capture.NAME}`, what its checks captured so far.

Templates substitute them shell-quoted (`runners.template`); the release layout (where releases
live under `deploy_to`) is `runners.release.ReleaseLayout`'s.
"""

from __future__ import annotations

from bot.config import Config, Environment
from bot.domain.deployment import Deployment
from runners.release import ReleaseLayout


def step_variables(
    config: Config, env: Environment, d: Deployment, current: Deployment | None
) -> dict[str, object]:
    """The template variables of `d`'s steps in `env` (`current`: what the environment runs now)."""
    data_dir = str(config.bot.data_dir)
    config_dir = str(config.config_dir)
    layout = ReleaseLayout(deploy_root(config, env))
    release_id = d.release_id or d.id
    previous = (current.release_id or current.id) if current else None
    return {
        **env.vars,
        "ref": d.ref,
        "sha": d.sha or d.ref,
        "deploy_id": d.id,
        "env": env.name,
        "release_id": release_id,
        **layout.variables(release_id),
        "previous_release_dir": layout.release_dir(previous) if previous else "",
        "requester": d.requester,
        "config_dir": config_dir,
        "data_dir": data_dir,
        "keep_releases": env.keep_releases,
        **{f"capture.{name}": value for name, value in d.details.captures.items()},
    }


def deploy_root(config: Config, env: Environment) -> str:
    """`env`'s `deploy_to` with `{data_dir}`, `{config_dir}` and `{env}` filled in."""
    return (
        env.deploy_to.replace("{data_dir}", str(config.bot.data_dir))
        .replace("{config_dir}", str(config.config_dir))
        .replace("{env}", env.name)
    )


def env_variables(config: Config, env: Environment) -> dict[str, object]:
    """The variables of `env` that no deployment decides (for steps run outside a deploy:
    the `stop` stage, `gonogo doctor`): `vars`, `{env}`, the layout's directories and the bot's."""
    layout = ReleaseLayout(deploy_root(config, env))
    return {
        **env.vars,
        "env": env.name,
        "deploy_to": layout.deploy_to,
        "releases_dir": layout.releases_dir,
        "current_dir": layout.current_dir,
        "config_dir": str(config.config_dir),
        "data_dir": str(config.bot.data_dir),
        "keep_releases": env.keep_releases,
    }


__all__ = ["deploy_root", "env_variables", "step_variables"]
