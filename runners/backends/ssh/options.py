"""SSHOptions: how the SSH backend connects (the `[ssh]` settings, as the backend reads them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SSHOptions:
    """How the SSH backend connects. `Host.port`/`Host.user`/`Host.gateway` beat these defaults.

    - `user`, `port`: defaults for hosts that set none (an ssh_config entry for the host's
      address wins over these defaults; `Host.user`/`Host.port` win over everything).
    - `identity_file`: the bot's private key, the only one ever offered (no agent, no
      `~/.ssh/id_*`). Required: without it every host is refused with a clear message.
    - `known_hosts`: the known_hosts file to verify against and to save accepted keys to;
      None means `~/.ssh/known_hosts` plus `/etc/ssh/ssh_known_hosts`.
    - `accept_new_host_keys`: explicit opt-in to trust and save keys of unknown hosts (logged).
    - `connect_timeout`: seconds for connect, banner, authentication and gateway tunnel.
    - `ssh_config`: an ssh_config file, so `Host.address` can be an alias (`HostName`, `Port`,
      `User`, `ProxyJump`, `ProxyCommand`). When None, `~/.ssh/config` and `/etc/ssh/ssh_config`.
    - `gateway`: jump host `user@host:port` (or an ssh_config alias; `a,b` for a chain) for
      hosts that have none of their own (`Host.gateway` or an ssh_config `ProxyJump`).
    - `max_handshakes`: connection handshakes in flight per gateway (direct hosts: one group),
      shared by every backend of this process.
    - `sudo_password_env`: name of an environment variable holding the sudo password; when set,
      sudo steps use `sudo -S` and get the password on stdin. It is redacted from all output.
    - `keepalive`: seconds of silence before the client asks the host for a sign of life
      (0 disables liveness checks); `keepalive_count_max`: unanswered intervals before the
      connection is declared dead (so a dead host fails in about `keepalive * count` seconds).
    """

    user: str | None = None
    port: int = 22
    identity_file: str | None = None
    known_hosts: str | None = None
    accept_new_host_keys: bool = False
    connect_timeout: float = 10.0
    ssh_config: str | None = None
    gateway: str | None = None
    max_handshakes: int = 10
    sudo_password_env: str | None = None
    keepalive: float = 15.0
    keepalive_count_max: int = 3
