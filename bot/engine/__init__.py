"""The deploy engine: requests, approvals, runs, monitoring, failures, rollbacks and sign-off.

Its face is the `Engine` (what commands and adapters call), `EnvStatus` (what `/status` reads)
and `Refused` (its user-facing error). The parts depend on the narrow interfaces of
`bot.engine.port`, never on the whole `Engine`.
"""

from bot.domain.errors import Refused
from bot.engine.engine import Engine
from bot.engine.integrations import Integrations
from bot.engine.port import BackendFactory
from bot.engine.queries import EnvStatus

__all__ = ["BackendFactory", "Engine", "EnvStatus", "Integrations", "Refused"]
