"""Stage gates: a human Go before a stage starts (`[gates]` in the config).

When a run reaches a gated stage it stops *before* it, records the gate on the deployment
(`details.gate`) and moves to `gated`: the worker thread is free again, and nothing but the row
remembers the wait, so a restart changes nothing (the card keeps its Go / No-go buttons). Go
at the gate follows the approval rules of the environment (never the requester, only its
approvers, `approvals.required` of them); the last one moves the deployment to `approved`,
which queues it again, and the run goes on from the gated stage (the stages before it are
done). No-go (an approver or the requester) stops the deploy (`aborted`) and offers a
rollback of what ran. A dry run never waits: it notes the gate in its thread and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.chat.base import Directory
from bot.domain.deployment import Deployment, Event, State, transition
from bot.domain.details import Gate
from bot.domain.errors import Refused
from bot.engine.failures import Failures
from bot.engine.policy import may_approve
from bot.engine.port import Ledger, Notifier


@dataclass(frozen=True)
class GateStop:
    """A run stopped before the gated `stage`."""

    stage: str
    question: str


class Gates:
    """Waiting at gates, and the Go / No-go given there."""

    def __init__(self, ledger: Ledger, notify: Notifier, failures: Failures, directory: Directory) -> None:
        self.ledger = ledger
        self.notify = notify
        self.failures = failures
        self.directory = directory

    def wait(self, d: Deployment, stop: GateStop) -> Deployment:
        """Record that `d` waits at `stop` (its worker ends here), and say so."""
        env = self.ledger.env(d.env)
        gate = Gate(stop.stage, stop.question, at=self.ledger.now().isoformat())

        def gated(cur: Deployment) -> Deployment:
            return transition(
                cur,
                Event.GATE,
                at=self.ledger.now(),
                progress=f"waiting at the gate before {stop.stage}",
                heartbeat_at=None,
                details=cur.details.but(gate=gate, live=None),
            )

        d = self.ledger.write(d.id, gated, actor="gonogo", action="gate", detail=stop.stage, refresh=True)
        need = env.approvals.required
        self.notify.say(
            d,
            f"🚦 {d.label} of {d.ref} to {d.env} waits at the gate before {stop.stage}: {stop.question} "
            f"Go ({need} approval{'s' if need != 1 else ''}, not the requester) or No-go on its card.",
        )
        return d

    def go(self, user: str, deployment_id: int) -> Deployment:
        """A Go at the gate; the last one needed lets the run go on (the deployment is queued)."""

        def go(cur: Deployment) -> Deployment:
            gate = self._gate(cur)
            if reason := may_approve(self.ledger.env(cur.env), cur, user, self.directory):
                self.ledger.refuse(user, cur.env, "gate_go", reason, cur.id)
            if user in gate.approvals:
                raise Refused(f"you already said Go at this gate of {cur.label}")
            gate = Gate(gate.stage, gate.question, (*gate.approvals, user), gate.at)
            if len(gate.approvals) < self.ledger.env(cur.env).approvals.required:
                return cur.with_details(gate=gate)
            passed = (*cur.details.gates_passed, gate.stage)
            return transition(
                cur,
                Event.APPROVE,
                at=self.ledger.now(),
                progress=f"gate before {gate.stage} passed",
                details=cur.details.but(gate=None, gates_passed=passed),
            )

        d = self.ledger.write(deployment_id, go, actor=user, action="gate_go", refresh=True)
        if d.state == State.APPROVED:
            self.notify.thread(d, f"🚦 Gate before {d.details.gates_passed[-1]} passed (last Go by {user}).")
        return d

    def nogo(self, user: str, deployment_id: int) -> Deployment:
        """No-go at the gate: the deploy stops here, and a rollback of what ran is offered."""
        d = self.ledger.get(deployment_id)
        gate = self._gate(d)
        if user != d.requester and (reason := may_approve(self.ledger.env(d.env), d, user, self.directory)):
            self.ledger.refuse(user, d.env, "gate_nogo", reason, d.id)
        why = f"No-go at the gate before {gate.stage} by {user}"
        d = self.ledger.save(d, Event.ABORT, user, "gate_nogo", detail=gate.stage, error=why, refresh=True)
        self.failures.on_failure(d, why, automatic=False)
        return d

    def _gate(self, d: Deployment) -> Gate:
        if d.state != State.GATED or d.details.gate is None:
            raise Refused(f"{d.label} is {d.state.value}; it is not waiting at a gate")
        return d.details.gate


__all__ = ["GateStop", "Gates"]
