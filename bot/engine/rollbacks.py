"""Rollbacks: a deployment of kind `rollback` whose steps are the environment's rollback steps.

As in Shipit (`Rollback < Deploy`), a rollback goes through the same life as a deploy: it is
created, its card is posted, it is approved (by the policy's `rollback_required` approvers, or
at once), and a worker runs it. It puts back a release that went live before, never one that
failed; `rollback_target` chooses it the same way for `/rollback`, the alert's Roll back now
and the sign-off's ROLL BACK. After an irreversible step ran, a failed deploy is rolled back
only by a choice (`choose`: undo or restore, each needing an approver; or hold).
"""

from __future__ import annotations

from bot.chat.base import Directory
from bot.config import Environment
from bot.domain.deployment import Deployment, Event, EventRecord, State
from bot.domain.details import Details
from bot.domain.errors import Refused
from bot.engine.compensation import choices, irreversible_ran
from bot.engine.policy import may_approve, may_request
from bot.engine.port import Ledger, Notifier, Timer, Timers
from bot.engine.requests import Requests, busy_message
from bot.store.base import Store

#: States of a deploy whose release went live, and that may be put back by default.
_GOOD = [State.SUCCEEDED, State.SIGNED_OFF, State.MONITORING]


class Rollbacks:
    """Requests for rollbacks, and the choice of what they put back."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        timers: Timers,
        requests: Requests,
        directory: Directory,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.timers = timers
        self.requests = requests
        self.directory = directory

    def request_rollback(
        self,
        user: str,
        channel: str,
        env_name: str,
        *,
        target_id: int | None = None,
        target_ref: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Create a rollback to the previous good release (or the given one)."""
        env = self.ledger.env(env_name)
        if why := may_request(env, user, self.directory):
            self.ledger.refuse(user, env.name, "rollback", why)
        current = self.store.current_release(env.name)
        if current is None:
            raise Refused(f"{env.name} has no successful deployment to roll back from")
        active = self.store.active(env.name)
        if active is not None and active.state == State.INTERRUPTED and target_id is None and not target_ref:
            # What runs is still the last good release: put it back on every host.
            return self.rollback_failed(user, active.id)
        target = self.rollback_target(env.name, current, target_id, target_ref)
        if active is not None:
            if active.state != State.MONITORING:
                raise Refused(busy_message(active))
            self.timers.cancel(active.id)
            self.ledger.save(
                active, Event.SUCCEED, user, "monitoring_stopped", detail="rollback requested", refresh=True
            )
        return self.start(
            user,
            env,
            target,
            undoes=current,
            reason=reason,
            required=env.approvals.rollback_required,
            channel=env.channel or channel,
            detail=f"to {target.label}: {reason or ''}",
        )

    def rollback_target(
        self, env: str, current: Deployment, target_id: int | None = None, target_ref: str | None = None
    ) -> Deployment:
        """What a rollback from `current` puts back: the given deploy (`target_id`), the newest
        earlier one of `target_ref`, or by default the previous good release; Refused otherwise."""
        if target_id is not None:
            return self._named_target(env, current, target_id)
        current_release = current.release_id or current.id
        assert current_release is not None
        candidates = self.store.deployments(
            env, states=_GOOD, kind="deploy", before_id=current_release, limit=200
        )
        candidates = [c for c in candidates if not c.dry_run]
        if target_ref is not None:
            for c in candidates:
                if c.ref == target_ref or (c.sha and len(target_ref) >= 4 and c.sha.startswith(target_ref)):
                    return c
            raise Refused(f"no earlier successful deploy of {target_ref!r} in {env}'s history")
        if not candidates:
            raise Refused(f"{env} has no earlier successful release to roll back to")
        return candidates[0]

    def _named_target(self, env: str, current: Deployment, target_id: int) -> Deployment:
        # A release that was rolled back is not "good" by default; named explicitly, one that
        # went live (its release is its own) may be put back.
        target = self.store.get(target_id)
        if target is None or target.env != env or target.dry_run:
            raise Refused(f"#{target_id} is not a deployment of {env}")
        went_live = target.state == State.ROLLED_BACK and target.release_id == target.id
        if (target.state not in _GOOD and not went_live) or target.kind != "deploy":
            raise Refused(f"#{target_id} is not a successful deploy of {env} ({target.state.value})")
        if (target.release_id or target.id) == (current.release_id or current.id):
            raise Refused(f"{env} already runs the release of #{target_id}")
        return target

    def choose(self, user: str, deployment_id: int, choice: str) -> Deployment:
        """A choice on the alert of a deploy that ran an irreversible step: `undo` or `restore`
        start its rollback (returned), `hold` leaves everything as it is (the deploy returned).
        Each needs an approver of the environment, never the requester."""
        d = self.ledger.get(deployment_id)
        env = self.ledger.env(d.env)
        offered = choices(irreversible_ran(env, d))
        if choice not in offered:
            raise Refused(f"{d.label} offers {', '.join(offered) or 'no choices'}, not {choice!r}")
        if why := may_approve(env, d, user, self.directory):
            self.ledger.refuse(user, d.env, f"recover_{choice}", why, d.id)
        if choice != "hold":
            return self.rollback_failed(user, deployment_id, recovery=choice)
        if d.details.hold:
            raise Refused(f"{d.label} is already held by {d.details.hold}")
        d = self.ledger.amend(deployment_id, lambda cur: cur.with_details(hold=user))
        self.ledger.log(user, "recover_hold", d)
        self.notify.settle_alerts(
            deployment_id,
            f"✋ Held by {user}: nothing is undone; {d.env} stays as the failed deploy left it.",
        )
        return d

    def rollback_failed(
        self, user: str, deployment_id: int, *, automatic: bool = False, recovery: str | None = None
    ) -> Deployment:
        """`Roll back now` on a failure alert: put back the environment's last good release
        (after an irreversible step: only with a `recovery` chosen, see `choose`)."""
        d = self.ledger.get(deployment_id)
        env = self.ledger.env(d.env)
        if not automatic and (why := may_request(env, user, self.directory)):
            self.ledger.refuse(user, d.env, "rollback", why, d.id)
        if recovery is None and (found := irreversible_ran(env, d)):
            self.ledger.refuse(
                user, d.env, "rollback",
                f"{d.label} ran irreversible step {found[0].describe()}: an approver chooses on its alert "
                f"({', '.join(choices(found))})", d.id,
            )  # fmt: skip
        if d.state == State.INTERRUPTED:
            d = self.ledger.save(
                d, Event.FAIL, user, "give_up", error="rolled back after interruption", refresh=True
            )
        if d.state == State.MONITORING:
            self.timers.cancel(deployment_id)
            d = self.ledger.save(d, Event.FAIL, user, "fail", error="rolled back by " + user, refresh=True)
        current = self.store.current_release(d.env)  # after the failure: never the failed one
        if current is None:
            raise Refused(f"{d.env} has no good release to roll back to")
        active = self.store.active(env.name)
        if active is not None:
            raise Refused(busy_message(active))
        if d.state == State.ROLLED_BACK or (
            d.kind == "deploy" and d.state not in (State.FAILED, State.ABORTED, State.INTERRUPTED)
        ):
            raise Refused(f"{d.label} is {d.state.value}; use /rollback {d.env}")
        if not automatic:
            self.timers.cancel(deployment_id, Timer.AUTO_ROLLBACK)  # a human was faster
        rollback = self.start(
            user,
            env,
            current,
            undoes=d,
            reason=f"after failed {d.label}",
            required=0,
            channel=d.channel,
            automatic=automatic,
            recovery=recovery,
        )
        who = "automatically" if automatic else f"by {user}"
        who += f" ({recovery})" if recovery else ""
        self.notify.settle_alerts(
            deployment_id, f"↩️ Rollback {rollback.label} to {current.label} started {who}."
        )
        return rollback

    def start(
        self,
        user: str,
        env: Environment,
        target: Deployment,
        *,
        undoes: Deployment,
        reason: str | None,
        required: int,
        channel: str | None,
        automatic: bool = False,
        detail: str | None = None,
        recovery: str | None = None,
    ) -> Deployment:
        """Create a rollback to `target`'s release, post its card, and start it when no approval is due."""
        now = self.ledger.now()
        rb = Deployment(
            env=env.name,
            kind="rollback",
            requester=user,
            ref=target.ref,
            sha=target.sha,
            committed_at=target.committed_at,
            created_at=now,
            updated_at=now,
            reason=reason,
            release_id=target.release_id or target.id,
            rollback_of=undoes.id,
            required_approvals=required,
            channel=channel,
            details=Details(
                changelog_note=f"Back to {target.label} ({target.ref} {target.short_sha})",
                automatic=automatic,
                recovery=recovery,
            ),
        )
        event = EventRecord(
            at=now, actor=user, action="request_rollback", env=env.name, detail=detail or reason
        )
        rb = self.requests.create(rb, event)
        if automatic:  # a rollback the bot decided goes ahead even when its card cannot be shown
            self.notify.post_card(rb)
            rb = self.store.get(rb.id) or rb
        else:
            rb = self.requests.post_card_or_cancel(rb, user)
        return self.requests.approve_now(rb, user) if required == 0 else rb


__all__ = ["Rollbacks"]
