"""`SlackChat`: the chat seam over Slack's Web API (`slack_sdk.WebClient`).

- Cards are posted with `chat.postMessage` (blocks from `bot.slack.blocks`) and updated in
  place with `chat.update` on (channel, ts).
- Card updates are coalesced per message: the first update of a quiet message goes out at
  once, later ones within `window` seconds collapse into one call carrying the latest card.
  The final state is always sent; `flush()` sends everything pending now (tests, shutdown).
- The client retries 429 answers after `Retry-After` (`RateLimitErrorRetryHandler`) and
  connection errors (`ConnectionErrorRetryHandler`); Bolt adds neither.
- Nothing here raises on a send failure: the failure is logged with the deployment id and
  the deploy goes on.
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
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from bot.card import Button, Card
from bot.chat.base import MessageRef
from bot.slack.blocks import (
    card_blocks,
    card_text,
    message_blocks,
    reply_text,
    thread_text,
)

log = logging.getLogger("gonogo.slack")

DEFAULT_WINDOW = 1.0
MAX_UPDATE_RETRIES = 3
MAX_TRACKED = 2000
# Errors a retry cannot fix (the message or channel is gone, the blocks are wrong, no access).
PERMANENT_ERRORS = frozenset(
    {
        "message_not_found",
        "channel_not_found",
        "cant_update_message",
        "edit_window_closed",
        "invalid_blocks",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "not_in_channel",
        "is_archived",
        "missing_scope",
    }
)


def make_client(token: str, base_url: str, *, timeout: int = 15, max_retries: int = 3) -> WebClient:
    """A WebClient for `base_url` that retries rate limits and connection errors."""
    if not base_url.endswith("/"):
        base_url += "/"
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ],
    )


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Pending:
    """Coalescing state of one message."""

    card: Card | None = None  # latest card not yet sent
    due: float | None = None  # when the pending card goes out (None: not scheduled)
    last_sent: float = float("-inf")
    sending: bool = False
    failures: int = 0


class SlackChat:
    """Implements `bot.chat.base.Chat` over the Slack Web API. Thread-safe."""

    def __init__(
        self,
        client: WebClient,
        *,
        window: float = DEFAULT_WINDOW,
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
        self._senders = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="gonogo-slack-send")
        self._thread = threading.Thread(target=self._loop, name="gonogo-slack-coalesce", daemon=True)
        self._thread.start()

    # -- the Chat seam ---------------------------------------------------------------------
    def post_card(self, channel: str, card: Card) -> MessageRef | None:
        """Post a deploy card; None (logged) when Slack refuses or cannot be reached."""
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
        key = (ref.channel, ref.ts)
        with self._cond:
            self._deployments.setdefault(ref.ts, card.deployment_id)
            p = self._pending.setdefault(key, _Pending())
            p.card = card
            if p.due is None and not p.sending:
                self._schedule(key, p)

    def post_thread(self, ref: MessageRef, text: str) -> None:
        """Post details in the card's thread (long text keeps its tail)."""
        try:
            self._api(
                self.client.chat_postMessage,
                channel=ref.channel,
                thread_ts=ref.ts,
                text=thread_text(text),
                unfurl_links=False,
            )
        except Exception as exc:
            log.error("deployment #%s: thread post failed: %s", self._deployment(ref.ts), _error(exc))

    def post_message(
        self, channel: str, text: str, *, buttons: Sequence[Button] = (), mentions: Sequence[str] = ()
    ) -> MessageRef | None:
        """Post a channel message (alert, notice), with buttons and mentions."""
        fallback, blocks = message_blocks(text, buttons, mentions)
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
            ids = sorted({b.value.split(":", 1)[0] for b in buttons})
            who = f"deployment #{ids[0]}" if ids else f"channel {channel}"
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
        """Send every pending card update now and wait until sent; False on timeout."""
        deadline = self._clock() + timeout
        with self._cond:
            now = self._clock()
            for key, p in self._pending.items():
                if p.card is not None and not p.sending:
                    p.due = now
                    heapq.heappush(self._queue, (now, key))
            self._cond.notify_all()
            while any(p.card is not None or p.sending for p in self._pending.values()):
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Flush pending updates and stop the background threads."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
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
                _, key = heapq.heappop(self._queue)
                p = self._pending.get(key)
                if p is None or p.due is None or p.sending or p.card is None:
                    continue  # a stale queue entry (already sent by a flush)
                if p.due > self._clock():
                    continue  # stale entry; the real one comes later
                card, p.card, p.due, p.sending = p.card, None, None, True
            try:
                self._senders.submit(self._send, key, card)
            except RuntimeError:  # shutting down: send inline
                self._send(key, card)

    def _send(self, key: tuple[str, str], card: Card) -> None:
        channel, ts = key
        retry = False
        try:
            self._api(
                self.client.chat_update,
                channel=channel,
                ts=ts,
                text=card_text(card),
                blocks=card_blocks(card),
            )
        except Exception as exc:
            error = _error(exc)
            with self._cond:
                failures = self._pending[key].failures + 1
            retry = failures <= MAX_UPDATE_RETRIES and error not in PERMANENT_ERRORS
            log.error(
                "deployment #%s: card update failed (%s)%s",
                card.deployment_id,
                error,
                "; retrying" if retry else "; giving up on this update",
            )
        with self._cond:
            p = self._pending[key]
            p.sending = False
            p.last_sent = self._clock()
            if retry:
                p.failures += 1
                if p.card is None:
                    p.card = card  # nothing newer: the failed state must still get there
                p.last_sent += self.window * 2**p.failures
            else:
                p.failures = 0
            if p.card is not None:
                self._schedule(key, p)
            self._cond.notify_all()

    def _forget_idle(self) -> None:
        """Bound memory: drop the oldest idle messages (caller holds the lock)."""
        if len(self._pending) > MAX_TRACKED:
            idle = [k for k, p in self._pending.items() if p.card is None and not p.sending and p.due is None]
            for key in idle[: len(self._pending) - MAX_TRACKED // 2]:
                del self._pending[key]
        while len(self._deployments) > MAX_TRACKED:
            del self._deployments[next(iter(self._deployments))]

    def _deployment(self, ts: str) -> int | str:
        with self._cond:
            return self._deployments.get(ts, "?")

    def __repr__(self) -> str:
        return f"SlackChat(base_url={self.client.base_url!r}, window={self.window})"
