"""Sign-off: the runbook's last step. KEEP closes the deployment; ROLL BACK undoes it.

`/signoff <env>` posts the environment's sign-off checklist for what the environment runs now,
with Keep and Roll back buttons: one card per deployment (asking again refreshes that card
and points to it). Only someone allowed to sign off may tick, Keep or Roll back; refusals of
that kind are written to the event log.

- **Keep** needs every item of the environment's sign-off checklist ticked, and the deployment
  to still be what the environment runs. It closes the deployment (`signed_off`).
- **Roll back** requests a rollback to the release before *that* deployment (named
  explicitly, so a second click can never go one release further back), with the approvals
  the policy asks for. The decision becomes final only when the rollback has happened; while
  it is pending the card has no buttons, and if the rollback is declined, cancelled, expires
  or fails, the sign-off opens again (the card says why) so people can decide anew.

Every decision is recorded with who and when, and the card shows both. Sign-off state lives
in `details["signoff"]` and every change to it is a compare-and-set on the fresh row
(`bot.engine.signoff_state`), so two people ticking at once both count and two clicks decide once.
A deployment left without a sign-off gets a reminder in its thread (`signoff_reminder`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NoReturn

from bot.chat.base import Directory
from bot.domain.deployment import Deployment, Event, State
from bot.domain.errors import Refused
from bot.engine.cards import format_instant
from bot.engine.policy import may_sign_off
from bot.engine.port import Ledger, Notifier, Timer, Timers
from bot.engine.rollbacks import Rollbacks
from bot.engine.signoff_state import OPEN_STATES, Refusal, SignoffState, fitted_ticks
from bot.store.base import Schedule, Store

REMINDER = Timer.SIGNOFF_REMINDER
#: A card being posted by another request for longer than this is taken to have failed.
_POSTING_STALE = timedelta(seconds=60)


class SignOff:
    """Sign-off requests, ticks and decisions."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        timers: Timers,
        rollbacks: Rollbacks,
        directory: Directory,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.timers = timers
        self.rollbacks = rollbacks
        self.directory = directory
        self.state = SignoffState(ledger, store, notify)
        timers.register(REMINDER, self._remind)

    # -- public API ---------------------------------------------------------------------------
    def request(self, user: str, channel: str, env_name: str) -> Deployment:
        """Post the sign-off card for what `env` runs now; Refused with a pointer when it is
        already posted (the card is refreshed), decided, or waiting for its rollback."""
        env = self.ledger.env(env_name)
        d = self.store.current_release(env.name)
        if d is None:
            raise Refused(f"{env.name} has no live deployment to sign off")
        d = self.state.settle(d.id)  # type: ignore[arg-type]
        signoff = d.details.get("signoff", {})
        closed = self.state.closed_reason(d, signoff)
        if closed:
            self.state.refresh(d)
            raise Refused(closed)
        count = len(env.signoff_checklist)
        now = self.ledger.now()
        state: dict[str, bool] = {"posted": False}

        def claim(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            state["posted"] = bool(so.get("ts"))
            so["ticked"] = fitted_ticks(so.get("ticked"), count)
            if state["posted"]:
                return so
            posting = so.get("posting")
            if posting and now - datetime.fromisoformat(posting) < _POSTING_STALE:
                raise Refusal(f"the sign-off card of {cur.label} is being posted right now")
            so.update(requested_by=user, requested_at=now.isoformat(), posting=now.isoformat())
            return so

        try:
            d = self.state.change(d.id, claim)  # type: ignore[arg-type]
        except Refusal as exc:
            raise Refused(str(exc)) from None
        signoff = d.details["signoff"]
        if state["posted"]:
            self.state.refresh(d)
            raise Refused(
                f"the sign-off card of {d.label} is already posted in {signoff.get('channel')} "
                f"(asked by {signoff.get('requested_by', 'someone')} at {format_instant(signoff.get('requested_at'))}); "
                "it is up to date: tick and decide there"
            )
        ref = self.notify.post_card_in(d.channel or channel, self.state.card(d))

        def posted(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            so.pop("posting", None)
            if ref is not None:
                so.update(channel=ref.channel, ts=ref.ts)
            return so

        d = self.state.change(d.id, posted)  # type: ignore[arg-type]
        if ref is None:
            raise Refused(
                f"could not post the sign-off card in {d.channel or channel} (is the bot invited to this channel?)"
            )
        self.ledger.log(user, "signoff_requested", d, None)
        self.state.refresh(d)  # a tick that landed while the card was being posted
        return d

    def set_checklist(self, user: str, deployment_id: int, changes: dict[int, bool]) -> Deployment:
        """Tick (or untick) sign-off items by number, applied to the fresh row (never lost)."""
        d = self.ledger.get(deployment_id)
        env = self.ledger.env(d.env)
        self._may(user, d, "signoff_checklist")
        d = self.state.settle(deployment_id)
        count = len(env.signoff_checklist)
        for number in changes:
            if not 1 <= number <= count:
                raise Refused(
                    f"the sign-off checklist has items 1 to {count}"
                    if count
                    else "there is no sign-off checklist"
                )

        def tick(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            closed = self.state.closed_reason(cur, so)
            if closed:
                raise Refusal(closed)
            ticks = fitted_ticks(so.get("ticked"), count)
            for number, value in changes.items():
                ticks[number - 1] = value
            so["ticked"] = ticks
            return so

        try:
            d = self.state.change(deployment_id, tick)
        except Refusal as exc:
            self.state.refresh(d)
            raise Refused(str(exc)) from None
        detail = ", ".join(f"{'ticked' if v else 'unticked'} {n}" for n, v in sorted(changes.items()))
        self.ledger.log(user, "signoff_checklist", d, detail)
        self.state.refresh(d)
        return d

    def keep(self, user: str, deployment_id: int) -> Deployment:
        """KEEP: close the deployment as signed off (every item ticked; still what runs)."""
        d = self.ledger.get(deployment_id)
        env = self.ledger.env(d.env)
        self._may(user, d, "sign_off")
        d = self.state.settle(deployment_id)
        count = len(env.signoff_checklist)
        at = self.ledger.now().isoformat()

        def claim(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            closed = self.state.closed_reason(cur, so)
            if closed:
                raise Refusal(closed)
            open_items = [str(i + 1) for i, v in enumerate(fitted_ticks(so.get("ticked"), count)) if not v]
            if open_items:
                hint = "" if so.get("ts") else f"; /signoff {cur.env} posts the checklist"
                raise Refusal(f"tick every sign-off item before Keep (open: {', '.join(open_items)}){hint}")
            so.update(decision="KEEP", by=user, at=at)
            return so

        try:
            d = self.state.change(deployment_id, claim)
        except Refusal as exc:
            self.state.refresh(d)  # a card left open on a closed sign-off loses its buttons
            self._refuse(user, d, "sign_off", str(exc))
        try:
            if d.state == State.MONITORING:
                self.timers.cancel(deployment_id)
                d = self.ledger.save(d, Event.SUCCEED, user, "monitoring_stopped", detail="signed off")
            d = self.ledger.save(d, Event.SIGN_OFF, user, "sign_off", detail="KEEP", refresh=True)
        except Refused:
            self.state.undo(
                deployment_id,
                lambda so: so.get("decision") == "KEEP" and so.get("at") == at,
                "decision",
                "by",
                "at",
            )
            raise
        self.timers.cancel(deployment_id, REMINDER)
        self.state.refresh(d)
        return d

    def roll_back(self, user: str, deployment_id: int) -> Deployment:
        """ROLL BACK from the sign-off card: request a rollback of this deployment to the release
        before it (with the policy's approvals); returns the rollback. Final once it happened."""
        d = self.ledger.get(deployment_id)
        self._may(user, d, "signoff_rollback")
        d = self.state.settle(deployment_id)
        closed = self.state.closed_reason(d, d.details.get("signoff", {}))
        if closed:
            self.state.refresh(d)
            self._refuse(user, d, "signoff_rollback", closed)
        target = self.rollbacks.rollback_target(d.env, d)
        at = self.ledger.now().isoformat()

        def claim(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            closed = self.state.closed_reason(cur, so)
            if closed:
                raise Refusal(closed)
            so["rollback"] = {"by": user, "at": at, "target": target.id}
            return so

        try:
            d = self.state.change(deployment_id, claim)
        except Refusal as exc:
            self._refuse(user, d, "signoff_rollback", str(exc))
        try:
            rollback = self.rollbacks.request_rollback(
                user,
                d.channel or "",
                d.env,
                target_id=target.id,
                reason=f"sign-off of {d.label}: ROLL BACK",
            )
        except Refused:
            self.state.undo(deployment_id, lambda so: so.get("rollback", {}).get("at") == at, "rollback")
            self.state.refresh(self.ledger.get(deployment_id))
            raise

        def link(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            pending = so.get("rollback")
            if isinstance(pending, dict) and pending.get("at") == at:
                so["rollback"] = {**pending, "id": rollback.id}
            return so

        d = self.state.change(deployment_id, link)
        self.ledger.log(user, "signoff_rollback_requested", d, f"{rollback.label} back to {target.label}")
        self.timers.cancel(deployment_id, REMINDER)
        self.state.settle(deployment_id)  # a rollback needing no approval may be done already
        self.state.refresh(d)
        return rollback

    def schedule_reminder(self, d: Deployment) -> None:
        """After a successful deploy: remind the thread if nobody signs off in time."""
        env = self.ledger.env(d.env)
        if env.signoff_reminder and env.signoff_checklist and d.kind == "deploy" and not d.dry_run:
            self.timers.add_in(REMINDER, env.signoff_reminder, deployment_id=d.id)

    # -- timed work -----------------------------------------------------------------------------
    def _remind(self, schedule: Schedule) -> None:
        if schedule.deployment_id is None:
            return
        d = self.store.get(schedule.deployment_id)
        if d is None or d.state not in OPEN_STATES:
            return
        d = self.state.settle(schedule.deployment_id)
        if self.state.closed_reason(d, d.details.get("signoff", {})):
            return
        self.notify.thread(d, f"⏰ {d.label} in {d.env} is not signed off yet: /signoff {d.env}")

    # -- helpers ----------------------------------------------------------------------------------
    def _may(self, user: str, d: Deployment, action: str) -> None:
        reason = may_sign_off(self.ledger.env(d.env), user, self.directory)
        if reason:
            self._refuse(user, d, action, reason)

    def _refuse(self, user: str, d: Deployment, action: str, reason: str) -> NoReturn:
        """Record a refused sign-off action in the event log, then refuse it."""
        self.ledger.record_refusal(user, d.env, action, reason, d.id)
        raise Refused(reason)

    def settle(self, deployment_id: int) -> Deployment:
        """Reconcile a pending ROLL BACK with its rollback (see `SignoffState.settle`)."""
        return self.state.settle(deployment_id)

    def on_rollback_finished(self, rollback: Deployment) -> None:
        """Hook for the engine: a rollback reached a final state; settle the sign-off it came from."""
        self.state.on_rollback_finished(rollback)
