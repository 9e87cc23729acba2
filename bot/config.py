"""Configuration: one TOML file, loaded with tomllib into frozen dataclasses.

`load_config(path)` validates everything at load time and raises `ConfigError` listing every
problem with its key path (`environments.prod.approvals.required: must be >= 1`). Secrets are
never in the file: steps name environment variables in `secrets`, checks name DSN variables.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runners.base import Host, Step
from runners.checks import Check, parse_check
from runners.strategy import Strategy
from runners.template import STANDARD_VARS, unknown_placeholders

STAGES = ("pre_deploy", "deploy", "verify", "rollback")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


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
    steps: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)
    vars: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    on_call: tuple[str, ...] = ()
    auto_rollback: bool = False
    rollback_grace: float = 0.0
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    checks: tuple[Check, ...] = ()
    smoke_checks: tuple[str, ...] = ()
    break_glass: tuple[str, ...] = ()
    break_glass_groups: tuple[str, ...] = ()
    signoff_by: tuple[str, ...] = ()
    signoff_groups: tuple[str, ...] = ()
    signoff_reminder: float = 0.0
    channel: str | None = None
    timezone: str = "UTC"
    windows: tuple[str, ...] = ()
    freezes: tuple[Mapping[str, str], ...] = ()
    approval_ttl: float = 0.0
    max_commits: int = 8
    tag_pattern: str | None = None
    lock_after_rollback: bool = True
    step_timeout: float | None = None
    accept_new_host_keys: bool | None = None  # None: as [ssh] says

    def stage(self, name: str) -> tuple[Step, ...]:
        """The steps of a stage (empty when not configured)."""
        return self.steps.get(name, ())

    def smoke(self) -> tuple[Check, ...]:
        """Checks run once in the verify stage (`smoke_checks` names; all checks when empty)."""
        return _pick(self.checks, self.smoke_checks)

    def monitored(self) -> tuple[Check, ...]:
        """Checks run every monitoring round (`monitor.checks` names; all checks when empty)."""
        return _pick(self.checks, self.monitor.checks)


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

    @property
    def config_dir(self) -> Path:
        """The directory of the config file (relative paths in it are relative to this)."""
        return self.source.parent if self.source else Path.cwd()


# ------------------------------------------------------------------------------------------
class _Problems:
    """Collects problems with their key paths."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


