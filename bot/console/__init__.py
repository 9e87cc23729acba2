"""The terminal chat: the console REPL (`repl`) over its chat adapter (`chat`), the same commands
and engine as Slack."""

from bot.console.chat import ConsoleChat, render_card
from bot.console.repl import Console, run_console

__all__ = ["Console", "ConsoleChat", "render_card", "run_console"]
