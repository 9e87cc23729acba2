"""Text views of status and history, shared by every chat adapter (Slack mrkdwn-safe)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.card import STATE_ICON
from bot.domain import Deployment
from bot.engine import EnvStatus


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if t else "—"


def _line(d: Deployment) -> str:
    kind = "rollback" if d.kind == "rollback" else "deploy"
    dry = " (dry run)" if d.dry_run else ""
    approvers = ", ".join(d.approvers()) or "—"
    return (
        f"{STATE_ICON[d.state]} {d.label} {kind}{dry} {d.ref} ({d.short_sha}) {d.state.value} · "
        f"by {d.requester} · approved by {approvers} · {_when(d.finished_at or d.created_at)}"
    )


def status_text(statuses: Sequence[EnvStatus], *, detailed: bool) -> str:
    """`/status`: every environment at a glance, or one in depth."""
    out: list[str] = []
    for s in statuses:
        if s.current:
            runs = f"{s.current.ref} ({s.current.short_sha}) since {_when(s.current.finished_at)} by {s.current.requester} [{s.current.label}]"
        else:
            runs = "nothing deployed yet"
        out.append(f"*{s.env}*: {runs}")
        if s.active:
            out.append(f"  in flight: {s.active.label} {s.active.kind} of {s.active.ref}: {s.active.state.value}"
                       + (f" ({s.active.progress})" if s.active.progress else ""))  # fmt: skip
        if s.lock:
            out.append(f"  🔒 locked by {s.lock.owner} since {_when(s.lock.at)}: {s.lock.reason}")
        if detailed:
            out.append("  recent:")
            out.extend(f"    {_line(d)}" for d in s.recent)
            if not s.recent:
                out.append("    (none)")
    return "\n".join(out)


def history_text(env: str, deployments: Sequence[Deployment]) -> str:
    """`/deploy history`: newest first, with who approved."""
    if not deployments:
        return f"No deployments of {env} yet."
    return "\n".join([f"History of {env} (newest first):", *(_line(d) for d in deployments)])
