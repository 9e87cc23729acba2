"""`SlackChat`: the chat seam over Slack's Web API (`slack_sdk.WebClient`).

- Cards are posted with `chat.postMessage` (blocks from `bot.slack.blocks`) and updated in
  place with `chat.update` on (channel, ts).
- Updates are coalesced per message (cards, and messages such as alerts whose buttons are
  dropped once acted on): the first update of a quiet message goes out at once, later ones
  within `window` seconds collapse into one call carrying the latest version. The final
  state is always sent; a failed update is retried unless the error is permanent;
  `flush()` sends everything pending now (tests, shutdown).
- The client (`bot.slack.client.make_client`) retries 429 answers after `Retry-After` and
  connection errors; Bolt adds neither.
- Within Slack's rate limits (`bot.slack.pacing`): `chat.postMessage` ~1/s per channel (thread
  lines past that wait, merged per thread), `chat.update` ~50/min; cards and alerts at once.
- Nothing here raises on a send failure: the failure is logged with the deployment id and
  the deploy goes on. The id comes from the caller (`deployment_id=`), else from what this
  process learnt about the message (a card it posted or updated, a message whose buttons name
  a deployment, a thread under such a card); the log says which message when none is known.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from bot.chat.base import MessageRef
from bot.domain.card import Button, Card
from bot.slack import client as api
from bot.slack.blocks import card_blocks, card_text, message_blocks, reply_text, thread_text
from bot.slack.pacing import ThreadBatches, TokenBucket

log = logging.getLogger("gonogo.slack")


def _who(deployment_id: int | None, ref: MessageRef) -> str:
    """How a log line names the deployment of a message (or the message, when unknown)."""
    if deployment_id is not None:
        return f"deployment #{deployment_id}"
    return f"message {ref.ts} in {ref.channel} (deployment unknown)"


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class _Update:
    """One version of a message to send with `chat.update`: a card, or text with buttons."""

    deployment_id: int | None
    card: Card | None = None
    text: str = ""
    buttons: tuple[Button, ...] = ()
    mentions: tuple[str, ...] = ()

    def render(self) -> tuple[str, list[dict[str, Any]]]:
        """(fallback text, blocks), within Block Kit's limits."""
        if self.card is not None:
            return card_text(self.card), card_blocks(self.card)
        return message_blocks(self.text, self.buttons, self.mentions)

    @property
    def what(self) -> str:
        """How the log names it."""
        return "card update" if self.card is not None else "message update"


@dataclass
class _Pending:
    """Coalescing state of one message."""

    latest: _Update | None = None  # latest version not yet sent
    due: float | None = None  # when the pending version goes out (None: not scheduled)
    last_sent: float = float("-inf")
    sending: bool = False
    failures: int = 0


