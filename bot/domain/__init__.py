"""The domain: deployments and their state machine, what they record, cards as data, deploy
windows, DORA figures, durations. Pure: imports nothing but the standard library and itself."""

from bot.domain.actions import Action
from bot.domain.card import Button, Card, ChecklistItem
from bot.domain.deployment import UNSAVED, Approval, Deployment, EventRecord, Lock, transition
from bot.domain.details import Alert, Cursor, Details, Live, Reopened, RollbackClaim, Signoff, StageTally
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
    "Cursor",
    "Deployment",
    "Details",
    "Event",
    "EventRecord",
    "IllegalTransition",
    "Kind",
    "KindRules",
    "Live",
    "Lock",
    "Refused",
    "Reopened",
    "RollbackClaim",
    "Signoff",
    "StageTally",
    "State",
    "format_duration",
    "transition",
]
