"""`gonogo init`: a commented starting config for your own project, from questions or flags.

    gonogo init                                   # asks, with defaults in [brackets]
    gonogo init gonogo.toml --yes --repo git@github.com:acme/shop.git \\
        --env staging --env prod --hosts staging=stage1 --hosts 'prod=web*' \\
        --approvers prod=U0ALICE,U0BOB --health-url prod=https://shop.example/health

Hosts are names (or `name=address[:port]`); a glob (`web*`) picks the Host entries of
`~/.ssh/config` (`--ssh-config`), read with paramiko's `SSHConfig`, and the config then points
`[ssh] ssh_config` at that file so the aliases resolve. With `--yes` every question not
answered by a flag takes its default (the repository and each environment's hosts have none).
The file is checked with the config loader before it is written; an existing file is kept
unless `--force`. Bad input is one line naming the flag (or asked again, interactively).
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.app.init_config import STYLES, Answers, EnvAnswer, HostAnswer, render
from bot.config import ConfigError, parse_config

if TYPE_CHECKING:
    import paramiko

DEFAULT_FILE = "gonogo.toml"
DEFAULT_SSH_CONFIG = "~/.ssh/config"
_ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_HOST = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+$")
_PERSON = re.compile(r"^[^\s,\"'\\]+$")


class InitError(Exception):
    """Bad input: one line for the user (the flag or question it concerns, and why)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`gonogo init`'s options."""
    p.add_argument(
        "file", nargs="?", default=DEFAULT_FILE, help=f"where to write it (default {DEFAULT_FILE})"
    )
    p.add_argument("--yes", "-y", action="store_true", help="ask nothing: flags, else defaults")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--repo", help="the repository to deploy (git URL or path)")
    p.add_argument("--branch", help="its default branch (default main)")
    p.add_argument(
        "--env", action="append", dest="envs", metavar="NAME", help="an environment (repeat; default prod)"
    )
    p.add_argument(
        "--hosts",
        action="append",
        default=[],
        metavar="[ENV=]HOSTS",
        help="comma-separated hosts, or globs of ~/.ssh/config Host entries",
    )
    p.add_argument(
        "--ssh-config", help=f"the ssh_config whose Host entries globs pick (default {DEFAULT_SSH_CONFIG})"
    )
    p.add_argument("--user", help="SSH login user (default: the hosts' ssh_config User, else deploy)")
    p.add_argument(
        "--identity-file",
        help="the bot's private key (default: the hosts' IdentityFile, else ~/.ssh/gonogo_ed25519)",
    )
    p.add_argument(
        "--known-hosts", help="known_hosts file (default: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)"
    )
    p.add_argument(
        "--style", choices=STYLES, help="releases (release dirs + current symlink, default) or in-place"
    )
    p.add_argument(
        "--deploy-to", help="where the app lives on the hosts ({env} allowed; default /srv/<repo name>)"
    )
    p.add_argument(
        "--restart", help="command that restarts the app after a deploy (default: none, a commented step)"
    )
    p.add_argument(
        "--approvers", action="append", default=[], metavar="[ENV=]IDS", help="comma-separated Slack user ids"
    )
    p.add_argument(
        "--health-url",
        action="append",
        default=[],
        metavar="[ENV=]URL",
        help="a URL that answers 200 when the app is healthy",
    )
    p.add_argument("--channel", help="the deploy channel (default #deploys)")  # fmt: skip


@dataclass
class Asker:
    """Answers from flags first, then (unless `yes`) from the user, else the default."""

    yes: bool
    stdin: TextIO
    out: TextIO
    asked: list[str] = field(default_factory=list)

    def ask(
        self,
        question: str,
        given: str | None,
        default: str | None,
        check: Callable[[str], str],
        *,
        flag: str = "a flag",
    ) -> str:
        """The checked answer to `question`: `given` (a flag), else asked, else `default`."""
        if given is not None:
            return check(given)
        if self.yes:
            if default is None:
                raise InitError(f"{question}: no default with --yes; give {flag}")
            return check(default)
        while True:
            shown = f" [{default}]" if default else ""
            self.out.write(f"{question}{shown}: ")
            self.out.flush()
            line = self.stdin.readline()
            if not line:
                raise InitError(f"{question}: no answer (input ended); pass --yes to take the defaults")
            answer = line.strip() or (default or "")
            try:
                return check(answer)
            except InitError as exc:
                self.out.write(f"  {exc}\n")


