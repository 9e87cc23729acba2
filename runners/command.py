"""Command lines: how a rendered step command is wrapped for a shell on a host.

`sudo_command` is what `render` emits for `sudo` steps; `remote_command` is how a remote
backend wraps a rendered command with the step timeout, secrets and sudo. The SSH backend runs
exactly what `remote_command` returns and the printer backend prints it, so a dry run shows the
real command line per host and batch. This module sits below the backends and the pipeline:
it imports neither.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

#: Seconds `timeout` waits after SIGTERM before it sends SIGKILL.
KILL_AFTER = 5
#: First line of the environment block sent on stdin; everything before it is skipped.
ENV_MARKER = "#gonogo-env"
#: Reads the `export` lines sent on stdin (after the marker) into the remote shell.
ENV_LOADER = "eval \"$(sed -n '/^" + ENV_MARKER + "$/,$p')\""
_SUDO = ("sudo", "-n", "sh", "-c")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: The shell a timed step runs in: the login shell that runs it without a timeout (sshd runs
#: commands with `$SHELL -c`), so a timeout never changes the shell's dialect.
LOGIN_SHELL = '"${SHELL:-/bin/sh}"'


def sudo_command(command: str) -> str:
    """`command` run as root through passwordless sudo: `sudo -n sh -c '<command>'`."""
    return f"sudo -n sh -c {shlex.quote(command)}"


def format_seconds(seconds: float) -> str:
    """Seconds as `timeout(1)` reads them: `5`, `1.5` (never exponent notation)."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class RemoteCommand:
    """A command line for a remote shell plus what to send on its stdin (then EOF)."""

    line: str
    stdin: str = ""


def remote_command(
    command: str,
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    sudo_password: str | None = None,
) -> RemoteCommand:
    """Wrap a rendered command the way a remote (SSH) backend runs it.

    - `timeout`: `exec timeout --kill-after=5 N "$SHELL" -c '<command>'`, so the remote work
      really stops (exit 124, or 137 when it had to be killed). The command runs in the same
      shell as without a timeout (the login shell; `sh` inside sudo), and `exec` makes a signal
      that kills the command the session's own exit signal (timeout re-raises it), as without
      a timeout.
    - `env`: values travel on stdin (never on any command line, so `ps` on the host cannot see
      them): the line starts with `ENV_LOADER`, which evals the `export K='v'` lines.
    - sudo steps (`sudo_command` form): the timeout and the exports go *inside* sudo; with a
      `sudo_password` the line uses `sudo -S -p ''` and the password is the first stdin line.
    """
    env = dict(env or {})
    for name in env:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name {name!r}")
    inner, sudo = _unwrap_sudo(command)
    use_password = sudo and sudo_password is not None
    body = inner
    if timeout:
        shell = "sh" if sudo else LOGIN_SHELL
        body = f"exec timeout --kill-after={KILL_AFTER} {format_seconds(timeout)} {shell} -c {shlex.quote(inner)}"
    stdin_lines: list[str] = []
    if use_password:
        stdin_lines.append(str(sudo_password))
    if env or use_password:
        body = f"{ENV_LOADER} && {body}"
        stdin_lines.append(ENV_MARKER)
        stdin_lines.extend(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    stdin = "\n".join(stdin_lines) + "\n" if stdin_lines else ""
    if not sudo:
        return RemoteCommand(body, stdin)
    if body == inner:
        return RemoteCommand(command, stdin)
    prefix = "sudo -S -p '' sh -c " if use_password else "sudo -n sh -c "
    return RemoteCommand(prefix + shlex.quote(body), stdin)


def _unwrap_sudo(command: str) -> tuple[str, bool]:
    if not command.startswith("sudo -n sh -c "):
        return command, False
    try:
        parts = shlex.split(command)
    except ValueError:
        return command, False
    if len(parts) == 5 and tuple(parts[:4]) == _SUDO and sudo_command(parts[4]) == command:
        return parts[4], True
    return command, False
