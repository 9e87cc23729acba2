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

from bot.config.check_rules import captures, parse_check_rules, with_after_checks
from bot.config.checks import parse_checks
from bot.config.reader import Table
from bot.config.refs import parse_allowed_refs, parse_tag_pattern
from bot.config.rules import VAR_NAME, between, channel_name
from bot.config.runbook import parse_hosts, parse_stages, parse_step_timeout, parse_strategy
from bot.config.runbook_rules import check_runbook, parse_gates
from bot.config.schema import ApprovalPolicy, Environment, MonitorConfig
from bot.config.windows import parse_freezes, parse_timezone, parse_windows
from runners.template import STANDARD_VARS

_ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: Slack shows at most 10 checkbox options (of at most 75 characters) per checkbox group: a longer
#: checklist, or a phase, takes several groups, and a card has room for `MAX_CHECKLIST_GROUPS`.
CHECKBOX_GROUP = 10
MAX_CHECKLIST_TEXT = 75
MAX_CHECKLIST_GROUPS = 20
MAX_PHASES = 10
MAX_PHASE_TEXT = 75


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
    captured = tuple(f"capture.{name}" for name in captures(t.data.get("checks")))
    steps = parse_stages(t.table("steps"), (*STANDARD_VARS, *variables, *captured), step_timeout)
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
    checklist, checklist_phases = _parse_checklist(t, "checklist")
    signoff, signoff_phases = _parse_checklist(t, "signoff_checklist")
    env = Environment(
        name=name,
        backend=backend,
        hosts=hosts,
        strategy=strategy,
        approvals=approvals,
        steps=steps,
        vars=variables,
        check_rules=parse_check_rules(t, checks, hosts, steps, _secret_names(t)),
        step_timeout=step_timeout,
        monitor=monitor,
        timezone=timezone,
        windows=windows,
        deploy_windows=deploy_windows,
        freezes=freezes,
        freeze_periods=freeze_periods,
        checks=checks,
        smoke_checks=smoke_checks,
        checklist=checklist,
        checklist_phases=checklist_phases,
        signoff_checklist=signoff,
        signoff_phases=signoff_phases,
        gates=parse_gates(t, steps),
        **_settings(t, name),
    )
    env = with_after_checks(env)  # a check `after` a step runs right after it, as its verify
    check_runbook(t, env)
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
    required_contexts: tuple[str, ...]
    page: bool


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
        "required_contexts": t.strings("required_contexts"),
        "page": t.get("page", bool, False),
    }


def _parse_checklist(t: Table, key: str) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """`checklist` / `signoff_checklist`: a list of items, or of phases (`{ phase = "During",
    items = [...] }`) shown as sections; items are numbered 1..N across phases.

    Returns the items and the phases as (name, item count); no phases for a plain list. Every
    item fits a Slack checkbox (75 characters), and the whole list fits a card: each phase
    takes a checkbox group per 10 items, at most `MAX_CHECKLIST_GROUPS` groups in all.
    """
    raw = t.get(key, list, [])
    tables = [item for item in raw if isinstance(item, dict)]
    if tables and len(tables) != len(raw):
        t.problems.add(t.key(key), "either a list of items or a list of phase tables, not both")
        return (), ()
    if not tables:
        items = t.strings(key)
        _check_items(t, t.key(key), items)
        groups = -(-len(items) // CHECKBOX_GROUP)
        phases: tuple[tuple[str, int], ...] = ()
    else:
        items, phases, groups = _parse_phases(t, key, tables)
    if groups > MAX_CHECKLIST_GROUPS:
        t.problems.add(
            t.key(key),
            f"too long for one card: {groups} checkbox groups of at most {CHECKBOX_GROUP} items "
            f"(each phase starts one), at most {MAX_CHECKLIST_GROUPS} fit Slack's 50 blocks",
        )
    return items, phases


def _parse_phases(
    t: Table, key: str, tables: list[dict[str, object]]
) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...], int]:
    items: list[str] = []
    phases: list[tuple[str, int]] = []
    groups = 0
    if len(tables) > MAX_PHASES:
        t.problems.add(t.key(key), f"at most {MAX_PHASES} phases")
    for i, raw in enumerate(tables):
        p = Table(raw, f"{t.key(key)}[{i}]", t.problems)
        name = p.get("phase", str, None)
        phase_items = p.strings("items")
        p.finish()
        if not name or not name.strip():
            t.problems.add(p.key("phase"), "required: the phase's name, shown above its items")
        elif len(name) > MAX_PHASE_TEXT:
            t.problems.add(p.key("phase"), f"must be at most {MAX_PHASE_TEXT} characters")
        if not phase_items:
            t.problems.add(p.key("items"), "a phase needs at least one item")
        _check_items(t, p.key("items"), phase_items)
        items.extend(phase_items)
        phases.append(((name or f"phase {i + 1}").strip(), len(phase_items)))
        groups += -(-len(phase_items) // CHECKBOX_GROUP)
    return tuple(items), tuple(phases), groups


def _check_items(t: Table, path: str, items: tuple[str, ...]) -> None:
    for i, item in enumerate(items):
        if len(item) > MAX_CHECKLIST_TEXT:
            t.problems.add(
                f"{path}[{i}]", f"must be at most {MAX_CHECKLIST_TEXT} characters (Slack checkbox limit)"
            )


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
