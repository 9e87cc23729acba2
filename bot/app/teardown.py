"""Leave nothing behind: when the terminal chat quits, local environments' `stop` steps run.

The demo's `stop` step stops the app its deploys started on this machine (port 8642), so a
second demo (another folder, or `./scripts/run.sh` again) finds the port free. Only
`backend = "local"` environments may have `stop` steps (config check says so): quitting a chat
never touches a remote host. `--keep-running` skips them.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.app.backends import backend_factory
from bot.config import Config, Environment
from bot.engine.variables import env_variables
from runners.base import StepResult
from runners.pipeline import Pipeline
from runners.strategy import Strategy


def stop_local_apps(config: Config, say: Callable[[str], None]) -> int:
    """Run the `stop` steps of every local environment; say what they did. Failed steps (count returned)."""
    failed = 0
    for env in config.environments.values():
        if env.backend != "local" or not env.stage("stop"):
            continue
        for step in _run_stop(config, env):
            for host in step.hosts:
                if not host.ok:
                    failed += 1
                    say(f"({env.name}: {step.step} failed: {host.describe()})")
                    continue
                for line in host.output.splitlines():
                    if line.strip():
                        say(f"({env.name}: {line.strip()}; --keep-running leaves it up)")
    return failed


def _run_stop(config: Config, env: Environment) -> list[StepResult]:
    pipeline = Pipeline(
        backend_factory(config)(env, False),
        env.hosts,
        Strategy("sequential"),
        env_variables(config, env),
    )
    try:
        return pipeline.run_stage("stop", env.stage("stop")).steps
    finally:
        pipeline.close()


__all__ = ["stop_local_apps"]
