"""What gonogo reads from Slack payloads, and whether a request body has the shape it needs.

Payload fields may be anything: these helpers read what is there and fall back to None (or an
empty set) for what is missing or of the wrong type; `request_problem` names what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def header(headers: Mapping[str, Any], name: str) -> str | None:
    """One header's value (its first, when the framework gives a list); None when absent."""
    value = headers.get(name)
    if isinstance(value, list | tuple):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _obj(value: Any) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else an empty one (payload fields may be anything)."""
    return value if isinstance(value, Mapping) else {}


def user_of(body: Mapping[str, Any]) -> str | None:
    """Who sent it: the clicker (`user.id`) or the one who typed the command (`user_id`)."""
    user = body.get("user")
    if isinstance(user, Mapping):
        return str(user.get("id")) if user.get("id") else None
    return str(body["user_id"]) if body.get("user_id") else None


def channel_of(body: Mapping[str, Any]) -> str | None:
    """Where it was sent: `channel.id`, the click's `container.channel_id`, or `channel_id`."""
    channel = body.get("channel")
    if isinstance(channel, Mapping) and channel.get("id"):
        return str(channel["id"])
    container = _obj(body.get("container"))
    if container.get("channel_id"):
        return str(container["channel_id"])
    return str(body["channel_id"]) if body.get("channel_id") else None


def message_ts_of(body: Mapping[str, Any]) -> str | None:
    """The ts of the message clicked on (`container.message_ts`, else `message.ts`)."""
    container = _obj(body.get("container"))
    if container.get("message_ts"):
        return str(container["message_ts"])
    message = _obj(body.get("message"))
    return str(message["ts"]) if message.get("ts") else None


def seen_options(body: Mapping[str, Any], block_id: str) -> set[int] | None:
    """Ticked item numbers in the message as the clicker saw it; None when not in the payload."""
    blocks = _obj(body.get("message")).get("blocks")
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, Mapping) or block.get("block_id") != block_id:
            continue
        return option_numbers(_obj(block.get("accessory")).get("initial_options"))
    return None


def option_numbers(options: Any) -> set[int]:
    """The item numbers among checkbox options (their values), ignoring anything else."""
    if not isinstance(options, list):
        return set()
    return {int(v) for o in options if isinstance(o, Mapping) and (v := str(o.get("value"))).isdigit()}


def _text_fields(body: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            return f"no {name}"
    return None


def request_problem(body: Any) -> str | None:
    """Why a (verified) request body cannot be acted on, in a few words; None when it can.

    Checks the shape of what gonogo and Bolt read: slash commands need `command`, `user_id`
    and `channel_id`; clicks (`block_actions`) a `user` with an id and a list of action objects
    with an `action_id`; Events API callbacks an `event` object with a `type`. Other kinds go
    on to Bolt, which answers what it has no listener for with 404.
    """
    if not isinstance(body, Mapping):
        return "the body is not an object"
    kind = body.get("type")
    if "command" in body:
        return _text_fields(body, "command", "user_id", "channel_id")
    if kind == "block_actions":
        return _click_problem(body)
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
            return "event_callback without an event object with a type"
        if body.get("event_id") is not None and not isinstance(body["event_id"], str):
            return "event_callback: event_id is not a string"
    return None


def _click_problem(body: Mapping[str, Any]) -> str | None:
    """Why a `block_actions` body cannot be acted on; None when it can."""
    user = body.get("user")
    if not isinstance(user, Mapping) or not isinstance(user.get("id"), str) or not user["id"]:
        return "block_actions without a user id"
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        return "block_actions without a list of actions"
    for i, action in enumerate(actions):
        if not isinstance(action, Mapping) or not isinstance(action.get("action_id"), str):
            return f"block_actions: actions[{i}] is not an action with an action_id"
        selected = action.get("selected_options")
        if selected is not None and not isinstance(selected, list):
            return f"block_actions: actions[{i}].selected_options is not a list"
    for name in ("container", "channel", "message", "state", "team"):
        if body.get(name) is not None and not isinstance(body[name], Mapping):
            return f"block_actions: {name} is not an object"
    return None
