"""One `[environments.<name>]` table: the deploy target, its people, limits and runbook.

The sections with rules of their own are read by siblings (`runbook` for hosts, strategy and
steps, `windows` for time zone, windows and freezes, `refs` for refs, `checks` for checks);
this module reads the rest and composes them into an `Environment`. Keys are read in a fixed
order, which is the order their problems are listed in: keep it when adding one.
"""

from __future__ import annotations

import re
from typing import TypedDict
from zoneinfo import ZoneInfo

from bot.config.checks import parse_checks
from bot.config.reader import Table
from bot.config.refs import parse_allowed_refs, parse_tag_pattern
from bot.config.rules import VAR_NAME, between, channel_name
from bot.config.runbook import parse_hosts, parse_stages, parse_step_timeout, parse_strategy
from bot.config.schema import ApprovalPolicy, Environment, MonitorConfig
from bot.config.windows import parse_freezes, parse_timezone, parse_windows
from runners.template import STANDARD_VARS

_ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: Slack shows at most 10 checkbox options of at most 75 characters: longer lists can never be ticked.
MAX_CHECKLIST_ITEMS = 10
MAX_CHECKLIST_TEXT = 75


def parse_environment(name: str, t: Table) -> Environment | None:
    """The environment `name` from its table `t`; problems are recorded in `t.problems`."""
    if not _ENV_NAME.match(name):
        t.problems.add(t.path, "environment names are lowercase letters, digits, '-' or '_' (max 32)")
    backend = t.get("backend", str, "ssh")
    if backend not in ("ssh", "local"):
        t.problems.add(t.key("backend"), "must be 'ssh' or 'local'")
    hosts = parse_hosts(t)
    strategy = parse_strategy(t.table("strategy"))
    approvals = _parse_approvals(t.table("approvals"))
    variables = _parse_vars(t)
    step_timeout = parse_step_timeout(t, backend)
    steps = parse_stages(t.table("steps"), (*STANDARD_VARS, *variables), step_timeout)
    if steps.get("stop") and backend != "local":
        t.problems.add(
            f"{t.key('steps')}.stop",
            'only for backend = "local" (the terminal chat runs these on this machine when it quits)',
        )
    monitor = _parse_monitor(t.table("monitor"))
    timezone = parse_timezone(t)
    windows, deploy_windows = parse_windows(t)
    freezes, freeze_periods = parse_freezes(t, ZoneInfo(timezone))
    checks, smoke_checks = parse_checks(t, monitor.checks)
    env = Environment(
        name=name,
        backend=backend,
        hosts=hosts,
        strategy=strategy,
        approvals=approvals,
        steps=steps,
        vars=variables,
        step_timeout=step_timeout,
        monitor=monitor,
        timezone=timezone,
        windows=windows,
        deploy_windows=deploy_windows,
        freezes=freezes,
        freeze_periods=freeze_periods,
        checks=checks,
        smoke_checks=smoke_checks,
        **_settings(t, name),
    )
    _check_checklists(t, env)
    t.finish()
    return env


def _parse_approvals(a: Table) -> ApprovalPolicy:
    """`[approvals]`: how many approvals, by whom; a list too short for `required` is refused."""
    approvals = ApprovalPolicy(
        required=a.get("required", int, 1, between(1, 20)),
        approvers=a.strings("approvers"),
        groups=a.strings("groups"),
        rollback_required=a.get("rollback_required", int, 1, between(0, 20)),
    )
    a.finish()
    if approvals.approvers and len(approvals.approvers) < approvals.required and not approvals.groups:
        a.problems.add(
            a.key("required"),
            f"needs {approvals.required} approvers but only {len(approvals.approvers)} are listed",
        )
    return approvals


def _parse_vars(t: Table) -> dict[str, str]:
    """`[vars]`: step template variables; numbers are kept as their text."""
    variables = t.get("vars", dict, {})
    var_map: dict[str, str] = {}
    for key, value in variables.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            t.problems.add(f"{t.key('vars')}.{key}", "must be a string or number")
        else:
            var_map[key] = str(value)
    return var_map


