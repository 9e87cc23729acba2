"""PostgreSQL store with several replicas: two stores (two pools) on one schema race each other.

Also: migrations run by replicas starting together, an unreachable server, a server that drops
connections, and parity checks of the parts of the store contract that `test_store.py` does not
cover (schedules, check results, pruning, heartbeats, filters), run against every backend.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest

from bot.domain.deployment import LIVE_STATES, Deployment, Event, EventRecord, State, transition
from bot.store import (
    ActiveDeploymentExists,
    CheckRecord,
    Schedule,
    StaleDeployment,
    Store,
    StoreError,
    open_store,
)
from bot.store.codec import LIVE_SQL, LIVE_STATE_NAMES
from bot.store.postgres import PostgresStore
from bot.store.postgres_migrations import MIGRATIONS
from runners.base import HostResult
from tests.support.pgfixtures import (
    DisposablePostgresStore,
    drop_schema,
    new_schema_name,
    require_postgres,
    schema_url,
)
from tests.support.stores import STORE_BACKENDS, make_store

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
R = TypeVar("R")

pytestmark = pytest.mark.postgres


def new(env: str = "prod", **kw: object) -> Deployment:
    fields: dict[str, object] = {"requester": "alice", "ref": "main", "sha": "a" * 40, "created_at": T0, **kw}
    return Deployment(env=env, **fields)  # type: ignore[arg-type]


def ev(action: str = "request_deploy", env: str = "prod") -> EventRecord:
    return EventRecord(at=T0, actor="alice", action=action, env=env)


@pytest.fixture
def replicas() -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores with their own pools on one schema, as two replicas of the bot."""
    a = DisposablePostgresStore()
    b = PostgresStore(a.schema_url)
    yield a, b
    b.close()
    a.close()  # drops the schema


def race(n: int, attempt: Callable[[int], R]) -> list[R | BaseException]:
    """Run `attempt(i)` on n threads released together; each result or exception, in order."""
    barrier = threading.Barrier(n)
    out: list[R | BaseException] = [RuntimeError("did not run")] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = attempt(i)
        except BaseException as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


# -- two replicas racing ---------------------------------------------------------------------
def test_concurrent_creates_across_replicas_yield_exactly_one(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    results = race(16, lambda i: (a if i % 2 else b).create_deployment(new(requester=f"u{i}"), ev()))
    created = [r for r in results if isinstance(r, Deployment)]
    refused = [r for r in results if isinstance(r, ActiveDeploymentExists)]
    assert len(created) == 1 and len(refused) == 15, results
    winner = created[0]
    assert all(r.existing is not None and r.existing.id == winner.id for r in refused)
    assert f"#{winner.id} by {winner.requester}" in str(refused[0])
    assert [d.id for d in a.deployments("prod")] == [winner.id]
    assert len(b.events(env="prod")) == 1  # losers left no event behind


def test_concurrent_transitions_with_one_version_have_one_winner(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    d = a.create_deployment(new(checklist=(False,) * 16), ev())

    def tick(i: int) -> Deployment:
        ticked = tuple(j == i for j in range(16))
        return (a if i % 2 else b).transition(replace(d, checklist=ticked), d.version, ev(f"tick-{i}"))

    results = race(16, tick)
    won = [r for r in results if isinstance(r, Deployment)]
    assert len(won) == 1 and sum(isinstance(r, StaleDeployment) for r in results) == 15, results
    assert won[0].version == d.version + 1
    assert b.get(d.id) == won[0]
    winner = won[0].checklist.index(True)
    assert [e.action for e in a.events(deployment_id=d.id)] == ["request_deploy", f"tick-{winner}"]


def test_concurrent_claims_of_a_key_and_a_schedule_have_one_winner(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    claims = race(16, lambda i: (a if i % 2 else b).claim("slack-event-Ev123", T0))
    assert claims.count(True) == 1 and claims.count(False) == 15, claims
    row = a.add_schedule(Schedule(kind="expiry", run_at=T0))
    assert row.id is not None
    taken = race(16, lambda i: (a if i % 2 else b).claim_schedule(row.id, T0))
    assert taken.count(True) == 1 and taken.count(False) == 15, taken
    assert b.pending_schedules() == []


def test_replicas_starting_together_migrate_once() -> None:
    dsn = require_postgres()
    schema = new_schema_name()
    try:
        stores = race(6, lambda i: PostgresStore(schema_url(dsn, schema), max_size=2))
        assert all(isinstance(s, PostgresStore) for s in stores), stores
        with psycopg.connect(dsn, autocommit=True) as conn:
            names = [
                r[0]
                for r in conn.execute(f"SELECT name FROM {schema}.gonogo_migrations ORDER BY name").fetchall()
            ]
        assert names == [name for name, _ in MIGRATIONS]
        first = stores[0]
        assert isinstance(first, PostgresStore)
        first.create_deployment(new(), ev())
        for s in stores:
            assert isinstance(s, PostgresStore)
            assert s.active("prod") is not None
            s.close()
    finally:
        drop_schema(schema)


# -- failures --------------------------------------------------------------------------------
def test_unreachable_server_is_a_clear_store_error_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        PostgresStore("postgresql://gonogo:s3cret@127.0.0.1:1/nothing?connect_timeout=2")
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert message.startswith("cannot connect to PostgreSQL at gonogo@127.0.0.1:1/nothing:"), message
    assert "s3cret" not in message and "\n" not in message


def test_a_bad_url_is_a_store_error_without_the_password() -> None:
    with pytest.raises(
        StoreError, match=r"^invalid PostgreSQL URL u@h:7/db: invalid URI query parameter"
    ) as info:
        open_store("postgresql://u:s3cret@h:7/db?bogus=1")
    assert "s3cret" not in str(info.value)


def test_open_store_with_a_schema_parameter() -> None:
    dsn = require_postgres()
    schema = new_schema_name()
    try:
        store = open_store(schema_url(dsn, schema))
        assert isinstance(store, PostgresStore) and store.schema == schema
        store.close()
        with pytest.raises(StoreError, match="invalid schema name"):
            PostgresStore(schema_url(dsn, "Robert'); DROP TABLE x;--"))
    finally:
        drop_schema(schema)


def test_survives_the_server_dropping_its_connections(replicas: tuple[PostgresStore, PostgresStore]) -> None:
    base, _ = replicas
    # A name of its own (a URL may set it), so only this store's connections are dropped, not
    # those of tests running beside it.
    name = f"gonogo-dropped-{uuid.uuid4().hex[:8]}"
    a = PostgresStore(f"{base.schema_url}&application_name={name}")
    try:
        d = a.create_deployment(new(), ev())
        with psycopg.connect(require_postgres(), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                [name],
            ).fetchall()
        assert killed
        assert a.get(d.id) == d  # the pool checks and replaces dead connections
    finally:
        a.close()


def test_times_come_back_aware_and_equal(replicas: tuple[PostgresStore, PostgresStore]) -> None:
    a, _ = replicas
    berlin = timezone(timedelta(hours=1))
    at = datetime(2026, 11, 23, 11, 0, 0, 123456, tzinfo=berlin)
    d = a.create_deployment(new(created_at=at, started_at=T0), ev())
    got = a.get(d.id)
    assert got == d and got is not None
    assert got.created_at == at and got.created_at.utcoffset() == timedelta(0)  # same instant, in UTC


# -- parity: both backends behave alike --------------------------------------------------------
@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = make_store(request.param, tmp_path)
    yield s
    s.close()


def test_schedules(store: Store) -> None:
    later = store.add_schedule(Schedule(kind="expiry", run_at=T0 + timedelta(hours=1), deployment_id=1))
    soon = store.add_schedule(
        Schedule(kind="monitor", run_at=T0, deployment_id=1, payload={"round": 2, "at": T0})
    )
    other = store.add_schedule(Schedule(kind="monitor", run_at=T0, deployment_id=2))
    assert soon.id is not None and later.id is not None and other.id is not None
    assert [s.id for s in store.pending_schedules()] == [soon.id, other.id, later.id]
    assert [s.id for s in store.pending_schedules(due_before=T0)] == [soon.id, other.id]
    assert store.pending_schedules()[0].payload == {"round": 2, "at": str(T0)}
    assert store.claim_schedule(soon.id, T0) and not store.claim_schedule(soon.id, T0)
    assert store.cancel_schedules(1, "monitor") == 0  # already claimed
    assert store.cancel_schedules(1) == 1
    assert not store.claim_schedule(later.id, T0)  # cancelled
    assert [(s.id, s.state) for s in store.pending_schedules()] == [(other.id, "pending")]


def test_schedule_keys_claimers_and_orphans(store: Store) -> None:
    first = store.add_schedule(Schedule(kind="monitor_round", run_at=T0, deployment_id=1, key="r:1:2"))
    again = store.add_schedule(Schedule(kind="monitor_round", run_at=T0 + timedelta(1), key="r:1:2"))
    assert again.id == first.id and again.run_at == T0  # a replayed add adds nothing
    assert [s.id for s in store.pending_schedules()] == [first.id]
    plain = store.add_schedule(Schedule(kind="expiry", run_at=T0))
    assert first.id is not None and plain.id is not None

    assert store.claim_schedule(first.id, T0, "dead") and store.claim_schedule(plain.id, T0, "dead")
    store.finish_schedule(plain.id, T0)
    orphans = store.orphaned_schedules("alive")
    assert [(o.id, o.state, o.claimed_by, o.key) for o in orphans] == [(first.id, "claimed", "dead", "r:1:2")]
    assert store.orphaned_schedules("dead") == []  # a claimer's own unfinished rows are not orphans
    assert store.reclaim_schedule(first.id, T0, "alive", "dead")
    assert not store.reclaim_schedule(first.id, T0, "other", "dead")  # exactly one takes it over
    assert store.orphaned_schedules("alive") == []
    store.finish_schedule(first.id, T0)
    assert store.orphaned_schedules("anyone") == [] and store.pending_schedules() == []
    assert store.cancel_schedules(1) == 0  # done rows stay done


def test_check_results_and_prune(store: Store) -> None:
    d = store.create_deployment(new(), ev())
    assert d.id is not None
    old = T0 - timedelta(days=40)
    store.record_check_results(
        d.id, "prod", [CheckRecord("health", "http", True, old, observed="200", latency=0.01, round=1)]
    )
    store.record_check_results(
        None, "prod", [CheckRecord("errors", "sql", False, T0, error="too many", round=2, env="prod")]
    )
    store.record_check_results(None, "staging", [CheckRecord("health", "http", True, T0)])
    got = store.check_results(env="prod")
    assert [(c.name, c.ok, c.round, c.deployment_id, c.env) for c in got] == [
        ("errors", False, 2, None, "prod"),
        ("health", True, 1, d.id, "prod"),
    ]
    assert got[1] == CheckRecord("health", "http", True, old, "200", 0.01, None, 1, d.id, "prod")
    assert [c.name for c in store.check_results(deployment_id=d.id)] == ["health"]
    assert [c.name for c in store.check_results(deployment_id=d.id, round=1)] == ["health"]
    assert store.check_results(deployment_id=d.id, round=2) == []
    assert len(store.check_results(limit=1)) == 1

    store.record_host_results(d.id, "deploy", [HostResult("web1", "run", "ok", 0, 1.0, "done")])
    finished = store.transition(transition(d, Event.DECLINE, at=old), d.version)
    assert finished.finished_at == old
    assert store.prune(T0 - timedelta(days=30)) == 2  # one old check, one host result of a finished deploy
    assert store.host_results(d.id) == []
    assert len(store.check_results()) == 2
    assert [e.action for e in store.events(deployment_id=d.id)] == ["request_deploy"]  # events are kept


def test_heartbeat_does_not_bump_the_version_and_fences_a_run_that_is_over(store: Store) -> None:
    created = store.create_deployment(new(), ev())
    assert not store.heartbeat(created.id, T0)  # not running: nothing to prove
    approved = store.transition(transition(created, Event.APPROVE, at=T0), created.version)
    d = store.transition(transition(approved, Event.START, at=T0), approved.version)
    assert store.heartbeat(d.id, T0 + timedelta(seconds=5))
    got = store.get(d.id)
    assert got is not None and got.version == d.version
    assert got.heartbeat_at == T0 + timedelta(seconds=5)
    store.transition(replace(got, progress="1/3"), d.version)  # a heartbeat never makes a write stale
    interrupted = store.get(d.id)
    assert interrupted is not None
    store.transition(transition(interrupted, Event.INTERRUPT, at=T0), interrupted.version)
    assert not store.heartbeat(d.id, T0 + timedelta(seconds=10))


def test_filters_and_event_queries(store: Store) -> None:
    ids = []
    for i in range(5):
        d = store.create_deployment(new(ref=f"v{i}", kind="rollback" if i == 3 else "deploy"), ev())
        ids.append(d.id)
        store.transition(transition(d, Event.CANCEL, at=T0 + timedelta(minutes=i)), d.version)
    assert [d.id for d in store.deployments("prod", limit=2)] == ids[:-3:-1]
    assert [d.id for d in store.deployments("prod", before_id=ids[2])] == [ids[1], ids[0]]
    assert [d.id for d in store.deployments(kind="rollback")] == [ids[3]]
    assert [d.id for d in store.deployments(states=[State.CANCELLED, State.FAILED], limit=1)] == [ids[4]]
    assert store.deployments("staging") == []
    e = store.append_event(EventRecord(at=T0 + timedelta(hours=1), actor="bob", action="hold", env="prod"))
    assert e.id is not None and e.action == "hold"
    assert [x.id for x in store.events(since=T0 + timedelta(minutes=30))] == [e.id]
    assert len(store.events(limit=3)) == 3
    assert store.events()[-1] == e


def test_current_release_reads_its_partial_index(replicas: tuple[PostgresStore, PostgresStore]) -> None:
    a, _ = replicas
    assert set(LIVE_STATE_NAMES) == {
        s.value for s in LIVE_STATES
    }  # the index predicate names every live state
    with a._tx() as conn:  # SET LOCAL: the pooled connection goes back unchanged
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT * FROM deployments WHERE env = 'prod' AND NOT dry_run "
            f"AND state IN {LIVE_SQL} ORDER BY finished_at IS NULL DESC, finished_at DESC, id DESC LIMIT 1"
        ).fetchall()
    text = "\n".join(str(row["QUERY PLAN"]) for row in plan)
    assert "deployments_live" in text and "Sort" not in text, text


def test_times_in_any_offset_filter_and_order_as_instants(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    early = store.append_event(EventRecord(at=T0, actor="a", action="one"))
    late = store.append_event(
        EventRecord(at=(T0 + timedelta(minutes=30)).astimezone(paris), actor="a", action="two")
    )
    # 10:15 UTC written as 11:15+01:00: as text it sorts after 10:30Z, as an instant before it
    since = (T0 + timedelta(minutes=15)).astimezone(paris)
    assert [e.id for e in store.events(since=since)] == [late.id]
    assert [e.id for e in store.events(since=T0.astimezone(paris))] == [early.id, late.id]


def test_prune_forgets_old_idempotency_keys_and_finished_schedules(store: Store) -> None:
    old = T0 - timedelta(days=40)
    assert store.claim("slack:event:Ev1", old) and store.claim("slack:event:Ev2", T0)
    done = store.add_schedule(Schedule(kind="expiry", run_at=old))
    kept_pending = store.add_schedule(Schedule(kind="expiry", run_at=old, deployment_id=7))
    recent = store.add_schedule(Schedule(kind="expiry", run_at=T0))
    assert done.id is not None and recent.id is not None
    for s in (done, recent):
        assert s.id is not None and store.claim_schedule(s.id, s.run_at, "me")
        store.finish_schedule(s.id, s.run_at)
    assert store.prune(T0 - timedelta(days=30)) == 2  # one key, one finished schedule
    assert store.claim("slack:event:Ev1", T0)  # forgotten: a delivery that old is not a retry
    assert not store.claim("slack:event:Ev2", T0)
    assert [s.id for s in store.pending_schedules()] == [kept_pending.id]  # pending work is kept
    assert store.orphaned_schedules("anyone") == []
