"""Paging on-call: a failed deploy, a failed rollback or an interrupted run triggers a page, and
the environment's next healthy release resolves it.

One incident per deployment (dedup key `gonogo-<env>-<id>`), sent to every pager (PagerDuty,
the signed webhook) through the outbox, so a pager that is down loses nothing. Which incidents
are open is read from the event log (`paged` / `page_resolved` lines), so any replica, after any
restart, resolves what is open when a deploy or rollback of that environment succeeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from bot.domain.deployment import Deployment, State
from bot.engine.outbox import Outbox
from bot.engine.port import Ledger
from bot.integrations import Page, Pager
from bot.store.base import Store

#: How far back the event log is read for open incidents.
LOOKBACK = timedelta(days=30)


def dedup_key(d: Deployment) -> str:
    """The incident of one deployment."""
    return f"gonogo-{d.env}-{d.id}"


class Paging:
    """Triggers and resolves pages from transitions."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        outbox: Outbox,
        pagers: Sequence[Pager],
        *,
        source: str,
        severity: str,
        url: Callable[[int], str | None],
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.outbox = outbox
        self.pagers = list(pagers)
        self.source = source
        self.severity = severity
        self.url = url
        for pager in self.pagers:
            outbox.sink(f"pager:{pager.name}", self._sender(pager), label=pager.name)

    @staticmethod
    def _sender(pager: Pager) -> Callable[[Mapping[str, Any], int | None], None]:
        def send(body: Mapping[str, Any], deployment_id: int | None) -> None:
            pager.send(
                Page(
                    action=body["action"], key=body["key"], summary=body["summary"], source=body["source"],
                    severity=body.get("severity", "critical"), details=body.get("details"),
                    links=[(str(link[0]), str(link[1])) for link in body.get("links", [])],
                )
            )  # fmt: skip

        return send

    def on_transition(self, before: Deployment, after: Deployment) -> None:
        """Page on a failure or an interruption; resolve on a healthy release."""
        if after.dry_run or not self.pagers or not self.ledger.env(after.env).page:
            return
        if after.state in (State.FAILED, State.INTERRUPTED):
            self._trigger(after)
        elif after.state == State.SUCCEEDED:
            self._resolve(after)

    def _trigger(self, d: Deployment) -> None:
        what = (
            f"Rollback {d.label} of {d.env}"
            if d.kind == "rollback"
            else f"Deploy {d.label} of {d.ref} to {d.env}"
        )
        verb = "was interrupted" if d.state == State.INTERRUPTED else "FAILED"
        summary = f"{what} {verb}" + (f": {d.error}" if d.error else "")
        key = dedup_key(d)
        url = self.url(d.id)
        body = {
            "action": "trigger", "key": key, "summary": summary, "source": f"{self.source}/{d.env}",
            "severity": self.severity, "links": [["gonogo: deployment " + d.label, url]] if url else [],
            "details": {"deployment": d.id, "env": d.env, "kind": d.kind, "ref": d.ref, "sha": d.sha,
                        "requester": d.requester, "state": d.state.value, "error": d.error},
        }  # fmt: skip
        self.ledger.log("gonogo", "paged", d, f"{key}: {summary}")
        for pager in self.pagers:
            self.outbox.send(f"pager:{pager.name}", key, body, deployment_id=d.id)

    def _resolve(self, healthy: Deployment) -> None:
        for key, deployment_id in self.open_incidents(healthy.env).items():
            summary = f"{healthy.env} is healthy again: {healthy.label} of {healthy.ref} is live"
            body = {
                "action": "resolve",
                "key": key,
                "summary": summary,
                "source": f"{self.source}/{healthy.env}",
            }
            paged = self.store.get(deployment_id) or healthy
            self.ledger.log("gonogo", "page_resolved", paged, f"{key}: {summary}")
            for pager in self.pagers:
                self.outbox.send(f"pager:{pager.name}", key, body, deployment_id=deployment_id)

    def open_incidents(self, env: str) -> dict[str, int]:
        """Incidents paged for `env` and not resolved yet: dedup key → deployment id."""
        open_: dict[str, int] = {}
        for event in self.store.events(env=env, since=self.ledger.now() - LOOKBACK):
            key = (event.detail or "").split(":", 1)[0]
            if event.action == "paged" and event.deployment_id is not None:
                open_[key] = event.deployment_id
            elif event.action == "page_resolved":
                open_.pop(key, None)
        return open_


__all__ = ["LOOKBACK", "Paging", "dedup_key"]
