"""Verify and monitor: the checks that watch a deploy, and what happens when one fails.

- `verify(d)`: the environment's smoke checks, once, concurrently, right after the deploy
  stage (and again after a rollback, on the restored release).
- `start_window(d)`: the monitoring window. Each round is a row in the schedules table
  (`monitor_round`), so a restarted bot resumes the window where it was. A check fails the
  window after `failure_limit` consecutive failures (Argo Rollouts' failureLimit).
- `on_failure(d, why)`: the alert in the channel (requester and on-call mentioned, Roll back
  now / Hold), then an automatic rollback after the grace period unless someone holds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.config import Environment
from bot.domain.card import Button
from bot.domain.deployment import Deployment, Event, State
from bot.domain.errors import Refused
from bot.ops import metrics
from bot.store.base import CheckRecord, Schedule
from runners.base import Host
from runners.checks.core import Check, CheckResult, FailureTracker, run_checks

if TYPE_CHECKING:
    from bot.engine.engine import Engine

log = logging.getLogger("gonogo.monitoring")

ROUND = "monitor_round"
AUTO_ROLLBACK = "auto_rollback"


class Monitoring:
    """Runs checks for the engine and reacts to their results."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        engine.scheduler.register(ROUND, self._round)
        engine.scheduler.register(AUTO_ROLLBACK, self._auto_rollback)

    # -- running checks --------------------------------------------------------------------
    def run(self, d: Deployment, checks: Sequence[Check], round_no: int = 0) -> list[CheckResult]:
        """Run a round of checks for `d`, store the results, return them."""
        env = self.engine.env(d.env)
        results = run_checks(checks, env=dict(os.environ), command_runner=_CommandRunner(self.engine, env))
        records = [
            CheckRecord(
                name=r.name,
                kind=r.kind,
                ok=r.ok,
                at=r.at,
                observed=r.observed,
                latency=r.latency,
                error=r.error,
                round=round_no,
                deployment_id=d.id,
                env=d.env,
            )
            for r in results
        ]
        self.engine.store.record_check_results(d.id, d.env, records)
        for r in results:
            metrics.CHECKS.labels(d.env, r.name, "true" if r.ok else "false").inc()
        return results

    def verify(self, d: Deployment) -> str | None:
        """Run the smoke checks once; returns a failure summary or None when they pass."""
        checks = self.engine.env(d.env).smoke()
        if not checks:
            return None
        results = self.run(d, checks)
        self.engine.thread(d, "Smoke checks: " + " · ".join(r.summary() for r in results))
        failed = [r for r in results if not r.ok]
        if failed:
            return "smoke check " + "; ".join(r.summary() for r in failed)
        return None

    # -- the monitoring window ------------------------------------------------------------
    def wants_window(self, env: Environment) -> bool:
        """True when the environment watches deploys after verify."""
        return env.monitor.duration > 0 and bool(env.monitored())

    def start_window(self, d: Deployment) -> None:
        """Schedule the first round of the window."""
        env = self.engine.env(d.env)
        rounds = max(1, int(env.monitor.duration // env.monitor.interval))
        self.engine.thread(
            d,
            f"Monitoring {', '.join(c.name for c in env.monitored())} every {_secs(env.monitor.interval)} "
            f"for {_secs(env.monitor.duration)} ({rounds} rounds; fails after {env.monitor.failure_limit} "
            "consecutive failures)",
        )
        self.engine.scheduler.add_in(
            ROUND, env.monitor.interval, deployment_id=d.id, key=f"{ROUND}:{d.id}:1", round=1, rounds=rounds
        )

    def _round(self, schedule: Schedule) -> None:
        """One round of the window. Replay-safe (the scheduler fires a round again when the
        process running it died): a round whose results are stored is judged from them, not run
        again; a round already judged only does what follows it."""
        engine = self.engine
        if schedule.deployment_id is None:
            return
        d = engine.store.get(schedule.deployment_id)
        if d is None or d.state != State.MONITORING:
            return  # rolled back, signed off or stopped meanwhile
        env = engine.env(d.env)
        round_no = int(schedule.payload.get("round", 1))
        rounds = int(schedule.payload.get("rounds", 1))
        tracker = FailureTracker(env.monitor.failure_limit)
        if saved := d.details.get("tracker"):
            try:
                tracker = FailureTracker.from_dict(saved)
            except ValueError:
                log.warning("%s: bad tracker state, starting over", d.label)
        if int(d.details.get("monitor_round", 0)) < round_no:
            stored = engine.store.check_results(deployment_id=d.id, round=round_no, limit=1000)
            results = [_result(r) for r in stored] if stored else self.run(d, env.monitored(), round_no)
            verdict = tracker.record(results)
            line = f"Round {round_no}/{rounds}: " + " · ".join(r.summary() for r in results)
            d = engine.update(
                d.id,  # type: ignore[arg-type]
                lambda cur: _with_details(
                    cur,
                    tracker=tracker.to_dict(),
                    monitor_round=round_no,
                    monitor_rounds=rounds,
                    card_lines=[line],
                ),
            )
            engine.refresh_card(d)
            engine.thread(d, line)
            for t in verdict.newly_failing:
                engine.say(d, f"⚠️ {d.env}: check {t.result.summary()} is failing ({d.label})")
            for t in verdict.recovered:
                engine.say(d, f"✅ {d.env}: check {t.name} recovered ({d.label})")
            failed_checks = verdict.failed_checks
        else:
            results = []
            failed_checks = tracker.failed_checks()
        if failed_checks:
            failed = [r for r in results if r.name in failed_checks and not r.ok]
            why = "; ".join(r.summary() for r in failed) or ", ".join(failed_checks)
            d = engine.save(
                d,
                Event.FAIL,
                "gonogo",
                "monitor_failed",
                detail=why,
                error=f"monitoring: {why}",
                refresh=True,
            )
            self.on_failure(d, f"monitoring: {why}")
            return
        if round_no >= rounds:
            d = engine.save(
                d, Event.SUCCEED, "gonogo", "monitor_passed", detail=f"{rounds} rounds", refresh=True
            )
            engine.thread(d, f"Monitoring window passed ({rounds} rounds). {d.env} runs {d.ref}.")
            engine.after_success(d)
            return
        engine.scheduler.add_in(
            ROUND,
            env.monitor.interval,
            deployment_id=d.id,
            key=f"{ROUND}:{d.id}:{round_no + 1}",
            round=round_no + 1,
            rounds=rounds,
        )

    # -- failure: alert, hold, automatic rollback ---------------------------------------------
    def on_failure(self, d: Deployment, why: str, *, automatic: bool = True) -> None:
        """Alert the channel; roll back automatically (after the grace period) when the env says so.

        `automatic=False` (a human abort) only offers the buttons.
        """
        engine = self.engine
        env = engine.env(d.env)
        can_roll_back = d.kind == "deploy" and engine.store.current_release(d.env) is not None
        mentions = [d.requester, *env.on_call]
        if d.kind == "rollback" and d.rollback_of is not None:
            undone = engine.store.get(d.rollback_of)  # an automatic rollback's requester is gonogo
            mentions = [m for m in (undone.requester if undone else None, *mentions) if m and m != "gonogo"]
        if d.kind == "rollback":
            engine.alert(d, f"🚨 Rollback {d.label} of {d.env} FAILED: {why}", (), mentions)
            return
        verb = f"Deploy {d.label} of {d.ref} to {d.env}"
        if not can_roll_back:
            engine.alert(
                d, f"🚨 {verb} FAILED: {why}. There is no earlier release to roll back to.", (), mentions
            )
            return
        roll_back_now = Button("Roll back now", "rollback_now", str(d.id), "danger")
        if env.auto_rollback and automatic and env.rollback_grace:
            # Hold is offered only while there is an automatic rollback to hold: the timer first.
            grace = env.rollback_grace
            engine.scheduler.add_in(AUTO_ROLLBACK, grace, deployment_id=d.id, why=why)
            engine.alert(
                d,
                f"🚨 {verb} FAILED: {why}. Rolling back automatically in {_secs(grace)} unless someone presses Hold.",
                (roll_back_now, Button("Hold", "hold", str(d.id))),
                mentions,
            )
        elif env.auto_rollback and automatic:
            engine.alert(d, f"🚨 {verb} FAILED: {why}. Rolling back automatically now.", (), mentions)
            self.roll_back_automatically(d, why)
        else:
            engine.alert(d, f"🚨 {verb} FAILED: {why}. Roll back?", (roll_back_now,), mentions)

    def _auto_rollback(self, schedule: Schedule) -> None:
        if schedule.deployment_id is None:
            return
        d = self.engine.store.get(schedule.deployment_id)
        if d is None or d.details.get("hold"):
            return
        self.roll_back_automatically(d, str(schedule.payload.get("why", "check failed")))

    def roll_back_automatically(self, d: Deployment, why: str) -> None:
        """Start the automatic rollback and lock the environment until a human unlocks it."""
        engine = self.engine
        if d.details.get("hold"):
            return
        env = engine.env(d.env)
        try:
            rollback = engine.rollback_failed("gonogo", d.id, automatic=True)  # type: ignore[arg-type]
        except Exception as exc:  # Refused or a store problem: tell people, never crash the scheduler
            engine.say(d, f"Automatic rollback of {d.label} could not start: {exc}")
            return
        if env.lock_after_rollback:
            try:
                engine.lock(
                    "gonogo", d.env, f"locked by gonogo after rollback of {d.label}: {why}", automatic=True
                )
            except Refused:
                pass  # already locked: keep the human's lock
        log.info("%s: automatic rollback %s started", d.label, rollback.label)


class _CommandRunner:
    """Runs a command check through the environment's backend (first host, or all)."""

    def __init__(self, engine: Engine, env: Environment) -> None:
        self.engine = engine
        self.env = env

    def __call__(self, command: str, on: str, timeout: float) -> list[tuple[str, int | None, str]]:
        backend = self.engine.backends(self.env, False)
        hosts: Sequence[Host] = self.env.hosts[:1] if on == "one" else self.env.hosts
        out: list[tuple[str, int | None, str]] = []
        try:
            for host in hosts:
                try:
                    session = backend.open(host)
                    outcome = session.run(command, timeout=timeout, env={}, on_output=lambda _: None)
                    out.append((host.name, outcome.exit_code, outcome.output))
                except Exception as exc:
                    out.append((host.name, None, str(exc)))
        finally:
            backend.close()
        return out


def _result(r: CheckRecord) -> CheckResult:
    """A stored result as the checks returned it."""
    return CheckResult(
        name=r.name, kind=r.kind, ok=r.ok, observed=r.observed, latency=r.latency, error=r.error, at=r.at
    )


def _with_details(d: Deployment, **extra: object) -> Deployment:
    from dataclasses import replace

    return replace(d, details={**d.details, **extra})


def _secs(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
