"""`gonogo manifest`: a Slack app manifest (YAML) for this config.

Paste it at api.slack.com/apps → Create New App → From a manifest. It declares the bot user,
the slash commands (with descriptions and usage hints from `commands.help`), interactivity,
the bot scopes gonogo needs, and HTTP or Socket Mode. In HTTP mode every URL is the
placeholder `https://YOUR-HOST/slack/events`: replace YOUR-HOST with where gonogo runs.

The YAML is written by a tiny emitter (mappings, lists, strings, booleans): strings are
double-quoted JSON strings, which YAML reads as they are, so no YAML library is needed.
"""

from __future__ import annotations

import json
from typing import Any

from bot.config import Config
from commands.help import COMMAND_DESCRIPTIONS, COMMAND_USAGE_HINTS

PLACEHOLDER_URL = "https://YOUR-HOST/slack/events"
BOT_SCOPES = ("commands", "chat:write", "chat:write.public", "users:read", "usergroups:read")
# Events that need no scope: gonogo logs loudly when its tokens die.
BOT_EVENTS = ("app_uninstalled", "tokens_revoked")
DESCRIPTION = "Go/no-go deploy cards: approvals, staged rollouts, monitoring and rollback"


def manifest(config: Config, *, socket_mode: bool) -> dict[str, Any]:
    """The manifest as data."""
    name = config.bot.name[:35]
    commands = []
    for command in config.slack.commands:
        entry: dict[str, Any] = {"command": command}
        if not socket_mode:
            entry["url"] = PLACEHOLDER_URL
        entry["description"] = COMMAND_DESCRIPTIONS.get(command, f"gonogo {command}")[:2000]
        hint = COMMAND_USAGE_HINTS.get(command)
        if hint:
            entry["usage_hint"] = hint[:1000]
        entry["should_escape"] = False
        commands.append(entry)
    interactivity: dict[str, Any] = {"is_enabled": True}
    if not socket_mode:
        interactivity["request_url"] = PLACEHOLDER_URL
    settings: dict[str, Any] = {}
    if socket_mode:
        # Socket Mode needs no URL, so the event subscription is verified at once. Over HTTP
        # Slack must reach the URL to verify it: add the same events there once gonogo runs.
        settings["event_subscriptions"] = {"bot_events": list(BOT_EVENTS)}
    settings.update(
        {
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        }
    )
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {"name": name, "description": DESCRIPTION},
        "features": {
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": commands,
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": settings,
    }


def manifest_yaml(config: Config, socket_mode: bool = False) -> str:
    """The manifest as YAML text, with a comment on what to replace."""
    mode = "Socket Mode" if socket_mode else "HTTP mode"
    head = [
        f"# Slack app manifest for {config.bot.name} ({mode}), printed by `gonogo manifest`.",
        "# Create the app at https://api.slack.com/apps → Create New App → From a manifest.",
    ]
    if socket_mode:
        head.append("# Then add an app-level token (connections:write) as SLACK_APP_TOKEN.")
    else:
        head.append(f"# Replace YOUR-HOST in {PLACEHOLDER_URL} with the address gonogo serves.")
        head.append(
            "# Once it runs there, you may subscribe to the bot events " + ", ".join(BOT_EVENTS) + "."
        )
    return "\n".join([*head, *to_yaml(manifest(config, socket_mode=socket_mode))]) + "\n"


def to_yaml(value: Any, indent: int = 0) -> list[str]:
    """YAML lines for nested dicts/lists of str, int, bool (block style)."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if _is_scalar(item) or item in ({}, []):
                lines.append(f"{pad}{key}: {_scalar(item)}")
            else:
                lines.append(f"{pad}{key}:")
                lines.extend(to_yaml(item, indent + 1))
    elif isinstance(value, list):
        for item in value:
            if _is_scalar(item):
                lines.append(f"{pad}- {_scalar(item)}")
            else:
                sub = to_yaml(item, indent + 1)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines.extend(sub[1:])
    else:
        lines.append(pad + _scalar(value))
    return lines


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def _scalar(value: Any) -> str:
    if value == {}:
        return "{}"
    if value == []:
        return "[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)
