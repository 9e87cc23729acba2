"""The domain: deployments and their state machine, what they record, cards as data, deploy
windows, DORA figures, durations. Pure: imports nothing but the standard library and itself."""

from bot.domain.actions import Action
from bot.domain.card import Button, Card, ChecklistItem, Link
from bot.domain.deployment import UNSAVED, Approval, Deployment, EventRecord, Lock, transition
from bot.domain.details import (
    Alert,
    CiStatus,
    Cursor,
    Details,
    Gate,
    Live,
    Reopened,
    RollbackClaim,
    Signoff,
    StepRun,
)
from bot.domain.durations import format_duration
from bot.domain.errors import Refused
from bot.domain.kinds import DEPLOY, ROLLBACK, Kind, KindRules
from bot.domain.states import (
    ACTIVE_STATES,
    FINAL_STATES,
    LIVE_STATES,
    STATE_ICON,
    TRANSITIONS,
    Event,
    IllegalTransition,
    State,
)
from bot.domain.tally import StageTally

__all__ = [
    "ACTIVE_STATES",
    "DEPLOY",
    "FINAL_STATES",
    "LIVE_STATES",
    "ROLLBACK",
    "STATE_ICON",
    "TRANSITIONS",
    "UNSAVED",
    "Action",
    "Alert",
    "Approval",
    "Button",
    "Card",
    "ChecklistItem",
    "CiStatus",
    "Cursor",
    "Deployment",
    "Details",
    "Event",
    "EventRecord",
    "Gate",
    "IllegalTransition",
    "Kind",
    "KindRules",
    "Link",
    "Live",
    "Lock",
    "Refused",
    "Reopened",
    "RollbackClaim",
    "Signoff",
    "StageTally",
    "State",
    "StepRun",
    "format_duration",
    "transition",
]
