"""The commented starting config `gonogo init` writes, from the answers it gathered.

Pure text: answers in, TOML out. Every value is written as a TOML string through `_q` (JSON's
string escapes are TOML's), every command uses placeholders (shell-quoted when run), and the
file says what each part is for and how to go on (`config check`, `doctor`, docs/CONFIG.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

#: Deploy styles: Capistrano's release directories with a `current` symlink, or one checkout.
STYLES = ("releases", "in-place")
PROD_NAMES = ("prod", "production", "live")


@dataclass(frozen=True)
class HostAnswer:
    """A host as `hosts[]` lists it: a name, and where it is when that is not the name."""

    name: str
    address: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class EnvAnswer:
    """One environment: its hosts, who approves, and the URL that says it is healthy."""

    name: str
    hosts: tuple[HostAnswer, ...]
    approvers: tuple[str, ...] = ()
    health_url: str | None = None

    @property
    def production(self) -> bool:
        """Does the name say production (two approvers, a checklist)?"""
        return self.name in PROD_NAMES


@dataclass(frozen=True)
class Answers:
    """Everything `gonogo init` asked."""

    repo: str
    environments: tuple[EnvAnswer, ...]
    branch: str = "main"
    user: str = "deploy"
    identity_file: str = "~/.ssh/gonogo_ed25519"
    known_hosts: str | None = None
    ssh_config: str | None = None
    style: str = "releases"
    deploy_to: str = "/srv/app"
    restart: str | None = None
    channel: str = "#deploys"
    notes: tuple[str, ...] = field(default_factory=tuple)


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def render(a: Answers, *, today: date | None = None) -> str:
    """The whole config file for `a`."""
    parts = [_head(a, today or date.today()), _service(a)]
    parts.extend(_environment(a, env) for env in a.environments)
    return "\n".join(parts)


def _head(a: Answers, today: date) -> str:
    notes = "".join(f"# Note: {n}\n" for n in a.notes)
    return f"""\
# gonogo configuration, written by `gonogo init` on {today.isoformat()}.
# Check it:   gonogo config check <this file>
# Try it:     gonogo doctor --config <this file>   (SSH, paths, health URLs, store, Slack, git)
# Every key is documented in docs/CONFIG.md. Secrets never go in this file: name environment
# variables instead (steps' `secrets`, SQL checks' `dsn_env`, SLACK_BOT_TOKEN...).
{notes}"""


def _service(a: Answers) -> str:
    known = f"known_hosts = {_q(a.known_hosts)}" if a.known_hosts else '# known_hosts = "~/.ssh/known_hosts"'
    ssh_config = (
        f"ssh_config = {_q(a.ssh_config)}   # the hosts below are its Host entries (HostName, Port, User)"
        if a.ssh_config
        else '# ssh_config = "~/.ssh/config"   # lets hosts be Host aliases (HostName, Port, User, ProxyJump)'
    )
    return f"""\
[bot]
# State (SQLite store, git mirror), relative to this file; GONOGO_DATA_DIR overrides it.
data_dir = "var"
# Several replicas share one PostgreSQL (the password in PGPASSWORD or GONOGO_STORE_URL):
# store = "postgresql://gonogo@db.internal/gonogo"
channel = {_q(a.channel)}

[slack]
# Tokens come from SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode).
# api_url = "https://slack.com/api/"

[repo]
url = {_q(a.repo)}
default_branch = {_q(a.branch)}

