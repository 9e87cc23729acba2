"""Build the SSH backend for an environment from `[ssh]` (paths relative to the config file)."""

from __future__ import annotations

from pathlib import Path

from bot.config import Config, Environment
from runners.base import Backend


def _path(config: Config, value: str | None) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (config.config_dir / path).resolve())


def ssh_backend_for(config: Config, env: Environment) -> Backend:
    """An `SSHBackend` with the bot's key, known_hosts and limits; the env may opt in to new keys."""
    from runners.ssh import SSHBackend, SSHOptions

    ssh = config.ssh
    accept = ssh.accept_new_host_keys if env.accept_new_host_keys is None else env.accept_new_host_keys
    return SSHBackend(
        SSHOptions(
            user=ssh.user,
            port=ssh.port,
            identity_file=_path(config, ssh.identity_file),
            known_hosts=_path(config, ssh.known_hosts),
            accept_new_host_keys=accept,
            connect_timeout=ssh.connect_timeout,
            ssh_config=_path(config, ssh.ssh_config),
            gateway=ssh.gateway,
            max_handshakes=ssh.max_handshakes,
        )
    )
