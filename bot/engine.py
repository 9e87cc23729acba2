"""The engine: requests, approvals, locks and the deployment run, over the seams.

The engine owns the deployment state machine's *use*: every change goes through
`bot.domain.transition` and is saved compare-and-set (`Store.transition`), so a double click
or a second replica loses the race cleanly instead of acting twice. Work (SSH, HTTP) never runs
on the caller's thread: approved deployments are handed to the engine's own worker pool.

Public API (what `commands/` may call): `request_deploy`, `request_rollback`, `tick`,
`set_checklist`, `approve`, `decline`, `abort`, `resume`, `lock`, `unlock`, `status`,
`history`, `deployment`, `start`, `wait_idle`, `shutdown`, and the errors `Refused`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot.card import Card, build_card
from bot.chat.base import Chat, Directory, MessageRef, StaticDirectory
from bot.clock import Clock, SystemClock
from bot.config import Config, Environment
from bot.domain import (
    Approval,
    Deployment,
    Event,
    EventRecord,
    IllegalTransition,
    Lock,
    State,
    transition,
)
from bot.policy import may_approve, may_operate, may_request
from bot.refs import NullResolver, RefError, RefResolver
from bot.store.base import ActiveDeploymentExists, StaleDeployment, Store
from runners.base import Backend, HostResult
from runners.pipeline import Pipeline, ProgressEvent, StageResult
from runners.redact import Redactor

log = logging.getLogger("gonogo.engine")

BackendFactory = Callable[[Environment, bool], Backend]
MAX_CAS_RETRIES = 20


class Refused(Exception):
    """A user-facing refusal: the message says why (policy, lock, state, bad input)."""


@dataclass(frozen=True)
class EnvStatus:
    """What `/status` shows for one environment."""

    env: str
    current: Deployment | None
    active: Deployment | None
    lock: Lock | None
    recent: tuple[Deployment, ...] = ()


@dataclass
class _Run:
    stop: threading.Event = field(default_factory=threading.Event)


def default_backend_factory(config: Config) -> BackendFactory:
    """Backends by environment: printer for dry runs, local, or SSH (Fabric)."""

    def make(env: Environment, dry_run: bool) -> Backend:
        from runners.local import LocalBackend
        from runners.printer import PrinterBackend

        if dry_run:
            return PrinterBackend()
        if env.backend == "local":
            return LocalBackend(cwd=str(config.config_dir))
        from bot.sshbackend import ssh_backend_for

        return ssh_backend_for(config, env)

    return make


class Engine:
    """Coordinates deployments. Thread-safe; one per process."""

    def __init__(
        self,
        config: Config,
        store: Store,
        chat: Chat,
        *,
        clock: Clock | None = None,
        directory: Directory | None = None,
        resolver: RefResolver | None = None,
        backends: BackendFactory | None = None,
        workers: int | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.chat = chat
        self.clock = clock or SystemClock()
        self.directory = directory or StaticDirectory()
        self.resolver = resolver or NullResolver()
        self.backends = backends or default_backend_factory(config)
        self._pool = ThreadPoolExecutor(
            max_workers=workers or config.bot.workers, thread_name_prefix="gonogo-work"
        )
        self._inflight: set[Future[None]] = set()
        self._idle = threading.Condition()
        self._runs: dict[int, _Run] = {}
        self._accepting = True

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Pick up where the last process left off: re-show pending cards, run approved work."""
        for d in self.store.deployments(states=[State.PENDING, State.APPROVED, State.RUNNING], limit=500):
            env = self._env_or_none(d.env)
            if env is None:
                continue
            if d.state == State.PENDING:
                self._refresh_card(d)
            elif d.state == State.APPROVED:
                self._submit(d)
            elif d.state == State.RUNNING:
                self._interrupt(d, "the bot restarted while this deployment was running")

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no work is in flight; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._inflight, timeout=timeout)

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work and (optionally) wait for running work to finish."""
        self._accepting = False
        self._pool.shutdown(wait=wait)

    # -- queries --------------------------------------------------------------------------
    def environments(self) -> list[str]:
        """Configured environment names."""
        return list(self.config.environments)

    def deployment(self, deployment_id: int) -> Deployment:
        """One deployment; Refused when it does not exist."""
        d = self.store.get(deployment_id)
        if d is None:
            raise Refused(f"there is no deployment #{deployment_id}")
        return d

    def status(self, env: str | None = None, *, recent: int = 5) -> list[EnvStatus]:
        """Status of one or every environment."""
        names = [self._env(env).name] if env else list(self.config.environments)
        out = []
        for name in names:
            out.append(
                EnvStatus(
                    env=name,
                    current=self.store.current_release(name),
                    active=self.store.active(name),
                    lock=self.store.get_lock(name),
                    recent=tuple(self.store.deployments(name, limit=recent)) if env else (),
                )
            )
        return out

    def history(self, env: str, limit: int = 10) -> list[Deployment]:
        """The newest deployments of an environment (dry runs included, marked)."""
        self._env(env)
        return self.store.deployments(env, limit=limit)

    def card(self, d: Deployment) -> Card:
        """The card for a deployment as it is now."""
        return build_card(d, self._env(d.env), self.store.get_lock(d.env))

    # -- requests -------------------------------------------------------------------------
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
    ) -> Deployment:
        """Create a pending deployment and post its card; Refused with the reason otherwise."""
        env = self._env(env_name)
        self._refuse_if(may_request(env, user, self.directory), user, env.name, "deploy")
        if not dry_run:
            self._refuse_if_locked(env.name, user, force)
            self._refuse_if_active(env.name)
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
        now = self.clock.now()
        details: dict[str, object] = {
            "changelog": list(resolution.changelog),
            "changelog_note": resolution.changelog_note,
            "warnings": list(resolution.warnings),
        }
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
            checklist=tuple(False for _ in env.checklist),
            required_approvals=0 if dry_run else env.approvals.required + (1 if force else 0),
            channel=env.channel or channel,
            details=details,
        )
        action = "request_dry_run" if dry_run else "request_deploy"
        d = self._create(d, EventRecord(at=now, actor=user, action=action, env=env.name, detail=reason))
        self._post_card(d)
        d = self.store.get(d.id) or d  # type: ignore[arg-type]
        if dry_run:
            return self._approve_and_submit(d, user)
        return d

    def request_rollback(
        self,
        user: str,
        channel: str,
        env_name: str,
        *,
        target_id: int | None = None,
        target_ref: str | None = None,
        reason: str | None = None,
        automatic: bool = False,
    ) -> Deployment:
        """Create a rollback to the previous good release (or the given one)."""
        env = self._env(env_name)
        if not automatic:
            self._refuse_if(may_request(env, user, self.directory), user, env.name, "rollback")
        current = self.store.current_release(env.name)
        if current is None:
            raise Refused(f"{env.name} has no successful deployment to roll back from")
        target = self._rollback_target(env.name, current, target_id, target_ref)
        active = self.store.active(env.name)
        if active is not None:
            if active.state == State.MONITORING:
                self._save(active, Event.SUCCEED, user, "monitoring_stopped", detail="rollback requested")
            else:
                raise Refused(self._busy_message(active))
        now = self.clock.now()
        d = Deployment(
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
            rollback_of=current.id,
            required_approvals=0 if automatic else env.approvals.rollback_required,
            channel=env.channel or channel,
            details={"changelog_note": f"Back to {target.label} ({target.ref} {target.short_sha})"},
        )
        d = self._create(
            d,
            EventRecord(
                at=now,
                actor=user,
                action="request_rollback",
                env=env.name,
                detail=f"to {target.label}: {reason or ''}",
            ),
        )
        self._post_card(d)
        d = self.store.get(d.id) or d  # type: ignore[arg-type]
        if d.required_approvals == 0:
            return self._approve_and_submit(d, user)
        return d

    def _rollback_target(
        self, env: str, current: Deployment, target_id: int | None, target_ref: str | None
    ) -> Deployment:
        good = [State.SUCCEEDED, State.SIGNED_OFF, State.ROLLED_BACK, State.MONITORING]
        if target_id is not None:
            target = self.store.get(target_id)
            if target is None or target.env != env or target.dry_run:
                raise Refused(f"#{target_id} is not a deployment of {env}")
            if target.state not in good or target.kind != "deploy":
                raise Refused(f"#{target_id} is not a successful deploy of {env} ({target.state.value})")
            if (target.release_id or target.id) == (current.release_id or current.id):
                raise Refused(f"{env} already runs the release of #{target_id}")
            return target
        current_release = current.release_id or current.id
        assert current_release is not None
        candidates = self.store.deployments(
            env, states=good, kind="deploy", before_id=current_release, limit=200
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

    # -- checklist and approvals ----------------------------------------------------------
    def tick(self, user: str, deployment_id: int, number: int, ticked: bool = True) -> Deployment:
        """Tick (or untick) checklist item `number` (1-based)."""
        return self.set_checklist(user, deployment_id, {number: ticked})

    def tick_all(self, user: str, deployment_id: int) -> Deployment:
        """Tick every checklist item."""
        d = self.deployment(deployment_id)
        return self.set_checklist(user, deployment_id, {i + 1: True for i in range(len(d.checklist))})

    def set_checklist(self, user: str, deployment_id: int, changes: dict[int, bool]) -> Deployment:
        """Set checklist items by number; idempotent."""
        for _ in range(MAX_CAS_RETRIES):
            d = self.deployment(deployment_id)
            env = self._env(d.env)
            if d.state != State.PENDING:
                raise Refused(f"{d.label} is {d.state.value}; its checklist is closed")
            self._refuse_if(may_operate(env, user, self.directory), user, env.name, "tick", d.id)
            items = list(d.checklist)
            for number in changes:
                if not 1 <= number <= len(items):
                    raise Refused(
                        f"the checklist has items 1 to {len(items)}" if items else "there is no checklist"
                    )
            for number, value in changes.items():
                items[number - 1] = value
            if tuple(items) == d.checklist:
                return d
            detail = ", ".join(f"{'ticked' if v else 'unticked'} {n}" for n, v in sorted(changes.items()))
            new = replace(d, checklist=tuple(items), updated_at=self.clock.now())
            try:
                saved = self.store.transition(new, d.version, self._event(user, "checklist", d, detail))
            except StaleDeployment:
                continue
            self._refresh_card(saved)
            return saved
        raise Refused("too many concurrent changes; try again")

    def approve(self, user: str, deployment_id: int) -> Deployment:
        """Record `user`'s Go; the last required approval starts the deployment."""
        for _ in range(MAX_CAS_RETRIES):
            d = self.deployment(deployment_id)
            env = self._env(d.env)
            if d.state != State.PENDING:
                raise Refused(f"{d.label} is already {d.state.value}")
            reason = may_approve(env, d, user, self.directory)
            if reason:
                self._record_refusal(user, d.env, "approve", reason, d.id)
                raise Refused(reason)
            if user in d.approvers():
                raise Refused(f"you already approved {d.label}")
            if not d.checklist_done():
                open_items = [str(i + 1) for i, v in enumerate(d.checklist) if not v]
                raise Refused(f"tick every checklist item before Go (open: {', '.join(open_items)})")
            lock = self.store.get_lock(d.env)
            if lock is not None and d.kind == "deploy" and not d.force:
                raise Refused(f"{d.env} is locked by {lock.owner}: {lock.reason}")
            now = self.clock.now()
            approvals = (*d.approvals, Approval(user, now))
            new = replace(d, approvals=approvals, updated_at=now)
            done = len(approvals) >= d.required_approvals
            try:
                if done:
                    new = transition(new, Event.APPROVE, at=now)
                saved = self.store.transition(
                    new,
                    d.version,
                    self._event(user, "approve", d, f"{len(approvals)}/{d.required_approvals}"),
                )
            except StaleDeployment:
                continue
            if done:
                self._submit(saved)
            self._refresh_card(saved)
            return saved
        raise Refused("too many concurrent changes; try again")

    def decline(self, user: str, deployment_id: int, reason: str | None = None) -> Deployment:
        """No-go: an approver declines, or the requester cancels, a pending deployment."""
        d = self.deployment(deployment_id)
        env = self._env(d.env)
        if d.state not in (State.PENDING, State.SCHEDULED):
            raise Refused(f"{d.label} is already {d.state.value}")
        if user == d.requester:
            return self._save(d, Event.CANCEL, user, "cancel", detail=reason, refresh=True)
        refusal = may_approve(env, d, user, self.directory)
        if refusal:
            self._record_refusal(user, d.env, "decline", refusal, d.id)
            raise Refused(refusal)
        return self._save(d, Event.DECLINE, user, "decline", detail=reason, refresh=True)

    def cancel(self, user: str, deployment_id: int) -> Deployment:
        """Cancel a pending or scheduled deployment (requester or an operator)."""
        d = self.deployment(deployment_id)
        if user != d.requester:
            self._refuse_if(may_operate(self._env(d.env), user, self.directory), user, d.env, "cancel", d.id)
        return self._save(d, Event.CANCEL, user, "cancel", refresh=True)

    # -- locks ----------------------------------------------------------------------------
    def lock(self, user: str, env_name: str, reason: str | None, *, automatic: bool = False) -> Lock:
        """Lock an environment against deploys."""
        env = self._env(env_name)
        if not automatic:
            self._refuse_if(may_operate(env, user, self.directory), user, env.name, "lock")
        now = self.clock.now()
        lock = Lock(env=env.name, owner=user, reason=reason or "no reason given", at=now, automatic=automatic)
        event = EventRecord(at=now, actor=user, action="lock", env=env.name, detail=lock.reason)
        if not self.store.set_lock(lock, event):
            existing = self.store.get_lock(env.name)
            who = f"{existing.owner}: {existing.reason}" if existing else "someone"
            raise Refused(f"{env.name} is already locked by {who}")
        return lock

    def unlock(self, user: str, env_name: str, reason: str | None) -> Lock:
        """Unlock an environment. A lock the bot set (after a rollback) needs a reason."""
        env = self._env(env_name)
        self._refuse_if(may_operate(env, user, self.directory), user, env.name, "unlock")
        existing = self.store.get_lock(env.name)
        if existing is None:
            raise Refused(f"{env.name} is not locked")
        if existing.automatic and not reason:
            raise Refused(f"{env.name} was locked by gonogo ({existing.reason}); unlock it with a reason")
        now = self.clock.now()
        removed = self.store.clear_lock(
            env.name, EventRecord(at=now, actor=user, action="unlock", env=env.name, detail=reason)
        )
        if removed is None:
            raise Refused(f"{env.name} is not locked")
        return removed

    # -- running --------------------------------------------------------------------------
    def abort(self, user: str, env_name: str) -> Deployment:
        """Stop the in-flight deployment of `env` after its current batch (or cancel a pending one)."""
        env = self._env(env_name)
        self._refuse_if(may_operate(env, user, self.directory), user, env.name, "abort")
        d = self.store.active(env.name)
        if d is None:
            raise Refused(f"nothing is in flight in {env.name}")
        if d.state in (State.PENDING, State.SCHEDULED, State.APPROVED):
            return self._save(d, Event.CANCEL, user, "abort", refresh=True)
        if d.state != State.RUNNING:
            raise Refused(f"{d.label} is {d.state.value}; nothing to abort")
        run = self._runs.get(d.id)  # type: ignore[arg-type]
        if run is None:
            raise Refused(f"{d.label} is not running in this process")
        run.stop.set()
        self.store.append_event(self._event(user, "abort_requested", d, None))
        return d

    def resume(self, user: str, deployment_id: int) -> Deployment:
        """Continue an interrupted deployment from its first unfinished stage."""
        d = self.deployment(deployment_id)
        self._refuse_if(may_operate(self._env(d.env), user, self.directory), user, d.env, "resume", d.id)
        if d.state != State.INTERRUPTED:
            raise Refused(f"{d.label} is {d.state.value}; only an interrupted deployment can be resumed")
        self.store.append_event(self._event(user, "resume_requested", d, None))
        self._submit(d)
        return d

    def _approve_and_submit(self, d: Deployment, user: str) -> Deployment:
        saved = self._save(d, Event.APPROVE, user, "auto_approve", detail="no approval required")
        self._submit(saved)
        return saved

    def _submit(self, d: Deployment) -> None:
        if not self._accepting:
            return
        assert d.id is not None
        deployment_id = d.id
        future = self._pool.submit(self._run_guarded, deployment_id)
        with self._idle:
            self._inflight.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._idle:
            self._inflight.discard(future)
            self._idle.notify_all()

    def _run_guarded(self, deployment_id: int) -> None:
        try:
            self._run(deployment_id)
        except Exception:
            log.exception("deployment #%s: unexpected error in the worker", deployment_id)
            d = self.store.get(deployment_id)
            if d is not None and d.state == State.RUNNING:
                try:
                    self._save(
                        d,
                        Event.FAIL,
                        "gonogo",
                        "fail",
                        detail="internal error",
                        error="internal error (see logs)",
                    )
                except Exception:
                    log.exception("deployment #%s: could not record the failure", deployment_id)

    def _run(self, deployment_id: int) -> None:
        d = self.store.get(deployment_id)
        if d is None:
            return
        env = self._env(d.env)
        resuming = d.state == State.INTERRUPTED
        event = Event.RESUME if resuming else Event.START
        try:
            d = self._save(
                d, event, "gonogo", "start" if not resuming else "resume", progress="starting", refresh=True
            )
        except (Refused, IllegalTransition):
            return  # someone else started it (another click, another replica)
        assert d.id is not None
        deployment_id = d.id
        run = _Run()
        self._runs[deployment_id] = run
        backend = self.backends(env, d.dry_run)
        variables = self._variables(env, d)
        secrets = {name: value for name in env.secrets if (value := _environ(name))}
        redactor = Redactor(secrets.values())
        progress = _ProgressReporter(self, d.id)
        pipeline = Pipeline(
            backend,
            env.hosts,
            env.strategy,
            variables,
            env=secrets,
            redactor=redactor,
            on_progress=progress,
            stop=run.stop,
        )
        stages = ("rollback",) if d.kind == "rollback" else ("pre_deploy", "deploy", "verify")
        done_stages = set(d.details.get("done_stages", ())) if resuming else set()
        failure: StageResult | None = None
        try:
            for stage in stages:
                steps = env.stage(stage)
                if stage in done_stages or not steps:
                    continue
                d = self._set_progress(deployment_id, f"{stage}…")
                result = pipeline.run_stage(stage, steps)
                if not result.ok:
                    failure = result
                    break
                done_stages.add(stage)
                d = self._save_details(deployment_id, {"done_stages": sorted(done_stages)})
            if failure is None and d.dry_run and isinstance(getattr(backend, "lines", None), list):
                self._thread(d, "Dry run: exact commands per host\n" + "\n".join(backend.lines))  # type: ignore[attr-defined]
        finally:
            pipeline.close()
            self._runs.pop(deployment_id, None)
        self._finish(deployment_id, failure, run.stop.is_set())

    def _finish(self, deployment_id: int, failure: StageResult | None, stopped: bool) -> None:
        d = self.deployment(deployment_id)
        if failure is not None and failure.aborted and failure.failed_step is None:
            self._save(
                d, Event.ABORT, "gonogo", "aborted", error="aborted after the current batch", refresh=True
            )
            return
        if failure is not None:
            step = failure.failed_step
            assert step is not None
            bad = step.failures()
            summary = f"{failure.stage} › {step.step}: " + "; ".join(h.describe() for h in bad[:3])
            d = self._save(d, Event.FAIL, "gonogo", "fail", detail=summary, error=summary, refresh=True)
            self._alert_failure(d, summary, bad)
            return
        now = self.clock.now()
        if d.kind == "rollback":
            d = self._save(d, Event.SUCCEED, "gonogo", "succeed", progress=None, refresh=True)
            self._mark_rolled_back(d)
        else:
            d = self._save(
                d, Event.SUCCEED, "gonogo", "succeed", progress=None, release_id=d.id, refresh=True
            )
            if not d.dry_run:
                note = self.resolver.after_success(d.env, d.id, d.sha)  # type: ignore[arg-type]
                if note:
                    self._thread(d, note)
        log.info("deployment %s %s at %s", d.label, d.state.value, now.isoformat())

    def _mark_rolled_back(self, rollback: Deployment) -> None:
        if rollback.rollback_of is None:
            return
        undone = self.store.get(rollback.rollback_of)
        if undone is None:
            return
        try:
            self._save(
                undone, Event.ROLL_BACK, "gonogo", "rolled_back", detail=f"by {rollback.label}", refresh=True
            )
        except (Refused, IllegalTransition):
            log.info("%s could not be marked rolled back from %s", undone.label, undone.state.value)

    def _alert_failure(self, d: Deployment, summary: str, bad: Sequence[HostResult]) -> None:
        env = self._env(d.env)
        from bot.card import Button

        mentions = [d.requester, *env.on_call]
        tails = "\n".join(f"{h.host}: {h.output[-500:]}" for h in bad[:3] if h.output)
        if d.kind == "rollback":
            text = f"Rollback {d.label} of {d.env} FAILED: {summary}"
            buttons: tuple[Button, ...] = ()
        else:
            text = f"Deploy {d.label} of {d.ref} to {d.env} FAILED: {summary}"
            buttons = (
                Button("Roll back now", "rollback_now", str(d.id), "danger"),
                Button("Hold", "hold", str(d.id)),
            )
            if self.store.current_release(d.env) is None:
                buttons = ()
        if d.channel:
            self.chat.post_message(d.channel, text, buttons=buttons, mentions=mentions)
        if tails:
            self._thread(d, "Output:\n" + tails)

    def rollback_failed(self, user: str, deployment_id: int) -> Deployment:
        """`Roll back now` on a failure alert: roll the environment back to its last good release."""
        d = self.deployment(deployment_id)
        current = self.store.current_release(d.env)
        if current is None:
            raise Refused(f"{d.env} has no good release to roll back to")
        active = self.store.active(d.env)
        if active is not None and active.kind == "rollback":
            raise Refused(f"rollback {active.label} is already {active.state.value}")
        return self._rollback_to_current(user, d, current)

    def _rollback_to_current(self, user: str, failed: Deployment, current: Deployment) -> Deployment:
        """After a failed deploy the env may be half-updated: redeploy the current good release."""
        env = self._env(failed.env)
        if failed.state == State.INTERRUPTED:
            self._save(
                failed, Event.FAIL, user, "give_up", error="rolled back after interruption", refresh=True
            )
        active = self.store.active(env.name)
        if active is not None:
            raise Refused(self._busy_message(active))
        now = self.clock.now()
        rb = Deployment(
            env=env.name,
            kind="rollback",
            requester=user,
            ref=current.ref,
            sha=current.sha,
            committed_at=current.committed_at,
            created_at=now,
            updated_at=now,
            reason=f"after failed {failed.label}",
            release_id=current.release_id or current.id,
            rollback_of=failed.id,
            required_approvals=0,
            channel=failed.channel,
            details={"changelog_note": f"Back to {current.label} ({current.ref} {current.short_sha})"},
        )
        rb = self._create(
            rb, EventRecord(at=now, actor=user, action="request_rollback", env=env.name, detail=rb.reason)
        )
        self._post_card(rb)
        rb = self.store.get(rb.id) or rb  # type: ignore[arg-type]
        return self._approve_and_submit(rb, user)

    def _interrupt(self, d: Deployment, why: str) -> None:
        try:
            d = self._save(d, Event.INTERRUPT, "gonogo", "interrupt", detail=why, error=why, refresh=True)
        except (Refused, IllegalTransition):
            return
        if d.channel:
            from bot.card import Button

            self.chat.post_message(
                d.channel,
                f"Deployment {d.label} of {d.ref} to {d.env} was interrupted: {why}. "
                "Resume it, or roll back; the environment stays held until someone decides.",
                buttons=(
                    Button("Resume", "resume", str(d.id), "primary"),
                    Button("Roll back", "rollback_now", str(d.id), "danger"),
                ),
                mentions=[d.requester, *self._env(d.env).on_call],
            )

    # -- helpers --------------------------------------------------------------------------
    def _env(self, name: str | None) -> Environment:
        env = self._env_or_none(name)
        if env is None:
            known = ", ".join(self.config.environments)
            raise Refused(f"unknown environment {name!r}; known: {known}")
        return env

    def _env_or_none(self, name: str | None) -> Environment | None:
        return self.config.environments.get(name or "")

    def _create(self, d: Deployment, event: EventRecord) -> Deployment:
        try:
            return self.store.create_deployment(d, event)
        except ActiveDeploymentExists as exc:
            raise Refused(self._busy_message(exc.existing)) from None

    def _busy_message(self, active: Deployment | None) -> str:
        if active is None:
            return "another deployment is in progress"
        verb = "rollback" if active.kind == "rollback" else "deployment"
        return f"{active.env} is busy: {verb} {active.label} of {active.ref} by {active.requester} is {active.state.value}"

    def _refuse_if_active(self, env: str) -> None:
        active = self.store.active(env)
        if active is not None:
            raise Refused(self._busy_message(active))

    def _refuse_if_locked(self, env: str, user: str, force: bool) -> None:
        lock = self.store.get_lock(env)
        if lock is not None:
            self._record_refusal(user, env, "deploy", f"locked by {lock.owner}")
            raise Refused(f"{env} is locked by {lock.owner}: {lock.reason}")

    def _refuse_if(
        self, reason: str | None, user: str, env: str, action: str, deployment_id: int | None = None
    ) -> None:
        if reason:
            self._record_refusal(user, env, action, reason, deployment_id)
            raise Refused(reason)

    def _record_refusal(
        self, user: str, env: str, action: str, reason: str, deployment_id: int | None = None
    ) -> None:
        self.store.append_event(
            EventRecord(
                at=self.clock.now(),
                actor=user,
                action=f"refused_{action}",
                env=env,
                deployment_id=deployment_id,
                detail=reason,
            )
        )

    def _event(self, actor: str, action: str, d: Deployment, detail: str | None) -> EventRecord:
        return EventRecord(
            at=self.clock.now(), actor=actor, action=action, env=d.env, deployment_id=d.id, detail=detail
        )

    def _save(
        self,
        d: Deployment,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: str | None = None,
        refresh: bool = False,
        **changes: object,
    ) -> Deployment:
        """Apply a transition compare-and-set, retrying on version races; Refused if illegal."""
        for _ in range(MAX_CAS_RETRIES):
            try:
                new = transition(d, event, at=self.clock.now(), **changes)
            except IllegalTransition as exc:
                raise Refused(str(exc)) from None
            try:
                saved = self.store.transition(new, d.version, self._event(actor, action, d, detail))
            except StaleDeployment:
                fresh = self.store.get(d.id)  # type: ignore[arg-type]
                if fresh is None:
                    raise Refused(f"{d.label} no longer exists") from None
                d = fresh
                continue
            if refresh:
                self._refresh_card(saved)
            return saved
        raise Refused("too many concurrent changes; try again")

    def _update(self, deployment_id: int, change: Callable[[Deployment], Deployment]) -> Deployment:
        """Save a non-state change compare-and-set (progress, details), retrying on races."""
        for _ in range(MAX_CAS_RETRIES):
            d = self.deployment(deployment_id)
            try:
                return self.store.transition(change(d), d.version)
            except StaleDeployment:
                continue
        return self.deployment(deployment_id)

    def _set_progress(self, deployment_id: int, text: str | None) -> Deployment:
        d = self._update(deployment_id, lambda d: replace(d, progress=text, heartbeat_at=self.clock.now()))
        self._refresh_card(d)
        return d

    def _save_details(self, deployment_id: int, extra: dict[str, object]) -> Deployment:
        return self._update(deployment_id, lambda d: replace(d, details={**d.details, **extra}))

    def _variables(self, env: Environment, d: Deployment) -> dict[str, object]:
        data_dir = str(self.config.bot.data_dir)
        config_dir = str(self.config.config_dir)
        deploy_to = (
            env.deploy_to.replace("{data_dir}", data_dir)
            .replace("{config_dir}", config_dir)
            .replace("{env}", env.name)
        )
        release_id = d.release_id or d.id
        current = self.store.current_release(env.name)
        previous = current.release_id or current.id if current else None
        return {
            **env.vars,
            "ref": d.ref,
            "sha": d.sha or d.ref,
            "deploy_id": d.id,
            "env": env.name,
            "release_id": release_id,
            "deploy_to": deploy_to,
            "releases_dir": f"{deploy_to}/releases",
            "release_dir": f"{deploy_to}/releases/{release_id}",
            "current_dir": f"{deploy_to}/current",
            "previous_release_dir": f"{deploy_to}/releases/{previous}" if previous else "",
            "requester": d.requester,
            "config_dir": config_dir,
            "data_dir": data_dir,
            "keep_releases": env.keep_releases,
        }

    # -- chat -----------------------------------------------------------------------------
    def _post_card(self, d: Deployment) -> None:
        if not d.channel:
            return
        ref = self.chat.post_card(d.channel, self.card(d))
        if ref is not None:
            self._update(d.id, lambda cur: replace(cur, channel=ref.channel, message_ts=ref.ts))  # type: ignore[arg-type]

    def _refresh_card(self, d: Deployment) -> None:
        if d.channel and d.message_ts:
            self.chat.update_card(MessageRef(d.channel, d.message_ts), self.card(d))

    def _thread(self, d: Deployment, text: str) -> None:
        if d.channel and d.message_ts:
            self.chat.post_thread(MessageRef(d.channel, d.message_ts), text)
        elif d.channel:
            self.chat.post_message(d.channel, text)

    def now(self) -> datetime:
        """The engine's clock."""
        return self.clock.now()


class _ProgressReporter:
    """Turns pipeline progress into stored host results, card progress and thread lines."""

    def __init__(self, engine: Engine, deployment_id: int) -> None:
        self.engine = engine
        self.deployment_id = deployment_id

    def __call__(self, event: ProgressEvent) -> None:
        engine = self.engine
        if event.kind == "step_started":
            hosts = ", ".join(event.hosts) if len(event.hosts) <= 5 else f"{len(event.hosts)} hosts"
            engine._set_progress(self.deployment_id, f"{event.stage} › {event.step} on {hosts}")
        elif event.kind == "step_done" and event.result is not None:
            from runners.base import StepResult

            result = event.result
            assert isinstance(result, StepResult)
            engine.store.record_host_results(self.deployment_id, event.stage, result.hosts)
            mark = "✓" if result.ok else "✗"
            lines = [
                f"{mark} {event.stage} › {result.step}: " + "; ".join(h.describe() for h in result.hosts[:10])
            ]
            if len(result.hosts) > 10:
                lines[0] += f"; …and {len(result.hosts) - 10} more hosts"
            d = engine.deployment(self.deployment_id)
            engine._thread(d, "\n".join(lines))


def _environ(name: str) -> str | None:
    import os

    return os.environ.get(name)
