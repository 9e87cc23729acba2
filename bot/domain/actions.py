"""The actions behind buttons and checkboxes: what a click asks for (`Button.action`).

Adapters carry them as Slack `action_id`s or console words; `commands.handlers.handle_action`
dispatches them through one table.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What a button or checkbox on a card or alert does."""

    GO = "go"
    NOGO = "nogo"
    TICK = "tick"
    CHECKLIST = "checklist"  # the card's checkboxes (changes as a whole)
    ABORT = "abort"
    RESUME = "resume"
    RUN_AGAIN = "run_again"  # resume, running a step whose host's journal is gone a second time
    ROLLBACK_NOW = "rollback_now"
    HOLD = "hold"
    CONTINUE_MONITORING = "continue_monitoring"  # a window holding on an inconclusive check goes on
    KEEP = "keep"
    SIGNOFF_ROLLBACK = "signoff_rollback"
    SIGNOFF_TICK = "signoff_tick"
    SIGNOFF_CHECKLIST = "signoff_checklist"
    GATE_GO = "gate_go"  # Go at a stage gate
    GATE_NOGO = "gate_nogo"
    RECOVER = "recover"  # a choice after an irreversible step ran: value `<id>:undo|restore|hold`


__all__ = ["Action"]
