"""The command probe: a shell command run through a `CommandRunner` on one host or all hosts."""

from __future__ import annotations

from runners.checks.probe import _first_line, _Outcome, _short
from runners.checks.spec import CommandCheck, CommandRunner


def _run_command(check: CommandCheck, runner: CommandRunner | None) -> _Outcome:
    if runner is None:
        return _Outcome(False, error="no command runner configured")
    try:
        outcomes = list(runner(check.command, check.on, check.timeout))
    except Exception as exc:
        return _Outcome(False, error=f"command runner failed: {_first_line(str(exc)) or type(exc).__name__}")
    if not outcomes:
        return _Outcome(False, error="command ran on no host")
    problems: list[str] = []
    for host, code, output in outcomes:
        if code is None:
            problems.append(f"{host}: could not run ({_short(_first_line(output) or 'error', 80)})")
        elif code != check.expect_exit:
            problems.append(f"{host}: exit {code}, expected {check.expect_exit}")
        elif check.output_contains is not None and check.output_contains not in (output or ""):
            problems.append(f"{host}: output does not contain {check.output_contains!r}")
    if len(outcomes) == 1:
        code = outcomes[0][1]
        observed = f"exit {code}" if code is not None else "not run"
    else:
        observed = f"{len(outcomes) - len(problems)}/{len(outcomes)} hosts ok"
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return _Outcome(False, observed, problems[0] + more)
    return _Outcome(True, observed)
