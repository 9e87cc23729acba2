"""Sign-off: the runbook's last step. KEEP closes the deployment; ROLL BACK undoes it.

`/signoff <env>` posts the environment's sign-off checklist for the live deployment with
Keep and Roll back buttons. Keep is accepted only with every item ticked and from someone
allowed to sign off; the decision is recorded (who, when) and shown on the sign-off card.
A deployment left without a sign-off gets a reminder in its thread (`signoff_reminder`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from bot.card import build_signoff_card
from bot.chat.base import MessageRef
from bot.domain import Deployment, Event, State
from bot.policy import may_sign_off
from bot.store.base import Schedule

if TYPE_CHECKING:
    from bot.engine import Engine

REMINDER = "signoff_reminder"


class SignOff:
    """Sign-off requests, ticks and decisions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        engine.scheduler.register(REMINDER, self._remind)

    def request(self, user: str, channel: str, env_name: str) -> Deployment:
        """Post the sign-off card for what `env` runs now."""
        from bot.engine import Refused

        engine = self.engine
        env = engine.env(env_name)
        d = engine.store.current_release(env.name)
        if d is None:
            raise Refused(f"{env.name} has no live deployment to sign off")
        if d.state == State.SIGNED_OFF:
            by = d.details.get("signoff", {}).get("by", "someone")
            raise Refused(f"{d.label} was already signed off by {by}")
        signoff = dict(d.details.get("signoff", {}))
        signoff.setdefault("ticked", [False] * len(env.signoff_checklist))
        signoff["requested_by"] = user
        d = engine.update(d.id, lambda cur: replace(cur, details={**cur.details, "signoff": signoff}))  # type: ignore[arg-type]
        ref = engine.chat.post_card(d.channel or channel, build_signoff_card(d, env))
        if ref is not None:
            signoff = {**signoff, "channel": ref.channel, "ts": ref.ts}
            d = engine.update(d.id, lambda cur: replace(cur, details={**cur.details, "signoff": signoff}))  # type: ignore[arg-type]
        engine.store.append_event(engine.event(user, "signoff_requested", d, None))
        return d

    def set_checklist(self, user: str, deployment_id: int, changes: dict[int, bool]) -> Deployment:
        """Tick sign-off items by number."""
        from bot.engine import Refused

        engine = self.engine
        d = engine.deployment(deployment_id)
        env = engine.env(d.env)
        self._may(user, d)
        signoff = dict(d.details.get("signoff", {}))
        if signoff.get("decision"):
            raise Refused(f"{d.label} was already signed off ({signoff['decision']})")
        ticked = list(signoff.get("ticked", [False] * len(env.signoff_checklist)))
        for number, value in changes.items():
            if not 1 <= number <= len(ticked):
                raise Refused(f"the sign-off checklist has items 1 to {len(ticked)}")
            ticked[number - 1] = value
        signoff["ticked"] = ticked
        d = engine.update(d.id, lambda cur: replace(cur, details={**cur.details, "signoff": signoff}))  # type: ignore[arg-type]
        self._refresh(d)
        return d

    def keep(self, user: str, deployment_id: int) -> Deployment:
        """KEEP: close the deployment as signed off."""
        from bot.engine import Refused

        engine = self.engine
        d = engine.deployment(deployment_id)
        self._may(user, d)
        signoff = dict(d.details.get("signoff", {}))
        ticked = signoff.get("ticked", [])
        if not all(ticked):
            open_items = [str(i + 1) for i, v in enumerate(ticked) if not v]
            raise Refused(f"tick every sign-off item before Keep (open: {', '.join(open_items)})")
        if d.state == State.MONITORING:
            engine.scheduler.cancel(d.id)  # type: ignore[arg-type]
            d = engine.save(d, Event.SUCCEED, user, "monitoring_stopped", detail="signed off")
        if d.state != State.SUCCEEDED:
            raise Refused(f"{d.label} is {d.state.value}; only a live deployment can be signed off")
        signoff.update(decision="KEEP", by=user, at=engine.now().isoformat())
        d = engine.save(
            d, Event.SIGN_OFF, user, "sign_off", detail="KEEP", refresh=True,
            details={**d.details, "signoff": signoff},
        )  # fmt: skip
        engine.scheduler.cancel(d.id, REMINDER)  # type: ignore[arg-type]
        self._refresh(d)
        return d

    def roll_back(self, user: str, deployment_id: int) -> Deployment:
        """ROLL BACK from the sign-off card: request a rollback (with the policy's approvals)."""
        engine = self.engine
        d = engine.deployment(deployment_id)
        self._may(user, d)
        rollback = engine.request_rollback(
            user, d.channel or "", d.env, reason=f"sign-off of {d.label}: ROLL BACK"
        )
        signoff = {
            **d.details.get("signoff", {}),
            "decision": "ROLL BACK",
            "by": user,
            "at": engine.now().isoformat(),
        }
        d = engine.update(d.id, lambda cur: replace(cur, details={**cur.details, "signoff": signoff}))  # type: ignore[arg-type]
        engine.store.append_event(engine.event(user, "sign_off", d, f"ROLL BACK → {rollback.label}"))
        self._refresh(d)
        return rollback

    def schedule_reminder(self, d: Deployment) -> None:
        """After a successful deploy: remind the thread if nobody signs off in time."""
        env = self.engine.env(d.env)
        if env.signoff_reminder and env.signoff_checklist and d.kind == "deploy" and not d.dry_run:
            self.engine.scheduler.add_in(REMINDER, env.signoff_reminder, deployment_id=d.id)

    def _remind(self, schedule: Schedule) -> None:
        if schedule.deployment_id is None:
            return
        d = self.engine.store.get(schedule.deployment_id)
        if d is None or d.state not in (State.SUCCEEDED, State.MONITORING):
            return
        self.engine.thread(d, f"⏰ {d.label} in {d.env} is not signed off yet: /signoff {d.env}")

    def _may(self, user: str, d: Deployment) -> None:
        from bot.engine import Refused

        reason = may_sign_off(self.engine.env(d.env), user, self.engine.directory)
        if reason:
            self.engine.record_refusal(user, d.env, "sign_off", reason, d.id)
            raise Refused(reason)

    def _refresh(self, d: Deployment) -> None:
        signoff = d.details.get("signoff", {})
        if signoff.get("ts"):
            ref = MessageRef(signoff["channel"], signoff["ts"])
            self.engine.chat.update_card(ref, build_signoff_card(d, self.engine.env(d.env)))
