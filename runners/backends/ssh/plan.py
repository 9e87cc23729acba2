"""Where each host connects and what it runs, decided without connecting.

`Endpoint` is one connection's resolved address, port, user and route (jump hosts, or an
ssh_config `ProxyCommand`); `SSHPlan` resolves hosts to endpoints (`Host` fields, then the
host's ssh_config entry, then `SSHOptions`) and builds the exact remote command line. The SSH
backend and the dry-run printer share it.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko

from runners.backends.ssh.options import SSHOptions
from runners.base import Host
from runners.command import RemoteCommand, remote_command

SYSTEM_SSH_CONFIGS = ("~/.ssh/config", "/etc/ssh/ssh_config")


@dataclass(frozen=True)
class Endpoint:
    """Where one SSH connection goes: resolved address, port and user, and how it gets there.

    `gateway` is the jump host the connection is tunnelled through (itself an Endpoint, which
    may have its own gateway); `proxy_command` an ssh_config `ProxyCommand` instead.
    """

    name: str
    host: str
    port: int
    user: str
    gateway: Endpoint | None = None
    proxy_command: str | None = None

    @property
    def address(self) -> str:
        """`user@host:port` (IPv6 addresses in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:{self.port}"

    def jumps(self) -> list[Endpoint]:
        """The jump hosts before this endpoint, outermost first."""
        chain: list[Endpoint] = []
        gateway = self.gateway
        while gateway is not None:
            chain.insert(0, gateway)
            gateway = gateway.gateway
        return chain

    @property
    def key(self) -> str:
        """Identifies this connection (its route included): one shared connection per key."""
        route = " -> ".join(e.address for e in [*self.jumps(), self])
        return f"{route} (ProxyCommand {self.proxy_command})" if self.proxy_command else route

    @property
    def handshake_group(self) -> str:
        """The handshake bound this connection counts against: its gateway's, or `direct`."""
        if self.gateway is not None:
            return self.gateway.key
        if self.proxy_command:
            return f"ProxyCommand {self.proxy_command}"
        return "direct"

    def describe(self) -> str:
        """`deploy@10.0.0.5:22 via jump@gw:22`: where the connection goes, and through what."""
        text = self.address
        jumps = self.jumps()
        if jumps:
            text += " via " + " -> ".join(j.address for j in jumps)
        if self.proxy_command:
            text += f" via ProxyCommand {self.proxy_command!r}"
        return text


def _shorthand(spec: str) -> tuple[str | None, str, int | None]:
    """`user@host:port` -> (user, host, port); `host` alone and IPv6 addresses are allowed."""
    user: str | None = None
    if "@" in spec:
        user, spec = spec.rsplit("@", 1)
    port: int | None = None
    if spec.startswith("[") and "]" in spec:
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        return user, host, port
    if spec.count(":") == 1:
        host, _, maybe = spec.partition(":")
        if maybe.isdigit():
            return user, host, int(maybe)
    return user, spec, port


class SSHPlan:
    """Decides, without connecting, where each host connects and what command line it runs.

    The SSH backend connects exactly where `endpoint` says and runs exactly what `command`
    returns; the printer (dry run) prints the same, so a dry run shows the real thing.
    """

    MAX_JUMPS = 8

    def __init__(self, options: SSHOptions) -> None:
        self.options = options
        self.ssh_config = paramiko.SSHConfig()
        if options.ssh_config is not None:
            paths = [Path(options.ssh_config).expanduser()]
            if not paths[0].is_file():
                raise ValueError(f"ssh_config file {options.ssh_config} not found")
        else:
            paths = [p for p in (Path(s).expanduser() for s in SYSTEM_SSH_CONFIGS) if p.is_file()]
        for path in paths:  # the first value found wins, as in OpenSSH: the user's file first
            with open(path, encoding="utf-8") as fh:
                self.ssh_config.parse(fh)
        self._default_user = options.user or getpass.getuser()

    @property
    def uses_sudo_password(self) -> bool:
        """True when sudo steps get a password on stdin (`sudo -S`) instead of `sudo -n`."""
        return self.options.sudo_password_env is not None

    def command(
        self,
        command: str,
        *,
        timeout: float | None,
        env: Mapping[str, str],
        sudo_password: str | None = None,
    ) -> RemoteCommand:
        """The command line (and stdin) the SSH backend runs for a rendered step command.

        `sudo_password` is the password itself when running; None when only printing (a
        placeholder is used: the line does not depend on the password's value).
        """
        password = sudo_password if sudo_password is not None else ("" if self.uses_sudo_password else None)
        return remote_command(command, timeout=timeout, env=env, sudo_password=password)

    def endpoint(self, host: Host) -> Endpoint:
        """Where `host` connects (its ssh_config entry, gateway or ProxyJump resolved)."""
        return self._resolve(
            host.address,
            user=host.user,
            port=host.port,
            gateway=host.gateway,
            default_gateway=self.options.gateway,
            seen=frozenset(),
        )

    def _resolve(
        self,
        name: str,
        *,
        user: str | None,
        port: int | None,
        gateway: str | None,
        default_gateway: str | None,
        seen: frozenset[str],
    ) -> Endpoint:
        if len(seen) > self.MAX_JUMPS:
            raise ValueError(f"jump host chain for {name} is longer than {self.MAX_JUMPS} hops (a loop?)")
        entry = self.ssh_config.lookup(name)
        hostname = str(entry.get("hostname", name))
        resolved_port = port or (int(entry["port"]) if "port" in entry else self.options.port)
        resolved_user = user or entry.get("user") or self._default_user
        jump = gateway
        proxy_command: str | None = None
        if jump is None:
            proxy_jump, command = entry.get("proxyjump"), entry.get("proxycommand")
            if proxy_jump is not None:
                hops = [h.strip() for h in str(proxy_jump).split(",") if h.strip()]
                # `ProxyJump none`, or a ProxyJump naming the host itself (a `Host *` entry that
                # matches the jump host too, or a loop): connect directly, as OpenSSH/Fabric do.
                direct = not hops or str(proxy_jump).strip().lower() == "none"
                if not direct and not any(_shorthand(h)[1] in (name, hostname) or h in seen for h in hops):
                    jump = str(proxy_jump)
            elif command is not None:
                if str(command).strip().lower() != "none":
                    proxy_command = str(command)
            else:
                jump = default_gateway
        via = self._chain(jump, seen | {name}) if jump else None
        return Endpoint(name, hostname, resolved_port, str(resolved_user), via, proxy_command)

    def _chain(self, spec: str, seen: frozenset[str]) -> Endpoint:
        """The last hop of a `a,b,c` jump chain (each hop through the one before it)."""
        previous: Endpoint | None = None
        for hop in (h.strip() for h in spec.split(",") if h.strip()):
            user, host, port = _shorthand(hop)
            endpoint = self._resolve(
                host,
                user=user,
                port=port,
                gateway=None,
                default_gateway=None,
                seen=seen | {hop},
            )
            if previous is not None:  # later hops go through the earlier ones, whatever they say
                endpoint = replace(endpoint, gateway=previous, proxy_command=None)
            previous = replace(endpoint, name=hop)
        if previous is None:
            raise ValueError(f"empty jump host specification {spec!r}")
        return previous
