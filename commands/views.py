"""Text views of status and history, shared by every chat adapter (Slack mrkdwn-safe).

`/status` shows, per environment: what runs (ref, short sha, who deployed it, since when),
what is in flight and its state, the lock and its reason, and the last check results
(`health ✓ 200 (12 ms)`). `/status <env>` adds the monitoring state of a deployment in its
window (`monitoring #4: round 3/10 · health failing 1/3`) and the recent deployments.

The text stays readable in a terminal and within Slack's limits: every dynamic part is
clipped, at most `MAX_CHECKS` checks are listed per environment, and the whole reply stops at
`MAX_CHARS` (Slack adapters cut replies at 12,000 characters; we stop first, at a line).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.domain.deployment import STATE_ICON, Deployment, State
from bot.engine import EnvStatus

MAX_CHARS = 11_000
"""Longest `/status` reply; environments that do not fit are named, not shown."""
MAX_CHECKS = 6
"""Check results listed per environment; the rest are counted."""
MAX_FIELD = 160
"""Longest reason, error or progress text quoted in a line."""

_STATE_WORDS: Mapping[State, str] = {
    State.PENDING: "waiting for approval",
    State.SCHEDULED: "approved, scheduled",
    State.APPROVED: "approved, starting",
    State.RUNNING: "running",
    State.GATED: "waiting at a gate",
    State.MONITORING: "live, monitoring",
    State.INTERRUPTED: "interrupted",
}


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if t else "—"


def _clip(text: str | None, limit: int = MAX_FIELD) -> str:
    """One line of at most `limit` characters (newlines folded)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def check_summary(name: str, ok: bool, observed: str | None, error: str | None, latency: float) -> str:
    """One check result, compact: `health ✓ 200 (12 ms)`, `db ✗ timed out (5.0 s)`."""
    if ok:
        detail = observed or "ok"
    elif error and observed and observed not in error:
        detail = f"{observed}: {error}"
    else:
        detail = error or observed or "failed"
    return f"{_clip(name, 40)} {'✓' if ok else '✗'} {_clip(detail, 80)} ({_ms(latency)})"


def _line(d: Deployment) -> str:
    kind = "rollback" if d.kind == "rollback" else "deploy"
    dry = " (dry run)" if d.dry_run else ""
    approvers = ", ".join(d.approvers()) or "—"
    return (
        f"{STATE_ICON[d.state]} {d.label} {kind}{dry} {_clip(d.ref, 60)} ({d.short_sha}) {d.state.value} · "
        f"by {d.requester} · approved by {approvers} · {_when(d.finished_at or d.created_at)}"
    )


def _runs(d: Deployment) -> str:
    """What an environment runs: `v1 (abc1234) since … · deployed by alice [#1]`."""
    since = d.finished_at or d.started_at or d.created_at
    verb = "rolled back by" if d.kind == "rollback" else "deployed by"
    approved = f", approved by {', '.join(d.approvers())}" if d.approvers() else ""
    extra = ""
    if d.state == State.SIGNED_OFF:
        by = d.details.signoff.by
        extra = f" · signed off{' by ' + str(by) if by else ''}"
    elif d.state == State.MONITORING:
        extra = " · monitoring"
    return (
        f"{_clip(d.ref, 60)} ({d.short_sha}) since {_when(since)} · {verb} {d.requester}{approved}"
        f" [{d.label}]{extra}"
    )


def _in_flight(d: Deployment) -> str:
    """`in flight: #2 deploy of v2 (abc1234) by bob: 🚀 running (deploy › restart app)`."""
    kind = "rollback" if d.kind == "rollback" else "deploy"
    dry = " (dry run)" if d.dry_run else ""
    state = _STATE_WORDS.get(d.state, d.state.value)
    line = f"in flight: {d.label} {kind}{dry} of {_clip(d.ref, 60)} ({d.short_sha}) by {d.requester}: {STATE_ICON[d.state]} {state}"
    if d.state == State.PENDING and d.required_approvals:
        line += f" (approvals {len(d.approvals)}/{d.required_approvals})"
    elif d.state == State.SCHEDULED and d.scheduled_at:
        line += f" for {_when(d.scheduled_at)}"
    elif d.state == State.INTERRUPTED and d.error:
        line += f": {_clip(d.error)}"
    if d.progress and d.state in (State.RUNNING, State.INTERRUPTED):
        line += f" ({_clip(d.progress)})"
    return line