def parse_duration(value: Any) -> float:
    """`90`, `"90s"`, `"15m"`, `"4h"`, `"1d"`, `"500ms"` → seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30, '90s', '15m' or '4h'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value.strip())
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration like 30, '90s', '15m' or '4h'")


#: Every key the loader reads, as a schema path (`environments.<env>.steps.<stage>[].run`).
#: Filled while parsing; the docs test checks each one is documented in docs/CONFIG.md.
KNOWN_KEYS: set[str] = set()
_STAGE_RE = re.compile(r"\.steps\.(?:" + "|".join(STAGES) + r")\b")


def schema_path(path: str) -> str:
    """`environments.prod.hosts[2].name` → `environments.<env>.hosts[].name`."""
    path = re.sub(r"^environments\.[^.\[]+", "environments.<env>", path)
    path = _STAGE_RE.sub(".steps.<stage>", path)
    return re.sub(r"\[\d+\]", "[]", path)


class _Table:
    """A TOML table being read: typed getters that record problems, and unknown-key checks."""

    def __init__(self, data: Any, path: str, problems: _Problems) -> None:
        self.path = path
        self.problems = problems
        if not isinstance(data, dict):
            problems.add(path, "must be a table")
            data = {}
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        full = f"{self.path}.{name}" if self.path else name
        KNOWN_KEYS.add(schema_path(full))
        return full

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.seen.add(name)
        self.key(name)
        if name not in self.data:
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = False if isinstance(value, bool) and bool not in kinds else isinstance(value, kinds)
        if not ok:
            names = " or ".join(_type_name(k) for k in kinds)
            self.problems.add(self.key(name), f"must be {names}, not {_type_name(type(value))}")
            return default
        if check is not None:
            message = check(value)
            if message:
                self.problems.add(self.key(name), message)
                return default
        return value

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(name, list, None)
        if value is None:
            return default
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item.strip():
                out.append(item)
            else:
                self.problems.add(f"{self.key(name)}[{i}]", "must be a non-empty string")
        return tuple(out)

    def duration(self, name: str, default: float) -> float:
        self.seen.add(name)
        self.key(name)
        if name not in self.data:
            return default
        try:
            return parse_duration(self.data[name])
        except ValueError as exc:
            self.problems.add(self.key(name), str(exc))
            return default

    def table(self, name: str) -> _Table:
        self.seen.add(name)
        return _Table(self.data.get(name, {}), self.key(name), self.problems)

    def finish(self, extra_known: tuple[str, ...] = ()) -> None:
        known = self.seen | set(extra_known)
        for name in self.data:
            if name not in known:
                hint = difflib.get_close_matches(name, sorted(known), n=1)
                suffix = f"; did you mean '{hint[0]}'?" if hint else ""
                path = f"{self.path}.{name}" if self.path else name  # not self.key(): not a known key
                self.problems.add(path, f"unknown key{suffix}")


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
            dict: "a table"}.get(kind, kind.__name__)  # fmt: skip


def _positive(value: Any) -> str | None:
    return None if value >= 1 else "must be >= 1"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


# ------------------------------------------------------------------------------------------
def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError with every problem found."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"], str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"], str(path)) from None
    return parse_config(raw, source=path.resolve(), environ=os.environ if environ is None else environ)


def parse_config(
    raw: Mapping[str, Any], *, source: Path | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Validate a parsed TOML document into a Config (raise ConfigError)."""
    environ = os.environ if environ is None else environ
    problems = _Problems()
    root = _Table(dict(raw), "", problems)
    base_dir = source.parent if source else Path.cwd()

    b = root.table("bot")
    data_dir_text = b.get("data_dir", str, "var")
    data_dir_text = environ.get("GONOGO_DATA_DIR") or data_dir_text
    data_dir = Path(data_dir_text).expanduser()
    if not data_dir.is_absolute():
        data_dir = (base_dir / data_dir).resolve()
    store_url = b.get("store", str, "")
    store_url = environ.get("GONOGO_STORE_URL") or store_url
    if not store_url:
        store_url = f"sqlite:///{data_dir / 'gonogo.db'}"
    elif not store_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        problems.add("bot.store", "must start with sqlite:/// or postgresql://")
    bot = BotConfig(
        name=b.get("name", str, "gonogo"),
        data_dir=data_dir,
        store_url=store_url,
        channel=b.get("channel", str, "#deploys"),
        workers=b.get("workers", int, 4, _positive),
        heartbeat_interval=b.duration("heartbeat_interval", 5.0),
    )
    b.finish()

    s = root.table("slack")
    slack = SlackConfig(
        api_url=environ.get("SLACK_API_URL") or s.get("api_url", str, "https://slack.com/api/") or "",
    )
    s.finish()

    r = root.table("repo")
    repo = RepoConfig(
        url=r.get("url", str, None),
        default_branch=r.get("default_branch", str, "main"),
        fetch_timeout=r.duration("fetch_timeout", 30.0),
        push_remote=r.get("push_remote", str, None),
    )
    r.finish()

    h = root.table("ssh")
    ssh = SSHConfig(
        user=h.get("user", str, None),
        port=h.get("port", int, 22, _port),
        identity_file=h.get("identity_file", str, None),
        known_hosts=h.get("known_hosts", str, None),
        accept_new_host_keys=h.get("accept_new_host_keys", bool, False),
        connect_timeout=h.duration("connect_timeout", 10.0),
        max_handshakes=h.get("max_handshakes", int, 10, _positive),
        ssh_config=h.get("ssh_config", str, None),
        gateway=h.get("gateway", str, None),
    )
    h.finish()

    envs_table = root.table("environments")
    environments: dict[str, Environment] = {}
    if not envs_table.data:
        problems.add("environments", "at least one environment is required")
    for name, data in envs_table.data.items():
        envs_table.seen.add(name)
        env = _parse_environment(name, _Table(data, f"environments.{name}", problems))
        if env is not None:
            environments[name] = env
    root.finish()
    if problems.items:
        raise ConfigError(problems.items, str(source or "config"))
    return Config(bot=bot, slack=slack, repo=repo, ssh=ssh, environments=environments, source=source)


def _port(value: Any) -> str | None:
    return None if 0 < value < 65536 else "must be a port number (1-65535)"