class SlackChat:
    """Implements `bot.chat.base.Chat` over the Slack Web API. Thread-safe."""

    def __init__(
        self,
        client: WebClient,
        *,
        window: float = api.DEFAULT_WINDOW,
        senders: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.window = window
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._queue: list[tuple[float, tuple[str, str]]] = []
        self._deployments: dict[str, int] = {}  # card ts -> deployment id (for logs)
        self._closed = False
        self._reachable = True
        self._channels: dict[str, TokenBucket] = {}  # chat.postMessage budget per channel
        self._updates = TokenBucket(api.UPDATE_RATE, api.UPDATE_BURST, clock)
        self._flushing = False
        self._threads = ThreadBatches(self._channel, self._post_thread)
        self._senders = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="gonogo-slack-send")
        self._thread = threading.Thread(target=self._loop, name="gonogo-slack-coalesce", daemon=True)
        self._thread.start()

    # -- the Chat seam ---------------------------------------------------------------------
    def post_card(self, channel: str, card: Card) -> MessageRef | None:
        """Post a deploy card; None (logged) when Slack refuses or cannot be reached."""
        self._channel(channel).take(force=True)
        try:
            resp = self._api(
                self.client.chat_postMessage,
                channel=channel,
                text=card_text(card),
                blocks=card_blocks(card),
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            log.error(
                "deployment #%s: could not post its card in %s: %s", card.deployment_id, channel, _error(exc)
            )
            return None
        ref = MessageRef(str(resp["channel"]), str(resp["ts"]))
        with self._cond:
            self._forget_idle()
            self._deployments[ref.ts] = card.deployment_id
            self._pending[(ref.channel, ref.ts)] = _Pending(last_sent=self._clock())
        return ref

    def update_card(self, ref: MessageRef, card: Card) -> None:
        """Replace a posted card; bursts within `window` seconds become one `chat.update`."""
        self._enqueue(ref, _Update(card.deployment_id, card=card))

    def update_message(
        self,
        ref: MessageRef,
        text: str,
        *,
        buttons: Sequence[Button] = (),
        mentions: Sequence[str] = (),
        deployment_id: int | None = None,
    ) -> None:
        """Replace a posted message's text and buttons (e.g. drop an alert's buttons once acted
        on); coalesced and retried like card updates."""
        did = deployment_id or self._deployment_of(ref.ts)
        self._enqueue(ref, _Update(did, text=text, buttons=tuple(buttons), mentions=tuple(mentions)))

    def _enqueue(self, ref: MessageRef, update: _Update) -> None:
        key = (ref.channel, ref.ts)
        with self._cond:
            if update.deployment_id is not None:
                self._deployments.setdefault(ref.ts, update.deployment_id)
            p = self._pending.setdefault(key, _Pending())
            p.latest = update
            if p.due is None and not p.sending:
                self._schedule(key, p)

    def post_thread(self, ref: MessageRef, text: str, *, deployment_id: int | None = None) -> None:
        """Post details in the card's thread (long text keeps its tail); held and merged with the
        thread's next lines while the channel is out of budget."""
        self._threads.post(ref.channel, ref.ts, text, deployment_id or self._deployment_of(ref.ts))

    def _channel(self, channel: str) -> TokenBucket:
        """The channel's `chat.postMessage` budget."""
        with self._cond:
            return self._channels.setdefault(channel, TokenBucket(api.POST_RATE, api.POST_BURST, self._clock))

    def _post_thread(self, channel: str, ts: str, text: str, did: int | None) -> None:
        ref = MessageRef(channel, ts)
        try:
            self._api(
                self.client.chat_postMessage,
                channel=ref.channel,
                thread_ts=ref.ts,
                text=thread_text(text),
                unfurl_links=False,
            )
        except Exception as exc:
            log.error("%s: thread post failed: %s", _who(did, ref), _error(exc))

    def post_message(
        self,
        channel: str,
        text: str,
        *,
        buttons: Sequence[Button] = (),
        mentions: Sequence[str] = (),
        deployment_id: int | None = None,
    ) -> MessageRef | None:
        """Post a channel message (alert, notice), with buttons and mentions."""
        fallback, blocks = message_blocks(text, buttons, mentions)
        self._channel(channel).take(force=True)
        try:
            resp = self._api(
                self.client.chat_postMessage,
                channel=channel,
                text=fallback,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            who = f"deployment #{deployment_id}" if deployment_id else f"channel {channel}"
            log.error("%s: message not posted (%s): %.200s", who, _error(exc), text)
            return None
        return MessageRef(str(resp["channel"]), str(resp["ts"]))

    def post_ephemeral(self, channel: str, user: str, text: str, *, response_url: str | None = None) -> None:
        """Tell one user something; falls back to the command's `response_url` if Slack refuses."""
        try:
            self._api(self.client.chat_postEphemeral, channel=channel, user=user, text=reply_text(text))
            return
        except Exception as exc:
            if not response_url:
                log.warning("ephemeral reply to %s in %s failed: %s", user, channel, _error(exc))
                return
            log.info(
                "ephemeral reply to %s in %s failed (%s); using response_url", user, channel, _error(exc)
            )
        self.respond(response_url, text, ephemeral=True)

    # -- extras for the adapter ------------------------------------------------------------
    def post_reply(self, channel: str, text: str, *, thread_ts: str | None = None) -> MessageRef | None:
        """Post a public command reply as plain text (optionally in a thread)."""
        self._channel(channel).take(force=True)
        try:
            resp = self._api(
                self.client.chat_postMessage,
                channel=channel,
                text=reply_text(text),
                thread_ts=thread_ts,
                unfurl_links=False,
            )
        except Exception as exc:
            log.warning("reply in %s failed: %s", channel, _error(exc))
            return None
        return MessageRef(str(resp["channel"]), str(resp["ts"]))

    def respond(self, response_url: str, text: str, *, ephemeral: bool) -> bool:
        """Answer through a command's `response_url` (5 uses in 30 min); False on failure."""
        try:
            resp = WebhookClient(response_url, timeout=10).send(
                text=reply_text(text), response_type="ephemeral" if ephemeral else "in_channel"
            )
        except Exception as exc:
            log.warning("response_url reply failed: %s", _error(exc))
            return False
        if resp.status_code != 200:
            log.warning("response_url reply failed: HTTP %s %s", resp.status_code, resp.body)
            return False
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Send every pending update now and wait until sent; False on timeout."""
        self._threads.flush()
        deadline = self._clock() + timeout
        with self._cond:
            self._flushing = True
            now = self._clock()
            for key, p in self._pending.items():
                if p.latest is not None and not p.sending:
                    p.due = now
                    heapq.heappush(self._queue, (now, key))
            self._cond.notify_all()
            try:
                while any(p.latest is not None or p.sending for p in self._pending.values()):
                    left = deadline - self._clock()
                    if left <= 0:
                        return False
                    self._cond.wait(min(left, 0.05))
            finally:
                self._flushing = False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Flush pending updates and stop the background threads."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self._threads.close()
        self._senders.shutdown(wait=True)

    def reachable(self) -> bool:
        """False while the last Web API call failed to get any answer from Slack (readiness)."""
        return self._reachable

    def _api(self, method: Callable[..., SlackResponse], **kwargs: Any) -> SlackResponse:
        """Call a Web API method, noting whether Slack answered at all."""
        try:
            resp = method(**kwargs)
        except SlackApiError:
            self._reachable = True  # Slack answered (with an error)
            raise
        except Exception:
            self._reachable = False
            raise
        self._reachable = True
        return resp

    # -- coalescing ------------------------------------------------------------------------
    def _schedule(self, key: tuple[str, str], p: _Pending) -> None:
        """Queue `key` for sending (caller holds the lock)."""
        p.due = max(self._clock(), p.last_sent + self.window)
        heapq.heappush(self._queue, (p.due, key))
        self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._queue or self._queue[0][0] > self._clock()):
                    wait = self._queue[0][0] - self._clock() if self._queue else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                if not self._updates.take(force=self._flushing):  # chat.update: Tier 3
                    self._cond.wait(self._updates.wait())
                    continue
                _, key = heapq.heappop(self._queue)
                p = self._pending.get(key)
                if p is None or p.due is None or p.sending or p.latest is None:
                    continue  # a stale queue entry (already sent by a flush)
                if p.due > self._clock():
                    continue  # stale entry; the real one comes later
                update, p.latest, p.due, p.sending = p.latest, None, None, True
            try:
                self._senders.submit(self._send, key, update)
            except RuntimeError:  # shutting down: send inline
                self._send(key, update)

    def _send(self, key: tuple[str, str], update: _Update) -> None:
        channel, ts = key
        retry = False
        try:
            text, blocks = update.render()
            self._api(self.client.chat_update, channel=channel, ts=ts, text=text, blocks=blocks)
        except Exception as exc:
            error = _error(exc)
            with self._cond:
                failures = self._pending[key].failures + 1
            retry = failures <= api.MAX_UPDATE_RETRIES and error not in api.PERMANENT_ERRORS
            did = update.deployment_id or self._deployment_of(ts)
            log.error(
                "%s: %s failed (%s)%s",
                _who(did, MessageRef(channel, ts)),
                update.what,
                error,
                "; retrying" if retry else "; giving up on this update",
            )
        with self._cond:
            p = self._pending[key]
            p.sending = False
            p.last_sent = self._clock()
            if retry:
                p.failures += 1
                if p.latest is None:
                    p.latest = update  # nothing newer: the failed version must still get there
                p.last_sent += self.window * 2**p.failures
            else:
                p.failures = 0
            if p.latest is not None:
                self._schedule(key, p)
            self._cond.notify_all()

    def _forget_idle(self) -> None:
        """Bound memory: drop the oldest idle messages (caller holds the lock)."""
        if len(self._pending) > api.MAX_TRACKED:
            idle = [
                k for k, p in self._pending.items() if p.latest is None and not p.sending and p.due is None
            ]
            for key in idle[: len(self._pending) - api.MAX_TRACKED // 2]:
                del self._pending[key]
        while len(self._deployments) > api.MAX_TRACKED:
            del self._deployments[next(iter(self._deployments))]

    def _deployment_of(self, ts: str) -> int | None:
        """The deployment a message (or the card a thread hangs under) belongs to, if known."""
        with self._cond:
            return self._deployments.get(ts)

    def __repr__(self) -> str:
        return f"SlackChat(base_url={self.client.base_url!r}, window={self.window})"


__all__ = ["SlackChat"]
