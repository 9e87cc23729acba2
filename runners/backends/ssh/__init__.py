"""SSH backend on Fabric 3 / paramiko, with verified host keys and timeouts that stop remote work.

    backend = SSHBackend(SSHOptions(user="deploy", identity_file="~/.ssh/gonogo_ed25519"))
    session = backend.open(Host("web1", "web1.internal"))   # HostUnreachable names the host
    session.run("uptime", timeout=30, env={"TOKEN": "..."}, on_output=print)
    backend.close()

What it does beyond Fabric's defaults (see DESIGN §4):

- Host keys are checked against known_hosts (parsed once per backend). An unknown key is
  rejected unless `accept_new_host_keys` is set, in which case it is logged (host and SHA256
  fingerprint) and appended to the known_hosts file. A changed key is always refused. Fabric's
  `AutoAddPolicy` is replaced on every connection, gateways included.
- Only the bot's key is offered: `identity_file` is loaded once per backend and handed to each
  connection (`allow_agent=False, look_for_keys=False`, agent forwarding off). Without an
  `identity_file` every host is refused with a message saying so: the agent and `~/.ssh/id_*`
  are never a silent fallback. No Fabric configuration file (`/etc/fabric.*`, `~/.fabric.*`,
  `FABRIC_*` variables) is ever read; connections use one inert Fabric `Config`.
- Where each host connects is decided by `SSHPlan` (also used by the dry-run printer):
  `Host.user`/`Host.port`/`Host.gateway`, then the host's ssh_config entry (`HostName`, `Port`,
  `User`, `ProxyJump`, `ProxyCommand`), then `SSHOptions`. ssh_config's `IdentityFile`,
  `ForwardAgent` and `IdentitiesOnly` are ignored (the bot has one identity).
- Jump hosts, from `gateway` or from ssh_config `ProxyJump` (chains too), are one shared
  connection per jump host per backend, closed by `close()`.
- `connect_timeout` bounds the TCP connect, the SSH banner, authentication and, through a
  gateway, opening the tunnel: a host that accepts TCP and says nothing fails in about that time.
- Handshakes in flight are bounded per gateway (`max_handshakes`; direct connections are one
  group), process-wide: two deploys through one jump host share its bound. The connect clock
  starts once a handshake slot is held, so waiting for a slot is never reported as a timeout.
- Liveness: every `keepalive` seconds of silence the client sends an SSH keepalive that asks
  for a reply; a connection that answers nothing for `keepalive * keepalive_count_max` seconds
  (host stopped, network gone) is closed, and its command fails with
  `host stopped answering (...)` even when the step has no timeout (OpenSSH's
  ServerAliveInterval / ServerAliveCountMax).
- Commands run as `runners.command.remote_command` builds them, on a paramiko channel of the
  host's connection (no extra threads per command): a step timeout becomes
  `exec timeout --kill-after=5 N "$SHELL" -c '...'`, secrets travel on stdin (never on a command
  line), stdin is closed after that. Exit 124/137 is a timeout only when the step ran for its
  whole timeout; a command killed by a signal is `killed by SIGKILL after 0.3s`.
  A client-side guard a bit longer than the step timeout keeps a silent channel from hanging.
- Output streams line by line, per host, to the `on_output` callback (never interleaved).
- One connection per host for the whole deploy; `close()` closes them all.
"""

from runners.backends.ssh.backend import SSHBackend
from runners.backends.ssh.known_hosts import KnownHosts, fingerprint, known_hosts_name
from runners.backends.ssh.options import SSHOptions
from runners.backends.ssh.plan import Endpoint, SSHPlan
from runners.backends.ssh.session import SSHSession
from runners.backends.ssh.transport import PARAMIKO_LOGGER

__all__ = [
    "PARAMIKO_LOGGER",
    "Endpoint",
    "KnownHosts",
    "SSHBackend",
    "SSHOptions",
    "SSHPlan",
    "SSHSession",
    "fingerprint",
    "known_hosts_name",
]
