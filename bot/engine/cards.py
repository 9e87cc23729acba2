"""Cards from deployments: the deploy card and the sign-off card, as neutral `Card` data.

Pure: a deployment plus its environment (and what the caller looked up: the lock, a pending
sign-off rollback) in, a `Card` out; every chat adapter renders the result.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.config import Environment
from bot.domain.card import Button, Card, ChecklistItem
from bot.domain.deployment import STATE_ICON, Deployment, Lock, State

STATE_TEXT = {
    State.PENDING: "waiting for approval",
    State.SCHEDULED: "approved, scheduled",
    State.APPROVED: "approved, starting",
    State.RUNNING: "running",
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
    assert d.id is not None
    value = str(d.id)
    verb = "Rollback" if d.kind == "rollback" else "Deploy"
    dry = " (dry run)" if d.dry_run else ""
    title = f"{verb} {d.label}: {d.ref} to {d.env}{dry}"
    fields: list[tuple[str, str]] = [
        ("Environment", d.env),
        ("Ref", d.ref),
        ("Commit", d.short_sha),
        ("Requested by", d.requester),
    ]
    if d.reason:
        fields.append(("Reason", d.reason))
    if d.kind == "rollback" and d.rollback_of:
        fields.append(("Rolls back", f"#{d.rollback_of}"))
    if d.force:
        ignored = (d.details or {}).get("ignored_safeties")
        fields.append(
            ("Forced", "yes: safeties ignored (recorded)" if ignored else "yes (no safety was in the way)")
        )
    if d.scheduled_at:
        local = d.scheduled_at.astimezone(ZoneInfo(env.timezone))
        fields.append(("Scheduled", local.strftime("%a %Y-%m-%d %H:%M %Z")))

    status = f"{STATE_ICON[d.state]} {_state_text(d)}"
    if d.progress and d.state in (State.RUNNING, State.INTERRUPTED, State.MONITORING):
        status += f": {d.progress}"
    if d.error and d.state in (State.FAILED, State.INTERRUPTED, State.ABORTED):
        status += f": {d.error}"

    details = d.details or {}
    changelog = tuple(str(line) for line in details.get("changelog", ()))
    note = details.get("changelog_note")
    warnings = tuple(str(w) for w in details.get("warnings", ()))

    checklist = tuple(
        ChecklistItem(i + 1, text, d.checklist[i] if i < len(d.checklist) else False)
        for i, text in enumerate(env.checklist[: len(d.checklist)])
    )
    approvals_line = None
    if d.required_approvals:
        got = ", ".join(d.approvers()) or "none yet"
        approvals_line = f"Approvals {len(d.approvals)}/{d.required_approvals}: {got}"

    buttons: tuple[Button, ...] = ()
    if d.state == State.PENDING and d.dry_run:
        pass  # approved by itself the moment it is posted: nothing to press
    elif d.state == State.PENDING:
        buttons = (Button("Go", "go", value, "primary"), Button("No-go", "nogo", value, "danger"))
    elif d.state == State.RUNNING:
        buttons = (Button("Abort", "abort", value, "danger"),)
    elif d.state == State.INTERRUPTED:
        buttons = (
            Button("Resume", "resume", value, "primary"),
            Button("Roll back", "rollback_now", value, "danger"),
        )
    footer = f"🔒 {d.env} is locked by {lock.owner}: {lock.reason}" if lock else None
    lines = tuple(str(x) for x in details.get("card_lines", ()))
    live = details.get("live")
    if d.state == State.RUNNING and isinstance(live, dict) and live.get("hosts"):
        lines = (*lines, *(f"{host} │ {tail}" for host, tail in list(live["hosts"].items())[:10]))
    if details.get("ignored_safeties"):
        warnings = (*warnings, "Safeties ignored with --force: " + ", ".join(details["ignored_safeties"]))
    return Card(
        lines=lines,
        deployment_id=d.id,
        title=title,
        state=d.state,
        status_line=status,
        fields=tuple(fields),
        changelog=changelog,
        changelog_note=note,
        warnings=warnings,
        checklist=checklist,
        checklist_open=d.state == State.PENDING and not d.dry_run and bool(checklist),
        approvals_line=approvals_line,
        buttons=buttons,
        footer=footer,
    )


def _state_text(d: Deployment) -> str:
    """What the state means for this kind of deployment (a dry run deploys nothing)."""
    if d.state == State.SUCCEEDED and d.dry_run:
        return "dry run finished: nothing was changed"
    if d.dry_run and d.state in (State.PENDING, State.APPROVED):
        return "dry run: starting (no approval needed, nothing will change)"
    if d.state == State.SUCCEEDED and d.kind == "rollback":
        return "rolled back: the earlier release runs again"
    if d.state == State.RUNNING and d.kind == "rollback":
        return "rolling back"
    return STATE_TEXT[d.state]


def build_signoff_card(d: Deployment, env: Environment) -> Card:
    """The sign-off request for a live deployment: its checklist with Keep / Roll back."""
    assert d.id is not None
    signoff = d.details.get("signoff", {})
    ticked = list(signoff.get("ticked", []))
    decided = signoff.get("decision")
    checklist = tuple(
        ChecklistItem(i + 1, text, bool(ticked[i]) if i < len(ticked) else False)
        for i, text in enumerate(env.signoff_checklist)
    )
    if decided:
        at = str(signoff.get("at") or "")
        when = f" at {at[:16].replace('T', ' ')} UTC" if at else ""
        status = f"🏁 {decided} by {signoff.get('by')}{when}"
        buttons: tuple[Button, ...] = ()
    else:
        status = "waiting for sign-off"
        buttons = (
            Button("Keep", "keep", str(d.id), "primary"),
            Button("Roll back", "signoff_rollback", str(d.id), "danger"),
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
    signoff = d.details.get("signoff", {})
    fields = list(card.fields)
    warnings = list(card.warnings)
    reopened = signoff.get("reopened")
    if isinstance(reopened, dict) and not signoff.get("decision"):
        warnings.append(
            f"{reopened.get('why')} ({format_instant(reopened.get('at'))}): the sign-off is open again"
        )
    if signoff.get("decision"):  # who and when: build_signoff_card's status line
        if signoff.get("rollback_id"):
            fields.append(
                ("Rolled back by", f"#{signoff['rollback_id']} at {format_instant(signoff.get('done_at'))}")
            )
        return replace(card, fields=tuple(fields), warnings=tuple(warnings))
    pending = signoff.get("rollback")
    if isinstance(pending, dict):
        rb = pending_rollback
        where = f"rollback {rb.label} is {rb.state.value}" if rb else "starting the rollback"
        fields.append(
            ("Decided", f"ROLL BACK by {pending.get('by')} at {format_instant(pending.get('at'))} (pending)")
        )
        status = f"↩️ ROLL BACK requested by {pending.get('by')}: {where}; final once it is done"
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
