"""The composition root: config → store, ref resolver, leader election → engine, for a chat adapter.

Everything that picks real implementations for the seams lives here and only here; the CLI
(`bot.app.cli`) and the Slack service (`bot.app.serve`) both build their engine with `build_engine`.
"""

from __future__ import annotations

import sys
from typing import Any

from bot.app.backends import backend_factory
from bot.chat.base import Chat
from bot.config import Config
from bot.engine import Engine
from bot.source import NullResolver, RefResolver


def build_engine(config: Config, chat: Chat, **kwargs: Any) -> Engine:
    """Wire store, resolver and leader election for `config`, and the engine over `chat`.

    `kwargs` go to `Engine` (directory, resolver, leadership...). An unreachable store stops
    the process with a one-line message (exit 2), never a traceback.
    """
    from bot.store import StoreError, open_store
    from bot.timing.leader import leadership_for

    try:
        store = open_store(config.bot.store_url)
    except StoreError as exc:
        print(f"gonogo: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    resolver = kwargs.pop("resolver", None) or ref_resolver(config)
    kwargs.setdefault("leadership", leadership_for(config.bot.store_url))
    kwargs.setdefault("backends", backend_factory(config))
    return Engine(config, store, chat, resolver=resolver, **kwargs)


def ref_resolver(config: Config) -> RefResolver:
    """The git resolver (mirror, allowed refs, changelog, tags) when `[repo] url` is set, else refs as labels."""
    if config.repo.url:
        from bot.source import GitResolver  # GitPython is only loaded when a repo is configured

        return GitResolver(config)
    return NullResolver(config.repo.default_branch)


__all__ = ["build_engine", "ref_resolver"]
