"""What a check says beside its probe: when it applies (`on`, `since`, `after`), how its failures
count (`failure_limit`, `consecutive`, `inconclusive_limit`), its own `secrets`, and the hosts
it is written for (`roles`; `{host...}` placeholders) — and whether its placeholders can be
filled: every host has the `{host.vars.NAME}` it names, some check captures each
`{capture.NAME}`, each `{secret.NAME}` is given to it. Problems carry their key paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from bot.config.reader import Table
from bot.config.rules import VAR_NAME
from bot.config.schema import CHECK_PHASES, CheckRule, Environment
from bot.domain.versions import is_version
from runners.base import Host, Step
from runners.checks import Check, CommandCheck, HttpCheck, Limit, used

#: Where the placeholder of a field is written in the table (the spec's field → the TOML key).
_KEY = {"json_body": "json"}
#: Stages a deploy runs (a step there makes a check apply to deploys); rollbacks run `rollback`.
_DEPLOY_STAGES = ("pre_deploy", "deploy", "verify")
#: Fields a value from outside the config file (a captured value, a secret) must not go into:
#: a query language, or a label filter.
_QUERY_FIELDS = {"query", "labels", "command", "prometheus_url"}


def captures(raw_checks: object) -> tuple[str, ...]:
    """The capture names the raw check tables define (read before steps are checked, so a step
    may use `{capture.NAME}`)."""
    names: list[str] = []
    for raw in raw_checks if isinstance(raw_checks, list) else []:
        table = raw.get("capture") if isinstance(raw, Mapping) else None
        if isinstance(table, Mapping):
            names.extend(str(k) for k in table if VAR_NAME.match(str(k)))
    return tuple(dict.fromkeys(names))


def parse_check_rules(
    t: Table,
    checks: Sequence[Check],
    hosts: Sequence[Host],
    steps: Mapping[str, Sequence[Step]],
    env_secrets: Sequence[str],
) -> dict[str, CheckRule]:
    """The rule of every parsed check of environment table `t`, by check name."""
    by_name = {c.name: c for c in checks}
    captured = {name: c.name for c in checks if isinstance(c, HttpCheck) for name in c.capture}
    rules: dict[str, CheckRule] = {}
    raw_list = t.data.get("checks", [])
    for i, raw in enumerate(raw_list if isinstance(raw_list, list) else []):
        if not isinstance(raw, Mapping) or raw.get("name") not in by_name:
            continue  # a table that did not parse is reported already
        check = by_name[raw["name"]]
        r = Table(raw, f"{t.key('checks')}[{i}]", t.problems, record_keys=False)
        rule = _rule(r, check, hosts, steps)
        _placeholders(r, check, rule, hosts, captured, env_secrets)
        if rule != CheckRule():
            rules[check.name] = rule
    return rules


def with_after_checks(env: Environment) -> Environment:
    """`env` whose steps run the checks `after` them right after them, as their own `verify`."""
    after: dict[str, list[str]] = {}
    for name, rule in env.check_rules.items():
        if rule.after:
            after.setdefault(rule.after, []).append(name)
    if not after:
        return env
    steps = {
        stage: tuple(
            replace(s, verify=(*s.verify, *(n for n in after.get(s.name, ()) if n not in s.verify)))
            for s in stage_steps
        )
        for stage, stage_steps in env.steps.items()
    }
    return replace(env, steps=steps)


def _rule(r: Table, check: Check, hosts: Sequence[Host], steps: Mapping[str, Sequence[Step]]) -> CheckRule:
    on = _phases(r, check)
    since = r.string("since")
    if since is not None and not is_version(since):
        r.problem("since", f'{since!r} holds no version: write the first release it applies to, like "v2"')
        since = None
    after = r.string("after")
    if after is not None:
        on = _after(r, after, on, steps)
    limit = Limit(
        failures=r.integer("failure_limit", 0, 1, 1000) or None,
        consecutive=r.boolean("consecutive", True),
        inconclusive=r.integer("inconclusive_limit", 1, 1, 1000),
    )
    roles = _strings(r, "roles")
    known_roles = {role for h in hosts for role in h.roles}
    for role in roles:
        if role not in known_roles:
            r.problem(
                "roles", f"no host has role {role!r} (roles: {', '.join(sorted(known_roles)) or 'none'})"
            )
    secrets = _strings(r, "secrets")
    for name in secrets:
        if not VAR_NAME.match(name):
            r.problem("secrets", f"{name!r} must be the NAME of an environment variable holding the secret")
    per_host = any(n == "host" or n.startswith("host.") for names in used(check).values() for n in names)
    if roles and not per_host:
        r.problem("roles", "only a check written for every host ({host...} placeholders) has roles")
    return CheckRule(
        on=on, since=since, after=after, limit=limit, secrets=secrets, roles=roles, per_host=per_host
    )


def _strings(r: Table, key: str) -> tuple[str, ...]:
    raw = r.data.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        r.problem(key, "must be a list of non-empty strings")
        return ()
    return tuple(raw)


def _phases(r: Table, check: Check) -> tuple[str, ...]:
    """`on`: "deploy", "rollback" or a list of them (a command check's "one"/"all" are its hosts)."""
    raw = r.data.get("on")
    if raw is None or (isinstance(check, CommandCheck) and isinstance(raw, str) and raw not in CHECK_PHASES):
        return CHECK_PHASES  # a command check's hosts ("one", "all"; anything else is reported there)
    items = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else None
    if not items or not all(isinstance(x, str) and x in CHECK_PHASES for x in items):
        hint = (
            ' (a command check\'s hosts are run_on = "one" or "all")'
            if isinstance(check, CommandCheck)
            else ""
        )
        r.problem("on", f'must be "deploy", "rollback" or a list of them, e.g. on = ["deploy"]{hint}')
        return CHECK_PHASES
    return tuple(p for p in CHECK_PHASES if p in items)


def _after(r: Table, after: str, on: tuple[str, ...], steps: Mapping[str, Sequence[Step]]) -> tuple[str, ...]:
    """`after`: a step of the runbook; the check applies to the kinds of deployment that run it."""
    kinds = set()
    for stage, stage_steps in steps.items():
        if any(s.name == after for s in stage_steps):
            kinds.add("rollback" if stage == "rollback" else "deploy" if stage in _DEPLOY_STAGES else stage)
    if not kinds:
        names = [s.name for stage in (*_DEPLOY_STAGES, "rollback") for s in steps.get(stage, ())]
        r.problem("after", f"no step named {after!r} (steps: {', '.join(dict.fromkeys(names)) or 'none'})")
        return on
    narrowed = tuple(p for p in on if p in kinds)
    if not narrowed:
        r.problem("after", f"step {after!r} runs only in {' and '.join(sorted(kinds))}s, but on = {list(on)}")
        return on
    return narrowed


def _placeholders(
    r: Table,
    check: Check,
    rule: CheckRule,
    hosts: Sequence[Host],
    captured: Mapping[str, str],
    env_secrets: Sequence[str],
) -> None:
    """Every placeholder of `check` can be filled where it is written."""
    for field_name, names in used(check).items():
        key = _KEY.get(field_name, field_name)
        for name in dict.fromkeys(names):
            if name.startswith("host.vars."):
                _host_var(r, key, name.removeprefix("host.vars."), rule.hosts(tuple(hosts)))
            elif name.startswith("capture."):
                _capture(r, key, name.removeprefix("capture."), check, captured)
            elif name.startswith("secret."):
                _secret(r, key, name.removeprefix("secret."), rule, env_secrets)


def _host_var(r: Table, key: str, var: str, hosts: Iterable[Host]) -> None:
    lacking = [h.name for h in hosts if var not in dict(h.vars)]
    if lacking:
        shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
        r.problem(
            key,
            f"unknown host var {{host.vars.{var}}}: {shown} ha{'s' if len(lacking) == 1 else 've'} no vars.{var}",
        )


def _capture(r: Table, key: str, name: str, check: Check, captured: Mapping[str, str]) -> None:
    if key in _QUERY_FIELDS and not isinstance(check, CommandCheck):
        r.problem(key, f"{{capture.{name}}}: a captured value cannot go into a {key}")
    elif name not in captured or captured[name] == check.name:
        known = ", ".join(sorted(n for n, c in captured.items() if c != check.name)) or "none"
        r.problem(key, f"no other check captures {name!r} (captured: {known})")


def _secret(r: Table, key: str, name: str, rule: CheckRule, env_secrets: Sequence[str]) -> None:
    if key in _QUERY_FIELDS:
        r.problem(key, f"{{secret.{name}}}: a secret cannot go into a {key} (use headers)")
    elif name not in rule.secrets and name not in env_secrets:
        r.problem(key, f"{{secret.{name}}} is not a secret of this check: add {name!r} to its secrets")
