"""Handlers: one per command, turning a typed command into engine calls and a reply.

The same handlers serve every chat adapter. A handler never raises for a user mistake: the
engine's `Refused` becomes an ephemeral reply with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.deployment import Deployment, State
from bot.engine import Engine, Refused
from commands import model
from commands.help import help_text
from commands.parser import parse
from commands.views import history_text, status_text


@dataclass(frozen=True)
class Context:
    """Who typed the command, and where."""

    user: str
    channel: str


@dataclass(frozen=True)
class Reply:
    """What to say back. Ephemeral replies go to the user alone."""

    text: str
    ephemeral: bool = True


def handle_text(engine: Engine, command: str, text: str, ctx: Context) -> Reply | None:
    """Parse a slash command line and run it."""
    parsed = parse(command, text, engine.environments())
    if isinstance(parsed, model.ParseError):
        return Reply(f"{parsed.message}\nUsage: {parsed.usage}")
    return handle(engine, parsed, ctx)


def handle(engine: Engine, cmd: model.Command, ctx: Context) -> Reply | None:
    """Run a parsed command; Refused becomes an ephemeral reply."""
    handler = _HANDLERS.get(type(cmd))
    if handler is None:
        return Reply(f"{type(cmd).__name__} is not supported yet")
    try:
        return handler(engine, cmd, ctx)
    except Refused as exc:
        return Reply(f"Refused: {exc}")


def _deploy(engine: Engine, cmd: model.Deploy, ctx: Context) -> Reply | None:
    d = engine.request_deploy(
        ctx.user,
        ctx.channel,
        cmd.env,
        cmd.ref,
        reason=cmd.reason,
        dry_run=cmd.dry_run,
        force=cmd.force,
        at=cmd.at,
    )
    if d.dry_run:
        return Reply(f"Dry run {d.label} of {d.ref} to {d.env} started; the commands go to its thread.")
    if d.scheduled_at:
        when = d.scheduled_at.strftime("%Y-%m-%d %H:%M %Z")
        return Reply(f"{d.label} will start at {when} once approved; cancel with /deploy cancel {d.id}.")
    return None  # the card is the answer


def _rollback(engine: Engine, cmd: model.Rollback, ctx: Context) -> Reply | None:
    d = engine.request_rollback(
        ctx.user, ctx.channel, cmd.env, target_id=cmd.target_id, target_ref=cmd.target_ref, reason=cmd.reason
    )
    if d.required_approvals == 0:
        return Reply(f"Rollback {d.label} of {d.env} to {d.ref} started.", ephemeral=False)
    return None


def _lock(engine: Engine, cmd: model.Lock, ctx: Context) -> Reply:
    lock = engine.lock(ctx.user, cmd.env, cmd.reason)
    return Reply(f"🔒 {lock.env} locked by {lock.owner}: {lock.reason}", ephemeral=False)


def _unlock(engine: Engine, cmd: model.Unlock, ctx: Context) -> Reply:
    engine.unlock(ctx.user, cmd.env, cmd.reason)
    why = f": {cmd.reason}" if cmd.reason else ""
    return Reply(f"🔓 {cmd.env} unlocked by {ctx.user}{why}", ephemeral=False)


def _history(engine: Engine, cmd: model.History, ctx: Context) -> Reply:
    return Reply(history_text(cmd.env, engine.history(cmd.env, cmd.limit)))


def _status(engine: Engine, cmd: model.Status, ctx: Context) -> Reply:
    return Reply(status_text(engine.status(cmd.env), detailed=cmd.env is not None))


def _abort(engine: Engine, cmd: model.Abort, ctx: Context) -> Reply:
    return _aborted(engine.abort(ctx.user, cmd.env), ctx.user)


def _aborted(d: Deployment, user: str) -> Reply:
    """What `/deploy abort` did, which depends on where the deployment was."""
    if d.state == State.CANCELLED:
        return Reply(f"{d.label} cancelled by {user}", ephemeral=False)
    if d.state == State.SUCCEEDED:
        return Reply(
            f"Monitoring of {d.label} stopped by {user}: {d.env} keeps {d.ref} (Roll back is offered in the channel).",
            ephemeral=False,
        )
    if d.state == State.FAILED:
        return Reply(
            f"{d.label} given up by {user}: {d.env} is free again; roll back from the alert or with /rollback {d.env}.",
            ephemeral=False,
        )
    return Reply(f"Aborting {d.label}: it stops after the current batch.", ephemeral=False)


def _cancel(engine: Engine, cmd: model.Cancel, ctx: Context) -> Reply:
    d = engine.cancel(ctx.user, cmd.deploy_id)
    return Reply(f"{d.label} cancelled by {ctx.user}", ephemeral=False)


def _help(engine: Engine, cmd: model.Help, ctx: Context) -> Reply:
    return Reply(help_text(cmd.topic))


def _signoff(engine: Engine, cmd: model.Signoff, ctx: Context) -> Reply | None:
    engine.signoff(ctx.user, ctx.channel, cmd.env)
    return None  # the sign-off card is the answer


def _stats(engine: Engine, cmd: model.Stats, ctx: Context) -> Reply:
    dora = engine.stats(cmd.env, cmd.days)
    return Reply("\n".join([f"DORA metrics for {cmd.env}, last {cmd.days} days:", *dora.lines()]))


_HANDLERS: dict[type, Callable[[Engine, Any, Context], Reply | None]] = {
    model.Deploy: _deploy,
    model.Rollback: _rollback,
    model.Lock: _lock,
    model.Unlock: _unlock,
    model.History: _history,
    model.Status: _status,
    model.Abort: _abort,
    model.Cancel: _cancel,
    model.Help: _help,
    model.Signoff: _signoff,
    model.Stats: _stats,
}


# -- buttons --------------------------------------------------------------------------------
def handle_action(
    engine: Engine,
    action: str,
    value: str,
    ctx: Context,
    *,
    changes: Mapping[int, bool] | None = None,
) -> Reply | None:
    """Run a button press (`action` from the card, `value` the deployment id).

    A checklist click (`checklist`, `signoff_checklist`) carries `changes`: only the items this
    click changed, {number: ticked}, applied under the engine's compare-and-set so concurrent
    clicks never undo each other.
    """
    try:
        deployment_id = int(value.split(":", 1)[0])
    except ValueError:
        return Reply("that button is not valid any more")
    try:
        if action == "go":
            d = engine.approve(ctx.user, deployment_id)
            left = d.required_approvals - len(d.approvals)
            if left > 0:
                return Reply(f"Go recorded for {d.label}; {left} more approval(s) needed.")
            return None
        if action == "nogo":
            engine.decline(ctx.user, deployment_id)
            return None
        if action == "tick":
            number = int(value.split(":", 1)[1])
            engine.tick(ctx.user, deployment_id, number)
            return None
        if action == "checklist" and changes is not None:
            engine.set_checklist(ctx.user, deployment_id, dict(changes))
            return None
        if action == "abort":
            d = engine.deployment(deployment_id)
            return _aborted(engine.abort(ctx.user, d.env), ctx.user)
        if action == "rollback_now":
            rb = engine.rollback_failed(ctx.user, deployment_id)
            return Reply(f"Rollback {rb.label} started by {ctx.user}.", ephemeral=False)
        if action == "hold":
            d = engine.hold(ctx.user, deployment_id)
            return Reply(
                f"Holding: {ctx.user} stopped the automatic rollback of {d.label}; roll back with /rollback {d.env}.",
                ephemeral=False,
            )
        if action == "keep":
            d = engine.signoffs.keep(ctx.user, deployment_id)
            return Reply(f"🏁 {d.label} signed off (KEEP) by {ctx.user}.", ephemeral=False)
        if action == "signoff_rollback":
            rb = engine.signoffs.roll_back(ctx.user, deployment_id)
            return Reply(
                f"ROLL BACK requested by {ctx.user}: rollback {rb.label} (the sign-off is final once it has run).",
                ephemeral=False,
            )
        if action == "signoff_tick":
            engine.signoffs.set_checklist(ctx.user, deployment_id, {int(value.split(":", 1)[1]): True})
            return None
        if action == "signoff_checklist" and changes is not None:
            engine.signoffs.set_checklist(ctx.user, deployment_id, dict(changes))
            return None
        if action == "resume":
            d = engine.resume(ctx.user, deployment_id)
            return Reply(f"Resuming {d.label}.", ephemeral=False)
    except Refused as exc:
        return Reply(f"Refused: {exc}")
    except (ValueError, IndexError):
        return Reply("that button is not valid any more")
    return Reply(f"unknown action {action!r}")