def run_init(args: argparse.Namespace, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """`gonogo init`: gather, render, check, write. 0 written, 2 bad input or file kept."""
    out = out or sys.stdout
    target = Path(args.file)
    if target.exists() and not args.force:
        print(f"gonogo init: {target} exists; keeping it (--force overwrites)", file=sys.stderr)
        return 2
    try:
        answers = gather(args, Asker(args.yes, stdin or sys.stdin, out))
        text = render(answers)
        problems = _problems(text, target)
    except InitError as exc:
        print(f"gonogo init: {exc}", file=sys.stderr)
        return 2
    if problems:
        print(
            f"gonogo init: the config would not load, nothing written: {'; '.join(problems)}", file=sys.stderr
        )
        return 2
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    out.write(
        f"Wrote {target} ({len(answers.environments)} environment(s): "
        f"{', '.join(e.name for e in answers.environments)}).\n"
        f"Next: gonogo config check {target}, then gonogo doctor --config {target}\n"
    )
    return 0


def _problems(text: str, target: Path) -> list[str]:
    import tomllib

    try:
        parse_config(tomllib.loads(text), source=target.resolve(), environ={})
    except ConfigError as exc:
        return exc.problems
    return []


def gather(args: argparse.Namespace, asker: Asker) -> Answers:
    """Every answer, from flags, questions or defaults; InitError for bad input."""
    repo = asker.ask("Repository to deploy (git URL or path)", args.repo, None, _repo, flag="--repo")
    branch = asker.ask("Default branch", args.branch, "main", _word("--branch"))
    given_envs = ",".join(args.envs) if args.envs else None
    names = asker.ask("Environments (comma-separated)", given_envs, "prod", _envs)
    envs = [n.strip() for n in names.split(",")]
    ssh_path = Path(args.ssh_config or DEFAULT_SSH_CONFIG).expanduser()
    entries = SshEntries(ssh_path)
    hosts = _per_env(args.hosts, envs, "--hosts")
    approvers = _per_env(args.approvers, envs, "--approvers")
    health = _per_env(args.health_url, envs, "--health-url")
    answered = []
    for env in envs:
        hint = f" ({', '.join(entries.names[:8])} in {ssh_path})" if entries.names else ""
        check_hosts = functools.partial(_hosts_check, env=env, entries=entries)
        host_list = asker.ask(
            f"Hosts of {env}{hint}", hosts.get(env), None, check_hosts, flag=f"--hosts {env}=…"
        )
        picked = entries.expand(host_list, env)
        people = asker.ask(
            f"Approvers of {env} (Slack user ids; empty: anyone but the requester)",
            approvers.get(env),
            "",
            _people,
        )
        url = asker.ask(f"Health URL of {env} (empty: none)", health.get(env), "", _url)
        answered.append(EnvAnswer(env, picked, tuple(p for p in people.split(",") if p), url or None))
    aliases = [h for e in answered for h in e.hosts if h.address is None and h.name in entries.names]
    user_default, key_default = entries.common(aliases)
    style = asker.ask(f"Deploy style ({' or '.join(STYLES)})", args.style, "releases", _choice(STYLES))
    app = re.sub(r"\.git$", "", repo.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]) or "app"
    return Answers(
        repo=repo,
        branch=branch,
        environments=tuple(answered),
        user=asker.ask("SSH user", args.user, user_default or "deploy", _word("--user")),
        identity_file=asker.ask("The bot's SSH key", args.identity_file, key_default or "~/.ssh/gonogo_ed25519", _word("--identity-file")),
        known_hosts=args.known_hosts,
        ssh_config=str(ssh_path) if aliases else None,
        style=style,
        deploy_to=asker.ask("Where the app lives on the hosts", args.deploy_to, f"/srv/{app}", _path),
        restart=args.restart or None,
        channel=asker.ask("Deploy channel", args.channel, "#deploys", _word("--channel")),
    )  # fmt: skip


