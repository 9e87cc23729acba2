"""Host keys: the known_hosts entries of a backend, the host-key policy and key fingerprints.

An unknown key is refused unless the backend opts in to accepting new keys, in which case it is
logged (host and SHA256 fingerprint) and appended to the known_hosts file. A changed key is
always refused (paramiko raises BadHostKeyException for it).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from pathlib import Path

import paramiko

from runners.base import HostUnreachable

log = logging.getLogger("gonogo.ssh")
SYSTEM_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a public key: `SHA256:base64` without padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(hostname: str, port: int) -> str:
    """How known_hosts names a host: `host` on port 22, else `[host]:port`."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


class KnownHosts:
    """The known_hosts entries of one backend, parsed once and shared by its connections."""

    def __init__(self, path: str | None, *, accept_new: bool = False) -> None:
        self.accept_new = accept_new
        self._keys = paramiko.HostKeys()
        self._lock = threading.Lock()
        if path is not None:
            self.save_path = Path(path).expanduser()
            sources = [self.save_path]
        else:
            sources = [Path(p).expanduser() for p in SYSTEM_KNOWN_HOSTS]
            self.save_path = sources[0]
        for source in sources:
            if source.is_file():
                self._keys.load(str(source))

    def keys_for(self, name: str) -> dict[str, paramiko.PKey]:
        """The known keys (by key type) for a known_hosts name such as `[10.0.0.5]:2222`."""
        with self._lock:
            entry = self._keys.lookup(name)
            return dict(entry) if entry is not None else {}

    def prime(self, client: paramiko.SSHClient, name: str) -> None:
        """Give `client` the known keys of `name`, so paramiko verifies them (and prefers their type)."""
        client_keys = client.get_host_keys()
        for key_type, key in self.keys_for(name).items():
            client_keys.add(name, key_type, key)

    def accept(self, label: str, name: str, key: paramiko.PKey) -> None:
        """Trust a new key: remember it, append it to the known_hosts file and log it."""
        line = f"{name} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            if self._keys.check(name, key):
                return
            self._keys.add(name, key.get_name(), key)
            self.save_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(self.save_path, "a", encoding="ascii") as fh:
                fh.write(line)
        log.warning(
            "%s: accepted new host key for %s (%s %s) and saved it to %s",
            label,
            name,
            key.get_name(),
            fingerprint(key),
            self.save_path,
        )


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Rejects unknown host keys (default) or accepts, saves and logs them (opt-in)."""

    def __init__(self, label: str, known: KnownHosts) -> None:
        self.label = label
        self.known = known

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        """Called by paramiko for a host (or key type) known_hosts does not list."""
        if not self.known.accept_new:
            raise HostUnreachable(
                f"{self.label}: unknown host key for {hostname} ({key.get_name()} {fingerprint(key)}); "
                "add it to known_hosts or set accept_new_host_keys"
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known.accept(self.label, hostname, key)
