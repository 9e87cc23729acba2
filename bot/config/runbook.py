"""What a deploy runs and where: `hosts`, `strategy` and the `steps` of each stage.

"Runbook" is the word the `Environment` docstring already uses for these three together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.config.quoting import quoted_placeholders
from bot.config.reader import Table, parse_duration
from bot.config.rules import at_least_one, port_number
from bot.config.schema import DEFAULT_SSH_STEP_TIMEOUT, STAGES
from runners.base import Host, Step, Upload
from runners.strategy import Strategy
from runners.template import unknown_placeholders


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
    """The steps of one stage: `name` and `run` (or `upload` and `to`) required, `run` checked for
    unknown and quoted placeholders, `timeout` defaulting to the environment's step timeout."""
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
            upload=upload,
        )
        if upload is not None and step.sudo:
            st.problems.add(f"{path}.sudo", "an upload runs as the SSH user: it cannot use sudo")
        s.finish()
        steps.append(step)
    return tuple(steps)


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
