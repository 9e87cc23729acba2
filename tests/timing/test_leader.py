"""Leader election on a real PostgreSQL: one leader among replicas, takeover when it dies."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from bot.timing.leader import AlwaysLeader, PostgresLeader, leadership_for
from tests.support.pgfixtures import require_postgres

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 0.2

pytestmark = pytest.mark.postgres


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    """Poll until `condition()`; returns the seconds it took (fails the test on timeout)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


class Recorder:
    """Counts elections and losses."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def elected(self) -> None:
        self.log.append("elected")

    def lost(self) -> None:
        self.log.append("lost")


@pytest.fixture
def lock_name() -> str:
    """A lock name no other test (or test run) uses."""
    return f"gonogo-test-{secrets.token_hex(6)}"


@pytest.fixture
def leaders(lock_name: str) -> Iterator[Callable[[], tuple[PostgresLeader, Recorder]]]:
    """Make started PostgresLeaders on `lock_name`; all stopped afterwards."""
    dsn = require_postgres()
    made: list[PostgresLeader] = []

    def make() -> tuple[PostgresLeader, Recorder]:
        rec = Recorder()
        leader = PostgresLeader(
            dsn, name=lock_name, retry_interval=INTERVAL, on_elected=rec.elected, on_lost=rec.lost
        )
        leader.start()
        made.append(leader)
        return leader, rec

    yield make
    for leader in made:
        leader.stop()


def test_exactly_one_of_two_leads(leaders: Callable[[], tuple[PostgresLeader, Recorder]]) -> None:
    (a, ra), (b, rb) = leaders(), leaders()
    wait_for(lambda: a.is_leader() or b.is_leader())
    time.sleep(5 * INTERVAL)  # followers keep retrying: still exactly one
    assert [a.is_leader(), b.is_leader()].count(True) == 1
    assert sorted([ra.log, rb.log]) == [[], ["elected"]]


def test_stop_releases_leadership_promptly(leaders: Callable[[], tuple[PostgresLeader, Recorder]]) -> None:
    (a, ra), (b, rb) = leaders(), leaders()
    wait_for(lambda: a.is_leader() or b.is_leader())
    first, first_rec, second, second_rec = (a, ra, b, rb) if a.is_leader() else (b, rb, a, ra)
    started = time.monotonic()
    first.stop()
    assert time.monotonic() - started < 1.0
    assert not first.is_leader() and first_rec.log == ["elected", "lost"]
    assert wait_for(second.is_leader, timeout=5) < 5 * INTERVAL + 1
    assert second_rec.log == ["elected"]


def test_follower_takes_over_when_the_leader_process_is_killed(
    leaders: Callable[[], tuple[PostgresLeader, Recorder]], lock_name: str
) -> None:
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from bot.timing.leader import PostgresLeader;"
        "PostgresLeader(sys.argv[2], name=sys.argv[3], retry_interval=0.2,"
        " on_elected=lambda: print('leader', flush=True)).start();"
        "time.sleep(600)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(ROOT), require_postgres(), lock_name],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "leader"  # blocks until the child is elected
        follower, rec = leaders()
        time.sleep(3 * INTERVAL)
        assert not follower.is_leader() and rec.log == []
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        took = wait_for(follower.is_leader, timeout=10)
        assert took < 5, f"takeover took {took:.2f} s"
        assert rec.log == ["elected"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_dropped_connection_loses_leadership_then_campaigns_again(
    leaders: Callable[[], tuple[PostgresLeader, Recorder]],
) -> None:
    leader, rec = leaders()
    wait_for(leader.is_leader)
    with psycopg.connect(require_postgres(), autocommit=True) as admin:
        lo, hi = leader.key & 0xFFFFFFFF, (leader.key >> 32) & 0xFFFFFFFF
        pids = admin.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s "
            "AND objsubid = 1 AND granted",
            [hi, lo],
        ).fetchall()
        assert len(pids) == 1
        admin.execute("SELECT pg_terminate_backend(%s)", [pids[0][0]])
    wait_for(lambda: rec.log[:2] == ["elected", "lost"], timeout=5)
    wait_for(leader.is_leader, timeout=5)  # reconnected and elected again
    assert rec.log == ["elected", "lost", "elected"]


def test_a_failing_on_elected_hands_leadership_on(
    leaders: Callable[[], tuple[PostgresLeader, Recorder]], lock_name: str
) -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("scheduler would not start")

    bad = PostgresLeader(require_postgres(), name=lock_name, retry_interval=60, on_elected=broken)
    bad.start()
    try:
        wait_for(lambda: bool(calls), timeout=5)  # elected, failed to start leading, resigned
        good, _ = leaders()
        wait_for(good.is_leader, timeout=5)
        assert not bad.is_leader() and calls == [1]
    finally:
        bad.stop()


def test_unreachable_server_means_follower_without_errors() -> None:
    rec = Recorder()
    leader = PostgresLeader(
        "postgresql://postgres@127.0.0.1:1/test", retry_interval=INTERVAL, on_elected=rec.elected
    )
    leader.start()
    time.sleep(3 * INTERVAL)
    assert not leader.is_leader() and rec.log == []
    started = time.monotonic()
    leader.stop()
    assert time.monotonic() - started < 1.0


def test_always_leader() -> None:
    rec = Recorder()
    leader = AlwaysLeader(rec.elected, rec.lost)
    assert not leader.is_leader()
    leader.start()
    leader.start()
    assert leader.is_leader() and rec.log == ["elected"]
    leader.stop()
    leader.stop()
    assert not leader.is_leader() and rec.log == ["elected", "lost"]


def test_leadership_for_picks_by_store_url() -> None:
    rec = Recorder()
    assert isinstance(leadership_for("sqlite:///x.db")(rec.elected, rec.lost), AlwaysLeader)
    pg = leadership_for("postgresql://u@h/db?schema=blue")(rec.elected, rec.lost)
    assert isinstance(pg, PostgresLeader) and pg.name == "gonogo-scheduler:blue"