class SshEntries:
    """The concrete Host entries of an ssh_config (no patterns), and what they say."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config: paramiko.SSHConfig | None = None
        self.names: list[str] = []
        if path.is_file():
            import paramiko  # only when there is an ssh_config to read

            try:
                self.config = paramiko.SSHConfig.from_path(str(path))
            except (OSError, UnicodeDecodeError, paramiko.ssh_exception.ConfigParseError) as exc:
                raise InitError(f"cannot read {path}: {exc}") from None
            concrete = (n for n in self.config.get_hostnames() if not set(n) & set("*?!"))
            self.names = sorted(concrete, key=_natural)

    def expand(self, text: str, env: str) -> tuple[HostAnswer, ...]:
        """Hosts from `name`, `name=address[:port]` and globs of Host entries."""
        hosts: list[HostAnswer] = []
        for item in (i.strip() for i in text.split(",")):
            if any(c in item for c in "*?["):
                matched = [n for n in self.names if fnmatch.fnmatchcase(n, item)]
                if not matched:
                    known = ", ".join(self.names[:10]) or "none"
                    raise InitError(
                        f"hosts of {env}: no Host entry of {self.path} matches {item!r} (entries: {known})"
                    )
                hosts.extend(HostAnswer(n) for n in matched)
            elif "=" in item:
                name, _, where = item.partition("=")
                address, _, port = where.partition(":")
                hosts.append(HostAnswer(name, address, int(port) if port else None))
            else:
                hosts.append(HostAnswer(item))
        names = [h.name for h in hosts]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise InitError(f"hosts of {env}: {dup[0]} is listed twice")
        return tuple(hosts)

    def common(self, hosts: list[HostAnswer]) -> tuple[str | None, str | None]:
        """The User and IdentityFile every one of `hosts` has in the ssh_config, if they agree."""
        if self.config is None or not hosts:
            return None, None
        found = [self.config.lookup(h.name) for h in hosts]
        users = {f.get("user") for f in found}
        keys = {tuple(f.get("identityfile", ())) for f in found}
        user = users.pop() if len(users) == 1 else None
        key = keys.pop() if len(keys) == 1 else ()
        return user, (key[0] if len(key) == 1 else None)


def _natural(name: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _per_env(values: list[str], envs: list[str], flag: str) -> dict[str, str]:
    """`--flag ENV=VALUE` for one environment, `--flag VALUE` for all of them."""
    out: dict[str, str] = {}
    for value in values:
        head, sep, rest = value.partition("=")
        if sep and head in envs:
            out[head] = rest
        elif sep and flag != "--hosts" and _ENV_NAME.match(head):  # (hosts may be name=address)
            raise InitError(f"{flag} {value}: no environment {head!r} (environments: {', '.join(envs)})")
        else:
            out.update(dict.fromkeys(envs, value))
    return out


def _repo(value: str) -> str:
    value = value.strip()
    if not value or value.startswith("-") or any(c.isspace() for c in value):
        raise InitError(f"repository {value!r}: a git URL (git@host:org/app.git, https://...) or a path")
    return value


def _envs(value: str) -> str:
    names = [n.strip() for n in value.split(",")]
    for name in names:
        if not _ENV_NAME.match(name):
            raise InitError(
                f"environment {name!r}: lowercase letters, digits, '-' or '_' (at most 32), e.g. prod"
            )
    if len(set(names)) != len(names):
        raise InitError(f"environments {value!r}: a name is listed twice")
    return ",".join(names)


def _hosts_check(value: str, *, env: str, entries: SshEntries) -> str:
    items = [i.strip() for i in value.split(",")]
    if not value.strip() or not all(items):
        raise InitError(f"hosts of {env}: at least one host (comma-separated)")
    for item in items:
        name, _, where = item.partition("=")
        address, _, port = where.partition(":")
        if not _HOST.match(name) or (where and not _HOST.match(address)) or (port and not port.isdigit()):
            raise InitError(f"hosts of {env}: {item!r} is not a host name, name=address[:port] or a glob")
    entries.expand(value, env)  # a glob that matches nothing is an error now, not later
    return value


def _people(value: str) -> str:
    people = [p.strip() for p in value.split(",") if p.strip()]
    for who in people:
        if not _PERSON.match(who):
            raise InitError(f"approver {who!r}: a Slack user id such as U0ALICE, no spaces or quotes")
    return ",".join(people)


def _url(value: str) -> str:
    value = value.strip()
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise InitError(f"health URL {value!r}: an http:// or https:// URL")
    return value


def _path(value: str) -> str:
    value = value.strip()
    if not value.startswith("/") and not value.startswith("~"):
        raise InitError(f"deploy path {value!r}: an absolute path on the hosts, e.g. /srv/shop")
    return value


def _word(flag: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.strip()
        if not value or any(c.isspace() or c in "\"'\\" for c in value):
            raise InitError(f"{flag} {value!r}: one word, no spaces or quotes")
        return value

    return check


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value.strip() not in choices:
            raise InitError(f"{value!r}: one of {', '.join(choices)}")
        return value.strip()

    return check


__all__ = ["InitError", "add_arguments", "gather", "run_init"]
