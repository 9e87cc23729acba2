"""What a deploy runs and where: `hosts`, `strategy` and the `steps` of each stage.

"Runbook" is the word the `Environment` docstring already uses for these three together.
Beside `run`, a step may say how it is undone (`undo`), that it cannot be undone blindly
(`irreversible`, `on_failure`), what it publishes (`artifacts`), which secrets it alone gets
(`secrets`) and which checks must pass right after it (`verify`). What needs the whole runbook
to judge (an artifact used before a step publishes it, a host variable a host lacks, a restore
choice without restore steps) is `bot.config.runbook_rules`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.config.quoting import quoted_placeholders
from bot.config.reader import Table, parse_duration
from bot.config.rules import VAR_NAME, at_least_one, port_number
from bot.config.schema import DEFAULT_SSH_STEP_TIMEOUT, STAGES
from runners.base import Host, Step, Upload
from runners.strategy import Strategy
from runners.template import ARTIFACT_PREFIX, HOST_VARS_PREFIX, unknown_placeholders

#: What a human may choose after an irreversible step ran (`on_failure`).
CHOICES = ("undo", "restore", "hold")
#: Stages whose steps a compensation may undo (rollback and restore steps are never undone).
UNDOABLE_STAGES = ("pre_deploy", "deploy", "verify")


def parse_hosts(t: Table) -> tuple[Host, ...]:
    """`hosts`: names, or tables with name/address/port/user/roles/gateway; at least one, no twice."""
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
            h = Table(item, path, t.problems)
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
                    port=h.get("port", int, None, port_number),
                    user=h.get("user", str, None),
                    roles=h.strings("roles"),
                    gateway=h.get("gateway", str, None),
                    vars=_host_vars(h),
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


def _host_vars(h: Table) -> tuple[tuple[str, str], ...]:
    """`hosts[].vars`: a table of strings (numbers kept as their text), for `{host.vars.NAME}`."""
    raw = h.get("vars", dict, {})
    out: list[tuple[str, str]] = []
    for name, value in raw.items():
        if not VAR_NAME.match(name):
            h.problems.add(f"{h.key('vars')}.{name}", "variable names are letters, digits and _")
        elif not isinstance(value, str | int | float) or isinstance(value, bool):
            h.problems.add(f"{h.key('vars')}.{name}", "must be a string or number")
        else:
            out.append((name, str(value)))
    return tuple(out)


def parse_strategy(s: Table) -> Strategy:
    """`[strategy]`: parallel, sequential or canary, with batch size (hosts or a percentage) and pause."""
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
        max_parallel=s.get("max_parallel", int, 10, at_least_one),
        canary=s.get("canary", int, 1, at_least_one),
        batch_size=batch_size,
        batch_percent=batch_percent,
        pause=s.duration("pause", 0.0),
    )
    s.finish()
    return strategy


def parse_step_timeout(t: Table, backend: str) -> float | None:
    """`step_timeout`: none for local environments unless set; SSH ones always get one."""
    step_timeout = t.duration("step_timeout", 0.0) or None
    if step_timeout is None and backend == "ssh":
        if _is_zero(t.data.get("step_timeout")):
            t.problems.add(
                t.key("step_timeout"),
                "must be > 0 for an ssh environment: a step with no timeout can hang forever",
            )
        step_timeout = DEFAULT_SSH_STEP_TIMEOUT
    return step_timeout


def _is_zero(value: Any) -> bool:
    try:
        return value is not None and parse_duration(value) == 0
    except ValueError:
        return False


def parse_stages(
    st: Table, known_vars: tuple[str, ...], default_timeout: float | None
) -> dict[str, tuple[Step, ...]]:
    """`[steps]`: the steps of each stage; a deploy needs at least one deploy step."""
    steps: dict[str, tuple[Step, ...]] = {}
    for stage in STAGES:
        steps[stage] = parse_steps(st, stage, known_vars, default_timeout)
    st.finish()
    if not steps["deploy"]:
        st.problems.add(f"{st.path}.deploy", "at least one deploy step is required")
    return steps


def parse_steps(
    st: Table, stage: str, known_vars: tuple[str, ...], default_timeout: float | None
) -> tuple[Step, ...]:
    """The steps of one stage: `name` and `run` (or `upload` and `to`) required, `run` and `undo`
    checked for unknown and quoted placeholders, `timeout` defaulting to the environment's step
    timeout."""
    raw = st.get(stage, list, [])
    steps: list[Step] = []
    for i, item in enumerate(raw):
        path = f"{st.key(stage)}[{i}]"
        s = Table(item, path, st.problems)
        name = s.get("name", str, None)
        command = s.get("run", str, None)
        upload = parse_upload(s, known_vars)
        uploads = "upload" in s.data or "to" in s.data
        for key in ("name",) if uploads else ("name", "run"):  # wrong types: reported by get()
            given = s.data.get(key)
            if given is None or (isinstance(given, str) and not given.strip()):
                st.problems.add(f"{path}.{key}", "required")
        _check_template(s, "run", command, known_vars)
        undo = s.get("undo", str, None)
        _check_template(s, "undo", undo, known_vars)
        timeout = s.duration("timeout", 0.0) or default_timeout
        step = Step(
            name=name or f"step {i + 1}",
            command=command or "true",
            once=s.get("once", bool, False),
            timeout=timeout,
            roles=s.strings("roles"),
            sudo=s.get("sudo", bool, False),
            undo=undo if undo and undo.strip() else None,
            irreversible=s.get("irreversible", bool, False),
            on_failure=s.strings("on_failure"),
            artifacts=_names(s, "artifacts", "artifact names are letters, digits and _"),
            secrets=_names(s, "secrets", "must be an environment variable name like PGPASSWORD"),
            verify=s.strings("verify"),
            upload=upload,
        )
        if upload is not None and step.sudo:
            st.problems.add(f"{path}.sudo", "an upload runs as the SSH user: it cannot use sudo")
        if stage not in UNDOABLE_STAGES:
            for key in ("undo", "irreversible", "on_failure"):
                if key in s.data:
                    s.problems.add(
                        s.key(key), f"only pre_deploy, deploy and verify steps are undone, not {stage} steps"
                    )
        s.finish()
        steps.append(
            _with_choices(s, step, restore=f"{st.path}.restore", has_restore=bool(st.data.get("restore")))
        )
    return tuple(steps)


def _check_template(s: Table, key: str, template: str | None, known_vars: tuple[str, ...]) -> None:
    """Unknown and quoted placeholders of one template (artifacts and host variables are judged
    with the whole runbook, in `runbook_rules`)."""
    if not template:
        return
    names = [
        n
        for n in unknown_placeholders(template, known_vars)
        if not n.startswith((ARTIFACT_PREFIX, HOST_VARS_PREFIX))
    ]
    if names:
        s.problems.add(
            s.key(key), f"unknown variable {{{names[0]}}} (known: {', '.join(sorted(known_vars))})"
        )
    for where, var in quoted_placeholders(template):
        s.problems.add(
            s.key(key),
            f"{{{var}}} is inside {where}: write {{{var}}} bare: values are quoted for you "
            "(inside quotes the quoting is undone and a value could run as shell code)",
        )


def _names(s: Table, key: str, message: str) -> tuple[str, ...]:
    """A list of names (artifacts, secrets): letters, digits and `_`; bad ones reported, left out."""
    names = s.strings(key)
    for i, name in enumerate(names):
        if not VAR_NAME.match(name):
            s.problems.add(f"{s.key(key)}[{i}]", message)
    return tuple(dict.fromkeys(n for n in names if VAR_NAME.match(n)))


def _with_choices(s: Table, step: Step, *, restore: str, has_restore: bool) -> Step:
    """Judge `irreversible`, `undo` and `on_failure` together; an irreversible step without
    `on_failure` offers what it has: undo (when it has one), restore (when the environment has
    restore steps), hold.

    The rule: an irreversible step is never undone automatically. Its `undo` runs only when a
    human picks `undo` from its `on_failure` choices, so an `undo` that `on_failure` leaves out
    could never run, and contradicts the step.
    """
    choices = step.on_failure
    if "on_failure" in s.data and not step.irreversible:
        s.problems.add(s.key("on_failure"), "only an irreversible step has choices (set irreversible = true)")
    for i, choice in enumerate(choices):
        if choice not in CHOICES:
            s.problems.add(
                f"{s.key('on_failure')}[{i}]", f"unknown choice {choice!r} (choices: {', '.join(CHOICES)})"
            )
    choices = tuple(dict.fromkeys(c for c in choices if c in CHOICES))
    if not step.irreversible:
        return step
    if "on_failure" in s.data and isinstance(s.data["on_failure"], list) and not s.data["on_failure"]:
        s.problems.add(s.key("on_failure"), "name at least one choice (undo, restore or hold)")
    if "on_failure" not in s.data:
        choices = (*(("undo",) if step.undo else ()), *(("restore",) if has_restore else ()), "hold")
    elif step.undo and "undo" not in choices:
        s.problems.add(
            s.key("undo"),
            "contradicts irreversible = true: an irreversible step's undo runs only when someone "
            'chooses it, and on_failure does not offer undo (add "undo" to on_failure, or remove undo)',
        )
    elif "undo" in choices and not step.undo:
        s.problems.add(s.key("on_failure"), "offers undo, but the step has no undo command")
    if "restore" in choices and not has_restore:
        s.problems.add(
            s.key("on_failure"),
            f"offers restore, but the environment has no restore steps ([[{restore}]])",
        )
    return replace(step, on_failure=choices)


def parse_upload(s: Table, known_vars: tuple[str, ...]) -> Upload | None:
    """`upload` (a file on the bot's machine; relative to the config file's directory) and `to`
    (where it goes on each host): both path templates, the pair instead of `run`."""
    source, destination = s.get("upload", str, None), s.get("to", str, None)
    if source is None and destination is None:
        return None
    if "run" in s.data:
        s.problems.add(
            s.key("upload" if source is not None else "to"),
            "a step either runs a command or uploads a file: not both",
        )
    for key, value in (("upload", source), ("to", destination)):
        if not (value and value.strip()):
            s.problems.add(
                s.key(key), "required for an upload step" if value is None else "must not be empty"
            )
        elif unknown := unknown_placeholders(value, known_vars):
            s.problems.add(
                s.key(key), f"unknown variable {{{unknown[0]}}} (known: {', '.join(sorted(known_vars))})"
            )
    if not (source and destination):
        return None
    if not source.startswith(("/", "~", "{")):
        source = "{config_dir}/" + source
    return Upload(
        source=str(Path(source).expanduser()) if source.startswith("~") else source, destination=destination
    )
