"""One `[environments.<name>]` table: the deploy target, its people, limits and runbook.

The sections with rules of their own are read by siblings (`runbook` for hosts, strategy and
steps, `windows` for time zone, windows and freezes, `refs` for refs, `checks` for checks);
this module composes them into an `Environment`.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config.checks import _untyped_check_keys, parse_check
from bot.config.reader import Table, parse_duration
from bot.config.refs import parse_allowed_refs, parse_tag_pattern
from bot.config.rules import VAR_NAME, between, channel_name
from bot.config.runbook import parse_hosts, parse_steps, parse_strategy
from bot.config.schema import DEFAULT_SSH_STEP_TIMEOUT, STAGES, ApprovalPolicy, Environment, MonitorConfig
from bot.config.windows import parse_freezes
from bot.domain.windows import Window, parse_window
from runners.base import Step
from runners.checks.core import Check
from runners.template import STANDARD_VARS

_ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


#: Slack shows at most 10 checkbox options of at most 75 characters: longer lists can never be ticked.
MAX_CHECKLIST_ITEMS = 10


MAX_CHECKLIST_TEXT = 75


def parse_environment(name: str, t: Table) -> Environment | None:
    p = t.problems
    if not _ENV_NAME.match(name):
        p.add(t.path, "environment names are lowercase letters, digits, '-' or '_' (max 32)")
    backend = t.get("backend", str, "ssh")
    if backend not in ("ssh", "local"):
        p.add(t.key("backend"), "must be 'ssh' or 'local'")
    hosts = parse_hosts(t)
    strategy = parse_strategy(t.table("strategy"))

    a = t.table("approvals")
    approvals = ApprovalPolicy(
        required=a.get("required", int, 1, between(1, 20)),
        approvers=a.strings("approvers"),
        groups=a.strings("groups"),
        rollback_required=a.get("rollback_required", int, 1, between(0, 20)),
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
        steps[stage] = parse_steps(st, stage, known_vars, step_timeout)
    st.finish()
    if not steps["deploy"]:
        p.add(f"{t.key('steps')}.deploy", "at least one deploy step is required")

    m = t.table("monitor")
    monitor = MonitorConfig(
        interval=m.duration("interval", 60.0, positive=True),
        duration=m.duration("duration", 0.0),
        failure_limit=m.get("failure_limit", int, 3, between(1, 1000)),
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
    freezes, freeze_periods = parse_freezes(t, ZoneInfo(timezone))

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
        keep_releases=t.get("keep_releases", int, 5, between(1, 1000)),
        default_ref=t.get("default_ref", str, None),
        allowed_refs=parse_allowed_refs(t, p),
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
        channel=_strip(t.get("channel", str, None, channel_name)),
        timezone=timezone,
        windows=windows,
        freezes=freezes,
        deploy_windows=tuple(deploy_windows),
        freeze_periods=freeze_periods,
        approval_ttl=t.duration("approval_ttl", 0.0),
        max_commits=t.get("max_commits", int, 8, between(1, 1000)),
        tag_pattern=parse_tag_pattern(t, p, name),
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
