"""The configuration's shape: frozen dataclasses, one per table, and `ConfigError`.

Named "schema" rather than "model" because it is what the file may say (each dataclass is a
TOML table with its defaults), not behaviour; parsing and validation live in the reader and
the per-section modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.config.integration_tables import IntegrationsConfig
from bot.domain.versions import from_on
from bot.domain.windows import Freeze, Window
from runners.base import Host, Step
from runners.checks import Check, Limit
from runners.strategy import Strategy

#: The stages steps belong to: `[[environments.<env>.steps.<stage>]]`. `restore` steps run only
#: when someone chooses "restore" after an irreversible step ran. `stop` is no part of a deploy:
#: the terminal chat runs it when it quits (local environments only; the demo app).
STAGES = ("pre_deploy", "deploy", "verify", "rollback", "restore", "stop")
#: The stages a gate (`[gates]`) may stop before.
GATED_STAGES = ("pre_deploy", "deploy", "verify")
#: `step_timeout` of `backend = "ssh"` environments when none is set: an SSH step without a
#: timeout could hang a deploy forever (a dead host, a prompt waiting for input).
DEFAULT_SSH_STEP_TIMEOUT = 30 * 60.0


class ConfigError(Exception):
    """The config file has problems; `problems` lists each as `key.path: message`."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class BotConfig:
    """`[bot]`: the service itself."""

    name: str = "gonogo"
    data_dir: Path = Path("var")
    store_url: str = ""
    channel: str = "#deploys"
    workers: int = 4
    heartbeat_interval: float = 5.0
    #: Days check results and step output are kept (the engine's retention job prunes older ones).
    retention_days: float = 30.0
    #: Days the event log (the audit trail) is kept; older events are pruned daily. 0: forever.
    event_retention_days: float = 365.0


@dataclass(frozen=True)
class SlackConfig:
    """`[slack]`: Web API base URL and command names (tokens come from the environment)."""

    api_url: str = "https://slack.com/api/"
    commands: tuple[str, ...] = ("/deploy", "/rollback", "/status", "/signoff")


@dataclass(frozen=True)
class RepoConfig:
    """`[repo]`: the application repository the bot mirrors."""

    url: str | None = None
    default_branch: str = "main"
    fetch_timeout: float = 30.0
    push_remote: str | None = None


@dataclass(frozen=True)
class SSHConfig:
    """`[ssh]`: defaults for the SSH backend."""

    user: str | None = None
    port: int = 22
    identity_file: str | None = None
    known_hosts: str | None = None
    accept_new_host_keys: bool = False
    connect_timeout: float = 10.0
    max_handshakes: int = 10
    ssh_config: str | None = None
    gateway: str | None = None
    #: The variable holding the sudo password (`sudo -S`, password on stdin, redacted); none: `sudo -n`.
    sudo_password_env: str | None = None
    #: Seconds of silence before a keepalive that expects a reply; this many unanswered ones
    #: (`keepalive_count_max`) and the host is declared gone, with or without a step timeout.
    keepalive: float = 15.0
    keepalive_count_max: int = 3


@dataclass(frozen=True)
class ApprovalPolicy:
    """Who may approve and how many approvals a deployment needs. The requester never counts."""

    required: int = 1
    approvers: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    rollback_required: int = 1


@dataclass(frozen=True)
class MonitorConfig:
    """Post-deploy monitoring window: `checks` (names; empty = all) every `interval` for `duration`."""

    interval: float = 60.0
    duration: float = 0.0
    failure_limit: int = 3
    checks: tuple[str, ...] = ()


#: The kinds of deployment a check may apply to (`on`).
CHECK_PHASES = ("deploy", "rollback")


@dataclass(frozen=True)
class CheckRule:
    """When and how the engine uses one check, beside what it probes.

    `on`: the kinds of deployment it applies to; `since`: the release it applies from (a
    version: a rollback to an older release leaves it out); `after`: the step whose deployments
    it applies to (it narrows `on`); `limit`: how its failures count in a monitoring window;
    `secrets`: the variables it alone gets (`{secret.NAME}`); `per_host`: it is written once for
    every host (`{host...}` placeholders), on the hosts with `roles` (all when empty).
    """

    on: tuple[str, ...] = CHECK_PHASES
    since: str | None = None
    after: str | None = None
    limit: Limit = field(default_factory=Limit)
    secrets: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    per_host: bool = False

    def applies(self, kind: str, ref: str) -> bool:
        """Does the check apply to a deployment of `kind` putting `ref` in place? A ref whose
        order against `since` cannot be told (a branch) keeps the check."""
        if kind not in self.on:
            return False
        return self.since is None or from_on(ref, self.since) is not False

    def hosts(self, hosts: tuple[Host, ...]) -> tuple[Host, ...]:
        """The hosts a per-host check is written for (those with one of its `roles`)."""
        return tuple(h for h in hosts if not self.roles or set(self.roles) & set(h.roles))


