"""The sign-off record of a deployment, kept in `details["signoff"]`.

Every change to it is a compare-and-set on the fresh row (`Ledger.amend`), so two people
ticking at once both count and two clicks decide once. A ROLL BACK is a claim until its
rollback has happened: `settle` makes it final then, or reopens the sign-off when the rollback
was declined, cancelled, expired or failed (or never started). The sign-off card is drawn from
this record (`bot.engine.cards.signoff_card`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.chat.base import MessageRef
from bot.domain.card import Card
from bot.domain.deployment import Deployment, State
from bot.engine.cards import format_instant, signoff_card
from bot.engine.port import Ledger, Notifier
from bot.store.base import Store

#: A ROLL BACK claim whose rollback never appeared (its process died) reopens after this.
_CLAIM_STALE = timedelta(minutes=2)
#: States of a rollback deployment that mean it happened / that it did not.
_ROLLBACK_DONE = frozenset({State.SUCCEEDED, State.SIGNED_OFF, State.MONITORING, State.ROLLED_BACK})
_ROLLBACK_NOT_DONE = frozenset({State.DECLINED, State.CANCELLED, State.EXPIRED, State.FAILED, State.ABORTED})
OPEN_STATES = (State.SUCCEEDED, State.MONITORING)

SignoffChange = Callable[[Deployment, dict[str, Any]], dict[str, Any]]


class Refusal(Exception):
    """Raised inside a compare-and-set change: the action is refused (and recorded)."""


def fitted_ticks(stored: Any, count: int) -> list[bool]:
    """The stored ticks fitted to the checklist as configured now (missing items: unticked)."""
    ticks = [bool(v) for v in stored] if isinstance(stored, list) else []
    return (ticks + [False] * count)[:count]


class SignoffState:
    """The sign-off record on a deployment's row (`details["signoff"]`): changed compare-and-set,
    reconciled with the rollback a ROLL BACK started, and shown on the sign-off card."""

    def __init__(self, ledger: Ledger, store: Store, notify: Notifier) -> None:
        self.ledger = ledger
        self.store = store
        self.notify = notify

    def settle(self, deployment_id: int) -> Deployment:
        """Reconcile a pending ROLL BACK with its rollback: final once the rollback happened,
        reopened when it was declined, cancelled, expired or failed; else unchanged.

        Called before every sign-off action, and by the engine (`on_rollback_finished`) the
        moment a rollback ends.
        """
        d = self.ledger.get(deployment_id)
        pending = d.details.get("signoff", {}).get("rollback")
        if not isinstance(pending, dict):
            return d
        rollback = self.rollback_of(d, pending)
        now = self.ledger.now()
        if rollback is not None and (rollback.state in _ROLLBACK_DONE or d.state == State.ROLLED_BACK):
            outcome = "done"
            why = f"ROLL BACK done by {rollback.label}"
        elif rollback is not None and rollback.state in _ROLLBACK_NOT_DONE:
            outcome = "reopened"
            why = f"rollback {rollback.label} was {rollback.state.value}, nothing was rolled back"
        elif rollback is None and now - datetime.fromisoformat(pending["at"]) >= _CLAIM_STALE:
            outcome = "reopened"
            why = "the rollback was never started"
        else:
            return d  # still on its way
        applied: dict[str, bool] = {"changed": False}

        def close(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            applied["changed"] = so.get("rollback") == pending
            if not applied["changed"]:
                return so
            so.pop("rollback")
            if outcome == "done":
                so.update(
                    decision="ROLL BACK",
                    by=pending["by"],
                    at=pending["at"],
                    rollback_id=rollback.id if rollback else None,
                    done_at=now.isoformat(),
                )
            else:
                so["reopened"] = {"why": why, "at": now.isoformat()}
            return so

        d = self.change(deployment_id, close)
        if applied["changed"]:
            action = "sign_off" if outcome == "done" else "signoff_reopened"
            detail = (
                f"ROLL BACK (decided by {pending['by']}; done by {rollback.label})"
                if rollback and outcome == "done"
                else why
            )
            self.ledger.log("gonogo", action, d, detail)
            self.refresh(d)
            if outcome == "reopened":
                self.thread(d, f"↩️ {why}: the sign-off of {d.label} is open again (Keep or Roll back).")
        return d

    def on_rollback_finished(self, rollback: Deployment) -> None:
        """Hook for the engine: a rollback reached a final state; settle the sign-off it came from."""
        if rollback.kind == "rollback" and rollback.rollback_of is not None:
            undone = self.store.get(rollback.rollback_of)
            if undone is not None and isinstance(undone.details.get("signoff", {}).get("rollback"), dict):
                self.settle(rollback.rollback_of)

    def change(self, deployment_id: int, change: SignoffChange) -> Deployment:
        """Apply `change` to the fresh sign-off state, compare-and-set (`Engine.update` re-reads
        and re-applies it on a race, and is Refused when every attempt lost its race)."""

        def apply(cur: Deployment) -> Deployment:
            signoff = change(cur, dict(cur.details.get("signoff", {})))
            return replace(cur, details={**cur.details, "signoff": signoff})

        return self.ledger.amend(deployment_id, apply)

    def undo(self, deployment_id: int, mine: Callable[[dict[str, Any]], bool], *keys: str) -> None:
        """Take back a claim this call made (its action was refused further on)."""

        def undo(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            if mine(so):
                for key in keys:
                    so.pop(key, None)
            return so

        self.change(deployment_id, undo)

    def closed_reason(self, d: Deployment, signoff: dict[str, Any]) -> str | None:
        """Why `d` cannot be ticked or decided now, or None when its sign-off is open."""
        if signoff.get("decision"):
            when = format_instant(signoff.get("at"))
            return f"{d.label} was already signed off: {signoff['decision']} by {signoff.get('by')} at {when}"
        pending = signoff.get("rollback")
        if isinstance(pending, dict):
            rb = f": rollback #{pending['id']} is on its way" if pending.get("id") else ""
            return (
                f"ROLL BACK of {d.label} was already requested by {pending.get('by')} at "
                f"{format_instant(pending.get('at'))}{rb}; the sign-off opens again if it does not happen"
            )
        if d.state not in OPEN_STATES:
            return f"{d.label} is {d.state.value}; only what {d.env} runs now can be signed off"
        current = self.store.current_release(d.env)
        if current is None or current.id != d.id:
            now = f" ({current.label} is)" if current else ""
            return f"{d.label} is no longer what {d.env} runs{now}; /signoff {d.env} signs off what runs now"
        return None

    def rollback_of(self, d: Deployment, pending: dict[str, Any]) -> Deployment | None:
        """The rollback a pending ROLL BACK asked for (found by its id, or by what it undoes)."""
        if pending.get("id") is not None:
            return self.store.get(int(pending["id"]))
        since = datetime.fromisoformat(pending["at"])
        for rb in self.store.deployments(d.env, kind="rollback", limit=20):
            if rb.rollback_of == d.id and rb.created_at >= since:
                return rb
        return None

    def card(self, d: Deployment) -> Card:
        """The sign-off card as it is now (see `bot.engine.cards.signoff_card`)."""
        signoff = d.details.get("signoff", {})
        pending = signoff.get("rollback")
        rollback = None
        if isinstance(pending, dict) and not signoff.get("decision") and pending.get("id"):
            rollback = self.store.get(int(pending["id"]))
        closed = (
            None if signoff.get("decision") or isinstance(pending, dict) else self.closed_reason(d, signoff)
        )
        return signoff_card(d, self.ledger.env(d.env), closed=closed, pending_rollback=rollback)

    def refresh(self, d: Deployment) -> None:
        """Update the sign-off card in place from the latest stored state."""

        def where(cur: Deployment) -> MessageRef | None:
            signoff = cur.details.get("signoff", {})
            return MessageRef(signoff["channel"], signoff["ts"]) if signoff.get("ts") else None

        self.notify.refresh(d, where, self.card)

    def thread(self, d: Deployment, text: str) -> None:
        """Post in the sign-off card's thread (or the deployment's, without a card)."""
        signoff = d.details.get("signoff", {})
        if signoff.get("ts"):
            self.notify.thread_under(MessageRef(signoff["channel"], signoff["ts"]), text, deployment_id=d.id)
        else:
            self.notify.thread(d, text)


__all__ = ["OPEN_STATES", "Refusal", "SignoffChange", "SignoffState", "fitted_ticks"]
