"""`gonogo doctor`'s checks of an environment: each host over the real backend, its release path,
and the environment's health URLs.

The hosts are reached exactly as a deploy reaches them (`bot.app.backends`, so the SSH backend
with the bot's key and known_hosts), except that doctor never accepts a new host key: it says
so. Each handshake is timed. The release path check only reads: `deploy_to` must be a writable
directory, or the nearest existing parent of it must be (so the first deploy can create it).
"""

from __future__ import annotations

import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from bot.app.backends import backend_factory, ssh_options_for
from bot.app.doctor_services import Finding
from bot.config import Config, Environment
from bot.engine.variables import deploy_root
from runners.base import Backend, Host, HostUnreachable

#: Prints `ok DIR` (DIR: deploy_to, or the nearest existing parent) or `no DIR`.
WRITABLE = (
    'd={path}; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; '
    'if [ -d "$d" ] && [ -w "$d" ]; then echo "ok $d"; else echo "no $d"; fi'
)


def check_environment(config: Config, env: Environment) -> list[Finding]:
    """Every host of `env` (in order), each: reachable, and its release path writable."""
    backend, describe = _backend(config, env)
    path = deploy_root(config, env)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(env.hosts)))) as pool:
            per_host = list(pool.map(lambda h: _host(config, env, backend, describe, h, path), env.hosts))
    finally:
        backend.close()
    return [finding for findings in per_host for finding in findings]


def _backend(config: Config, env: Environment) -> tuple[Backend, str]:
    if env.backend == "local":
        return backend_factory(config)(env, False), "this machine"
    from runners.backends.ssh import SSHBackend

    options = replace(ssh_options_for(config, env), accept_new_host_keys=False)  # doctor only looks
    return SSHBackend(options), "ssh"


def _host(
    config: Config, env: Environment, backend: Backend, kind: str, host: Host, path: str
) -> list[Finding]:
    label = f"{env.name}/{host.name}"
    started = time.monotonic()
    try:
        session = backend.open(host)
    except HostUnreachable as exc:
        return [_unreachable(config, env, label, host, str(exc).removeprefix(f"{host.name}: "))]
    took = time.monotonic() - started
    where = (
        f"{_endpoint(config, env, host)}, host key known, the bot's key accepted" if kind == "ssh" else kind
    )
    found = [Finding(f"ssh {label}" if kind == "ssh" else f"local {label}", "ok",
                     f"{where} (handshake {took:.2f}s)" if kind == "ssh" else "runs on this machine")]  # fmt: skip
    try:
        found.append(_writable(session, label, path, config.ssh.user or "the login user"))
    finally:
        session.close()
    return found


def _writable(session: object, label: str, path: str, user: str) -> Finding:
    outcome = session.run(  # type: ignore[attr-defined]
        WRITABLE.format(path=shlex.quote(path)), timeout=30, env={}, on_output=lambda _: None
    )
    answer = (outcome.output or "").strip().splitlines()[-1:] or [""]
    verdict, _, where = answer[0].partition(" ")
    if outcome.exit_code != 0 or verdict not in ("ok", "no"):
        return Finding(
            f"path {label}", "fail", f"cannot check {path}: {outcome.error or answer[0] or 'no answer'}"
        )
    if verdict == "ok" and where == path:
        return Finding(f"path {label}", "ok", f"{path} is writable")
    if verdict == "ok":
        return Finding(
            f"path {label}",
            "ok",
            f"{path} does not exist yet; {where} is writable, the first deploy creates it",
        )
    return Finding(f"path {label}", "fail", f"{path} cannot be written: {where} is not writable by {user}",
                   f"sudo mkdir -p {shlex.quote(path)} && sudo chown {user} {shlex.quote(path)}, or set deploy_to")  # fmt: skip


def _endpoint(config: Config, env: Environment, host: Host) -> str:
    from runners.backends.ssh import SSHPlan

    try:
        e = SSHPlan(ssh_options_for(config, env)).endpoint(host)
    except ValueError:
        return host.address
    return f"{e.user}@{e.host}:{e.port}"


def _unreachable(config: Config, env: Environment, label: str, host: Host, why: str) -> Finding:
    """The finding for a host the backend could not open, with what to do about it."""
    check = f"ssh {label}"
    where = _endpoint(config, env, host)
    user, _, hostport = where.rpartition("@")
    address, _, port = hostport.rpartition(":")
    known = config.ssh.known_hosts or "~/.ssh/known_hosts"
    key = config.ssh.identity_file or "~/.ssh/gonogo_ed25519"
    accepts = (
        config.ssh.accept_new_host_keys if env.accept_new_host_keys is None else env.accept_new_host_keys
    )
    if "unknown host key" in why:
        if accepts:
            return Finding(check, "warn", f"{why.split(';')[0]}; this environment accepts new keys: the first deploy records it",
                           f"better: check the fingerprint, then ssh-keyscan -p {port} {address} >> {known}")  # fmt: skip
        return Finding(check, "fail", why.split(";")[0],
                       f"check the fingerprint with the host's owner, then: ssh-keyscan -p {port} {address} >> {known}")  # fmt: skip
    fixes = (
        ("host key CHANGED", f"if {address} was rebuilt: ssh-keygen -R '[{address}]:{port}' -f {known}; otherwise suspect a man in the middle"),
        ("connection refused", f"is sshd running on {address} port {port}, and is that the right address? try: ssh -p {port} {user}@{address}"),
        ("authentication failed", f"add the bot's public key ({key}.pub) to ~{user}/.ssh/authorized_keys on {address}"),
        ("identity", f"make the bot's key: ssh-keygen -t ed25519 -N '' -f {key}, set [ssh] identity_file, add {key}.pub to the hosts"),
        ("timed out", f"is {address} up and reachable from here (firewall, VPN, [ssh] gateway or ProxyJump)?"),
        ("cannot resolve", f"check the host's address ({host.address}) or its ssh_config entry"),
    )  # fmt: skip
    fix = next((f for needle, f in fixes if needle in why), f"try: ssh -p {port} {user}@{address}")
    return Finding(check, "fail", f"{where}: {why}", fix)


def check_health(env: Environment) -> list[Finding]:
    """Each HTTP check of `env`, once. Failing is a warning: before the first deploy it may be down."""
    from runners.checks import HttpCheck, run_check

    findings = []
    for check in env.checks:
        if not isinstance(check, HttpCheck):
            continue
        result = run_check(check, env={})
        label = f"health {env.name}/{check.name}"
        if result.ok:
            findings.append(Finding(label, "ok", f"{check.url} answers: {result.summary()}"))
        else:
            findings.append(Finding(label, "warn", f"{check.url}: {result.summary()}",
                                    "if the app runs there already, check the URL and the app; before the first deploy this is expected"))  # fmt: skip
    return findings


__all__ = ["check_environment", "check_health"]
