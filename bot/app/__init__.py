"""The composition root: the `gonogo` CLI (`cli`, run as `python -m bot.app.cli`), `gonogo serve`
(`serve`), the wiring of config, store, resolver, leader election, backends and engine for a chat
adapter (`wiring`, `backends`), and the Slack app manifest (`manifest`). Nothing else imports this
package; its face is what builds an engine."""

from bot.app.backends import backend_factory
from bot.app.wiring import build_engine

__all__ = ["backend_factory", "build_engine"]
