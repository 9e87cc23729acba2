"""Configuration: one TOML file, loaded with tomllib into frozen dataclasses.

`load_config(path)` validates everything at load time and raises `ConfigError` listing every
problem with its key path (`environments.prod.approvals.required: must be >= 1`). Secrets are
never in the file: steps name environment variables in `secrets`, checks name DSN variables.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config.checks import CHECK_COMMON_KEYS, CHECK_KEYS, parse_check
from bot.domain.windows import Freeze, Window, parse_freeze, parse_window
from runners.base import Host, Step
from runners.checks import Check
from runners.redact import MIN_SECRET_LENGTH, weak_secrets
from runners.strategy import Strategy
from runners.template import STANDARD_VARS, placeholders, unknown_placeholders

log = logging.getLogger("gonogo.config")

STAGES = ("pre_deploy", "deploy", "verify", "rollback")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
#: The longest duration any key accepts (a year): beyond it timers overflow, and it is a typo.
MAX_DURATION = 366 * 86400.0
#: `step_timeout` of `backend = "ssh"` environments when none is set: an SSH step without a
#: timeout could hang a deploy forever (a dead host, a prompt waiting for input).
DEFAULT_SSH_STEP_TIMEOUT = 30 * 60.0
#: Slack shows at most 10 checkbox options of at most 75 characters: longer lists can never be ticked.
MAX_CHECKLIST_ITEMS = 10
MAX_CHECKLIST_TEXT = 75
#: An environment variable name (secrets and DSNs are named, never written in the file).
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    #: Things that load but deserve attention (say them at start-up and in `config check`).
    warnings: tuple[str, ...] = ()

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
        """Record a problem; the same problem at the same path is reported once."""
        item = f"{path}: {message}"
        if item not in self.items:
            self.items.append(item)

    def extend(self, items: list[str]) -> None:
        """Record problems already formatted as `path: message`."""
        for item in items:
            if item not in self.items:
                self.items.append(item)


def parse_duration(value: Any) -> float:
    """`90`, `"90s"`, `"15m"`, `"4h"`, `"1d"`, `"500ms"` → seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30, '90s', '15m' or '4h'")
    seconds: float | None = None
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.match(value.strip())
        if m:
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds is None:
        raise ValueError(f"{value!r} is not a duration like 30, '90s', '15m' or '4h'")
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ValueError("must be at most a year (366d)")
    return seconds


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

    def duration(self, name: str, default: float, *, positive: bool = False) -> float:
        self.seen.add(name)
        self.key(name)
        if name not in self.data:
            return default
        try:
            seconds = parse_duration(self.data[name])
        except ValueError as exc:
            self.problems.add(self.key(name), str(exc))
            return default
        if positive and seconds <= 0:
            self.problems.add(self.key(name), "must be > 0")
            return default
        return seconds

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


def _between(low: float, high: float) -> Callable[[Any], str | None]:
    """A check that a number is within [low, high] (absurd values are typos, and overflow later)."""

    def check(value: Any) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if value < low:
            return f"must be >= {low:g}"
        if value > high:
            return f"must be <= {high:g}"
        return None

    return check


def _channel(value: Any) -> str | None:
    text = value.strip()
    if not text:
        return "must not be empty (a channel name like '#deploys' or a channel id)"
    if any(c.isspace() for c in text) or len(text) > 80:
        return "must be one channel name like '#deploys' or a channel id (no spaces, at most 80 characters)"
    return None


