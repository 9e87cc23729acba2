"""What the engine says in chat: cards updated in place, thread details, alerts that settle.

Cards are always sent from the latest stored row, under one lock, so updates reach the chat
in state order: the approver's thread and the worker it started race to refresh, and a slow
thread must never put an older card over a newer one. The sign-off card (a second message of
the same deployment) goes through the same path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from bot.chat.base import Chat, MessageRef
from bot.domain.card import Button, Card
from bot.domain.deployment import Deployment
from bot.domain.details import Alert
from bot.engine.cards import build_card
from bot.engine.port import Ledger
from bot.store.base import Store


class Notifier:
    """Cards, threads and alerts of deployments over the chat seam (implements `port.Notifier`)."""

    def __init__(self, chat: Chat, ledger: Ledger, store: Store, *, single_process: bool) -> None:
        self.chat = chat
        self.ledger = ledger
        self.store = store
        #: With replicas, another process may send a newer card while ours is on its way.
        self._single_process = single_process
        self._card_lock = threading.Lock()
        self._decorations: list[Callable[[Deployment, Card], Card]] = []

    def decorate_with(self, decorate: Callable[[Deployment, Card], Card]) -> None:
        """Add to every deploy card drawn from now on (the CI line, links to the web view)."""
        self._decorations.append(decorate)

    def card(self, d: Deployment) -> Card:
        """The deploy card of `d` as it is now."""
        card = build_card(d, self.ledger.env(d.env), self.store.get_lock(d.env))
        for decorate in self._decorations:
            card = decorate(d, card)
        return card

    def post_card(self, d: Deployment) -> bool:
        """Post the deployment's card and remember where; False when it could not be posted."""
        if not d.channel:
            return False
        ref = self.chat.post_card(d.channel, self.card(d))
        if ref is not None:
            self.ledger.amend(d.id, lambda cur: replace(cur, channel=ref.channel, message_ts=ref.ts))
        return ref is not None

    def post_card_in(self, channel: str, card: Card) -> MessageRef | None:
        """Post another card of a deployment (its sign-off card); where it went, or None."""
        return self.chat.post_card(channel, card)

    def refresh_card(self, d: Deployment) -> None:
        """Update the deployment's card in place, always with its latest stored state."""
        self.refresh(d, _card_message, self.card)

    def refresh(
        self,
        d: Deployment,
        where: Callable[[Deployment], MessageRef | None],
        render: Callable[[Deployment], Card],
    ) -> None:
        """Update a card of `d` (the message `where` finds on the row, rendered by `render`)
        from the latest stored row, in order: reading and sending happen under one lock."""
        with self._card_lock:
            fresh = self.store.get(d.id) if d.id else None
            d = fresh or d
            ref = where(d)
            if ref is None:
                return
            self.chat.update_card(ref, render(d))
            if fresh is not None and not self._single_process:
                # Another replica may have written (and sent its card) meanwhile, and ours
                # could land after it: send again when the row moved on.
                again = self.store.get(fresh.id)
                if again is not None and again.version != fresh.version:
                    self.chat.update_card(ref, render(again))

    def thread(self, d: Deployment, text: str) -> None:
        """Post details in the deployment's thread (in the channel when it has no card)."""
        if d.channel and d.message_ts:
            self.chat.post_thread(MessageRef(d.channel, d.message_ts), text, deployment_id=d.id)
        elif d.channel:
            self.chat.post_message(d.channel, text, deployment_id=d.id)

    def thread_under(self, ref: MessageRef, text: str, *, deployment_id: int | None = None) -> None:
        """Post in the thread of another message of a deployment (its sign-off card)."""
        self.chat.post_thread(ref, text, deployment_id=deployment_id)

    def say(self, d: Deployment, text: str) -> None:
        """Post in the deployment's channel."""
        if d.channel:
            self.chat.post_message(d.channel, text, deployment_id=d.id)

    def alert(self, d: Deployment, text: str, buttons: Sequence[Button], mentions: Sequence[str]) -> None:
        """Post an alert in the channel, mentioning people, with buttons.

        An alert with buttons is remembered on the deployment, so that once someone acts on it
        (`settle_alerts`) its buttons go and it says what happened.
        """
        if not d.channel:
            return
        people = list(dict.fromkeys(mentions))
        ref = self.chat.post_message(d.channel, text, buttons=buttons, mentions=people, deployment_id=d.id)
        if ref is not None and buttons and d.id:
            alert = Alert(ref.channel, ref.ts, text, tuple(people))
            self.ledger.amend(d.id, lambda cur: cur.with_details(alerts=(*cur.details.alerts, alert)))

    def settle_alerts(self, deployment_id: int, outcome: str, keep: Sequence[Button] = ()) -> None:
        """Someone acted on the deployment's alerts: say what happened under each, and leave only
        the `keep` buttons (those still meaning something)."""
        d = self.store.get(deployment_id)
        alerts = d.details.alerts if d is not None else ()
        if not alerts:
            return
        for alert in alerts:
            self.chat.update_message(
                MessageRef(alert.channel, alert.ts),
                f"{alert.text}\n{outcome}",
                buttons=keep,
                mentions=alert.mentions,
                deployment_id=deployment_id,
            )
        if not keep:
            self.ledger.amend(deployment_id, lambda cur: cur.with_details(alerts=()))


def _card_message(d: Deployment) -> MessageRef | None:
    """Where the deployment's card is, once posted."""
    return MessageRef(d.channel, d.message_ts) if d.channel and d.message_ts else None


__all__ = ["Notifier"]
