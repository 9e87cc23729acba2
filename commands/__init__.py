"""The chat command language: parsing text into typed commands, help, and handlers.

Adapters call `handle_text` (a slash command line) and `handle_action` (a button click) with a
`Context`, and send the `Reply` back. `parse` is the pure parser behind `handle_text`; the
command model, the help texts and the ref check are here for the adapters and the manifest.
The modules inside are private: code outside `commands` imports from here.
"""

from __future__ import annotations

from commands.handlers import Context, Reply, handle_action, handle_text
from commands.help import COMMAND_DESCRIPTIONS, COMMAND_USAGE_HINTS, COMMANDS, USAGE, help_text
from commands.model import (
    Abort,
    Cancel,
    Command,
    Deploy,
    Help,
    History,
    Lock,
    ParseError,
    Rollback,
    Signoff,
    Stats,
    Status,
    Unlock,
)
from commands.parser import parse
from commands.refs import is_valid_ref, ref_problem

__all__ = [
    "COMMANDS",
    "COMMAND_DESCRIPTIONS",
    "COMMAND_USAGE_HINTS",
    "USAGE",
    "Abort",
    "Cancel",
    "Command",
    "Context",
    "Deploy",
    "Help",
    "History",
    "Lock",
    "ParseError",
    "Reply",
    "Rollback",
    "Signoff",
    "Stats",
    "Status",
    "Unlock",
    "handle_action",
    "handle_text",
    "help_text",
    "is_valid_ref",
    "parse",
    "ref_problem",
]
