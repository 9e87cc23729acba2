"""Command checks through a command runner."""

from __future__ import annotations

from collections.abc import Sequence

from runners.checks import CommandCheck, run_check
from tests.runners.checks.helpers import local_runner


def test_command_checks() -> None:
    res = run_check(CommandCheck("ok", "echo ready"), env={}, command_runner=local_runner)
    assert res.ok and res.observed == "exit 0" and res.kind == "command"
    res = run_check(
        CommandCheck("ok", "echo ready", output_contains="ready"), env={}, command_runner=local_runner
    )
    assert res.ok
    res = run_check(
        CommandCheck("c", "echo nope", output_contains="ready"), env={}, command_runner=local_runner
    )
    assert not res.ok and res.error == "web-1: output does not contain 'ready'"
    res = run_check(CommandCheck("c", "exit 3"), env={}, command_runner=local_runner)
    assert not res.ok and res.error == "web-1: exit 3, expected 0" and res.observed == "exit 3"
    assert run_check(CommandCheck("c", "exit 3", expect_exit=3), env={}, command_runner=local_runner).ok
    res = run_check(CommandCheck("c", 'test "$HOST" = web-1', on="all"), env={}, command_runner=local_runner)
    assert not res.ok and res.observed == "1/2 hosts ok" and res.error == "web-2: exit 1, expected 0"
    res = run_check(CommandCheck("c", "exit 1", on="all"), env={}, command_runner=local_runner)
    assert res.error == "web-1: exit 1, expected 0 (and 1 more)"
    res = run_check(CommandCheck("c", "sleep 5", timeout=0.2), env={}, command_runner=local_runner)
    assert not res.ok and (res.error or "").startswith("web-1: could not run (timed out")


def test_command_runner_problems() -> None:
    res = run_check(CommandCheck("c", "true"), env={})
    assert not res.ok and res.error == "no command runner configured"

    def broken(command: str, on: str, timeout: float, *, name: str) -> Sequence[tuple[str, int | None, str]]:
        raise OSError("ssh: connect to host web-1 port 22: Connection refused")

    res = run_check(CommandCheck("c", "true"), env={}, command_runner=broken)
    assert (
        not res.ok
        and res.error == "command runner failed: ssh: connect to host web-1 port 22: Connection refused"
    )
    res = run_check(CommandCheck("c", "true"), env={}, command_runner=lambda c, o, t, *, name: [])
    assert not res.ok and res.error == "command ran on no host"
