"""`gonogo doctor [--env NAME]`: checks the real setup before the first deploy, one line per check.

    ✓ config: gonogo.toml loads (2 environment(s): staging, prod)
    ✓ store: SQLite var/gonogo.db connects and is migrated
    - slack: SLACK_BOT_TOKEN is not set: `gonogo run` opens the terminal chat — fix: …
    ✓ git: git@github.com:acme/shop.git is reachable; main is 1a2b3c4
    ✓ ssh prod/web1: deploy@10.0.0.5:22, host key known, the bot's key accepted (handshake 0.21s)
    ✗ ssh prod/web2: unknown host key for 10.0.0.6 (ssh-ed25519 SHA256:…) — fix: …
    ✓ path prod/web1: /srv/shop is writable
    ! health prod/health: https://shop.example/health: health ✗ … — fix: …

`✓` passed, `!` worth a look, `-` not checked (not configured), `✗` would stop a deploy: then
the exit status is 1. Nothing is changed anywhere: no host key is accepted, no migration is
applied, nothing is written on the hosts. The checks: `doctor_services` (store, Slack, git)
and `doctor_hosts` (hosts, release paths, health URLs).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

from bot.app.doctor_services import Finding, check_git, check_slack, check_store
from bot.config import Config, ConfigError, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`gonogo doctor`'s options."""
    p.add_argument("--env", help="check only this environment's hosts, release paths and health URLs")


def run_doctor(
    path: str, env: str | None, *, environ: Mapping[str, str] | None = None, out: TextIO | None = None
) -> int:
    """Run every check, print one line each; 1 when something would stop a deploy, 2 bad --env."""
    out = out or sys.stdout
    environ = os.environ if environ is None else environ
    try:
        config = load_config(path, environ=environ)
    except ConfigError as exc:
        _say(out, [Finding("config", "fail", p, f"gonogo config check {path}") for p in exc.problems])
        return 1
    if env is not None and env not in config.environments:
        print(
            f"gonogo: doctor --env {env!r}: no such environment ({', '.join(config.environments)})",
            file=sys.stderr,
        )
        return 2
    names = [env] if env else list(config.environments)
    findings = _say(out, _config(path, config))
    findings += _say(out, [check_store(config.bot.store_url)])
    findings += _say(out, check_slack(config, environ))
    findings += _say(out, check_git(config, names))
    findings += _say(out, _environments(config, names))
    failed = sum(f.status == "fail" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    verdict = f"{failed} would stop a deploy" if failed else "nothing would stop a deploy"
    out.write(f"{len(findings)} checks: {verdict}, {warned} worth a look.\n")
    return 1 if failed else 0


def _config(path: str, config: Config) -> list[Finding]:
    envs = ", ".join(config.environments)
    found = [Finding("config", "ok", f"{path} loads ({len(config.environments)} environment(s): {envs})")]
    return found + [Finding("config", "warn", w) for w in config.warnings]


def _environments(config: Config, names: list[str]) -> Iterable[Finding]:
    from bot.app.doctor_hosts import check_environment, check_health

    for name in names:
        env = config.environments[name]
        yield from check_environment(config, env)
        yield from check_health(env)


def _say(out: TextIO, findings: Iterable[Finding]) -> list[Finding]:
    said = []
    for finding in findings:
        out.write(finding.line() + "\n")
        out.flush()
        said.append(finding)
    return said


__all__ = ["add_arguments", "run_doctor"]
