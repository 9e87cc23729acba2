"""The CI gate: a deploy's card shows its required CI contexts, and Go waits until they pass.

After a deploy is requested the code host is asked for the contexts of its sha (`CodeHost`);
the verdict (`passed`, `pending`, `failing`, or `unknown` when it could not be asked) is
recorded on the deployment (`Details.ci`, with an event-log line when it changes) and drawn on
the card, failing contexts linked. While it is not `passed` the scheduler asks again every
`poll_interval` (a `ci_poll` row, no thread per card) and the card updates in place.

Go is refused unless the gate passed (asked once more at Go, so nobody waits for the next
poll). `--force` sets the gate aside like any other safety: recorded in `ignored_safeties`,
and it costs one more approval. Dry runs and rollbacks are never gated.
"""

from __future__ import annotations

from dataclasses import replace

from bot.domain.card import Card, Link
from bot.domain.deployment import Deployment, State
from bot.domain.details import CiStatus
from bot.engine.port import Ledger, Notifier, Timers
from bot.integrations import CodeHost, IntegrationError, verdict
from bot.store.base import Schedule, Store

CI_POLL = "ci_poll"
SAFETY = "required CI contexts"
_ICON = {"passed": "✅", "pending": "⏳", "failing": "❌", "unknown": "⚠️"}


class CiGate:
    """Checks, polls, draws and enforces the required CI contexts of pending deploys."""

    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        notify: Notifier,
        timers: Timers,
        codehost: CodeHost | None,
        *,
        poll_interval: float = 30.0,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.notify = notify
        self.timers = timers
        self.codehost = codehost
        self.poll_interval = poll_interval
        timers.register(CI_POLL, self._poll)

    def applies(self, d: Deployment) -> bool:
        """True for a real deploy to an environment with required contexts."""
        env = self.ledger.env(d.env)
        return bool(env.required_contexts) and d.kind == "deploy" and not d.dry_run

    def after_request(self, d: Deployment) -> Deployment:
        """The first look, right after the card is posted."""
        return self.check(d) if self.applies(d) else d

    def check(self, d: Deployment, *, poll: bool = True) -> Deployment:
        """Ask the code host, record what changed, update the card, and poll again unless passed."""
        status = self._ask(d)

        def record(cur: Deployment) -> Deployment | None:
            if cur.state != State.PENDING:
                return None
            old = cur.details.ci
            new = cur.with_details(ci=replace(status, checks=(old.checks if old else 0) + 1))
            if cur.force and status.state != "passed" and SAFETY not in cur.details.ignored_safeties:
                # one more approval, as with any safety --force sets aside (once, however many)
                extra = 0 if cur.details.ignored_safeties else 1
                new = replace(
                    new.with_details(ignored_safeties=(*cur.details.ignored_safeties, SAFETY)),
                    required_approvals=cur.required_approvals + extra,
                )
            return new

        changed = d.details.ci is None or (d.details.ci.state, d.details.ci.summary) != (
            status.state,
            status.summary,
        )
        saved = self.ledger.write(
            d.id,
            record,
            action="ci_status" if changed else None,
            detail=f"CI {status.summary}" if changed else None,
        )
        if changed and saved.state == State.PENDING:
            self.notify.refresh_card(saved)
            if d.details.ci is not None and status.state == "passed":
                self.notify.thread(saved, f"✅ CI {status.summary}: Go is open.")
        if poll and status.state != "passed" and saved.state == State.PENDING:
            checks = saved.details.ci.checks if saved.details.ci else 0
            self.timers.add_in(
                CI_POLL, self.poll_interval, deployment_id=d.id, key=f"{CI_POLL}:{d.id}:{checks}"
            )
        return saved

    def _ask(self, d: Deployment) -> CiStatus:
        now = self.ledger.now().isoformat()
        if self.codehost is None:
            return CiStatus(
                "unknown", "could not check: no code host is configured", now, error="no code host"
            )
        try:
            contexts = self.codehost.commit_contexts(d.sha or d.ref)
        except IntegrationError as exc:
            return CiStatus("unknown", f"could not check: {exc}", now, error=str(exc))
        v = verdict(contexts, self.ledger.env(d.env).required_contexts)
        shown = tuple({"name": c.name, "state": c.state, "url": c.url or ""} for c in v.shown)
        return CiStatus(v.state, v.summary, now, contexts=shown)

    def _poll(self, schedule: Schedule) -> None:
        d = self.store.get(schedule.deployment_id or 0)
        if d is not None and d.state == State.PENDING and self.applies(d):
            self.check(d)

    def before_go(self, user: str, d: Deployment) -> None:
        """Refuse (and record) a Go while the required contexts have not passed."""
        if d.state != State.PENDING or not self.applies(d) or d.force:
            return
        if d.details.ci is None or d.details.ci.state != "passed":
            d = self.check(d, poll=False)  # a fresh look: CI may have turned since the last poll
        ci = d.details.ci
        if ci is None or ci.state == "passed":
            return
        if ci.state == "failing":
            why = f"CI is {ci.summary}: Go is refused until the required contexts pass (or request again with --force)"
        elif ci.state == "pending":
            why = f"CI is still running ({ci.summary}): Go once it passes; the card updates when it does"
        else:
            why = f"CI {ci.summary}; Go is refused until it can be checked (or request again with --force)"
        self.ledger.refuse(user, d.env, "approve", why, d.id)

    def decorate(self, d: Deployment, card: Card) -> Card:
        """The CI line (and links to failing or pending contexts) on the deploy card."""
        if card.kind != "deploy" or not self.applies(d):
            return card
        ci = d.details.ci
        if ci is None:
            line = "CI: ⏳ checking the required contexts…"
            links: tuple[Link, ...] = ()
        else:
            line = f"CI: {_ICON.get(ci.state, '')} {ci.summary}"
            links = tuple(
                Link(f"{c['name']} ({c['state']})", c["url"])
                for c in ci.contexts
                if c.get("url") and c.get("state") != "success"
            )[:5]
        return replace(card, lines=(line, *card.lines), links=(*links, *card.links))


__all__ = ["CI_POLL", "SAFETY", "CiGate"]
