"""Time and timed work: the clock seam (`clock`), the scheduler of our own `schedules` rows
(`scheduler`), and who runs it (`election`; the PostgreSQL election is `leader`)."""

from bot.timing.clock import Clock, FakeClock, SystemClock
from bot.timing.election import AlwaysLeader, Leadership, LeadershipFactory
from bot.timing.scheduler import Scheduler

__all__ = [
    "AlwaysLeader",
    "Clock",
    "FakeClock",
    "Leadership",
    "LeadershipFactory",
    "Scheduler",
    "SystemClock",
]
