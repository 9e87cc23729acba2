"""The store contract, run against every backend."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.domain.deployment import Deployment, Event, EventRecord, Lock, State, transition
from bot.domain.details import Details
from bot.store import ActiveDeploymentExists, StaleDeployment, Store
from runners.base import HostResult
from tests.support.stores import STORE_BACKENDS, make_store

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    s = make_store(request.param, tmp_path)
    yield s
    s.close()


def new(env: str = "prod", **kw: object) -> Deployment:
    fields: dict[str, object] = {"requester": "alice", "ref": "main", "sha": "a" * 40, "created_at": T0, **kw}
    return Deployment(env=env, **fields)  # type: ignore[arg-type]


def ev(action: str = "request_deploy", env: str = "prod") -> EventRecord:
    return EventRecord(at=T0, actor="alice", action=action, env=env)


def test_create_assigns_id_and_round_trips_every_field(store: Store) -> None:
    d = new(
        reason="fix login", checklist=(True, False), details=Details(changelog=("abc fix",)), committed_at=T0
    )
    saved = store.create_deployment(d, ev())
    assert saved.id is not None
    got = store.get(saved.id)
    assert got == saved
    assert got.checklist == (True, False)
    assert got.details == Details(changelog=("abc fix",))
    assert got.committed_at == T0
    assert [e.action for e in store.events(deployment_id=saved.id)] == ["request_deploy"]


def test_one_active_deployment_per_environment(store: Store) -> None:
    first = store.create_deployment(new(), ev())
    with pytest.raises(ActiveDeploymentExists) as info:
        store.create_deployment(new(), ev())
    assert info.value.existing is not None and info.value.existing.id == first.id
    store.create_deployment(new(env="staging"), ev(env="staging"))  # other envs are free
    # a dry run never holds the environment
    store.create_deployment(new(dry_run=True), ev())
    # once the first is finished, the env is free again
    done = transition(first, Event.DECLINE, at=T0)
    store.transition(done, first.version)
    store.create_deployment(new(), ev())


def test_concurrent_creates_yield_exactly_one(store: Store) -> None:
    results: list[object] = []

    def attempt() -> None:
        try:
            results.append(store.create_deployment(new(), ev()))
        except ActiveDeploymentExists as exc:
            results.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, Deployment) for r in results) == 1


def test_transition_is_compare_and_set(store: Store) -> None:
    d = store.create_deployment(new(), ev())
    a = store.transition(replace(d, checklist=(True,)), d.version, ev("checklist"))
    assert a.version == d.version + 1
    with pytest.raises(StaleDeployment):
        store.transition(replace(d, checklist=(False,)), d.version, ev("checklist"))
    assert store.get(d.id).checklist == (True,)  # type: ignore[arg-type,union-attr]
    # the failed write left no event behind
    assert [e.action for e in store.events(deployment_id=d.id)] == ["request_deploy", "checklist"]


def test_current_release_is_the_newest_live_deployment(store: Store) -> None:
    assert store.current_release("prod") is None
    d1 = store.create_deployment(new(), ev())
    d1 = store.transition(
        transition(
            transition(transition(d1, Event.APPROVE, at=T0), Event.START, at=T0), Event.SUCCEED, at=T0
        ),
        d1.version,
    )
    d2 = store.create_deployment(new(ref="v2"), ev())
    assert store.current_release("prod").id == d1.id
    d2 = store.transition(transition(d2, Event.DECLINE, at=T0), d2.version)
    assert store.current_release("prod").id == d1.id
    assert [d.id for d in store.deployments("prod")] == [d2.id, d1.id]
    assert [d.id for d in store.deployments("prod", states=[State.SUCCEEDED])] == [d1.id]


def test_locks(store: Store) -> None:
    lock = Lock(env="prod", owner="alice", reason="incident", at=T0)
    assert store.set_lock(lock, ev("lock"))
    assert not store.set_lock(replace(lock, owner="bob"), ev("lock"))
    assert store.get_lock("prod") == lock
    assert store.locks() == [lock]
    assert store.clear_lock("prod", ev("unlock")) == lock
    assert store.clear_lock("prod", ev("unlock")) is None
    assert [e.action for e in store.events(env="prod")] == ["lock", "unlock"]


def test_idempotency_keys_claim_once(store: Store) -> None:
    assert store.claim("evt-1", T0)
    assert not store.claim("evt-1", T0)
    assert store.claim("evt-2", T0)


def test_host_results(store: Store) -> None:
    d = store.create_deployment(new(), ev())
    store.record_host_results(
        d.id,
        "deploy",
        [
            HostResult("web1", "migrate", "ok", 0, 1.5, "done"),
            HostResult("web2", "migrate", "failed", 2, 0.5, "boom"),
        ],
    )
    rows = store.host_results(d.id)
    assert [(r["host"], r["status"], r["exit_code"]) for r in rows] == [
        ("web1", "ok", 0),
        ("web2", "failed", 2),
    ]


def test_state_survives_reopening(tmp_path: Path) -> None:
    s = make_store("sqlite", tmp_path)
    d = s.create_deployment(new(), ev())
    s.close()
    s2 = make_store("sqlite", tmp_path)
    assert s2.get(d.id) == d
    s2.close()