def _parse_environment(name: str, t: _Table) -> Environment | None:
    p = t.problems
    if not _ENV_NAME.match(name):
        p.add(t.path, "environment names are lowercase letters, digits, '-' or '_' (max 32)")
    backend = t.get("backend", str, "ssh")
    if backend not in ("ssh", "local"):
        p.add(t.key("backend"), "must be 'ssh' or 'local'")
    hosts = _parse_hosts(t)
    strategy = _parse_strategy(t.table("strategy"))

    a = t.table("approvals")
    approvals = ApprovalPolicy(
        required=a.get("required", int, 1, _positive),
        approvers=a.strings("approvers"),
        groups=a.strings("groups"),
        rollback_required=a.get("rollback_required", int, 1, _non_negative),
    )
    a.finish()
    if approvals.approvers and len(approvals.approvers) < approvals.required and not approvals.groups:
        p.add(
            a.key("required"),
            f"needs {approvals.required} approvers but only {len(approvals.approvers)} are listed",
        )

    variables = t.get("vars", dict, {})
    var_map: dict[str, str] = {}
    for key, value in variables.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            p.add(f"{t.key('vars')}.{key}", "must be a string or number")
        else:
            var_map[key] = str(value)
    known_vars = (*STANDARD_VARS, *var_map)

    st = t.table("steps")
    steps: dict[str, tuple[Step, ...]] = {}
    for stage in STAGES:
        steps[stage] = _parse_steps(st, stage, known_vars, t.duration("step_timeout", 0.0) or None)
    st.finish()
    if not steps["deploy"]:
        p.add(f"{t.key('steps')}.deploy", "at least one deploy step is required")

    m = t.table("monitor")
    monitor = MonitorConfig(
        interval=m.duration("interval", 60.0),
        duration=m.duration("duration", 0.0),
        failure_limit=m.get("failure_limit", int, 3, _positive),
        checks=m.strings("checks"),
    )
    m.finish()
    if monitor.duration and monitor.interval <= 0:
        p.add(m.key("interval"), "must be > 0 when a monitoring duration is set")

    timezone = t.get("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        p.add(t.key("timezone"), f"unknown time zone {timezone!r}")
        timezone = "UTC"
    windows = t.strings("windows")
    for i, text in enumerate(windows):
        error = _window_problem(text)
        if error:
            p.add(f"{t.key('windows')}[{i}]", error)
    freezes = tuple(t.get("freezes", list, []))
    for i, f in enumerate(freezes):
        if not isinstance(f, dict) or not {"start", "end"} <= set(f):
            p.add(f"{t.key('freezes')}[{i}]", "must be a table with start, end and reason")

    checks: list[Check] = []
    for i, raw_check in enumerate(t.get("checks", list, [])):
        check, check_problems = parse_check(raw_check, f"{t.key('checks')}[{i}]")
        t.problems.items.extend(check_problems)
        if check is not None:
            checks.append(check)
    check_names = [c.name for c in checks]
    for dup in sorted({n for n in check_names if check_names.count(n) > 1}):
        p.add(t.key("checks"), f"check {dup!r} is defined twice")
    for key, names in (("smoke_checks", t.strings("smoke_checks")), ("monitor.checks", monitor.checks)):
        for name_ in names:
            if name_ not in check_names:
                p.add(t.key(key), f"no check named {name_!r} (defined: {', '.join(check_names) or 'none'})")
    env = Environment(
        name=name,
        description=t.get("description", str, ""),
        backend=backend,
        hosts=hosts,
        strategy=strategy,
        deploy_to=t.get("deploy_to", str, "/srv/app"),
        keep_releases=t.get("keep_releases", int, 5, _positive),
        default_ref=t.get("default_ref", str, None),
        allowed_refs=t.strings("allowed_refs"),
        requesters=t.strings("requesters"),
        requester_groups=t.strings("requester_groups"),
        approvals=approvals,
        checklist=t.strings("checklist"),
        signoff_checklist=t.strings("signoff_checklist"),
        steps=steps,
        vars=var_map,
        secrets=t.strings("secrets"),
        on_call=t.strings("on_call"),
        auto_rollback=t.get("auto_rollback", bool, False),
        rollback_grace=t.duration("rollback_grace", 0.0),
        monitor=monitor,
        checks=tuple(checks),
        smoke_checks=t.strings("smoke_checks"),
        break_glass=t.strings("break_glass"),
        break_glass_groups=t.strings("break_glass_groups"),
        signoff_by=t.strings("signoff_by"),
        signoff_groups=t.strings("signoff_groups"),
        signoff_reminder=t.duration("signoff_reminder", 0.0),
        channel=t.get("channel", str, None),
        timezone=timezone,
        windows=windows,
        freezes=freezes,
        approval_ttl=t.duration("approval_ttl", 0.0),
        max_commits=t.get("max_commits", int, 8, _positive),
        tag_pattern=t.get("tag_pattern", str, None),
        lock_after_rollback=t.get("lock_after_rollback", bool, True),
        accept_new_host_keys=t.get("accept_new_host_keys", bool, None),
        step_timeout=t.duration("step_timeout", 0.0) or None,
    )
    for i, item in enumerate(env.checklist):
        if len(item) > 75:
            p.add(f"{t.key('checklist')}[{i}]", "must be at most 75 characters (Slack checkbox limit)")
    if len(env.checklist) > 10:
        p.add(t.key("checklist"), "at most 10 items (Slack checkbox limit)")
    t.finish()
    return env


def _window_problem(text: str) -> str | None:
    try:
        from bot.windows import parse_window  # the window grammar lives with the policy code
    except ImportError:  # pragma: no cover - during bootstrap
        return None
    try:
        parse_window(text)
    except ValueError as exc:
        return str(exc)
    return None


def _parse_hosts(t: _Table) -> tuple[Host, ...]:
    t.seen.add("hosts")
    raw = t.data.get("hosts", [])
    if not isinstance(raw, list):
        t.problems.add(t.key("hosts"), "must be a list of host names or tables")
        return ()
    hosts: list[Host] = []
    for i, item in enumerate(raw):
        path = f"{t.key('hosts')}[{i}]"
        if isinstance(item, str) and item.strip():
            hosts.append(Host(name=item, address=item))
        elif isinstance(item, dict):
            h = _Table(item, path, t.problems)
            name = h.get("name", str, None)
            address = h.get("address", str, None) or name
            if not name:
                t.problems.add(f"{path}.name", "required")
                continue
            hosts.append(
                Host(
                    name=name,
                    address=address or name,
                    port=h.get("port", int, None, _port),
                    user=h.get("user", str, None),
                    roles=h.strings("roles"),
                    gateway=h.get("gateway", str, None),
                )
            )
            h.finish()
        else:
            t.problems.add(path, "must be a host name or a table with name/address")
    if not hosts:
        t.problems.add(t.key("hosts"), "at least one host is required")
    names = [h.name for h in hosts]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        t.problems.add(t.key("hosts"), f"host {dup!r} is listed twice")
    return tuple(hosts)


def _parse_strategy(s: _Table) -> Strategy:
    kind = s.get("kind", str, "parallel")
    if kind not in ("parallel", "sequential", "canary"):
        s.problems.add(s.key("kind"), "must be 'parallel', 'sequential' or 'canary'")
        kind = "parallel"
    batch = s.get("batch_size", (int, str), None)
    batch_size: int | None = None
    batch_percent: int | None = None
    if isinstance(batch, int):
        if batch < 1:
            s.problems.add(s.key("batch_size"), "must be >= 1")
        batch_size = max(1, batch)
    elif isinstance(batch, str):
        m = re.fullmatch(r"(\d{1,3})%", batch.strip())
        if not m or not 0 < int(m.group(1)) <= 100:
            s.problems.add(s.key("batch_size"), "must be a number of hosts or a percentage like '25%'")
        else:
            batch_percent = int(m.group(1))
    strategy = Strategy(
        kind=kind,
        max_parallel=s.get("max_parallel", int, 10, _positive),
        canary=s.get("canary", int, 1, _positive),
        batch_size=batch_size,
        batch_percent=batch_percent,
        pause=s.duration("pause", 0.0),
    )
    s.finish()
    return strategy


def _parse_steps(
    st: _Table, stage: str, known_vars: tuple[str, ...], default_timeout: float | None
) -> tuple[Step, ...]:
    raw = st.get(stage, list, [])
    steps: list[Step] = []
    for i, item in enumerate(raw):
        path = f"{st.key(stage)}[{i}]"
        s = _Table(item, path, st.problems)
        name = s.get("name", str, None)
        command = s.get("run", str, None)
        if not name:
            st.problems.add(f"{path}.name", "required")
        if not command:
            st.problems.add(f"{path}.run", "required")
        elif unknown := unknown_placeholders(command, known_vars):
            st.problems.add(
                f"{path}.run", f"unknown variable {{{unknown[0]}}} (known: {', '.join(sorted(known_vars))})"
            )
        timeout = s.duration("timeout", 0.0) or default_timeout
        step = Step(
            name=name or f"step {i + 1}",
            command=command or "true",
            once=s.get("once", bool, False),
            timeout=timeout,
            roles=s.strings("roles"),
            sudo=s.get("sudo", bool, False),
        )
        s.finish()
        steps.append(step)
    return tuple(steps)