def _store_problem(url: str) -> str | None:
    """Refuse a database password written in the file (secrets never go in the file)."""
    if not url.startswith(("postgresql://", "postgres://")):
        return None
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "is not a valid postgresql:// URL"
    if password or any(k.lower() == "password" for k in parse_qs(parts.query)):
        return (
            "must not contain a password (secrets never go in the file): set the whole URL in "
            "GONOGO_STORE_URL, or keep the password where libpq finds it (PGPASSWORD or ~/.pgpass)"
        )
    return None


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
    file_store = b.get("store", str, "")
    if file_store and (why := _store_problem(file_store)):
        problems.add(b.key("store"), why)  # the URL is never echoed: it holds the password
    store_url = environ.get("GONOGO_STORE_URL") or file_store
    if not store_url:
        store_url = f"sqlite:///{data_dir / 'gonogo.db'}"
    elif not store_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        problems.add("bot.store", "must start with sqlite:/// or postgresql://")
    bot = BotConfig(
        name=b.get("name", str, "gonogo"),
        data_dir=data_dir,
        store_url=store_url,
        channel=b.get("channel", str, "#deploys", _channel).strip(),
        workers=b.get("workers", int, 4, _between(1, 256)),
        heartbeat_interval=b.duration("heartbeat_interval", 5.0, positive=True),
        retention_days=float(b.get("retention_days", (int, float), 30, _between(1, 3660))),
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
        connect_timeout=h.duration("connect_timeout", 10.0, positive=True),
        max_handshakes=h.get("max_handshakes", int, 10, _between(1, 1000)),
        ssh_config=h.get("ssh_config", str, None),
        gateway=h.get("gateway", str, None),
        sudo_password_env=h.get("sudo_password_env", str, None, _var_name),
        keepalive=h.duration("keepalive", 15.0, positive=True),
        keepalive_count_max=h.get("keepalive_count_max", int, 3, _between(1, 100)),
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
    warnings = tuple(
        secret_warnings(environments.values(), environ) + ssh_warnings(ssh, environments.values(), environ)
    )
    for warning in warnings:
        log.warning("%s", warning)
    return Config(
        bot=bot, slack=slack, repo=repo, ssh=ssh, environments=environments, source=source, warnings=warnings
    )


def ssh_warnings(ssh: SSHConfig, environments: Any, environ: Mapping[str, str]) -> list[str]:
    """What will stop SSH environments at run time although the file itself is valid."""
    uses_ssh = [env.name for env in environments if env.backend == "ssh"]
    out = []
    if uses_ssh and not ssh.identity_file:
        out.append(
            f"ssh.identity_file: not set, so every host of {', '.join(uses_ssh)} will be refused "
            "(gonogo offers only its own key: no agent, no ~/.ssh keys)"
        )
    if uses_ssh and ssh.sudo_password_env and not environ.get(ssh.sudo_password_env):
        out.append(f"ssh.sudo_password_env: {ssh.sudo_password_env} is not set in the environment")
    return out


def secret_warnings(environments: Any, environ: Mapping[str, str]) -> list[str]:
    """Warnings for secrets whose value (set in `environ`) is too short to be redacted safely.

    Values come from the environment, so this can only be judged where the bot runs; the
    warning names the variable, never its value.
    """
    out = []
    for env in environments:
        for i, name in enumerate(env.secrets):
            if weak_secrets([environ.get(name) or ""]):
                out.append(
                    f"environments.{env.name}.secrets[{i}]: the value of {name} is shorter than "
                    f"{MIN_SECRET_LENGTH} characters: it is masked wherever those characters appear, "
                    "also in unrelated output, and a value that short is easy to guess; use a longer secret"
                )
    return out


def _var_name(value: Any) -> str | None:
    return None if _VAR_NAME.match(value) else "must be an environment variable name (letters, digits and _)"


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
        required=a.get("required", int, 1, _between(1, 20)),
        approvers=a.strings("approvers"),
        groups=a.strings("groups"),
        rollback_required=a.get("rollback_required", int, 1, _between(0, 20)),
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

    step_timeout = t.duration("step_timeout", 0.0) or None
    if step_timeout is None and backend == "ssh":
        if _is_zero(t.data.get("step_timeout")):
            p.add(
                t.key("step_timeout"),
                "must be > 0 for an ssh environment: a step with no timeout can hang forever",
            )
        step_timeout = DEFAULT_SSH_STEP_TIMEOUT
    st = t.table("steps")
    steps: dict[str, tuple[Step, ...]] = {}
    for stage in STAGES:
        steps[stage] = _parse_steps(st, stage, known_vars, step_timeout)
    st.finish()
    if not steps["deploy"]:
        p.add(f"{t.key('steps')}.deploy", "at least one deploy step is required")

    m = t.table("monitor")
    monitor = MonitorConfig(
        interval=m.duration("interval", 60.0, positive=True),
        duration=m.duration("duration", 0.0),
        failure_limit=m.get("failure_limit", int, 3, _between(1, 1000)),
        checks=m.strings("checks"),
    )
    m.finish()

    timezone = t.get("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        p.add(t.key("timezone"), f"unknown time zone {timezone!r}")
        timezone = "UTC"
    windows = t.strings("windows")
    deploy_windows: list[Window] = []
    for i, text in enumerate(windows):
        try:
            deploy_windows.append(parse_window(text))
        except ValueError as exc:
            p.add(f"{t.key('windows')}[{i}]", str(exc))
    freezes, freeze_periods = _parse_freezes(t, ZoneInfo(timezone))

    checks: list[Check] = []
    for i, raw_check in enumerate(t.get("checks", list, [])):
        check_path = f"{t.key('checks')}[{i}]"
        _untyped_check_keys(raw_check, check_path, p)
        check, check_problems = parse_check(raw_check, check_path)
        p.extend(check_problems)
        if check is not None:
            checks.append(check)
    check_names = [c.name for c in checks]
    for dup in sorted({n for n in check_names if check_names.count(n) > 1}):
        p.add(t.key("checks"), f"check {dup!r} is defined twice")
    smoke_checks = t.strings("smoke_checks")
    for key, names in (("smoke_checks", smoke_checks), ("monitor.checks", monitor.checks)):
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
        keep_releases=t.get("keep_releases", int, 5, _between(1, 1000)),
        default_ref=t.get("default_ref", str, None),
        allowed_refs=_allowed_refs(t, p),
        requesters=t.strings("requesters"),
        requester_groups=t.strings("requester_groups"),
        approvals=approvals,
        checklist=t.strings("checklist"),
        signoff_checklist=t.strings("signoff_checklist"),
        steps=steps,
        vars=var_map,
        secrets=_secret_names(t),
        on_call=t.strings("on_call"),
        auto_rollback=t.get("auto_rollback", bool, False),
        rollback_grace=t.duration("rollback_grace", 0.0),
        monitor=monitor,
        checks=tuple(checks),
        smoke_checks=smoke_checks,
        break_glass=t.strings("break_glass"),
        break_glass_groups=t.strings("break_glass_groups"),
        signoff_by=t.strings("signoff_by"),
        signoff_groups=t.strings("signoff_groups"),
        signoff_reminder=t.duration("signoff_reminder", 0.0),
        channel=_strip(t.get("channel", str, None, _channel)),
        timezone=timezone,
        windows=windows,
        freezes=freezes,
        deploy_windows=tuple(deploy_windows),
        freeze_periods=freeze_periods,
        approval_ttl=t.duration("approval_ttl", 0.0),
        max_commits=t.get("max_commits", int, 8, _between(1, 1000)),
        tag_pattern=_tag_pattern(t, p, name),
        lock_after_rollback=t.get("lock_after_rollback", bool, True),
        accept_new_host_keys=t.get("accept_new_host_keys", bool, None),
        step_timeout=step_timeout,
    )
    for key, items in (("checklist", env.checklist), ("signoff_checklist", env.signoff_checklist)):
        for i, item in enumerate(items):
            if len(item) > MAX_CHECKLIST_TEXT:
                p.add(
                    f"{t.key(key)}[{i}]",
                    f"must be at most {MAX_CHECKLIST_TEXT} characters (Slack checkbox limit)",
                )
        if len(items) > MAX_CHECKLIST_ITEMS:
            p.add(t.key(key), f"at most {MAX_CHECKLIST_ITEMS} items (Slack checkbox limit)")
    t.finish()
    return env


def _is_zero(value: Any) -> bool:
    try:
        return value is not None and parse_duration(value) == 0
    except ValueError:
        return False


def _strip(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def _secret_names(t: _Table) -> tuple[str, ...]:
    """`secrets`: names of environment variables (their values never appear in the file)."""
    names = t.strings("secrets")
    for i, name in enumerate(names):
        if not _VAR_NAME.match(name):
            p = f"{t.key('secrets')}[{i}]"
            if any(mark in name for mark in ("://", "=", "@")) or len(name) > 64:
                t.problems.add(
                    p, "must be the NAME of an environment variable holding the secret, not the secret"
                )
            else:
                t.problems.add(
                    p, "must be an environment variable name like SHOP_DEPLOY_TOKEN (letters, digits and _)"
                )
    return tuple(n for n in names if _VAR_NAME.match(n))


_FREEZE_KEYS = ("start", "end", "reason")


def _freeze_bound(f: _Table, name: str) -> str | None:
    """A freeze bound as ISO text: a string, or a TOML date / date-time literal."""
    f.seen.add(name)
    f.key(name)
    if name not in f.data:
        f.problems.add(f.key(name), "required (a date like 2026-12-21 or a date-time like 2026-12-21T18:00)")
        return None
    value = f.data[name]
    if isinstance(value, dt.datetime | dt.date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dt.time):
        f.problems.add(f.key(name), "must be a date or a date-time, not a time of day")
    else:
        f.problems.add(f.key(name), "must be a date like 2026-12-21 or a date-time like 2026-12-21T18:00")
    return None


def _allowed_refs(t: _Table, p: _Problems) -> tuple[str, ...]:
    """Allowed-ref globs; a prefix must be one of branch:, tag:, sha: (git refs never hold ':')."""
    patterns = t.strings("allowed_refs")
    for i, pattern in enumerate(patterns):
        kind, sep, glob = pattern.partition(":")
        if sep and kind not in ("branch", "tag", "sha"):
            p.add(
                f"{t.key('allowed_refs')}[{i}]", f"unknown prefix {kind + ':'!r} (use branch:, tag: or sha:)"
            )
        elif sep and not glob.strip():
            p.add(f"{t.key('allowed_refs')}[{i}]", f"{kind}: needs a pattern after it")
    return patterns


def _tag_pattern(t: _Table, p: _Problems, env: str) -> str | None:
    """The deploy tag pattern, checked by rendering a tag name and its glob from it."""
    pattern = t.get("tag_pattern", str, None)
    if pattern is not None:
        from bot.source import InvalidRef, next_tag_name, tag_glob

        try:
            next_tag_name(pattern, env, 1)
            tag_glob(pattern, env)
        except InvalidRef as exc:
            p.add(t.key("tag_pattern"), str(exc))
    return pattern


def _parse_freezes(t: _Table, tz: ZoneInfo) -> tuple[tuple[Mapping[str, str], ...], tuple[Freeze, ...]]:
    """`freezes`: validated at load time, kept as ISO text and as parsed `Freeze` periods."""
    raw = t.get("freezes", list, [])
    texts: list[Mapping[str, str]] = []
    periods: list[Freeze] = []
    for i, item in enumerate(raw):
        path = f"{t.key('freezes')}[{i}]"
        if not isinstance(item, dict):
            t.problems.add(
                path, 'must be a table like { start = 2026-12-21, end = 2027-01-03, reason = "holidays" }'
            )
            continue
        f = _Table(item, path, t.problems)
        start = _freeze_bound(f, "start")
        end = _freeze_bound(f, "end")
        reason = f.get("reason", str, "deploy freeze").strip() or "deploy freeze"
        f.finish()
        if start is None or end is None:
            continue
        try:
            period = parse_freeze(start, end, reason, tz)
        except ValueError as exc:
            message = str(exc)
            which = "start" if "freeze start" in message else "end"
            t.problems.add(f"{path}.{which}", message)
            continue
        texts.append({"start": start, "end": end, "reason": reason})
        periods.append(period)
    return tuple(texts), tuple(periods)


def _untyped_check_keys(raw: Any, path: str, problems: _Problems) -> None:
    """Keys no check type knows, reported even when `type` is missing or wrong (the check
    parser judges keys only once it knows the type)."""
    if not isinstance(raw, dict) or raw.get("type") in CHECK_KEYS:
        return
    known = set(CHECK_COMMON_KEYS).union(*CHECK_KEYS.values())
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(str(key), sorted(known), n=1)
            if key in ("kind", "check", "checker"):
                hint = ["type"]
            suffix = f"; did you mean '{hint[0]}'?" if hint else ""
            problems.add(f"{path}.{key}", f"unknown key{suffix}")


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
                if "name" not in item or item["name"] == "":
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
        for key in ("name", "run"):  # a value of the wrong type is already reported by get()
            given = s.data.get(key)
            if given is None or (isinstance(given, str) and not given.strip()):
                st.problems.add(f"{path}.{key}", "required")
        if command:
            if unknown := unknown_placeholders(command, known_vars):
                st.problems.add(
                    f"{path}.run",
                    f"unknown variable {{{unknown[0]}}} (known: {', '.join(sorted(known_vars))})",
                )
            for where, var in quoted_placeholders(command):
                st.problems.add(
                    f"{path}.run",
                    f"{{{var}}} is inside {where}: write {{{var}}} bare: values are quoted for you "
                    "(inside quotes the quoting is undone and a value could run as shell code)",
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


# ------------------------------------------------------------------------------------------
_PLACEHOLDER_AT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HEREDOC_WORD = re.compile(r"""[ \t]*((?:[^\s;&|<>()'"\\]|'[^']*'|"[^"]*"|\\.)+)""")


def quoted_placeholders(template: str) -> list[tuple[str, str]]:
    """`(where, name)` for each placeholder a step template puts inside shell quotes.

    Placeholders are substituted shell-quoted (`'v1.2'`), which is safe only where the shell
    reads them bare: inside `"..."` or `'...'` the added quotes are literal text and a value
    like `$(touch x)` is expanded again; in an unquoted here-document body they are literal
    too, and `$(...)` runs. The scan follows POSIX sh quoting: backslash escapes, single,
    double and `$'...'` quotes, comments, and here-documents (`<<EOF`; a quoted delimiter
    such as `<<'EOF'` turns expansion off, so placeholders there are harmless).
    """
    out: list[tuple[str, str]] = []
    quote: str | None = None  # "'", '"' or "$'"
    heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, strip tabs, expands)
    where = {"'": "single quotes", '"': "double quotes", "$'": "$'...' quotes"}
    i, n = 0, len(template)
    while i < n:
        if template.startswith(("{{", "}}"), i):
            i += 2
            continue
        m = _PLACEHOLDER_AT.match(template, i)
        if m:
            if quote is not None:
                out.append((where[quote], m.group(1)))
            i = m.end()
            continue
        c = template[i]
        if quote == "'":
            quote = None if c == "'" else quote
            i += 1
            continue
        if quote is not None:  # double quotes or $'...': backslash escapes the next character
            if c == "\\":
                i += 2
                continue
            if (quote == '"' and c == '"') or (quote == "$'" and c == "'"):
                quote = None
            i += 1
            continue
        if c == "\\":
            i += 2
        elif c in "'\"":
            quote = c
            i += 1
        elif template.startswith("$'", i):
            quote = "$'"
            i += 2
        elif c == "#" and (i == 0 or template[i - 1] in " \t\n;&|("):
            newline = template.find("\n", i)
            i = n if newline == -1 else newline
        elif template.startswith("<<", i) and not template.startswith("<<<", i):
            j = i + 2
            strip = template.startswith("-", j)
            j += 1 if strip else 0
            word = _HEREDOC_WORD.match(template, j)
            if word is None:
                i = j
                continue
            text = word.group(1)
            expands = not any(q in text for q in "'\"\\")
            delimiter = re.sub(r"""\\(.)|['"]""", lambda w: w.group(1) or "", text)
            heredocs.append((delimiter, strip, expands))
            i = word.end()
        elif c == "\n" and heredocs:
            i += 1
            for delimiter, strip, expands in heredocs:
                while i < n:
                    end = template.find("\n", i)
                    end = n if end == -1 else end
                    line = template[i:end]
                    i = end + 1
                    if (line.lstrip("\t") if strip else line) == delimiter:
                        break
                    if expands:
                        out.extend(("a here-document", name) for name in placeholders(line))
            heredocs = []
        else:
            i += 1
    return out