[ssh]
user = {_q(a.user)}
# The bot's own key, the only one it ever offers (never the agent or your ~/.ssh keys).
# Make one with: ssh-keygen -t ed25519 -N '' -C gonogo -f ~/.ssh/gonogo_ed25519
# and add the .pub to ~{a.user}/.ssh/authorized_keys on every host.
identity_file = {_q(a.identity_file)}
# Host keys are checked against known_hosts; an unknown or changed key is refused.
{known}
{ssh_config}
connect_timeout = "10s"
"""


def _environment(a: Answers, env: EnvAnswer) -> str:
    name = env.name
    count = len(env.hosts)
    lines = [
        f"# -- {name} " + "-" * max(4, 86 - len(name)),
        f"[environments.{name}]",
        f"description = {_q(f'{name}: {count} host' + ('s' if count != 1 else ''))}",
        'backend = "ssh"',
        f"hosts = [{', '.join(_host(h) for h in env.hosts)}]",
        f"deploy_to = {_q(a.deploy_to)}",
        "keep_releases = 5" if a.style == "releases" else "# keep_releases = 5   (release directories only)",
    ]
    if env.production:
        lines += [
            'checklist = ["Changelog reviewed", "Someone is watching the app"]',
            'signoff_checklist = ["Smoke tests passed", "No error spike", "Users report no issues"]',
            '# allowed_refs = ["branch:main", "tag:v*"]',
            '# timezone = "Europe/Paris"',
            '# windows = ["Mon-Thu 09:00-16:00"]',
        ]
    lines += ["# on_call = []             # Slack user ids mentioned in alerts"]
    lines += ["# auto_rollback = true     # roll back by itself when verify or monitoring fails", ""]
    lines += (
        _strategy(name, count) + _approvals(env) + [f"[environments.{name}.vars]", f"repo = {_q(a.repo)}", ""]
    )
    lines += _steps(a, name) + _checks(env)
    return "\n".join(lines) + "\n"


def _host(h: HostAnswer) -> str:
    if h.address is None and h.port is None:
        return _q(h.name)
    fields = [f"name = {_q(h.name)}", f"address = {_q(h.address or h.name)}"]
    if h.port is not None:
        fields.append(f"port = {h.port}")
    return "{ " + ", ".join(fields) + " }"


def _strategy(name: str, count: int) -> list[str]:
    if count < 3:
        return [f"[environments.{name}.strategy]", 'kind = "parallel"', ""]
    return [
        f"[environments.{name}.strategy]",
        'kind = "canary"         # one host first, then the rest in batches',
        "canary = 1",
        'batch_size = "50%"',
        "max_parallel = 10",
        "",
    ]


def _approvals(env: EnvAnswer) -> list[str]:
    # Two approvers for production, when there are enough of them besides the requester.
    required = 2 if env.production and (not env.approvers or len(env.approvers) >= 3) else 1
    who = (
        f"approvers = {_list(env.approvers)}"
        if env.approvers
        else "# approvers = []   # Slack user ids; none: anyone but the requester"
    )
    return [
        f"[environments.{env.name}.approvals]",
        f"required = {required}            # the requester never counts",
        who,
        "rollback_required = 1",
        "",
    ]


def _steps(a: Answers, name: str) -> list[str]:
    restart = (
        [f"[[environments.{name}.steps.deploy]]", 'name = "restart"', f"run = {_q(a.restart)}", ""]
        if a.restart
        else [
            "# [[environments." + name + ".steps.deploy]]",
            '# name = "restart"',
            '# run = "sudo systemctl restart myapp"   # sudo = true runs it with sudo -n',
            "",
        ]
    )
    step = f"[[environments.{name}.steps.deploy]]"
    back = f"[[environments.{name}.steps.rollback]]"
    if a.style == "releases":
        fetch = (
            "mkdir -p {releases_dir} && (test -d {deploy_to}/repo || git clone --quiet --mirror {repo} "
            "{deploy_to}/repo) && git -C {deploy_to}/repo fetch --quiet --prune origin && rm -rf {release_dir} "
            "&& mkdir -p {release_dir} && git -C {deploy_to}/repo archive {sha} | tar -x -C {release_dir}"
        )
        switch = (
            "ln -sfn {release_dir} {deploy_to}/current.tmp && mv -T {deploy_to}/current.tmp {current_dir}"
        )
        prune = "cd {releases_dir} && ls -1 | sort -n | head -n -{keep_releases} | xargs -r rm -rf"
        return [
            "# Capistrano style: each release in releases/<id>, `current` points at the live one.",
            step, 'name = "fetch release"', f"run = {_q(fetch)}", "",
            step, 'name = "switch current"', f"run = {_q(switch)}", "",
            *restart,
            step, 'name = "prune releases"', f"run = {_q(prune)}", "",
            back, 'name = "switch current back"', f"run = {_q('test -d {release_dir} && ' + switch)}", "",
            *[line.replace(".steps.deploy]]", ".steps.rollback]]") for line in restart],
        ]  # fmt: skip
    update = (
        "(test -d {deploy_to}/.git || git clone --quiet {repo} {deploy_to}) && "
        "git -C {deploy_to} fetch --quiet --prune origin && git -C {deploy_to} checkout --quiet --force --detach {sha}"
    )
    checkout = "git -C {deploy_to} checkout --quiet --force --detach {sha}"
    return [
        "# In place: one checkout in deploy_to, moved to the commit being deployed.",
        step, 'name = "update code"', f"run = {_q(update)}", "",
        *restart,
        back, 'name = "check out the earlier release"', f"run = {_q(checkout)}", "",
        *[line.replace(".steps.deploy]]", ".steps.rollback]]") for line in restart],
    ]  # fmt: skip


def _checks(env: EnvAnswer) -> list[str]:
    name = env.name
    if not env.health_url:
        return [
            f"# [[environments.{name}.checks]]   # smoke checks after each deploy (and rollback)",
            '# name = "health"',
            '# type = "http"',
            '# url = "https://app.example.com/health"',
            "",
        ]
    return [
        "# Run once after each deploy and rollback (smoke), and every interval of a monitoring window.",
        f"[[environments.{name}.checks]]",
        'name = "health"',
        'type = "http"',
        f"url = {_q(env.health_url)}",
        'timeout = "5s"',
        "",
        f"[environments.{name}.monitor]",
        'interval = "30s"',
        '# duration = "10m"   # watch the checks this long after a deploy (0: no window)',
        "failure_limit = 3",
        "",
    ]


__all__ = ["STYLES", "Answers", "EnvAnswer", "HostAnswer", "render"]