def _checks(s: EnvStatus) -> str | None:
    """`checks (#1, round 2, 2026-12-01 19:20 UTC): health ✓ 200 (12 ms) · db ✗ …`."""
    if not s.checks:
        return None
    first = s.checks[0]
    where = [f"#{first.deployment_id}"] if first.deployment_id is not None else []
    where.append(f"round {first.round}" if first.round else "smoke")
    where.append(_when(max(c.at for c in s.checks)))
    shown = [check_summary(c.name, c.ok, c.observed, c.error, c.latency) for c in s.checks[:MAX_CHECKS]]
    if len(s.checks) > MAX_CHECKS:
        shown.append(f"+{len(s.checks) - MAX_CHECKS} more")
    return f"checks ({', '.join(where)}): " + " · ".join(shown)


def monitoring_text(d: Deployment) -> str:
    """The monitoring window of `d`: `monitoring #4: round 3/10 · health failing 1/3`.

    From the deployment's details: `monitor_round` (rounds judged so far), `monitor_rounds`
    (rounds in the window, when recorded) and `tracker` (`consecutive` failures per check
    and the `failure_limit`). Shows what is there.
    """
    details = d.details
    done = details.monitor_round
    total = details.monitor_rounds
    parts: list[str] = []
    if isinstance(done, int) and done > 0:
        parts.append(f"round {done}/{total}" if isinstance(total, int) and total > 0 else f"round {done}")
    else:
        parts.append("waiting for the first round")
    tracker = details.tracker
    if isinstance(tracker, Mapping):
        limit = tracker.get("failure_limit")
        counts = tracker.get("consecutive")
        failing = (
            sorted((str(n), c) for n, c in counts.items() if isinstance(c, int) and c > 0)
            if isinstance(counts, dict)
            else []
        )
        of = f"/{limit}" if isinstance(limit, int) else ""
        if failing:
            parts.extend(f"{_clip(name, 40)} failing {count}{of}" for name, count in failing[:MAX_CHECKS])
        elif isinstance(counts, dict) and done:
            parts.append("all checks passing")
    return f"monitoring {d.label}: " + " · ".join(parts)


def _env_block(s: EnvStatus, *, detailed: bool) -> list[str]:
    runs = _runs(s.current) if s.current else "nothing deployed yet"
    out = [f"*{s.env}*: {runs}"]
    if s.active and not (s.current and s.active.id == s.current.id):
        out.append("  " + _in_flight(s.active))
    if s.lock:
        out.append(f"  🔒 locked by {s.lock.owner} since {_when(s.lock.at)}: {_clip(s.lock.reason)}")
    if checks := _checks(s):
        out.append("  " + checks)
    if detailed:
        watched = [d for d in (s.active, s.current) if d is not None and d.state == State.MONITORING]
        if watched:
            out.append("  " + monitoring_text(watched[0]))
        out.append("  recent:")
        out.extend(f"    {_line(d)}" for d in s.recent)
        if not s.recent:
            out.append("    (none)")
    return out


def status_text(statuses: Sequence[EnvStatus], *, detailed: bool) -> str:
    """`/status`: every environment at a glance, or one in depth (see the module docstring)."""
    out: list[str] = []
    size = 0
    for i, s in enumerate(statuses):
        block = "\n".join(_env_block(s, detailed=detailed))
        if out and size + len(block) + 1 > MAX_CHARS:
            rest = [x.env for x in statuses[i:]]
            out.append(f"…and {len(rest)} more: {_clip(', '.join(rest), 300)} (see /status <env>)")
            break
        out.append(block[:MAX_CHARS])
        size += len(block) + 1
    return "\n".join(out)


def history_text(env: str, deployments: Sequence[Deployment]) -> str:
    """`/deploy history`: newest first, with who approved."""
    if not deployments:
        return f"No deployments of {env} yet."
    return "\n".join([f"History of {env} (newest first):", *(_line(d) for d in deployments)])
