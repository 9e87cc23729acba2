"""Verify and monitor: the checks that watch a deploy, and what happens when one fails.

- `run(d, checks)`: one round of checks for a deployment: a check written for every host runs
  once per host (`name@host`), placeholders get the values earlier checks captured and the
  secrets the checks are given, a rate check gets last round's sample; results are stored and
  what passing checks captured goes into the deployment's record.
- `verify(d)`: the environment's smoke checks that apply to `d` (its kind, the release it puts
  in place: a rollback runs those of the release it returns to), once, right after the deploy
  stage (and again after a rollback, on the restored release).
- `start_window(d)`: the monitoring window. Each round is a row in the schedules table
  (`monitor_round`), so a restarted bot resumes the window where it was. A check fails the
  window at its failure limit (Argo Rollouts' failureLimit: consecutive failures, or all of them
  in the window); one that reaches its inconclusive limit holds the window and asks a human
  (Continue / Roll back) instead (Argo's inconclusiveLimit); `resume_window` continues it.

Command checks run under the hosts' step journal and are stopped by shutdown
(`bot.engine.check_commands`); from then on monitoring is fenced (`stop_checks`): a round records
nothing and is left to the next leader.

Failing checks make one incident alert (`Notifier.incident`), updated in place round by round,
with the details in its thread. What a failure leads to (the alert, Hold, the automatic
rollback) is `bot.engine.failures`; monitoring decides *that* the window failed, in `_round`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection, Mapping, Sequence

from bot.chat.base import Directory
from bot.config import Environment
from bot.domain.actions import Action
from bot.domain.card import Button
from bot.domain.deployment import Deployment, Event, State
from bot.domain.durations import format_duration
from bot.domain.errors import Deferred, Refused
from bot.engine import incidents
from bot.engine.check_commands import STOP_BOUND, CommandRunner, RunningChecks
from bot.engine.checking import applicable, concrete, limits, values
from bot.engine.failures import Failures
from bot.engine.journal import journal_name
from bot.engine.policy import may_operate
from bot.engine.port import BackendFactory, Ledger, Notifier, Timer, Timers
from bot.ops import metrics
from bot.store.base import CheckRecord, Schedule, Store
from runners.checks import Check, CheckResult, FailureTracker, Samples, Verdict, is_inconclusive, run_checks

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
        #: The command checks running now (shutdown stops them: `stop_checks`).
        self.commands = RunningChecks()
        self._fence = threading.Lock()
        self._fenced = False
        timers.register(ROUND, self._round)

    # -- shutdown ---------------------------------------------------------------------------
    def stop_checks(self, bound: float = STOP_BOUND) -> list[str]:
        """Shutdown: fence monitoring off and stop the command checks running now, on their
        hosts (TERM, then KILL), waiting at most `bound` seconds; what was stopped, per check.

        From now on nothing records check results: a round running now (its checks stopped
        here, or finishing by themselves) or starting later writes nothing more and leaves its
        schedule row unfinished (`Deferred`), so the next leader (a restart) runs that round
        again; a smoke or step check (of a run shutdown already gave up on) raises `Deferred`
        in its run. Running checks are stopped at once, not given what is left of a grace: a
        check is a probe, a reading cut short is taken again by the next leader, and waiting
        for it would only keep the process from exiting. No command check starts after this.
        """
        with self._fence:
            self._fenced = True
        return self.commands.stop(bound)

    def _unless_fenced(self, d: Deployment) -> None:
        """Deferred once shutdown fenced monitoring off (`stop_checks`): write nothing more."""
        if self._fenced:
            raise Deferred(f"{d.label}: the bot is shutting down; its checks are not recorded")

    # -- running checks --------------------------------------------------------------------
    def run(
        self,
        d: Deployment,
        checks: Sequence[Check],
        round_no: int = 0,
        *,
        samples: Samples | None = None,
        hosts: Collection[str] | None = None,
    ) -> list[CheckResult]:
        """Run a round of checks for `d` (per-host checks once per host, or per host of `hosts`),
        store the results and what passing checks captured, return the results. `samples`: last
        round's readings (default: what the deployment's record keeps). Deferred, recording
        nothing, when shutdown fenced monitoring off meanwhile (`stop_checks`)."""
        env = self.ledger.env(d.env)
        runnable = concrete(env, checks, hosts)
        filled, secrets = values(env, d, runnable, os.environ)
        kept = samples if samples is not None else _kept_samples(d)
        runner = CommandRunner(
            self.backends, env, self.commands, journal=journal_name(d), deployment=d.label,
            round_no=round_no,
        )  # fmt: skip
        results = run_checks(
            runnable,
            env=dict(os.environ),
            command_runner=runner,
            previous=kept,
            values=filled,
            secrets=secrets,
        )
        self._unless_fenced(d)
        self._keep_captures(d, results)
        records = [
            CheckRecord(
                name=r.name, kind=r.kind, ok=r.ok, at=r.at, observed=r.observed, latency=r.latency,
                error=r.error, round=round_no, deployment_id=d.id, env=d.env,
            )
            for r in results
        ]  # fmt: skip
        with self._fence:  # once `stop_checks` fenced monitoring off, no results are recorded
            self._unless_fenced(d)
            self.store.record_check_results(d.id, d.env, records)
        for r in results:
            metrics.CHECKS.labels(d.env, r.name, "true" if r.ok else "false").inc()
        return results

    def _keep_captures(self, d: Deployment, results: Sequence[CheckResult]) -> None:
        before = d.details.captures
        captured = {k: v for r in results for k, v in r.captured.items() if before.get(k) != v}
        if captured and d.id:
            self.ledger.amend(
                d.id, lambda cur: cur.with_details(captures={**cur.details.captures, **captured})
            )
            self.notify.thread(d, "Captured: " + ", ".join(f"{k} = {v}" for k, v in captured.items()))

    def verify(self, d: Deployment) -> str | None:
        """Run the smoke checks that apply to `d` once; a failure summary, or None when they pass
        (an inconclusive one does not fail the deploy: a window holds on it)."""
        env = self.ledger.env(d.env)
        every = env.smoke()
        checks = applicable(env, d, every)
        if skipped := [c.name for c in every if c not in checks]:
            self.notify.thread(d, f"Not for this {d.kind} of {d.ref}: {incidents.names(skipped, 10)}")
        if not checks:
            return None
        results = self.run(d, checks)
        self._seed_window(d, env, results)
        self.notify.thread(d, "Smoke checks: " + " · ".join(r.summary() for r in results))
        failed = [r for r in results if not r.ok and not r.inconclusive]
        if not failed:
            return None
        self.notify.incident(
            d,
            incidents.smoke_text(d, [r.name for r in failed]),
            mentions=self._mentions(d, env),
            details=[incidents.details("Smoke checks that failed:", failed)],
        )
        return "smoke check " + incidents.failure_summary(failed)

    def _seed_window(self, d: Deployment, env: Environment, results: Sequence[CheckResult]) -> None:
        """Rate checks' first readings, so the window's first round has something to compare."""
        samples = {r.name: dict(r.sample) for r in results if r.sample is not None}
        if samples and d.id and d.kind == "deploy":
            tracker = FailureTracker(env.monitor.failure_limit, samples=samples)
            self.ledger.amend(d.id, lambda cur: cur.with_details(tracker=tracker.to_dict()))

    def _mentions(self, d: Deployment, env: Environment) -> list[str]:
        return [d.requester, *env.on_call]

    # -- the monitoring window ------------------------------------------------------------
    def wants_window(self, env: Environment) -> bool:
        """True when the environment watches deploys after verify."""
        return env.monitor.duration > 0 and bool(env.monitored())

    def start_window(self, d: Deployment) -> None:
        """Schedule the first round of the window."""
        env = self.ledger.env(d.env)
        monitor = env.monitor
        rounds = max(1, int(monitor.duration // monitor.interval))
        watched = applicable(env, d, env.monitored())
        self.notify.thread(
            d,
            f"Monitoring {incidents.names([c.name for c in watched], 10)} every "
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
        again; a round already judged only does what follows it. Once shutdown fenced monitoring
        off (`stop_checks`) a round writes nothing more: `Deferred` leaves it to the next leader."""
        if schedule.deployment_id is None:
            return
        d = self.store.get(schedule.deployment_id)
        if d is None or d.state != State.MONITORING or d.details.paused:
            return  # rolled back, signed off or stopped meanwhile, or holding for a human
        self._unless_fenced(d)
        env = self.ledger.env(d.env)
        round_no = int(schedule.payload.get("round", 1))
        rounds = int(schedule.payload.get("rounds", 1))
        tracker = self._tracker(d, env)
        if d.details.monitor_round < round_no:
            d, results, verdict = self._judge(d, env, tracker, round_no, rounds)
            failed_checks, held = list(verdict.failed_checks), list(verdict.inconclusive_checks)
        else:
            results, failed_checks, held = (
                [],
                list(tracker.failed_checks()),
                list(tracker.inconclusive_checks()),
            )
        self._unless_fenced(d)  # the round is judged: a replay does only what follows it
        if failed_checks:
            # Here monitoring decides a rollback: the window failed (Failures does the rest).
            failed = [r for r in results if r.name in failed_checks and not r.ok]
            why = incidents.failure_summary(failed) if failed else incidents.names(failed_checks)
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
        elif held:
            self._hold(d, env, held, results)
        elif round_no >= rounds:
            d = self.ledger.save(
                d, Event.SUCCEED, "gonogo", "monitor_passed", detail=f"{rounds} rounds", refresh=True
            )
            self.notify.thread(d, f"Monitoring window passed ({rounds} rounds). {d.env} runs {d.ref}.")
            self.notify.end_incident(d.id, f"✅ The monitoring window passed ({rounds} rounds).")
            self.on_live(d)
        else:
            self._next_round(d, env, round_no + 1, rounds)

    def _tracker(self, d: Deployment, env: Environment) -> FailureTracker:
        """The window's failure counts so far (stored on the deployment after each round), with
        each check's limit from the config."""
        names = [c.name for c in concrete(env, env.monitored())]
        tracker: FailureTracker | None = None
        if saved := d.details.tracker:
            try:
                tracker = FailureTracker.from_dict(saved)
            except ValueError:
                log.warning("%s: bad tracker state, starting over", d.label)
        tracker = tracker or FailureTracker(env.monitor.failure_limit)
        tracker.limits = limits(env, {*names, *tracker.consecutive, *tracker.failures, *tracker.inconclusive})
        return tracker

    def _judge(
        self, d: Deployment, env: Environment, tracker: FailureTracker, round_no: int, rounds: int
    ) -> tuple[Deployment, list[CheckResult], Verdict]:
        """Run (or, replayed, read back) round `round_no`, record its verdict, say what changed;
        returns the saved deployment, the results and the verdict."""
        stored = self.store.check_results(deployment_id=d.id, round=round_no, limit=1000)
        if stored:
            results = [_result(r) for r in stored]
        else:
            results = self.run(d, applicable(env, d, env.monitored()), round_no, samples=tracker.samples)
        self._unless_fenced(d)  # the results are stored: a replay judges them
        verdict = tracker.record(results)
        title = f"Round {round_no}/{rounds}"
        line = incidents.round_line(title, results)
        d = self.ledger.amend(
            d.id,
            lambda cur: cur.with_details(
                tracker=tracker.to_dict(), monitor_round=round_no, monitor_rounds=rounds, card_lines=(line,)
            ),
        )
        self.notify.refresh_card(d)
        self.notify.thread(d, incidents.round_line(title, results, full=60))
        self._incident(d, env, tracker, verdict, results, (round_no, rounds))
        return d, results, verdict

    def _incident(
        self,
        d: Deployment,
        env: Environment,
        tracker: FailureTracker,
        verdict: Verdict,
        results: Sequence[CheckResult],
        at: tuple[int, int],
    ) -> None:
        """The incident's one alert: opened by the first failing check, updated while checks fail,
        closed when they all pass again. (A failed window updates it once more: the failure.)"""
        failing = [r for r in results if not r.ok and not r.inconclusive]
        recovered = [t.name for t in verdict.recovered]
        if failing:
            counts = {n: tracker.standing(n) for n in verdict.failing}
            self.notify.incident(
                d,
                incidents.failing_text(d, list(verdict.failing), counts, *at, recovered),
                mentions=self._mentions(d, env),
                details=[incidents.details(f"Round {at[0]}/{at[1]}: failing", failing)],
            )
        elif recovered and d.details.incident is not None:
            self.notify.end_incident(d.id, incidents.recovered_text(d, recovered, at[0]))

    # -- holding for a human ------------------------------------------------------------------
    def _hold(
        self, d: Deployment, env: Environment, held: Sequence[str], results: Sequence[CheckResult]
    ) -> None:
        """An inconclusive check reached its limit: the window holds, and a human decides."""
        shown = [r for r in results if r.name in held and r.inconclusive]
        why = incidents.failure_summary(shown) if shown else incidents.names(list(held))
        d = self.ledger.amend(
            d.id, lambda cur: cur.with_details(paused=why, card_lines=(f"⏸ Monitoring holds: {why}",))
        )
        self.ledger.log("gonogo", "monitor_held", d, why)
        self.notify.refresh_card(d)
        self.notify.alert(
            d,
            f"⏸ Monitoring of {d.label} ({d.ref} in {d.env}) holds: {why}. The checks cannot tell "
            "whether the release is healthy: continue the window, or roll back?",
            (
                Button("Continue", Action.CONTINUE_MONITORING, str(d.id), "primary"),
                Button("Roll back", Action.ROLLBACK_NOW, str(d.id), "danger"),
            ),
            self._mentions(d, env),
        )

    def resume_window(self, user: str, deployment_id: int, directory: Directory) -> Deployment:
        """Continue: a window holding on an inconclusive check goes on with its next round (the
        inconclusive counts start over). Whoever may operate the environment may continue."""
        d = self.ledger.get(deployment_id)
        env = self.ledger.env(d.env)
        if why := may_operate(env, user, directory):
            self.ledger.refuse(user, d.env, "continue_monitoring", why, d.id)

        def go_on(cur: Deployment) -> Deployment:
            if cur.state != State.MONITORING or not cur.details.paused:
                raise Refused(f"{cur.label} is not holding its monitoring window ({cur.state.value})")
            tracker = self._tracker(cur, env)
            tracker.reset_inconclusive()
            line = f"▶️ Monitoring continued by {user}"
            return cur.with_details(paused=None, tracker=tracker.to_dict(), card_lines=(line,))

        d = self.ledger.write(deployment_id, go_on, actor=user, action="monitor_continued", refresh=True)
        self.notify.settle_alerts(deployment_id, f"▶️ Continued by {user}: the window goes on.")
        self._next_round(d, env, d.details.monitor_round + 1, d.details.monitor_rounds)
        return d


def _kept_samples(d: Deployment) -> Mapping[str, Mapping[str, float]]:
    """The rate checks' last readings in the deployment's record (for a smoke or step check)."""
    saved = d.details.tracker or {}
    samples = saved.get("samples") if isinstance(saved, Mapping) else None
    return samples if isinstance(samples, Mapping) else {}


def _result(r: CheckRecord) -> CheckResult:
    """A stored result as the checks returned it."""
    return CheckResult(
        name=r.name, kind=r.kind, ok=r.ok, observed=r.observed, latency=r.latency, error=r.error, at=r.at,
        inconclusive=is_inconclusive(r.ok, r.error),
    )  # fmt: skip