@dataclass(frozen=True)
class Environment:
    """One deploy target with its runbook."""

    name: str
    description: str = ""
    backend: str = "ssh"
    hosts: tuple[Host, ...] = ()
    strategy: Strategy = field(default_factory=Strategy)
    deploy_to: str = "/srv/app"
    keep_releases: int = 5
    default_ref: str | None = None
    allowed_refs: tuple[str, ...] = ()
    requesters: tuple[str, ...] = ()
    requester_groups: tuple[str, ...] = ()
    approvals: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    checklist: tuple[str, ...] = ()
    signoff_checklist: tuple[str, ...] = ()
    #: The checklists' named phases in order, as (name, number of items); empty: one unnamed list.
    checklist_phases: tuple[tuple[str, int], ...] = ()
    signoff_phases: tuple[tuple[str, int], ...] = ()
    #: A human Go asked for before a stage starts: stage → the question on the card.
    gates: Mapping[str, str] = field(default_factory=dict)
    steps: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)
    vars: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    on_call: tuple[str, ...] = ()
    auto_rollback: bool = False
    rollback_grace: float = 0.0
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    checks: tuple[Check, ...] = ()
    smoke_checks: tuple[str, ...] = ()
    #: How each check (by name) applies and counts; a check without an entry has the defaults.
    check_rules: Mapping[str, CheckRule] = field(default_factory=dict)
    break_glass: tuple[str, ...] = ()
    break_glass_groups: tuple[str, ...] = ()
    signoff_by: tuple[str, ...] = ()
    signoff_groups: tuple[str, ...] = ()
    signoff_reminder: float = 0.0
    channel: str | None = None
    timezone: str = "UTC"
    windows: tuple[str, ...] = ()
    #: Each freeze as ISO text: `{"start": ..., "end": ..., "reason": ...}` (TOML dates normalised).
    freezes: tuple[Mapping[str, str], ...] = ()
    #: `windows`, parsed at load time.
    deploy_windows: tuple[Window, ...] = ()
    #: `freezes`, parsed at load time in the environment's time zone.
    freeze_periods: tuple[Freeze, ...] = ()
    approval_ttl: float = 0.0
    max_commits: int = 8
    tag_pattern: str | None = None
    lock_after_rollback: bool = True
    step_timeout: float | None = None
    accept_new_host_keys: bool | None = None  # None: as [ssh] says
    #: CI contexts that must pass before Go (`"*"`: every reported one); needs `[github]`.
    required_contexts: tuple[str, ...] = ()
    #: Page on-call (PagerDuty, webhook) when a deploy or rollback fails or a run is interrupted.
    page: bool = False

    def stage(self, name: str) -> tuple[Step, ...]:
        """The steps of a stage (empty when not configured)."""
        return self.steps.get(name, ())

    def step_secrets(self) -> tuple[str, ...]:
        """Every secret some step names in its own `secrets` (each goes to that step only)."""
        names = (n for steps in self.steps.values() for step in steps for n in step.secrets)
        return tuple(dict.fromkeys(names))

    def smoke(self) -> tuple[Check, ...]:
        """Checks run once in the verify stage (`smoke_checks` names; all checks when empty)."""
        return _pick(self.checks, self.smoke_checks)

    def monitored(self) -> tuple[Check, ...]:
        """Checks run every monitoring round (`monitor.checks` names; all checks when empty)."""
        return _pick(self.checks, self.monitor.checks)

    def rule(self, name: str) -> CheckRule:
        """How the check `name` applies and counts (a per-host copy `name@host` as its check)."""
        return self.check_rules.get(name) or self.check_rules.get(name.split("@", 1)[0]) or CheckRule()


def _pick(checks: tuple[Check, ...], names: tuple[str, ...]) -> tuple[Check, ...]:
    if not names:
        return checks
    return tuple(c for c in checks if c.name in names)


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    bot: BotConfig
    slack: SlackConfig
    repo: RepoConfig
    ssh: SSHConfig
    environments: Mapping[str, Environment]
    source: Path | None = None
    #: Things that load but deserve attention (say them at start-up and in `config check`).
    warnings: tuple[str, ...] = ()
    #: `[github]`, `[pagerduty]`, `[webhook]`, `[web]`.
    integrations: IntegrationsConfig = field(default_factory=IntegrationsConfig)

    @property
    def config_dir(self) -> Path:
        """The directory of the config file (relative paths in it are relative to this)."""
        return self.source.parent if self.source else Path.cwd()
