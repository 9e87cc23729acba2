"""The deploy card as neutral data: what every chat adapter renders (Block Kit, terminal text).

`build_card` is pure: a deployment plus its environment in, a `Card` out. Buttons carry an
`action` (what the handler does) and a `value` (which deployment), never free text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from bot.config import Environment
from bot.domain.deployment import STATE_ICON, Deployment, Lock, State

ButtonStyle = Literal["primary", "danger"] | None

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


@dataclass(frozen=True)
class Button:
    """A button: `action` names the handler, `value` the deployment it acts on."""

    label: str
    action: str
    value: str
    style: ButtonStyle = None


@dataclass(frozen=True)
class ChecklistItem:
    """One checklist line (1-based `number` as people refer to it)."""

    number: int
    text: str
    ticked: bool


@dataclass(frozen=True)
class Card:
    """Everything a deploy card shows."""

    deployment_id: int
    title: str
    state: State
    status_line: str
    fields: tuple[tuple[str, str], ...]
    changelog: tuple[str, ...] = ()
    changelog_note: str | None = None
    warnings: tuple[str, ...] = ()
    checklist: tuple[ChecklistItem, ...] = ()
    checklist_open: bool = False
    approvals_line: str | None = None
    buttons: tuple[Button, ...] = ()
    footer: str | None = None
    kind: Literal["deploy", "signoff"] = "deploy"
    lines: tuple[str, ...] = ()  # extra lines (monitoring, checks)


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
