"""The chat seam: what the engine needs from a chat platform (`Chat`), where a message lives
(`MessageRef`), and user groups (`Directory`). Adapters implement it: `bot.slack`, `bot.console`,
and the recording fake in the tests."""

from bot.chat.base import Chat, Directory, GroupLookup, MessageRef, StaticDirectory

__all__ = ["Chat", "Directory", "GroupLookup", "MessageRef", "StaticDirectory"]