def _parse_monitor(m: Table) -> MonitorConfig:
    """`[monitor]`: the post-deploy monitoring window."""
    monitor = MonitorConfig(
        interval=m.duration("interval", 60.0, positive=True),
        duration=m.duration("duration", 0.0),
        failure_limit=m.get("failure_limit", int, 3, between(1, 1000)),
        checks=m.strings("checks"),
    )
    m.finish()
    return monitor


class _Settings(TypedDict):
    """The environment's keys that are each read in one expression (see `_settings`)."""

    description: str
    deploy_to: str
    keep_releases: int
    default_ref: str | None
    allowed_refs: tuple[str, ...]
    requesters: tuple[str, ...]
    requester_groups: tuple[str, ...]
    checklist: tuple[str, ...]
    signoff_checklist: tuple[str, ...]
    secrets: tuple[str, ...]
    on_call: tuple[str, ...]
    auto_rollback: bool
    rollback_grace: float
    break_glass: tuple[str, ...]
    break_glass_groups: tuple[str, ...]
    signoff_by: tuple[str, ...]
    signoff_groups: tuple[str, ...]
    signoff_reminder: float
    channel: str | None
    approval_ttl: float
    max_commits: int
    tag_pattern: str | None
    lock_after_rollback: bool
    accept_new_host_keys: bool | None


def _settings(t: Table, name: str) -> _Settings:
    """The one-expression keys, read in the order their problems have always been listed."""
    return {
        "description": t.get("description", str, ""),
        "deploy_to": t.get("deploy_to", str, "/srv/app"),
        "keep_releases": t.get("keep_releases", int, 5, between(1, 1000)),
        "default_ref": t.get("default_ref", str, None),
        "allowed_refs": parse_allowed_refs(t),
        "requesters": t.strings("requesters"),
        "requester_groups": t.strings("requester_groups"),
        "checklist": t.strings("checklist"),
        "signoff_checklist": t.strings("signoff_checklist"),
        "secrets": _secret_names(t),
        "on_call": t.strings("on_call"),
        "auto_rollback": t.get("auto_rollback", bool, False),
        "rollback_grace": t.duration("rollback_grace", 0.0),
        "break_glass": t.strings("break_glass"),
        "break_glass_groups": t.strings("break_glass_groups"),
        "signoff_by": t.strings("signoff_by"),
        "signoff_groups": t.strings("signoff_groups"),
        "signoff_reminder": t.duration("signoff_reminder", 0.0),
        "channel": _strip(t.get("channel", str, None, channel_name)),
        "approval_ttl": t.duration("approval_ttl", 0.0),
        "max_commits": t.get("max_commits", int, 8, between(1, 1000)),
        "tag_pattern": parse_tag_pattern(t, name),
        "lock_after_rollback": t.get("lock_after_rollback", bool, True),
        "accept_new_host_keys": t.get("accept_new_host_keys", bool, None),
    }


def _check_checklists(t: Table, env: Environment) -> None:
    """Checklists Slack can show: at most `MAX_CHECKLIST_ITEMS` items of `MAX_CHECKLIST_TEXT` characters."""
    for key, items in (("checklist", env.checklist), ("signoff_checklist", env.signoff_checklist)):
        for i, item in enumerate(items):
            if len(item) > MAX_CHECKLIST_TEXT:
                t.problems.add(
                    f"{t.key(key)}[{i}]",
                    f"must be at most {MAX_CHECKLIST_TEXT} characters (Slack checkbox limit)",
                )
        if len(items) > MAX_CHECKLIST_ITEMS:
            t.problems.add(t.key(key), f"at most {MAX_CHECKLIST_ITEMS} items (Slack checkbox limit)")


def _strip(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def _secret_names(t: Table) -> tuple[str, ...]:
    """`secrets`: names of environment variables (their values never appear in the file)."""
    names = t.strings("secrets")
    for i, name in enumerate(names):
        if not VAR_NAME.match(name):
            p = f"{t.key('secrets')}[{i}]"
            if any(mark in name for mark in ("://", "=", "@")) or len(name) > 64:
                t.problems.add(
                    p, "must be the NAME of an environment variable holding the secret, not the secret"
                )
            else:
                t.problems.add(
                    p, "must be an environment variable name like SHOP_DEPLOY_TOKEN (letters, digits and _)"
                )
    return tuple(n for n in names if VAR_NAME.match(n))
