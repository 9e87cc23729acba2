"""The Slack adapter: Bolt app and listeners, Block Kit cards, the Slack chat and directory.

Only this package (and `bot.serve`, `bot.manifest`) imports slack_bolt / slack_sdk; the engine
and the commands never do.

`create_app` builds the Bolt app, `AsgiHandler` serves it over HTTP (every request verified
first), `AckGate` lets the work after an ack yield to requests in hand; `SlackChat` and
`SlackDirectory` are the chat and directory seams over the Web API client of `make_client`.
The modules inside are private: code outside `bot.slack` imports from here.
"""

from __future__ import annotations

from bot.slack.app import create_app
from bot.slack.asgi import EVENTS_PATH, AsgiHandler
from bot.slack.chat import SlackChat
from bot.slack.client import DEFAULT_WINDOW, make_client
from bot.slack.directory import SlackDirectory
from bot.slack.gate import AckGate

__all__ = [
    "DEFAULT_WINDOW",
    "EVENTS_PATH",
    "AckGate",
    "AsgiHandler",
    "SlackChat",
    "SlackDirectory",
    "create_app",
    "make_client",
]
