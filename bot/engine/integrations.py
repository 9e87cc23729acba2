"""The engine's side of the team's other tools: what the composition root hands in
(`Integrations`: a code host, pagers, the web view's config) and the parts built over it.

`IntegrationParts` builds the outbox, the CI gate, the deployments mirror and paging, and
declares their reactions the engine's way: transition hooks on the ledger, a guard before Go,
and card decorations (the CI line, a link to the web view).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bot.config import Config, WebConfig
from bot.domain.card import Card, Link
from bot.domain.deployment import Deployment, State
from bot.engine.ci_gate import CiGate
from bot.engine.mirror import Mirror
from bot.engine.outbox import Outbox
from bot.engine.paging import Paging
from bot.engine.port import Ledger, Notifier, Timers
from bot.integrations import CodeHost, Pager
from bot.store.base import Store


@dataclass
class Integrations:
    """The real (or test) clients the engine talks to; none means that integration is off."""

    codehost: CodeHost | None = None
    pagers: tuple[Pager, ...] = ()
    web: WebConfig = field(default_factory=WebConfig)
    #: Mirror deployments to the code host (`[github] deployments`).
    mirror: bool = True

    def close(self) -> None:
        """Close the clients' connections."""
        for client in (self.codehost, *self.pagers):
            close: Callable[[], None] | None = getattr(client, "close", None)
            if close is not None:
                close()


class IntegrationParts:
    """The outbox, gate, mirror and paging of one engine, wired to its ledger and notifier."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        timers: Timers,
        integrations: Integrations | None,
    ) -> None:
        self.given = integrations or Integrations()
        self.web = self.given.web
        self.ledger = ledger
        self.notify = notify
        self.outbox = Outbox(ledger, store, notify, timers)
        self.gate = CiGate(
            ledger, store, notify, timers, self.given.codehost,
            poll_interval=config.integrations.github.poll_interval,
        )  # fmt: skip
        self.mirror = (
            Mirror(ledger, store, self.outbox, self.given.codehost, self._urls)
            if self.given.codehost is not None and self.given.mirror
            else None
        )
        self.paging = Paging(
            ledger, store, self.outbox, self.given.pagers, source=config.bot.name,
            severity=config.integrations.pagerduty.severity, url=self.web.deploy_url,
        )  # fmt: skip
        if self.mirror is not None:
            ledger.on_transition(self.mirror.on_transition)
        ledger.on_transition(self.paging.on_transition)
        ledger.on_transition(self._web_link, to=State.RUNNING)

    def _urls(self, env: str, deployment_id: int) -> tuple[str | None, str | None]:
        base = self.web.url.rstrip("/") if self.web.url and self.web.enabled else None
        return (f"{base}/envs/{env}" if base else None, self.web.deploy_url(deployment_id))

    def after_request(self, d: Deployment) -> Deployment:
        """What follows a new request: the CI gate's first look."""
        return self.gate.after_request(d)

    def before_go(self, user: str, d: Deployment) -> None:
        """Refuse a Go the gate does not allow."""
        self.gate.before_go(user, d)

    def decorate(self, d: Deployment, card: Card) -> Card:
        """The CI line and the web view's link on a deployment's card."""
        card = self.gate.decorate(d, card)
        url = self.web.deploy_url(d.id) if d.id else None
        if url and card.kind == "deploy":
            card = replace(card, links=(*card.links, Link("Timeline and event log", url)))
        return card

    def _web_link(self, before: Deployment, after: Deployment) -> None:
        """The first start of a run says in the thread where to follow it step by step."""
        url = self.web.deploy_url(after.id)
        if url and before.state in (State.APPROVED, State.SCHEDULED):
            self.notify.thread(after, f"📜 Step timeline and event log: {url}")


__all__ = ["IntegrationParts", "Integrations"]
