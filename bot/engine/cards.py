"""Cards from deployments: the deploy card and the sign-off card, as neutral `Card` data.

Pure: a deployment plus its environment (and what the caller looked up: the lock, a pending
sign-off rollback) in, a `Card` out; every chat adapter renders the result.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.config import Environment
from bot.domain.actions import Action
from bot.domain.card import Button, Card, ChecklistItem
from bot.domain.deployment import STATE_ICON, Deployment, Lock, State
from bot.domain.tally import StageTally

STATE_TEXT = {
    State.PENDING: "waiting for approval",
    State.SCHEDULED: "approved, scheduled",
    State.APPROVED: "approved, starting",
    State.RUNNING: "running",
    State.GATED: "waiting at a gate",
    State.MONITORING: "deployed, monitoring",
    State.SUCCEEDED: "deployed",
    State.SIGNED_OFF: "deployed and signed off",
    State.FAILED: "failed",
    State.DECLINED: "declined (no-go)",
    State.CANCELLED: "cancelled",
    State.EXPIRED: "expired without approval",
    State.ABORTED: "aborted",
    State.INTERRUPTED: "interrupted",
    State.ROLLED_BACK: "rolled back",
}


def build_card(d: Deployment, env: Environment, lock: Lock | None = None) -> Card:
    """Render a deployment into a card."""
    dry = " (dry run)" if d.dry_run else ""
    details = d.details
    checklist = checklist_items(env.checklist[: len(d.checklist)], env.checklist_phases, d.checklist)
    approvals_line = None
    if d.required_approvals:
        got = ", ".join(d.approvers()) or "none yet"
        approvals_line = f"Approvals {len(d.approvals)}/{d.required_approvals}: {got}"
    gate = details.gate
    if d.state == State.GATED and gate is not None:
        got = ", ".join(gate.approvals) or "none yet"
        approvals_line = f"Go at the gate {len(gate.approvals)}/{env.approvals.required}: {got}"
    warnings = details.warnings
    if details.ignored_safeties:
        warnings = (*warnings, "Safeties ignored with --force: " + ", ".join(details.ignored_safeties))
    return Card(
        lines=_lines(d),
        deployment_id=d.id,
        title=f"{d.rules.title} {d.label}: {d.ref} to {d.env}{dry}",
        state=d.state,
        status_line=_status(d),
        fields=_fields(d, env),
        changelog=details.changelog,
        changelog_note=details.changelog_note,
        warnings=warnings,
        checklist=checklist,
        checklist_open=d.state == State.PENDING and not d.dry_run and bool(checklist),
        approvals_line=approvals_line,
        buttons=_buttons(d),
        footer=f"🔒 {d.env} is locked by {lock.owner}: {lock.reason}" if lock else None,
        stages=_stages(d),
    )


#: States whose card shows the run's stage counts: while it runs, and where it stopped.
PROGRESS_STATES = (State.RUNNING, State.FAILED, State.ABORTED, State.INTERRUPTED)


def _stages(d: Deployment) -> tuple[StageTally, ...]:
    return d.details.stages if d.state in PROGRESS_STATES else ()


def _fields(d: Deployment, env: Environment) -> tuple[tuple[str, str], ...]:
    fields: list[tuple[str, str]] = [
        ("Environment", d.env),
        ("Ref", d.ref),
        ("Commit", d.short_sha),
        ("Requested by", d.requester),
    ]
    if d.reason:
        fields.append(("Reason", d.reason))
    if d.rollback_of:
        fields.append(("Rolls back", f"#{d.rollback_of}"))
    if d.force:
        ignored = d.details.ignored_safeties
        fields.append(
            ("Forced", "yes: safeties ignored (recorded)" if ignored else "yes (no safety was in the way)")
        )
    if d.scheduled_at:
        local = d.scheduled_at.astimezone(ZoneInfo(env.timezone))
        fields.append(("Scheduled", local.strftime("%a %Y-%m-%d %H:%M %Z")))
    return tuple(fields)


def _status(d: Deployment) -> str:
    status = f"{STATE_ICON[d.state]} {_state_text(d)}"
    if d.state == State.GATED and d.details.gate is not None:
        return f"{status} before {d.details.gate.stage}: {d.details.gate.question}"
    if d.progress and d.state in (State.RUNNING, State.INTERRUPTED, State.MONITORING):
        status += f": {d.progress}"
    if d.error and d.state in (State.FAILED, State.INTERRUPTED, State.ABORTED):
        status += f": {d.error}"
    return status


def _buttons(d: Deployment) -> tuple[Button, ...]:
    value = str(d.id)
    if d.state == State.PENDING and not d.dry_run:  # a dry run approves itself once posted
        return (Button("Go", Action.GO, value, "primary"), Button("No-go", Action.NOGO, value, "danger"))
    if d.state == State.RUNNING:
        return (Button("Abort", Action.ABORT, value, "danger"),)
    if d.state == State.GATED:
        return (
            Button("Go", Action.GATE_GO, value, "primary"),
            Button("No-go", Action.GATE_NOGO, value, "danger"),
        )
    if d.state == State.INTERRUPTED:
        return (
            Button("Resume", Action.RESUME, value, "primary"),
            Button("Roll back", Action.ROLLBACK_NOW, value, "danger"),
        )
    return ()


def _lines(d: Deployment) -> tuple[str, ...]:
    """Extra lines: the stages' host counts, the artifacts steps published, what a rollback
    undoes, monitoring's, and while running each host's last output line."""
    lines = (
        *(t.line() for t in _stages(d)),
        *_artifact_lines(d),
        *(f"↩️ {n}" for n in d.details.undo_notes[:10]),
        *d.details.card_lines,
    )
    live = d.details.live
    if d.state == State.RUNNING and live is not None and live.hosts:
        lines = (*lines, *(f"{host} │ {tail}" for host, tail in list(live.hosts.items())[:10]))
    return lines


def _artifact_lines(d: Deployment) -> list[str]:
    """`📦 backup_path: /var/backups/shop-42.sql` (per host when the hosts published different values)."""
    out = []
    for name, by_host in list(d.details.artifacts.items())[:10]:
        values = set(by_host.values())
        if len(values) == 1:
            out.append(f"📦 {name}: {next(iter(values))}")
        else:
            out.append(f"📦 {name}: " + ", ".join(f"{h}={v}" for h, v in by_host.items()))
    return out


def checklist_items(
    items: tuple[str, ...], phases: tuple[tuple[str, int], ...], ticked: tuple[bool, ...]
) -> tuple[ChecklistItem, ...]:
    """A checklist as card items, numbered 1..N across phases, each naming its phase (if any)."""
    names: list[str | None] = [name for name, count in phases for _ in range(count)]
    return tuple(
        ChecklistItem(
            i + 1,
            text,
            ticked[i] if i < len(ticked) else False,
            names[i] if i < len(names) else None,
        )
        for i, text in enumerate(items)
    )


def _state_text(d: Deployment) -> str:
    """What the state means for this kind of deployment (a dry run deploys nothing)."""
    if d.state == State.SUCCEEDED and d.dry_run:
        return "dry run finished: nothing was changed"
    if d.dry_run and d.state in (State.PENDING, State.APPROVED):
        return "dry run: starting (no approval needed, nothing will change)"
    if d.state == State.SUCCEEDED:
        return d.rules.succeeded_text
    if d.state == State.RUNNING:
        return d.rules.running_text
    return STATE_TEXT[d.state]


def build_signoff_card(d: Deployment, env: Environment) -> Card:
    """The sign-off request for a live deployment: its checklist with Keep / Roll back."""
    signoff = d.details.signoff
    decided = signoff.decision
    ticks = signoff.ticks(len(env.signoff_checklist))
    checklist = checklist_items(env.signoff_checklist, env.signoff_phases, ticks)
    if decided:
        at = signoff.at or ""
        when = f" at {at[:16].replace('T', ' ')} UTC" if at else ""
        status = f"🏁 {decided} by {signoff.by}{when}"
        buttons: tuple[Button, ...] = ()
    else:
        status = "waiting for sign-off"
        buttons = (
            Button("Keep", Action.KEEP, str(d.id), "primary"),
            Button("Roll back", Action.SIGNOFF_ROLLBACK, str(d.id), "danger"),
        )
    return Card(
        deployment_id=d.id,
        title=f"Sign-off {d.label}: {d.ref} in {d.env}",
        state=d.state,
        status_line=status,
        fields=(
            ("Environment", d.env),
            ("Ref", d.ref),
            ("Commit", d.short_sha),
            ("Deployed by", d.requester),
        ),
        checklist=checklist,
        checklist_open=not decided and bool(checklist),
        buttons=buttons,
        kind="signoff",
    )


def signoff_card(
    d: Deployment, env: Environment, *, closed: str | None, pending_rollback: Deployment | None
) -> Card:
    """The sign-off card as it is now: `build_signoff_card`, plus when it was decided, what is
    pending (`pending_rollback`: the rollback a ROLL BACK started, if found) and, when it can no
    longer be decided, why (`closed`)."""
    card = build_signoff_card(d, env)
    signoff = d.details.signoff
    fields = list(card.fields)
    warnings = list(card.warnings)
    reopened = signoff.reopened
    if reopened is not None and not signoff.decision:
        warnings.append(f"{reopened.why} ({format_instant(reopened.at)}): the sign-off is open again")
    if signoff.decision:  # who and when: build_signoff_card's status line
        if signoff.rollback_id:
            fields.append(("Rolled back by", f"#{signoff.rollback_id} at {format_instant(signoff.done_at)}"))
        return replace(card, fields=tuple(fields), warnings=tuple(warnings))
    pending = signoff.rollback
    if pending is not None:
        rb = pending_rollback
        where = f"rollback {rb.label} is {rb.state.value}" if rb else "starting the rollback"
        fields.append(("Decided", f"ROLL BACK by {pending.by} at {format_instant(pending.at)} (pending)"))
        status = f"↩️ ROLL BACK requested by {pending.by}: {where}; final once it is done"
        return replace(
            card,
            status_line=status,
            fields=tuple(fields),
            warnings=tuple(warnings),
            buttons=(),
            checklist_open=False,
        )
    if closed:
        return replace(
            card,
            status_line=f"closed: {closed}",
            warnings=tuple(warnings),
            buttons=(),
            checklist_open=False,
        )
    return replace(card, warnings=tuple(warnings))


def format_instant(iso: str | None) -> str:
    """An ISO instant as people read it on cards: `2026-11-23 10:05 UTC`."""
    if not iso:
        return "?"
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso
