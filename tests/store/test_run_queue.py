"""The run queue in the store: queued runs claimed exactly once, across replicas on PostgreSQL.

Every contract test runs on both stores; the races run on real PostgreSQL with one pool per
replica (as separate `gonogo serve` processes would have).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.deployment import Deployment, Event, EventRecord, State, transition
from bot.store import Store
from bot.store.postgres import PostgresStore
from tests.support.pgfixtures import DisposablePostgresStore
from tests.support.stores import STORE_BACKENDS, make_store

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = make_store(request.param, tmp_path)
    yield s
    s.close()


def approved(store: Store, env: str = "prod", at: datetime = T0) -> Deployment:
    """A deployment in `approved` (what the APPROVED hook queues)."""
    d = Deployment(env=env, requester="alice", ref="v1", sha="a" * 40, created_at=at, state=State.APPROVED)
    return store.create_deployment(d, EventRecord(at=at, actor="alice", action="request", env=env))


def move(store: Store, d: Deployment, event: Event) -> Deployment:
    fresh = store.get(d.id)
    assert fresh is not None
    return store.transition(transition(fresh, event, at=T0), fresh.version)


def test_a_queued_run_is_claimed_once_and_leaves_the_queue_when_it_starts(store: Store) -> None:
    d = approved(store)
    assert store.enqueue_run(d.id, State.APPROVED, T0)
    assert store.enqueue_run(d.id, State.APPROVED, T0)  # queued twice: still one run
    assert store.claim_run("replica-a", T0, T0) == d.id
    assert store.claim_run("replica-b", T0, T0) is None  # held by a
    assert store.claim_run("replica-a", LATER, LATER) is None  # a never claims its own twice
    move(store, d, Event.START)  # the run started: it left the queue with the transition
    assert store.claim_run("replica-b", LATER, LATER) is None  # even a "stale" claim is gone


def test_a_claim_nobody_started_is_taken_over_once_it_is_stale(store: Store) -> None:
    d = approved(store)
    store.enqueue_run(d.id, State.APPROVED, T0)
    assert store.claim_run("died-before-starting", T0, T0) == d.id
    assert store.claim_run("replica-b", T0 + timedelta(seconds=1), T0 - timedelta(seconds=1)) is None
    assert store.claim_run("replica-b", LATER, T0 + timedelta(seconds=1)) == d.id
    assert store.claim_run("replica-c", LATER, T0 + timedelta(seconds=1)) is None  # b's claim is fresh


def test_no_run_is_queued_for_a_state_its_deployment_is_not_in(store: Store) -> None:
    d = approved(store)
    assert not store.enqueue_run(d.id, State.INTERRUPTED, T0)  # a Resume of a run that is not interrupted
    assert not store.enqueue_run(d.id + 1000, State.APPROVED, T0)  # no such deployment
    assert store.claim_run("replica-a", T0, T0) is None


def test_a_run_whose_deployment_moved_on_is_never_claimed(store: Store) -> None:
    d = approved(store)
    store.enqueue_run(d.id, State.APPROVED, T0)
    move(store, d, Event.CANCEL)
    assert store.claim_run("replica-a", T0, T0) is None


def test_a_resumed_run_is_queued_again_and_an_unstarted_claim_can_be_released(store: Store) -> None:
    d = approved(store)
    store.enqueue_run(d.id, State.APPROVED, T0)
    assert store.claim_run("replica-a", T0, T0) == d.id
    move(store, d, Event.START)
    move(store, d, Event.INTERRUPT)
    assert store.claim_run("replica-b", LATER, LATER) is None  # interrupted: waits for a human's Resume
    assert store.enqueue_run(d.id, State.INTERRUPTED, T0)  # Resume
    assert store.claim_run("replica-b", T0, T0) == d.id
    store.release_run(d.id, "replica-c")  # not c's claim: nothing happens
    assert store.claim_run("replica-c", T0, T0) is None
    store.release_run(d.id, "replica-b")  # b's worker ended without starting it
    assert store.claim_run("replica-c", T0, T0) is None  # released runs are not queued any more


def test_runs_are_claimed_in_the_order_they_were_queued(store: Store) -> None:
    runs = [approved(store, env=f"env{i}") for i in range(4)]
    for i, d in enumerate(reversed(runs)):
        store.enqueue_run(d.id, State.APPROVED, T0 + timedelta(seconds=i))
    claimed = [store.claim_run("replica-a", LATER, LATER) for _ in runs]
    assert claimed == [d.id for d in reversed(runs)]
    assert store.claim_run("replica-a", LATER, LATER) is None


# -- replicas on PostgreSQL ----------------------------------------------------------------------
@pytest.mark.postgres
def test_replicas_claiming_at_once_take_every_run_exactly_once() -> None:
    primary = DisposablePostgresStore()
    replicas: list[PostgresStore] = [primary, *(PostgresStore(primary.schema_url) for _ in range(3))]
    try:
        runs = [approved(primary, env=f"env{i}") for i in range(60)]
        for i, d in enumerate(runs):
            primary.enqueue_run(d.id, State.APPROVED, T0 + timedelta(milliseconds=i))
        claims: list[tuple[str, int]] = []
        lock = threading.Lock()
        barrier = threading.Barrier(12)

        def claimer(i: int) -> None:
            store, owner = replicas[i % len(replicas)], f"replica-{i % len(replicas)}-worker-{i}"
            barrier.wait()
            while (got := store.claim_run(owner, T0, T0)) is not None:
                with lock:
                    claims.append((owner, got))

        threads = [threading.Thread(target=claimer, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        counts = Counter(run for _, run in claims)
        assert sorted(counts) == sorted(d.id for d in runs)  # no run lost
        assert set(counts.values()) == {1}  # and none claimed twice
        assert len({owner for owner, _ in claims}) > 1  # the claimers shared the work
    finally:
        for replica in replicas[1:]:
            replica.close()
        primary.close()


@pytest.mark.postgres
def test_queuing_a_run_wakes_the_other_replicas() -> None:
    primary = DisposablePostgresStore()
    other = PostgresStore(primary.schema_url)
    try:
        woken = threading.Event()
        other.on_run_queued(woken.set)
        time.sleep(0.3)  # the listener connects, LISTENs, then wakes once for what it missed
        woken.wait(5)
        woken.clear()
        d = approved(primary)
        primary.enqueue_run(d.id, State.APPROVED, T0)
        assert woken.wait(5), "no NOTIFY reached the other replica"
        assert other.claim_run("replica-b", T0, T0) == d.id
    finally:
        other.close()
        primary.close()
