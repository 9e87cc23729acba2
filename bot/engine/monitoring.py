"""Verify and monitor: the checks that watch a deploy, and what happens when one fails.

- `verify(d)`: the environment's smoke checks, once, concurrently, right after the deploy
  stage (and again after a rollback, on the restored release).
- `start_window(d)`: the monitoring window. Each round is a row in the schedules table
  (`monitor_round`), so a restarted bot resumes the window where it was. A check fails the
  window after `failure_limit` consecutive failures (Argo Rollouts' failureLimit).

What a failure leads to (the alert, Hold, the automatic rollback) is `bot.engine.failures`;
monitoring decides *that* the window failed, in `_round`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import replace

from bot.config import Environment
from bot.domain.deployment import Deployment, Event, State
from bot.domain.durations import format_duration
from bot.engine.failures import Failures
from bot.engine.port import BackendFactory, Ledger, Notifier, Timer, Timers
from bot.ops import metrics
from bot.store.base import CheckRecord, Schedule, Store
from runners.base import Host
from runners.checks import Check, CheckResult, FailureTracker, run_checks

log = logging.getLogger("gonogo.monitoring")

ROUND = Timer.MONITOR_ROUND


class Monitoring:
    """Runs a deployment's checks and judges the monitoring window."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        timers: Timers,
        failures: Failures,
        backends: BackendFactory,
        on_live: Callable[[Deployment], None],
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.timers = timers
        self.failures = failures
        self.backends = backends
        self.on_live = on_live
        timers.register(ROUND, self._round)

    # -- running checks --------------------------------------------------------------------
    def run(self, d: Deployment, checks: Sequence[Check], round_no: int = 0) -> list[CheckResult]:
        """Run a round of checks for `d`, store the results, return them."""
        env = self.ledger.env(d.env)
        runner = _CommandRunner(self.backends, env)
        results = run_checks(checks, env=dict(os.environ), command_runner=runner)
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
        self.store.record_check_results(d.id, d.env, records)
        for r in results:
            metrics.CHECKS.labels(d.env, r.name, "true" if r.ok else "false").inc()
        return results

    def verify(self, d: Deployment) -> str | None:
        """Run the smoke checks once; returns a failure summary or None when they pass."""
        checks = self.ledger.env(d.env).smoke()
        if not checks:
            return None
        results = self.run(d, checks)
        self.notify.thread(d, "Smoke checks: " + " · ".join(r.summary() for r in results))
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
        env = self.ledger.env(d.env)
        monitor = env.monitor
        rounds = max(1, int(monitor.duration // monitor.interval))
        self.notify.thread(
            d,
            f"Monitoring {', '.join(c.name for c in env.monitored())} every "
            f"{format_duration(monitor.interval, exact=True)} for {format_duration(monitor.duration, exact=True)} "
            f"({rounds} rounds; fails after {monitor.failure_limit} consecutive failures)",
        )
        self._next_round(d, env, 1, rounds)

    def _next_round(self, d: Deployment, env: Environment, round_no: int, rounds: int) -> None:
        # keyed, so a replayed round schedules its successor once
        self.timers.add_in(
            ROUND,
            env.monitor.interval,
            deployment_id=d.id,
            key=f"{ROUND}:{d.id}:{round_no}",
            round=round_no,
            rounds=rounds,
        )

    def _round(self, schedule: Schedule) -> None:
        """One round of the window. Replay-safe (the scheduler fires a round again when the
        process running it died): a round whose results are stored is judged from them, not run
        again; a round already judged only does what follows it."""
        if schedule.deployment_id is None:
            return
        d = self.store.get(schedule.deployment_id)
        if d is None or d.state != State.MONITORING:
            return  # rolled back, signed off or stopped meanwhile
        env = self.ledger.env(d.env)
        round_no = int(schedule.payload.get("round", 1))
        rounds = int(schedule.payload.get("rounds", 1))
        tracker = self._tracker(d, env)
        if int(d.details.get("monitor_round", 0)) < round_no:
            d, results, failed_checks = self._judge(d, env, tracker, round_no, rounds)
        else:
            results, failed_checks = [], list(tracker.failed_checks())
        if failed_checks:
            # Here monitoring decides a rollback: the window failed (Failures does the rest).
            failed = [r for r in results if r.name in failed_checks and not r.ok]
            why = "; ".join(r.summary() for r in failed) or ", ".join(failed_checks)
            d = self.ledger.save(
                d,
                Event.FAIL,
                "gonogo",
                "monitor_failed",
                detail=why,
                error=f"monitoring: {why}",
                refresh=True,
            )
            self.failures.on_failure(d, f"monitoring: {why}")
        elif round_no >= rounds:
            d = self.ledger.save(
                d, Event.SUCCEED, "gonogo", "monitor_passed", detail=f"{rounds} rounds", refresh=True
            )
            self.notify.thread(d, f"Monitoring window passed ({rounds} rounds). {d.env} runs {d.ref}.")
            self.on_live(d)
        else:
            self._next_round(d, env, round_no + 1, rounds)

    def _tracker(self, d: Deployment, env: Environment) -> FailureTracker:
        """The window's failure counts so far (stored on the deployment after each round)."""
        if saved := d.details.get("tracker"):
            try:
                return FailureTracker.from_dict(saved)
            except ValueError:
                log.warning("%s: bad tracker state, starting over", d.label)
        return FailureTracker(env.monitor.failure_limit)

    def _judge(
        self, d: Deployment, env: Environment, tracker: FailureTracker, round_no: int, rounds: int
    ) -> tuple[Deployment, list[CheckResult], list[str]]:
        """Run (or, replayed, read back) round `round_no`, record its verdict, say what changed;
        returns the saved deployment, the results and the checks that reached their limit."""
        stored = self.store.check_results(deployment_id=d.id, round=round_no, limit=1000)
        results = [_result(r) for r in stored] if stored else self.run(d, env.monitored(), round_no)
        verdict = tracker.record(results)
        line = f"Round {round_no}/{rounds}: " + " · ".join(r.summary() for r in results)
        extra = {
            "tracker": tracker.to_dict(),
            "monitor_round": round_no,
            "monitor_rounds": rounds,
            "card_lines": [line],
        }
        d = self.ledger.amend(d.id, lambda cur: replace(cur, details={**cur.details, **extra}))  # type: ignore[arg-type]
        self.notify.refresh_card(d)
        self.notify.thread(d, line)
        for t in verdict.newly_failing:
            self.notify.say(d, f"⚠️ {d.env}: check {t.result.summary()} is failing ({d.label})")
        for t in verdict.recovered:
            self.notify.say(d, f"✅ {d.env}: check {t.name} recovered ({d.label})")
        return d, results, list(verdict.failed_checks)


class _CommandRunner:
    """Runs a command check through the environment's backend (first host, or all)."""

    def __init__(self, backends: BackendFactory, env: Environment) -> None:
        self.backends = backends
        self.env = env

    def __call__(self, command: str, on: str, timeout: float) -> list[tuple[str, int | None, str]]:
        backend = self.backends(self.env, False)
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
