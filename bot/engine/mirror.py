"""Deployments mirrored to the code host: each gonogo deployment shows on GitHub as it moves.

When a deployment is approved a code host deployment is created (environment, ref, sha, a
description naming the requester), and every later state adds a status: queued, in_progress,
success, failure, and inactive once it is rolled back (or cancelled before it ran), each with
`environment_url` (the environment's page in the web view) and `log_url` (the deployment's).
Everything goes through the outbox: a code host that is down never fails or slows a deploy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.domain.deployment import Deployment, State
from bot.engine.outbox import Outbox
from bot.engine.port import Ledger
from bot.integrations import CodeHost, DeploymentState
from bot.store.base import Store

SINK = "codehost"
#: The code host status each gonogo state is mirrored as (states not listed are not mirrored).
STATUS: dict[State, DeploymentState] = {
    State.APPROVED: "queued",
    State.SCHEDULED: "queued",
    State.RUNNING: "in_progress",
    State.MONITORING: "in_progress",
    State.SUCCEEDED: "success",
    State.FAILED: "failure",
    State.ABORTED: "failure",
    State.INTERRUPTED: "failure",
    State.ROLLED_BACK: "inactive",
    State.CANCELLED: "inactive",
}
_WORDS = {
    State.APPROVED: "approved, queued",
    State.SCHEDULED: "approved, scheduled",
    State.MONITORING: "deployed, monitoring",
    State.INTERRUPTED: "interrupted",
    State.ROLLED_BACK: "rolled back",
}


class Mirror:
    """Turns transitions into code host deployment statuses (through the outbox)."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        outbox: Outbox,
        codehost: CodeHost,
        urls: Callable[[str, int], tuple[str | None, str | None]],
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.outbox = outbox
        self.codehost = codehost
        self.urls = urls
        outbox.sink(SINK, self._deliver, label=codehost.name)

    def on_transition(self, before: Deployment, after: Deployment) -> None:
        """Queue the status of `after`'s new state."""
        state = STATUS.get(after.state)
        if state is None or after.dry_run:
            return
        words = _WORDS.get(after.state, after.state.value)
        if after.error and after.state in (State.FAILED, State.INTERRUPTED, State.ABORTED):
            words = f"{words}: {after.error}"
        body = {"state": state, "description": f"{after.label} {words}", "from": before.state.value}
        self.outbox.send(SINK, f"deployment:{after.id}", body, deployment_id=after.id)

    def _deliver(self, body: Mapping[str, Any], deployment_id: int | None) -> None:
        d = self.store.get(deployment_id or 0)
        if d is None:
            return
        remote = d.details.codehost_id
        if remote is None:
            if body.get("state") == "inactive" and body.get("from") == State.PENDING.value:
                return  # cancelled before it was ever approved: nothing to show
            verb = "Rollback" if d.kind == "rollback" else "Deploy"
            remote = self.codehost.create_deployment(
                ref=d.ref, sha=d.sha or d.ref, environment=d.env,
                description=f"{verb} {d.label} of {d.ref} requested by {d.requester} via gonogo",
                payload={"gonogo_id": d.id, "kind": d.kind, "requester": d.requester},
            )  # fmt: skip
            created = remote
            self.ledger.amend(d.id, lambda cur: cur.with_details(codehost_id=created))
        environment_url, log_url = self.urls(d.env, d.id)
        self.codehost.deployment_status(
            remote,
            state=body["state"],
            description=str(body.get("description") or ""),
            environment_url=environment_url,
            log_url=log_url,
        )


__all__ = ["SINK", "STATUS", "Mirror"]
