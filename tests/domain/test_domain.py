"""The deployment state machine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.deployment import TRANSITIONS, Deployment, Event, IllegalTransition, State, transition

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def pending() -> Deployment:
    return Deployment(env="prod", requester="alice", ref="main", sha=None, created_at=T0, id=1)


def test_happy_path_sets_timestamps() -> None:
    d = transition(pending(), Event.APPROVE, at=T0)
    d = transition(d, Event.START, at=T0)
    assert d.state == State.RUNNING and d.started_at == T0 and d.finished_at is None
    d = transition(d, Event.SUCCEED, at=T0)
    assert d.state == State.SUCCEEDED and d.finished_at == T0


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(Event))
def test_every_pair_follows_the_table(state: State, event: Event) -> None:
    d = Deployment(env="prod", requester="a", ref="m", sha=None, created_at=T0, id=7, state=state)
    target = TRANSITIONS.get((state, event))
    if target is None:
        with pytest.raises(IllegalTransition, match="#7"):
            transition(d, event, at=T0)
    else:
        assert transition(d, event, at=T0).state == target


def test_final_states_only_allow_rollback_marks() -> None:
    for (state, event), _ in TRANSITIONS.items():
        if state in (State.DECLINED, State.CANCELLED, State.EXPIRED, State.ROLLED_BACK):
            pytest.fail(f"{state} should be terminal but allows {event}")
