"""The listeners Bolt calls: slash commands and button clicks in, `commands.handlers` on our own pool.

Every listener acks at once (an empty 200) and hands the work to the adapter's own small
`ThreadPoolExecutor`: not Bolt's listener pool, not lazy listeners (measured: lazy work
shares Bolt's pool and doubled ack p50). The app runs with `process_before_response=True`, so
the ack-only listener runs inline on the request thread and the response goes out without
Bolt's 10 ms ack polling.

Exactly once: every delivery is claimed in the store before it acts (`Store.claim`), keyed by
the slash command's `trigger_id`, or by (action id, value, message ts, user, action_ts) for a
click, or by `event_id` for Events API callbacks, so a retried delivery
(`X-Slack-Retry-Num`) or the same payload twice does one thing. Two *different* clicks are
made safe by the engine's compare-and-set.

Replies go back as the handler says: ephemeral → `chat.postEphemeral` to the user (falling
back to the command's `response_url` where the bot cannot post), public → `chat.postMessage`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.domain import Action
from bot.engine import Engine, Refused
from bot.slack.blocks import unescape
from bot.slack.chat import SlackChat
from bot.slack.gate import AckGate
from bot.slack.payloads import (
    channel_of,
    header,
    message_ts_of,
    option_numbers,
    request_problem,
    seen_options,
    user_of,
)
from commands.handlers import Context, Reply, handle_action, handle_text

log = logging.getLogger("gonogo.slack")


class Listeners:
    """What the Bolt listeners do once acked: run a handler and send its reply."""

    def __init__(
        self, engine: Engine, chat: SlackChat, executor: Executor, gate: AckGate | None = None
    ) -> None:
        self.engine = engine
        self.chat = chat
        self.executor = executor
        self.gate = gate or AckGate(max_wait=0)

    # -- Bolt listeners (run on the request thread: ack, hand off, return) -------------------
    def on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        """A slash command: ack empty, then run it on our pool (a malformed one: ack the reason)."""
        problem = request_problem(body)
        if problem:
            log.warning("malformed slash command ignored: %s", problem)
            ack(f"gonogo could not read this command: {problem}")
            return
        ack()
        self._submit(self.run_command, body)

    def on_action(self, ack: Ack, body: dict[str, Any]) -> None:
        """A click (button or checklist checkbox): ack, then run it on our pool."""
        ack()
        problem = request_problem(body)
        if problem:
            log.warning("malformed click ignored: %s", problem)
            return
        self._submit(self.run_action, body)

    def _submit(self, fn: Callable[[dict[str, Any]], None], body: dict[str, Any]) -> None:
        try:
            self.executor.submit(self._guard, fn, body)
        except RuntimeError:
            log.warning("shutting down: dropped a Slack request")

    def _guard(self, fn: Callable[[dict[str, Any]], None], body: dict[str, Any]) -> None:
        try:
            self.gate.wait_quiet()
            fn(body)
        except Exception:
            log.exception("Slack request failed")
            user = user_of(body)
            channel = channel_of(body)
            if user and channel:
                self.chat.post_ephemeral(
                    channel,
                    user,
                    "Something went wrong on gonogo's side; it is logged. Try again, or ask an admin.",
                    response_url=body.get("response_url"),
                )

    # -- the work (on our pool) ------------------------------------------------------------
    def run_command(self, body: dict[str, Any]) -> None:
        """Run a slash command and send its reply."""
        user, channel = str(body.get("user_id") or ""), str(body.get("channel_id") or "")
        if not user or not channel:
            log.warning("slash command without user or channel ignored: %s", body.get("command"))
            return
        trigger = body.get("trigger_id")
        if trigger and not self._claim(f"slack:command:{trigger}"):
            log.info("duplicate delivery of %s (trigger %s) ignored", body.get("command"), trigger)
            return
        text = unescape(str(body.get("text") or ""))
        reply = handle_text(self.engine, str(body.get("command") or ""), text, Context(user, channel))
        self.reply(reply, channel=channel, user=user, response_url=body.get("response_url"))

    def run_action(self, body: dict[str, Any]) -> None:
        """Run a click and send the reply (refusals go to the clicker alone)."""
        actions = body.get("actions") or []
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], Mapping):
            log.warning("click without a readable action ignored")
            return
        action = actions[0]
        action_id = str(action.get("action_id", ""))
        user, channel = user_of(body), channel_of(body)
        if not user or not channel:
            log.warning("click without user or channel ignored: %s", action_id)
            return
        message_ts = message_ts_of(body)
        changes: dict[int, bool] | None = None
        if action.get("type") == "checkboxes":
            value = str(action.get("block_id", "")).partition(":")[2]
        else:
            value = str(action.get("value") or "")
        key = f"slack:action:{action_id}:{value}:{message_ts}:{user}:{action.get('action_ts')}"
        if not self._claim(key):
            log.info("duplicate delivery of %s on %s by %s ignored", action_id, message_ts, user)
            return
        if action.get("type") == "checkboxes":
            changes = self._checklist_changes(action_id, value, action, body)
        reply = handle_action(self.engine, action_id, value, Context(user, channel), changes=changes)
        self.reply(reply, channel=channel, user=user, response_url=body.get("response_url"))

    def _checklist_changes(
        self, action_id: str, value: str, action: Mapping[str, Any], body: Mapping[str, Any]
    ) -> dict[int, bool]:
        """What this click changed on the checklist: {item number: ticked} for those items only.

        Slack sends the clicker's whole selection (`selected_options`), which is stale when
        someone else ticked meanwhile; writing it whole would undo their tick. So it is diffed
        against what the clicker's card showed (the `initial_options` of the message in the
        payload) or, when the payload has no card, against the stored checklist; the engine
        applies just these changes under its compare-and-set, so two clicks at the same moment
        both count.
        """
        selected = option_numbers(action.get("selected_options"))
        seen = seen_options(body, str(action.get("block_id", "")))
        if seen is None:
            seen = self._stored_ticks(action_id, value)
        return {n: True for n in selected - seen} | {n: False for n in seen - selected}

    def _stored_ticks(self, action_id: str, value: str) -> set[int]:
        """The ticked item numbers the store holds now, of the group clicked (`<id>:<first>-<last>`;
        a fallback: read outside the engine's CAS)."""
        deployment, _, span = value.partition(":")
        first, _, last = span.partition("-")
        try:
            d = self.engine.deployment(int(deployment))
            group = range(int(first), int(last) + 1) if span else None
        except (Refused, ValueError):
            return set()
        if action_id == Action.SIGNOFF_CHECKLIST:
            stored = list(d.details.signoff.ticked)
        else:
            stored = list(d.checklist)
        return {i + 1 for i, v in enumerate(stored) if v and (group is None or i + 1 in group)}

    def on_event_retry(self, body: Mapping[str, Any], headers: Mapping[str, Any]) -> bool:
        """True the first time an Events API `event_id` is seen; retries answer 200 and stop."""
        event_id = body.get("event_id")
        if not event_id:
            return True
        if self._claim(f"slack:event:{event_id}"):
            return True
        log.info(
            "event %s delivered again (retry %s) ignored", event_id, header(headers, "x-slack-retry-num")
        )
        return False

    def reply(self, reply: Reply | None, *, channel: str, user: str, response_url: str | None = None) -> None:
        """Send a handler's reply: ephemeral to `user`, or public in `channel`."""
        if reply is None or not reply.text:
            return
        if reply.ephemeral:
            self.chat.post_ephemeral(channel, user, reply.text, response_url=response_url)
            return
        if self.chat.post_reply(channel, reply.text) is None and response_url:
            self.chat.respond(response_url, reply.text, ephemeral=False)

    def _claim(self, key: str) -> bool:
        return self.engine.store.claim(key[:500], self.engine.now())


class EventDedupe(Middleware):
    """Events API deliveries already seen (`event_id`) answer 200 and go no further.

    A class middleware: Bolt calls it directly, without building injected arguments."""

    def __init__(self, listeners: Listeners) -> None:
        self.listeners = listeners

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        """Stop a retried event; pass everything else on."""
        if req.body.get("type") == "event_callback" and not self.listeners.on_event_retry(
            req.body, req.headers
        ):
            return BoltResponse(status=200, body="")
        return next()
