"""Handlers: one per command, turning a typed command into engine calls and a reply.

The same handlers serve every chat adapter. A handler never raises for a user mistake: the
engine's `Refused` becomes an ephemeral reply with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain import Action, Deployment, State
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
@dataclass(frozen=True)
class Click:
    """One button press or checkbox change: which deployment, the button's value, and (for a
    checklist) only the items this click changed, {number: ticked}."""

    deployment_id: int
    value: str
    ctx: Context
    changes: Mapping[int, bool] | None = None

    def item(self) -> int:
        """The checklist item a per-item button (`<id>:<number>`) names."""
        return int(self.value.split(":", 1)[1])


def _go(engine: Engine, c: Click) -> Reply | None:
    d = engine.approve(c.ctx.user, c.deployment_id)
    left = d.required_approvals - len(d.approvals)
    return Reply(f"Go recorded for {d.label}; {left} more approval(s) needed.") if left > 0 else None


def _nogo(engine: Engine, c: Click) -> Reply | None:
    engine.decline(c.ctx.user, c.deployment_id)
    return None


def _tick(engine: Engine, c: Click) -> Reply | None:
    engine.tick(c.ctx.user, c.deployment_id, c.item())
    return None


def _checklist(engine: Engine, c: Click) -> Reply | None:
    if c.changes is not None:
        engine.set_checklist(c.ctx.user, c.deployment_id, dict(c.changes))
    return None


def _abort_click(engine: Engine, c: Click) -> Reply | None:
    d = engine.deployment(c.deployment_id)
    return _aborted(engine.abort(c.ctx.user, d.env), c.ctx.user)


def _rollback_now(engine: Engine, c: Click) -> Reply | None:
    rb = engine.rollback_failed(c.ctx.user, c.deployment_id)
    return Reply(f"Rollback {rb.label} started by {c.ctx.user}.", ephemeral=False)


def _hold(engine: Engine, c: Click) -> Reply | None:
    d = engine.hold(c.ctx.user, c.deployment_id)
    return Reply(
        f"Holding: {c.ctx.user} stopped the automatic rollback of {d.label}; roll back with /rollback {d.env}.",
        ephemeral=False,
    )


def _continue_monitoring(engine: Engine, c: Click) -> Reply | None:
    d = engine.continue_monitoring(c.ctx.user, c.deployment_id)
    return Reply(f"▶️ {c.ctx.user} continued the monitoring window of {d.label}.", ephemeral=False)


def _keep(engine: Engine, c: Click) -> Reply | None:
    d = engine.signoffs.keep(c.ctx.user, c.deployment_id)
    return Reply(f"🏁 {d.label} signed off (KEEP) by {c.ctx.user}.", ephemeral=False)


def _signoff_rollback(engine: Engine, c: Click) -> Reply | None:
    rb = engine.signoffs.roll_back(c.ctx.user, c.deployment_id)
    return Reply(
        f"ROLL BACK requested by {c.ctx.user}: rollback {rb.label} (the sign-off is final once it has run).",
        ephemeral=False,
    )


def _signoff_tick(engine: Engine, c: Click) -> Reply | None:
    engine.signoffs.set_checklist(c.ctx.user, c.deployment_id, {c.item(): True})
    return None


def _signoff_checklist(engine: Engine, c: Click) -> Reply | None:
    if c.changes is not None:
        engine.signoffs.set_checklist(c.ctx.user, c.deployment_id, dict(c.changes))
    return None


def _resume(engine: Engine, c: Click) -> Reply | None:
    d = engine.resume(c.ctx.user, c.deployment_id)
    return Reply(f"Resuming {d.label}.", ephemeral=False)


def _run_again(engine: Engine, c: Click) -> Reply | None:
    d = engine.run_again(c.ctx.user, c.deployment_id)
    return Reply(f"Running the step again and resuming {d.label}.", ephemeral=False)


def _gate_go(engine: Engine, c: Click) -> Reply | None:
    d = engine.gate_go(c.ctx.user, c.deployment_id)
    if d.state == State.GATED and d.details.gate is not None:
        given = len(d.details.gate.approvals)
        return Reply(f"Go recorded at the gate of {d.label} ({given} so far); it needs more approvers.")
    return Reply(f"Gate passed: {d.label} goes on (Go by {c.ctx.user}).", ephemeral=False)


def _gate_nogo(engine: Engine, c: Click) -> Reply | None:
    d = engine.gate_nogo(c.ctx.user, c.deployment_id)
    return Reply(f"⛔ {d.label} stopped at its gate by {c.ctx.user}.", ephemeral=False)


def _recover(engine: Engine, c: Click) -> Reply | None:
    choice = c.value.split(":", 1)[1]
    d = engine.recover(c.ctx.user, c.deployment_id, choice)
    if choice == "hold":
        return Reply(f"✋ {c.ctx.user} holds {d.label}: nothing is undone.", ephemeral=False)
    return Reply(f"Rollback {d.label} ({choice}) started by {c.ctx.user}.", ephemeral=False)


#: What each action does: one handler per `Action`.
ACTIONS: dict[Action, Callable[[Engine, Click], Reply | None]] = {
    Action.GO: _go,
    Action.NOGO: _nogo,
    Action.TICK: _tick,
    Action.CHECKLIST: _checklist,
    Action.ABORT: _abort_click,
    Action.ROLLBACK_NOW: _rollback_now,
    Action.HOLD: _hold,
    Action.CONTINUE_MONITORING: _continue_monitoring,
    Action.KEEP: _keep,
    Action.SIGNOFF_ROLLBACK: _signoff_rollback,
    Action.SIGNOFF_TICK: _signoff_tick,
    Action.SIGNOFF_CHECKLIST: _signoff_checklist,
    Action.RESUME: _resume,
    Action.RUN_AGAIN: _run_again,
    Action.GATE_GO: _gate_go,
    Action.GATE_NOGO: _gate_nogo,
    Action.RECOVER: _recover,
}


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
        click = Click(int(value.split(":", 1)[0]), value, ctx, changes)
    except ValueError:
        return Reply("that button is not valid any more")
    try:
        handler = ACTIONS[Action(action)]
    except ValueError:
        return Reply(f"unknown action {action!r}")
    try:
        return handler(engine, click)
    except Refused as exc:
        return Reply(f"Refused: {exc}")
    except (ValueError, IndexError):
        return Reply("that button is not valid any more")
