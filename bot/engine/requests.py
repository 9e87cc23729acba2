"""Requests: `/deploy` creates a pending deployment and posts its card, after the policy says yes.

The checks, in order: who may deploy (and `--force`), the lock, a deployment already in flight,
the deploy window or freeze (at the requested `--at` time), then the ref (resolved, allowed,
not behind what runs). `--force` lets the break-glass group set the window and "behind" aside,
and asks for one more approval when it really did. The database refuses a second active
deployment per environment, so two racing requests create one.

Creating, posting the card (or cancelling when it cannot be posted) and approving what needs no
approval are shared with rollbacks (`bot.engine.rollbacks`).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.chat.base import Directory
from bot.config import Environment
from bot.domain.deployment import Deployment, Event, EventRecord
from bot.domain.errors import Refused
from bot.engine.policy import may_force, may_request, window_refusal
from bot.engine.port import Ledger, Notifier, Timer, Timers
from bot.source import RefError, RefResolver, Resolution
from bot.store.base import ActiveDeploymentExists, Store


def busy_message(active: Deployment | None) -> str:
    """Why an environment takes no new deployment: what holds it."""
    if active is None:
        return "another deployment is in progress"
    verb = "rollback" if active.kind == "rollback" else "deployment"
    return f"{active.env} is busy: {verb} {active.label} of {active.ref} by {active.requester} is {active.state.value}"


def parse_at(env: Environment, at: str, now: datetime) -> datetime:
    """`--at HH:MM` (the next such time in the environment's zone) or an ISO date-time, as an
    instant in `now`'s zone; Refused when it is not a time, is now or past, or > 30 days ahead."""
    tz = ZoneInfo(env.timezone)
    local_now = now.astimezone(tz)
    try:
        if len(at) <= 5 and ":" in at:
            hh, mm = (int(x) for x in at.split(":"))
            when = datetime.combine(local_now.date(), time(hh, mm), tzinfo=tz)
            if timedelta(0) <= local_now - when < timedelta(minutes=1):
                raise Refused(f"--at {at} is now: leave out --at to deploy at once")
            if when <= local_now:
                when += timedelta(days=1)
        else:
            when = datetime.fromisoformat(at)
            if when.tzinfo is None:
                when = when.replace(tzinfo=tz)
    except ValueError:
        raise Refused(f"--at {at!r} is not a time (HH:MM or an ISO date-time)") from None
    if when <= now:
        raise Refused(f"--at {at} is in the past")
    if when - now > timedelta(days=30):
        raise Refused("--at can be at most 30 days ahead")
    return when.astimezone(now.tzinfo)


class Requests:
    """Deploy requests, and the creation steps they share with rollbacks."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        timers: Timers,
        resolver: RefResolver,
        directory: Directory,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.timers = timers
        self.resolver = resolver
        self.directory = directory

    def request_deploy(
        self,
        user: str,
        channel: str,
        env_name: str,
        ref: str | None = None,
        *,
        reason: str | None = None,
        dry_run: bool = False,
        force: bool = False,
        at: str | None = None,
    ) -> Deployment:
        """Create a pending deployment and post its card; Refused with the reason otherwise."""
        env = self.ledger.env(env_name)
        if why := may_request(env, user, self.directory):
            self.ledger.refuse(user, env.name, "deploy", why)
        if force and (why := may_force(env, user, self.directory)):
            self.ledger.refuse(user, env.name, "force", why)
        now = self.ledger.now()
        scheduled_at = parse_at(env, at, now) if at else None
        ignored = [] if dry_run else self._safeties_set_aside(env, user, scheduled_at or now, force)
        resolution = self._resolve(env, ref, force)
        if resolution.behind:
            ignored.append("target is behind what runs")
        details: dict[str, object] = {
            "changelog": list(resolution.changelog),
            "changelog_note": resolution.changelog_note,
            "warnings": list(resolution.warnings),
        }
        if ignored:
            details["ignored_safeties"] = ignored
        d = Deployment(
            env=env.name,
            requester=user,
            ref=resolution.ref,
            sha=resolution.sha,
            committed_at=resolution.committed_at,
            created_at=now,
            updated_at=now,
            reason=reason,
            dry_run=dry_run,
            force=force,
            scheduled_at=scheduled_at,
            checklist=tuple(False for _ in env.checklist),
            # --force asks for one more approval, when it really set a safety aside
            required_approvals=0 if dry_run else env.approvals.required + (1 if ignored else 0),
            channel=env.channel or channel,
            details=details,
        )
        action = "request_dry_run" if dry_run else "request_deploy"
        forced = f"--force ignoring {', '.join(ignored)}" if ignored else None
        detail = "; ".join(x for x in (reason, forced) if x)
        d = self.create(
            d, EventRecord(at=now, actor=user, action=action, env=env.name, detail=detail or None)
        )
        d = self.post_card_or_cancel(d, user)
        if dry_run:
            return self.approve_now(d, user)
        if env.approval_ttl:
            self.timers.add_in(Timer.APPROVAL_EXPIRY, env.approval_ttl, deployment_id=d.id)
        return d

    def _safeties_set_aside(self, env: Environment, user: str, when: datetime, force: bool) -> list[str]:
        """Refuse when the environment is locked or busy, or (without --force) outside its window;
        return the safeties --force set aside."""
        lock = self.store.get_lock(env.name)
        if lock is not None:
            self.ledger.record_refusal(user, env.name, "deploy", f"locked by {lock.owner}")
            raise Refused(f"{env.name} is locked by {lock.owner}: {lock.reason}")
        active = self.store.active(env.name)
        if active is not None:
            self.ledger.refuse(user, env.name, "deploy", busy_message(active))
        window = window_refusal(env, when)
        if window and not force:
            glass = (
                " (the break-glass group may use --force)"
                if env.break_glass or env.break_glass_groups
                else ""
            )
            self.ledger.record_refusal(user, env.name, "deploy", window)
            raise Refused(window + glass)
        return ["deploy window"] if window else []

    def _resolve(self, env: Environment, ref: str | None, force: bool) -> Resolution:
        """The ref resolved against what runs now; Refused when it cannot be, or (without
        --force) when it is behind what runs: that is a rollback."""
        current = self.store.current_release(env.name)
        try:
            resolution = self.resolver.resolve(
                env.name, ref or env.default_ref, current.sha if current else None, force=force
            )
        except RefError as exc:
            raise Refused(str(exc)) from None
        if resolution.behind and not force:
            raise Refused(
                f"{resolution.ref} is behind what {env.name} runs now: that is a rollback. "
                "Use /rollback, or /deploy with --force."
            )
        return resolution

    # -- shared with rollbacks --------------------------------------------------------------
    def create(self, d: Deployment, event: EventRecord) -> Deployment:
        """Insert `d` with its event; Refused (saying what holds the env) when one is active."""
        try:
            return self.store.create_deployment(d, event)
        except ActiveDeploymentExists as exc:
            raise Refused(busy_message(exc.existing)) from None

    def post_card_or_cancel(self, d: Deployment, user: str) -> Deployment:
        """Post the card of a human request; without a card nobody could approve it, so cancel it."""
        if self.notify.post_card(d):
            return self.store.get(d.id) or d  # type: ignore[arg-type]
        why = f"could not post the card in {d.channel} (is the bot invited to this channel?)"
        self.ledger.save(d, Event.CANCEL, "gonogo", "cancel", detail=why, error=why)
        raise Refused(f"{why}; {d.label} was cancelled, nothing ran")

    def approve_now(self, d: Deployment, user: str) -> Deployment:
        """Approve what needs no approval (a dry run, a rollback the policy waves through); the
        transition hook on APPROVED queues it."""
        return self.ledger.save(d, Event.APPROVE, user, "auto_approve", detail="no approval required")


__all__ = ["Requests", "busy_message", "parse_at"]
