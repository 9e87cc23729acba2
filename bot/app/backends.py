"""Backends for environments: SSH from `[ssh]`, this machine, and the dry-run printer.

Paths are relative to the config file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Config, Environment
from bot.engine.variables import deploy_root
from runners.base import Backend

if TYPE_CHECKING:
    from runners.backends.ssh import SSHOptions


def _path(config: Config, value: str | None) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (config.config_dir / path).resolve())


def ssh_options_for(config: Config, env: Environment) -> SSHOptions:
    """The SSHOptions of `env`: `[ssh]`, with the environment's own host-key opt-in."""
    from runners.backends.ssh import SSHOptions

    ssh = config.ssh
    accept = ssh.accept_new_host_keys if env.accept_new_host_keys is None else env.accept_new_host_keys
    return SSHOptions(
        user=ssh.user,
        port=ssh.port,
        identity_file=_path(config, ssh.identity_file),
        known_hosts=_path(config, ssh.known_hosts),
        accept_new_host_keys=accept,
        connect_timeout=ssh.connect_timeout,
        ssh_config=_path(config, ssh.ssh_config),
        gateway=ssh.gateway,
        max_handshakes=ssh.max_handshakes,
        sudo_password_env=ssh.sudo_password_env,
        keepalive=ssh.keepalive,
        keepalive_count_max=ssh.keepalive_count_max,
    )


def ssh_backend_for(config: Config, env: Environment) -> Backend:
    """An `SSHBackend` with the bot's key, known_hosts and limits (the env may opt in to new keys),
    its step journal under the env's `deploy_to`."""
    from runners.backends.ssh import SSHBackend

    backend = SSHBackend(ssh_options_for(config, env))
    backend.journal_root = journal_root(config, env)
    backend.journal_keep = env.keep_releases + 1  # pruned as the releases are, and the one under way
    return backend


def journal_root(config: Config, env: Environment) -> str:
    """Where `env`'s hosts keep the step journal: `<deploy_to>/.gonogo/journal` (placeholders
    filled in as for the release layout; pruned with the releases)."""
    return posixpath.join(deploy_root(config, env), ".gonogo", "journal")


def printer_backend_for(config: Config, env: Environment) -> Backend:
    """The dry-run printer standing in for `env`'s real backend: it prints exactly what that
    backend would run (for SSH: where each host connects, and the wrapped command lines)."""
    from runners.backends.printer import PrinterBackend

    if env.backend == "local":
        return PrinterBackend(local=True)
    from runners.backends.ssh import SSHPlan

    return PrinterBackend(plan=SSHPlan(ssh_options_for(config, env)))


def backend_factory(config: Config) -> Callable[[Environment, bool], Backend]:
    """Backends by environment: the printer for dry runs, this machine (its step journal under
    `<data_dir>/journal/<env>`), or SSH (Fabric)."""

    def make(env: Environment, dry_run: bool) -> Backend:
        from runners.backends.local import LocalBackend

        if dry_run:  # prints exactly what the env's real backend would run, where
            return printer_backend_for(config, env)
        if env.backend == "local":
            secrets = frozenset((*env.secrets, *env.step_secrets()))
            journal = str(config.bot.data_dir / "journal" / env.name)
            return LocalBackend(str(config.config_dir), secrets, journal, env.keep_releases + 1)
        return ssh_backend_for(config, env)  # Fabric is only loaded when used

    return make
