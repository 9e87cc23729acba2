"""Engines for tests, wired as the composition root wires them, and waiting for what they do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from bot.app.backends import backend_factory
from bot.chat.base import Chat
from bot.config import Config
from bot.engine import Engine
from bot.store.base import Store

T = TypeVar("T")


def make_engine(config: Config, store: Store, chat: Chat, **kwargs: Any) -> Engine:
    """An engine over `store` and `chat`, with the backends `gonogo` itself would choose for each
    environment (local, SSH, the dry-run printer) unless `backends` is given; other `kwargs` go
    to `Engine` (clock, directory, resolver, workers, leadership...)."""
    kwargs.setdefault("backends", backend_factory(config))
    return Engine(config, store, chat, **kwargs)


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy, and return that; fail the test after
    `timeout` seconds saying `what` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in time")
        time.sleep(0.05)


__all__ = ["make_engine", "wait_for"]
