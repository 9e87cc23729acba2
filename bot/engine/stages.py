"""One run's stages: the pipeline a deployment runs on, and the stages it runs in order.

A deploy runs `pre_deploy`, `deploy` and `verify`, stopping before a stage that has a gate not
yet passed (`gates.GateStop`: the worker ends, the row remembers); a rollback runs its
compensation (`undo`: what the deployment it undoes finished, `compensation.plan_undo`) and then
its rollback steps. Each stage resumes from the cursor of an interrupted run. The pipeline gets
the environment's secrets for every step and each step's own secrets for that step (all of them
redacted), the artifacts published so far (a rollback also those of the deployment it undoes),
and a step's `verify` checks run right after it.
"""

from __future__ import annotations

import os

from bot.config import Config, Environment
from bot.domain.deployment import Deployment
from bot.domain.details import Cursor
from bot.engine.checking import applicable
from bot.engine.compensation import UNDO_STAGE, compensates, plan_undo
from bot.engine.gates import GateStop
from bot.engine.inflight import InFlight, Run
from bot.engine.journal import journal_name, unsure_steps
from bot.engine.monitoring import Monitoring
from bot.engine.port import BackendFactory, Ledger, Notifier
from bot.engine.progress import ProgressReporter
from bot.engine.variables import step_variables
from bot.store.base import Store
from runners import Pipeline, StageResult, Step, StepResult
from runners.redact import Redactor


class Stages:
    """Builds a run's pipeline and runs its stages."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        inflight: InFlight,
        backends: BackendFactory,
        monitoring: Monitoring,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.inflight = inflight
        self.backends = backends
        self.monitoring = monitoring

    def pipeline(self, env: Environment, d: Deployment, run: Run) -> Pipeline:
        """The pipeline `d` runs on (`run` can stop it): its variables, secrets and artifacts."""
        secrets = {name: value for name in env.secrets if (value := os.environ.get(name))}
        own = {name: value for name in env.step_secrets() if (value := os.environ.get(name))}
        current = self.store.current_release(env.name)
        undone = self.store.get(d.rollback_of) if d.rollback_of else None
        published = {**(undone.details.artifacts if undone else {}), **d.details.artifacts}
        pipeline = Pipeline(
            self.backends(env, d.dry_run),
            env.hosts,
            env.strategy,
            step_variables(self.config, env, d, current),
            env=secrets,
            redactor=Redactor((*secrets.values(), *own.values())),
            on_progress=ProgressReporter(
                self.inflight, self.ledger, self.store, self.notify, d.id, record_runs=d.rules.ships_release
            ),
            stop=run.stop,
            halt=run.halt,
            step_secrets=own,
            published=published,
            verify=lambda stage, step, result: self._verify_step(d, stage, step, result, run),
            require_artifacts=not d.dry_run,
            journal=journal_name(d),
            unsure=unsure_steps(d),
            rerun=d.details.rerun,
        )
        run.pipeline = pipeline
        return pipeline

    def run(
        self, pipeline: Pipeline, env: Environment, d: Deployment, resuming: bool
    ) -> StageResult | GateStop | None:
        """Run the deployment's stages from the resume cursor (after a gate: from the gated
        stage); the first failed stage, the gate it stops at, or None."""
        continuing = resuming or bool(d.details.gates_passed)
        done_stages = set(d.details.done_stages) if continuing else set()
        cursor = (d.details.cursor if continuing else None) or Cursor()
        for stage in d.rules.stages:
            if stage in done_stages:
                continue
            question = env.gates.get(stage)
            if question and stage not in d.details.gates_passed and env.stage(stage):
                if not d.dry_run:
                    return GateStop(stage, question)
                self.notify.thread(d, f"🚦 Dry run: a real deploy waits here for Go: {question}")
            here = cursor.stage == stage
            if stage == UNDO_STAGE:
                result = self._compensate(pipeline, env, d, cursor.step if here else 0)
            elif env.stage(stage):
                self.inflight.set_progress(d.id, f"{stage}…")
                result = pipeline.run_stage(
                    stage, env.stage(stage), start_batch=cursor.batch if here else 0,
                    start_step=cursor.step if here else 0,
                )  # fmt: skip
            else:
                continue
            if result is not None and not result.ok:
                return result
            done_stages.add(stage)
            self.inflight.save_details(d.id, done_stages=tuple(sorted(done_stages)), cursor=None)
        return None

    def _compensate(
        self, pipeline: Pipeline, env: Environment, d: Deployment, start: int
    ) -> StageResult | None:
        """A rollback's first stage: the undo of what the deployment it undoes finished."""
        undone = self.store.get(d.rollback_of) if d.rollback_of else None
        if undone is None or not undone.details.ran or not compensates(env):
            return None
        target = self.store.get(d.release_id) if d.release_id else None
        variables = step_variables(self.config, env, undone, target)
        plan = plan_undo(env, undone, variables, d.details.recovery)
        if start == 0:
            self.inflight.save_details(d.id, undo_notes=plan.notes)
            self.ledger.log("gonogo", "compensation", d, "; ".join(plan.notes) or "nothing to undo")
            self.notify.thread(d, f"Undo of {undone.label}:\n" + "\n".join(f"• {n}" for n in plan.notes))
        if not plan.steps:
            return None
        self.inflight.set_progress(d.id, f"undoing {undone.label}…")
        return pipeline.run_planned(UNDO_STAGE, plan.steps, start_step=start)

    def _verify_step(
        self, d: Deployment, stage: str, step: Step, result: StepResult, run: Run | None = None
    ) -> str | None:
        """A step's `verify` checks (those `after` it included), right after it, as they apply to
        `d`: a failure summary, or None when they pass. What they capture, later steps see."""
        env = self.ledger.env(d.env)
        checks = applicable(env, d, [c for c in env.checks if c.name in step.verify])
        if not checks or d.dry_run:
            return None
        # a check written for every host probes the hosts this step ran on (one batch of them)
        ran_on = {h.host for h in result.hosts if h.status == "ok"}
        results = self.monitoring.run(d, checks, hosts=ran_on)
        captured = {f"capture.{k}": v for r in results for k, v in r.captured.items()}
        if captured and run is not None and run.pipeline is not None:
            run.pipeline.variables.update(captured)
        self.notify.thread(d, f"Verify {stage} › {step.name}: " + " · ".join(r.summary() for r in results))
        failed = [r.summary() for r in results if not r.ok]
        return f"verify failed: {'; '.join(failed)}" if failed else None


__all__ = ["Stages"]
