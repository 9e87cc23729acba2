"""The command probe: a shell command run through a `CommandRunner` on one host or all hosts."""

from __future__ import annotations

from runners.checks.probe import Context, Outcome, first_line, short
from runners.checks.spec import CommandCheck


def run_command(check: CommandCheck, ctx: Context) -> Outcome:
    """Run the command through `ctx.command_runner` and judge every host's exit code and output."""
    runner = ctx.command_runner
    if runner is None:
        return Outcome(False, error="no command runner configured")
    try:
        outcomes = list(runner(check.command, check.on, check.timeout, name=check.name))
    except Exception as exc:
        return Outcome(False, error=f"command runner failed: {first_line(str(exc)) or type(exc).__name__}")
    if not outcomes:
        return Outcome(False, error="command ran on no host")
    problems: list[str] = []
    for host, code, output in outcomes:
        if code is None:
            problems.append(f"{host}: could not run ({short(first_line(output) or 'error', 80)})")
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
        return Outcome(False, observed, problems[0] + more)
    return Outcome(True, observed)
