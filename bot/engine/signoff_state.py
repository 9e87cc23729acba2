"""The sign-off record of a deployment, kept in `details.signoff`.

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
from bot.domain.details import Reopened, RollbackClaim, Signoff
from bot.engine.cards import format_instant, signoff_card
from bot.engine.port import Ledger, Notifier
from bot.store.base import Store

#: A ROLL BACK claim whose rollback never appeared (its process died) reopens after this.
_CLAIM_STALE = timedelta(minutes=2)
#: States of a rollback deployment that mean it happened / that it did not.
_ROLLBACK_DONE = frozenset({State.SUCCEEDED, State.SIGNED_OFF, State.MONITORING, State.ROLLED_BACK})
_ROLLBACK_NOT_DONE = frozenset({State.DECLINED, State.CANCELLED, State.EXPIRED, State.FAILED, State.ABORTED})
OPEN_STATES = (State.SUCCEEDED, State.MONITORING)

#: A compare-and-set change of the sign-off: the fresh deployment and its sign-off in, the new one out.
SignoffChange = Callable[[Deployment, Signoff], Signoff]


class Refusal(Exception):
    """Raised inside a compare-and-set change: the action is refused (and recorded)."""


class SignoffState:
    """The sign-off record on a deployment's row (`details.signoff`): changed compare-and-set,
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
        pending = d.details.signoff.rollback
        if pending is None:
            return d
        rollback = self.rollback_of(d, pending)
        now = self.ledger.now()
        if rollback is not None and (rollback.state in _ROLLBACK_DONE or d.state == State.ROLLED_BACK):
            outcome, why = "done", f"ROLL BACK done by {rollback.label}"
        elif rollback is not None and rollback.state in _ROLLBACK_NOT_DONE:
            outcome, why = (
                "reopened",
                f"rollback {rollback.label} was {rollback.state.value}, nothing was rolled back",
            )
        elif rollback is None and now - datetime.fromisoformat(pending.at) >= _CLAIM_STALE:
            outcome, why = "reopened", "the rollback was never started"
        else:
            return d  # still on its way
        changed = False

        def close(cur: Deployment, so: Signoff) -> Signoff:
            nonlocal changed
            changed = so.rollback == pending
            if not changed:
                return so
            if outcome == "done":
                return replace(
                    so, rollback=None, decision="ROLL BACK", by=pending.by, at=pending.at,
                    rollback_id=rollback.id if rollback else None, done_at=now.isoformat(),
                )  # fmt: skip
            return replace(so, rollback=None, reopened=Reopened(why, now.isoformat()))

        d = self.change(deployment_id, close)
        if changed:
            action = "sign_off" if outcome == "done" else "signoff_reopened"
            detail = (
                f"ROLL BACK (decided by {pending.by}; done by {rollback.label})"
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
        if rollback.rollback_of is not None:
            undone = self.store.get(rollback.rollback_of)
            if undone is not None and undone.details.signoff.rollback is not None:
                self.settle(rollback.rollback_of)

    def change(self, deployment_id: int, change: SignoffChange) -> Deployment:
        """Apply `change` to the fresh sign-off, compare-and-set (re-read and re-applied on a race;
        Refused when every attempt lost its race)."""
        return self.ledger.amend(
            deployment_id, lambda cur: cur.with_details(signoff=change(cur, cur.details.signoff))
        )

    def undo(self, deployment_id: int, mine: Callable[[Signoff], bool], **cleared: Any) -> None:
        """Take back a claim this call made (its action was refused further on): when `mine` says
        the fresh sign-off still holds it, set `cleared`."""
        self.change(deployment_id, lambda cur, so: replace(so, **cleared) if mine(so) else so)

    def closed_reason(self, d: Deployment, signoff: Signoff) -> str | None:
        """Why `d` cannot be ticked or decided now, or None when its sign-off is open."""
        if signoff.decision:
            when = format_instant(signoff.at)
            return f"{d.label} was already signed off: {signoff.decision} by {signoff.by} at {when}"
        pending = signoff.rollback
        if pending is not None:
            rb = f": rollback #{pending.id} is on its way" if pending.id else ""
            return (
                f"ROLL BACK of {d.label} was already requested by {pending.by} at "
                f"{format_instant(pending.at)}{rb}; the sign-off opens again if it does not happen"
            )
        if d.state not in OPEN_STATES:
            return f"{d.label} is {d.state.value}; only what {d.env} runs now can be signed off"
        current = self.store.current_release(d.env)
        if current is None or current.id != d.id:
            now = f" ({current.label} is)" if current else ""
            return f"{d.label} is no longer what {d.env} runs{now}; /signoff {d.env} signs off what runs now"
        return None

    def rollback_of(self, d: Deployment, pending: RollbackClaim) -> Deployment | None:
        """The rollback a pending ROLL BACK asked for (found by its id, or by what it undoes)."""
        if pending.id is not None:
            return self.store.get(pending.id)
        since = datetime.fromisoformat(pending.at)
        for rb in self.store.deployments(d.env, kind="rollback", limit=20):
            if rb.rollback_of == d.id and rb.created_at >= since:
                return rb
        return None

    def card(self, d: Deployment) -> Card:
        """The sign-off card as it is now (see `bot.engine.cards.signoff_card`)."""
        signoff = d.details.signoff
        pending = signoff.rollback
        rollback = (
            self.store.get(pending.id)
            if pending is not None and pending.id and not signoff.decision
            else None
        )
        closed = None if signoff.decision or pending is not None else self.closed_reason(d, signoff)
        return signoff_card(d, self.ledger.env(d.env), closed=closed, pending_rollback=rollback)

    def refresh(self, d: Deployment) -> None:
        """Update the sign-off card in place from the latest stored state."""
        self.notify.refresh(d, _card_message, self.card)

    def thread(self, d: Deployment, text: str) -> None:
        """Post in the sign-off card's thread (or the deployment's, without a card)."""
        ref = _card_message(d)
        if ref is not None:
            self.notify.thread_under(ref, text, deployment_id=d.id)
        else:
            self.notify.thread(d, text)


def _card_message(d: Deployment) -> MessageRef | None:
    """Where the sign-off card of `d` is, once posted."""
    so = d.details.signoff
    return MessageRef(so.channel, so.ts) if so.channel and so.ts else None


__all__ = ["OPEN_STATES", "Refusal", "SignoffChange", "SignoffState"]
