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
(`Engine.update`), so two people ticking at once both count and two clicks decide once.
A deployment left without a sign-off gets a reminder in its thread (`signoff_reminder`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from bot.chat.base import MessageRef
from bot.domain.card import Card, build_signoff_card
from bot.domain.deployment import Deployment, Event, State
from bot.domain.errors import Refused
from bot.engine.policy import may_sign_off
from bot.store.base import Schedule

if TYPE_CHECKING:
    from bot.engine.engine import Engine

REMINDER = "signoff_reminder"
#: Timed re-check of a pending sign-off rollback (see `SignOff.settle`).
#: A card being posted by another request for longer than this is taken to have failed.
_POSTING_STALE = timedelta(seconds=60)
#: A ROLL BACK claim whose rollback never appeared (its process died) reopens after this.
_CLAIM_STALE = timedelta(minutes=2)
#: Releases a sign-off Roll back may return to: as `/rollback` chooses them.
#: States of a rollback deployment that mean it happened / that it did not.
_ROLLBACK_DONE = frozenset({State.SUCCEEDED, State.SIGNED_OFF, State.MONITORING, State.ROLLED_BACK})
_ROLLBACK_NOT_DONE = frozenset({State.DECLINED, State.CANCELLED, State.EXPIRED, State.FAILED, State.ABORTED})
_OPEN_STATES = (State.SUCCEEDED, State.MONITORING)

SignoffChange = Callable[[Deployment, dict[str, Any]], dict[str, Any]]


class _Refusal(Exception):
    """Raised inside a compare-and-set change: the action is refused (and recorded)."""


def _fmt(iso: str | None) -> str:
    """An ISO instant as people read it on cards: `2026-11-23 10:05 UTC`."""
    if not iso:
        return "?"
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def _ticks(stored: Any, count: int) -> list[bool]:
    """The stored ticks fitted to the checklist as configured now (missing items: unticked)."""
    ticks = [bool(v) for v in stored] if isinstance(stored, list) else []
    return (ticks + [False] * count)[:count]


class SignOff:
    """Sign-off requests, ticks and decisions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._card_lock = threading.Lock()
        engine.scheduler.register(REMINDER, self._remind)

    # -- public API ---------------------------------------------------------------------------
    def request(self, user: str, channel: str, env_name: str) -> Deployment:
        """Post the sign-off card for what `env` runs now; Refused with a pointer when it is
        already posted (the card is refreshed), decided, or waiting for its rollback."""
        engine = self.engine
        env = engine.env(env_name)
        d = engine.store.current_release(env.name)
        if d is None:
            raise Refused(f"{env.name} has no live deployment to sign off")
        d = self.settle(d.id)  # type: ignore[arg-type]
        signoff = d.details.get("signoff", {})
        closed = self._closed_reason(d, signoff)
        if closed:
            self._refresh(d)
            raise Refused(closed)
        count = len(env.signoff_checklist)
        now = engine.now()
        state: dict[str, bool] = {"posted": False}

        def claim(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            state["posted"] = bool(so.get("ts"))
            so["ticked"] = _ticks(so.get("ticked"), count)
            if state["posted"]:
                return so
            posting = so.get("posting")
            if posting and now - datetime.fromisoformat(posting) < _POSTING_STALE:
                raise _Refusal(f"the sign-off card of {cur.label} is being posted right now")
            so.update(requested_by=user, requested_at=now.isoformat(), posting=now.isoformat())
            return so

        try:
            d = self._change(d.id, claim)  # type: ignore[arg-type]
        except _Refusal as exc:
            raise Refused(str(exc)) from None
        signoff = d.details["signoff"]
        if state["posted"]:
            self._refresh(d)
            raise Refused(
                f"the sign-off card of {d.label} is already posted in {signoff.get('channel')} "
                f"(asked by {signoff.get('requested_by', 'someone')} at {_fmt(signoff.get('requested_at'))}); "
                "it is up to date: tick and decide there"
            )
        ref = engine.chat.post_card(d.channel or channel, self._card(d))

        def posted(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            so.pop("posting", None)
            if ref is not None:
                so.update(channel=ref.channel, ts=ref.ts)
            return so

        d = self._change(d.id, posted)  # type: ignore[arg-type]
        if ref is None:
            raise Refused(
                f"could not post the sign-off card in {d.channel or channel} (is the bot invited to this channel?)"
            )
        engine.store.append_event(engine.event(user, "signoff_requested", d, None))
        self._refresh(d)  # a tick that landed while the card was being posted
        return d

    def set_checklist(self, user: str, deployment_id: int, changes: dict[int, bool]) -> Deployment:
        """Tick (or untick) sign-off items by number, applied to the fresh row (never lost)."""
        engine = self.engine
        d = engine.deployment(deployment_id)
        env = engine.env(d.env)
        self._may(user, d, "signoff_checklist")
        d = self.settle(deployment_id)
        count = len(env.signoff_checklist)
        for number in changes:
            if not 1 <= number <= count:
                raise Refused(
                    f"the sign-off checklist has items 1 to {count}"
                    if count
                    else "there is no sign-off checklist"
                )

        def tick(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            closed = self._closed_reason(cur, so)
            if closed:
                raise _Refusal(closed)
            ticks = _ticks(so.get("ticked"), count)
            for number, value in changes.items():
                ticks[number - 1] = value
            so["ticked"] = ticks
            return so

        try:
            d = self._change(deployment_id, tick)
        except _Refusal as exc:
            self._refresh(d)
            raise Refused(str(exc)) from None
        detail = ", ".join(f"{'ticked' if v else 'unticked'} {n}" for n, v in sorted(changes.items()))
        engine.store.append_event(engine.event(user, "signoff_checklist", d, detail))
        self._refresh(d)
        return d

    def keep(self, user: str, deployment_id: int) -> Deployment:
        """KEEP: close the deployment as signed off (every item ticked; still what runs)."""
        engine = self.engine
        d = engine.deployment(deployment_id)
        env = engine.env(d.env)
        self._may(user, d, "sign_off")
        d = self.settle(deployment_id)
        count = len(env.signoff_checklist)
        at = engine.now().isoformat()

        def claim(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            closed = self._closed_reason(cur, so)
            if closed:
                raise _Refusal(closed)
            open_items = [str(i + 1) for i, v in enumerate(_ticks(so.get("ticked"), count)) if not v]
            if open_items:
                hint = "" if so.get("ts") else f"; /signoff {cur.env} posts the checklist"
                raise _Refusal(f"tick every sign-off item before Keep (open: {', '.join(open_items)}){hint}")
            so.update(decision="KEEP", by=user, at=at)
            return so

        try:
            d = self._change(deployment_id, claim)
        except _Refusal as exc:
            self._refresh(d)  # a card left open on a closed sign-off loses its buttons
            self._refuse(user, d, "sign_off", str(exc))
        try:
            if d.state == State.MONITORING:
                engine.scheduler.cancel(deployment_id)
                d = engine.save(d, Event.SUCCEED, user, "monitoring_stopped", detail="signed off")
            d = engine.save(d, Event.SIGN_OFF, user, "sign_off", detail="KEEP", refresh=True)
        except Refused:
            self._undo(
                deployment_id,
                lambda so: so.get("decision") == "KEEP" and so.get("at") == at,
                "decision",
                "by",
                "at",
            )
            raise
        engine.scheduler.cancel(deployment_id, REMINDER)
        self._refresh(d)
        return d

    def roll_back(self, user: str, deployment_id: int) -> Deployment:
        """ROLL BACK from the sign-off card: request a rollback of this deployment to the release
        before it (with the policy's approvals); returns the rollback. Final once it happened."""
        engine = self.engine
        d = engine.deployment(deployment_id)
        self._may(user, d, "signoff_rollback")
        d = self.settle(deployment_id)
        closed = self._closed_reason(d, d.details.get("signoff", {}))
        if closed:
            self._refresh(d)
            self._refuse(user, d, "signoff_rollback", closed)
        target = engine.rollback_target(d.env, d)
        at = engine.now().isoformat()

        def claim(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            closed = self._closed_reason(cur, so)
            if closed:
                raise _Refusal(closed)
            so["rollback"] = {"by": user, "at": at, "target": target.id}
            return so

        try:
            d = self._change(deployment_id, claim)
        except _Refusal as exc:
            self._refuse(user, d, "signoff_rollback", str(exc))
        try:
            rollback = engine.request_rollback(
                user,
                d.channel or "",
                d.env,
                target_id=target.id,
                reason=f"sign-off of {d.label}: ROLL BACK",
            )
        except Refused:
            self._undo(deployment_id, lambda so: so.get("rollback", {}).get("at") == at, "rollback")
            self._refresh(engine.deployment(deployment_id))
            raise

        def link(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            pending = so.get("rollback")
            if isinstance(pending, dict) and pending.get("at") == at:
                so["rollback"] = {**pending, "id": rollback.id}
            return so

        d = self._change(deployment_id, link)
        engine.store.append_event(
            engine.event(user, "signoff_rollback_requested", d, f"{rollback.label} back to {target.label}")
        )
        engine.scheduler.cancel(deployment_id, REMINDER)
        self.settle(deployment_id)  # a rollback needing no approval may be done already
        self._refresh(d)
        return rollback

    def settle(self, deployment_id: int) -> Deployment:
        """Reconcile a pending ROLL BACK with its rollback: final once the rollback happened,
        reopened when it was declined, cancelled, expired or failed; else unchanged.

        Called before every sign-off action, and by the engine (`on_rollback_finished`) the
        moment a rollback ends.
        """
        engine = self.engine
        d = engine.deployment(deployment_id)
        pending = d.details.get("signoff", {}).get("rollback")
        if not isinstance(pending, dict):
            return d
        rollback = self._rollback_of(d, pending)
        now = engine.now()
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

        d = self._change(deployment_id, close)
        if applied["changed"]:
            action = "sign_off" if outcome == "done" else "signoff_reopened"
            detail = (
                f"ROLL BACK (decided by {pending['by']}; done by {rollback.label})"
                if rollback and outcome == "done"
                else why
            )
            engine.store.append_event(engine.event("gonogo", action, d, detail))
            self._refresh(d)
            if outcome == "reopened":
                self._thread(d, f"↩️ {why}: the sign-off of {d.label} is open again (Keep or Roll back).")
        return d

    def on_rollback_finished(self, rollback: Deployment) -> None:
        """Hook for the engine: a rollback reached a final state; settle the sign-off it came from."""
        if rollback.kind == "rollback" and rollback.rollback_of is not None:
            undone = self.engine.store.get(rollback.rollback_of)
            if undone is not None and isinstance(undone.details.get("signoff", {}).get("rollback"), dict):
                self.settle(rollback.rollback_of)

    def schedule_reminder(self, d: Deployment) -> None:
        """After a successful deploy: remind the thread if nobody signs off in time."""
        env = self.engine.env(d.env)
        if env.signoff_reminder and env.signoff_checklist and d.kind == "deploy" and not d.dry_run:
            self.engine.scheduler.add_in(REMINDER, env.signoff_reminder, deployment_id=d.id)

    # -- timed work -----------------------------------------------------------------------------
    def _remind(self, schedule: Schedule) -> None:
        if schedule.deployment_id is None:
            return
        d = self.engine.store.get(schedule.deployment_id)
        if d is None or d.state not in _OPEN_STATES:
            return
        d = self.settle(schedule.deployment_id)
        if self._closed_reason(d, d.details.get("signoff", {})):
            return
        self.engine.thread(d, f"⏰ {d.label} in {d.env} is not signed off yet: /signoff {d.env}")

    # -- helpers ----------------------------------------------------------------------------------
    def _change(self, deployment_id: int, change: SignoffChange) -> Deployment:
        """Apply `change` to the fresh sign-off state, compare-and-set (`Engine.update` re-reads
        and re-applies it on a race, and is Refused when every attempt lost its race)."""

        def apply(cur: Deployment) -> Deployment:
            signoff = change(cur, dict(cur.details.get("signoff", {})))
            return replace(cur, details={**cur.details, "signoff": signoff})

        return self.engine.update(deployment_id, apply)

    def _undo(self, deployment_id: int, mine: Callable[[dict[str, Any]], bool], *keys: str) -> None:
        """Take back a claim this call made (its action was refused further on)."""

        def undo(cur: Deployment, so: dict[str, Any]) -> dict[str, Any]:
            if mine(so):
                for key in keys:
                    so.pop(key, None)
            return so

        self._change(deployment_id, undo)

    def _closed_reason(self, d: Deployment, signoff: dict[str, Any]) -> str | None:
        """Why `d` cannot be ticked or decided now, or None when its sign-off is open."""
        if signoff.get("decision"):
            when = _fmt(signoff.get("at"))
            return f"{d.label} was already signed off: {signoff['decision']} by {signoff.get('by')} at {when}"
        pending = signoff.get("rollback")
        if isinstance(pending, dict):
            rb = f": rollback #{pending['id']} is on its way" if pending.get("id") else ""
            return (
                f"ROLL BACK of {d.label} was already requested by {pending.get('by')} at "
                f"{_fmt(pending.get('at'))}{rb}; the sign-off opens again if it does not happen"
            )
        if d.state not in _OPEN_STATES:
            return f"{d.label} is {d.state.value}; only what {d.env} runs now can be signed off"
        current = self.engine.store.current_release(d.env)
        if current is None or current.id != d.id:
            now = f" ({current.label} is)" if current else ""
            return f"{d.label} is no longer what {d.env} runs{now}; /signoff {d.env} signs off what runs now"
        return None

    def _rollback_of(self, d: Deployment, pending: dict[str, Any]) -> Deployment | None:
        """The rollback a pending ROLL BACK asked for (found by its id, or by what it undoes)."""
        if pending.get("id") is not None:
            return self.engine.store.get(int(pending["id"]))
        since = datetime.fromisoformat(pending["at"])
        for rb in self.engine.store.deployments(d.env, kind="rollback", limit=20):
            if rb.rollback_of == d.id and rb.created_at >= since:
                return rb
        return None

    def _may(self, user: str, d: Deployment, action: str) -> None:
        reason = may_sign_off(self.engine.env(d.env), user, self.engine.directory)
        if reason:
            self._refuse(user, d, action, reason)

    def _refuse(self, user: str, d: Deployment, action: str, reason: str) -> NoReturn:
        """Record a refused sign-off action in the event log, then refuse it."""
        self.engine.record_refusal(user, d.env, action, reason, d.id)
        raise Refused(reason)

    def _card(self, d: Deployment) -> Card:
        """The sign-off card: `bot.card`'s, plus when it was decided and what is pending."""
        card = build_signoff_card(d, self.engine.env(d.env))
        signoff = d.details.get("signoff", {})
        fields = list(card.fields)
        warnings = list(card.warnings)
        reopened = signoff.get("reopened")
        if isinstance(reopened, dict) and not signoff.get("decision"):
            warnings.append(f"{reopened.get('why')} ({_fmt(reopened.get('at'))}): the sign-off is open again")
        if signoff.get("decision"):  # who and when: bot.card's status line
            if signoff.get("rollback_id"):
                fields.append(
                    ("Rolled back by", f"#{signoff['rollback_id']} at {_fmt(signoff.get('done_at'))}")
                )
            return replace(card, fields=tuple(fields), warnings=tuple(warnings))
        pending = signoff.get("rollback")
        if isinstance(pending, dict):
            rb = self.engine.store.get(int(pending["id"])) if pending.get("id") else None
            where = f"rollback {rb.label} is {rb.state.value}" if rb else "starting the rollback"
            fields.append(
                ("Decided", f"ROLL BACK by {pending.get('by')} at {_fmt(pending.get('at'))} (pending)")
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
        closed = self._closed_reason(d, signoff)
        if closed:
            return replace(
                card,
                status_line=f"closed: {closed}",
                warnings=tuple(warnings),
                buttons=(),
                checklist_open=False,
            )
        return replace(card, warnings=tuple(warnings))

    def _refresh(self, d: Deployment) -> None:
        """Update the sign-off card in place from the latest stored state (in order, under a lock)."""
        with self._card_lock:
            fresh = self.engine.store.get(d.id) if d.id is not None else None
            d = fresh or d
            signoff = d.details.get("signoff", {})
            if signoff.get("ts"):
                self.engine.chat.update_card(MessageRef(signoff["channel"], signoff["ts"]), self._card(d))

    def _thread(self, d: Deployment, text: str) -> None:
        """Post in the sign-off card's thread (or the deployment's, without a card)."""
        signoff = d.details.get("signoff", {})
        if signoff.get("ts"):
            self.engine.chat.post_thread(
                MessageRef(signoff["channel"], signoff["ts"]), text, deployment_id=d.id
            )
        else:
            self.engine.thread(d, text)
