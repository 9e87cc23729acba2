"""The life of a run: heartbeats through verify and shutdown, fencing, replicas with skewed
clocks, the shutdown limit, live output, skipped hosts and what happens to interrupted runs.

Real SQLite and PostgreSQL, the local backend running real shell commands.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Config, parse_config
from bot.domain.deployment import Event, State, transition
from bot.domain.details import Cursor
from bot.engine import Engine, Refused
from bot.source import NullResolver, Resolution
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from bot.timing.clock import FakeClock, SystemClock
from bot.timing.leader import leadership_for
from tests.support.engines import make_engine, wait_for
from tests.support.pgfixtures import DisposablePostgresStore
from tests.support.recording import RecordingChat

CONFIG = """
[bot]
data_dir = "{data}"
heartbeat_interval = "0.2s"
[environments.prod]
backend = "local"
hosts = ["h1", "h2", "h3"]
on_call = ["carol"]
{env_keys}
[environments.prod.strategy]
kind = "sequential"
[[environments.prod.steps.deploy]]
name = "ship"
run = "echo start-{{host}} >> {data}/log && {step} && echo end-{{host}} >> {data}/log"
[[environments.prod.steps.rollback]]
name = "back"
run = "echo back-{{release_id}} >> {data}/log"
"""


def make_config(tmp_path: Path, step: str = "true", extra: str = "", env_keys: str = "") -> Config:
    """The test environment: `step` in its deploy step, `env_keys` in its table, `extra` tables after."""
    text = CONFIG.format(data=tmp_path, step=step, env_keys=env_keys) + extra
    return parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})


def log_lines(tmp_path: Path) -> list[str]:
    path = tmp_path / "log"
    return path.read_text().split() if path.exists() else []


class AheadClock(SystemClock):
    """A replica whose wall clock runs a minute ahead of everyone else's."""

    def now(self):  # type: ignore[no-untyped-def]
        return super().now() + timedelta(seconds=60)


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for e in made:
        e.shutdown(grace=10)
        e.store.close()


def replica(config: Config, url: str, clock: SystemClock | None = None) -> Engine:
    """One replica on the PostgreSQL at `url`, with its own pool and leader election."""
    return make_engine(
        config,
        PostgresStore(url),
        RecordingChat(),
        clock=clock,
        leadership=leadership_for(url, retry_interval=0.2),
    )


def ship(e: Engine, ref: str = "v1") -> int:
    d = e.request_deploy("alice", "#d", "prod", ref)
    assert d.id is not None
    e.approve("bob", d.id)
    return d.id


#: A step that hangs (for 3 s) while the file `hang` exists.
HANG = "if [ -e {data}/hang ]; then sleep 3; fi"


def interrupt_a_deploy(e: Engine, tmp_path: Path, ref: str) -> int:
    """Start a deploy whose step hangs, then shut `e` down without waiting: it is interrupted."""
    (tmp_path / "hang").touch()
    d = ship(e, ref)
    wait_for(lambda: log_lines(tmp_path).count("start-h1") == 2, what="the hanging step started")
    e.shutdown(grace=0.2)
    (tmp_path / "hang").unlink()
    assert e.store.get(d).state == State.INTERRUPTED  # type: ignore[union-attr]
    return d


def actions(e: Engine, deployment_id: int) -> list[str]:
    return [ev.action for ev in e.store.events(deployment_id=deployment_id)]


# -- heartbeats ------------------------------------------------------------------------------


def test_slow_smoke_checks_keep_the_run_alive(tmp_path: Path, engines: list[Engine]) -> None:
    checks = """
[[environments.prod.checks]]
name = "slow smoke"
type = "command"
command = "sleep 2"
"""
    config = make_config(tmp_path, extra=checks)
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    engines.append(e)
    e.start()
    d = ship(e)
    assert e.wait_idle(60)
    # verify ran for 10 heartbeat intervals; the run's own watchdog never declared it dead
    assert e.deployment(d).state == State.SUCCEEDED
    assert "interrupt" not in actions(e, d)


def test_a_replica_waits_for_a_shutting_down_peer_to_finish_its_step(
    tmp_path: Path, engines: list[Engine]
) -> None:
    schema = DisposablePostgresStore()
    try:
        url = schema.schema_url
        config = make_config(tmp_path, step="sleep 2")
        a, b = replica(config, url), replica(config, url)
        engines.extend([a, b])
        a.start()
        d = ship(a)
        wait_for(lambda: "start-h1" in log_lines(tmp_path), what="the first host started")
        b.start()  # after a claimed the run (started earlier, b's free worker could have taken it)
        a.shutdown(grace=20)  # the step outlives the stale limit (0.6 s) many times over
        interrupted = a.deployment(d)
        assert interrupted.state == State.INTERRUPTED
        assert interrupted.error == "the bot shut down during the deployment"  # a's own record, not b's
        assert actions(a, d).count("interrupt") == 1
        assert log_lines(tmp_path) == ["start-h1", "end-h1"]  # nobody ran the step a second time
    finally:
        schema.close()


def test_a_replica_whose_clock_runs_ahead_never_interrupts_a_live_run(
    tmp_path: Path, engines: list[Engine]
) -> None:
    schema = DisposablePostgresStore()
    try:
        url = schema.schema_url
        config = make_config(tmp_path, step="sleep 1")
        a = replica(config, url)
        engines.append(a)
        a.start()
        d = ship(a)
        wait_for(lambda: "start-h1" in log_lines(tmp_path), what="the first host started")
        b = replica(config, url, clock=AheadClock())
        engines.append(b)
        b.start()  # to b's clock, a's heartbeat is a minute old
        assert a.wait_idle(60)
        assert a.deployment(d).state == State.SUCCEEDED
        assert "interrupt" not in actions(a, d)
        assert log_lines(tmp_path).count("start-h1") == 1
    finally:
        schema.close()


def test_a_run_declared_interrupted_elsewhere_stops_and_writes_nothing_more(
    tmp_path: Path, engines: list[Engine]
) -> None:
    config = make_config(tmp_path, step="sleep 1")
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    engines.append(e)
    e.start()
    d = ship(e)
    wait_for(lambda: "start-h1" in log_lines(tmp_path), what="the first host started")
    # Another process decides this run is dead (as a replica would) while h1's step runs.
    other = SqliteStore(tmp_path / "db.sqlite")
    running = other.get(d)
    assert running is not None and running.state == State.RUNNING
    other.transition(transition(running, Event.INTERRUPT, at=running.created_at), running.version)
    other.close()
    version = e.deployment(d).version
    assert e.wait_idle(30)
    assert log_lines(tmp_path) == ["start-h1", "end-h1"]  # h2 and h3 never started
    final = e.deployment(d)
    assert final.state == State.INTERRUPTED and final.version == version  # nothing written after
    assert "fail" not in actions(e, d) and "succeed" not in actions(e, d)


# -- shutdown --------------------------------------------------------------------------------


def test_shutdown_does_not_wait_past_its_limit_and_leaves_a_resumable_record(
    tmp_path: Path, engines: list[Engine]
) -> None:
    config = make_config(tmp_path, step="sleep 3")
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    e.start()
    d = ship(e)
    wait_for(lambda: "start-h1" in log_lines(tmp_path), what="the first host started")
    e.shutdown(grace=0.5)
    record = e.store.get(d)
    assert record is not None and record.state == State.INTERRUPTED
    assert record.error == (
        "the bot shut down and its step did not finish within 0.5s; given up and stopped on the host (h1: stopped)"
    )
    assert record.details.cursor == Cursor("deploy", 0, 0)  # Resume redoes the step
    time.sleep(4)
    assert log_lines(tmp_path) == ["start-h1"]  # the abandoned step was stopped, not left running
    assert e.store.get(d) == record  # and its worker wrote nothing afterwards
    e.store.close()


def test_an_interrupted_deploy_is_announced_again_and_can_be_rolled_back_or_given_up(
    tmp_path: Path, engines: list[Engine]
) -> None:
    config = make_config(tmp_path, step=HANG.format(data=tmp_path))
    first = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    first.start()
    good = ship(first, "v1")
    assert first.wait_idle(30) and first.deployment(good).state == State.SUCCEEDED
    second_id = interrupt_a_deploy(first, tmp_path, "v2")
    first.store.close()

    chat = RecordingChat()
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), chat)
    engines.append(e)
    e.start()
    alert = chat.of_kind("message")[-1]
    assert "#2 of v2 to prod is still interrupted: the bot shut down" in alert.text, alert.text
    assert [b.label for b in alert.buttons] == ["Resume", "Roll back"]
    assert set(alert.mentions) == {"alice", "carol"}
    # /rollback with the env held by the interrupted deploy puts the last good release back
    rollback = e.request_rollback("bob", "#d", "prod")
    assert e.wait_idle(30)
    assert rollback.kind == "rollback" and rollback.release_id == good
    assert e.deployment(second_id).state == State.ROLLED_BACK
    assert log_lines(tmp_path)[-1] == f"back-{good}"


def test_abort_gives_up_an_interrupted_deploy_and_offers_a_rollback(
    tmp_path: Path, engines: list[Engine]
) -> None:
    config = make_config(tmp_path, step=HANG.format(data=tmp_path))
    first = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    first.start()
    assert ship(first, "v1") and first.wait_idle(30)
    interrupt_a_deploy(first, tmp_path, "v2")
    first.store.close()
    chat = RecordingChat()
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), chat)
    engines.append(e)
    e.start()
    announced = chat.of_kind("message")[-1]  # "still interrupted", with Resume / Roll back
    gave_up = e.abort("bob", "prod")
    assert gave_up.state == State.FAILED and gave_up.error == "given up by bob"
    assert e.store.active("prod") is None  # the environment is free again
    settled = chat.message(announced.ts)  # type: ignore[arg-type]
    assert settled.buttons == () and settled.text.endswith("🛑 Given up by bob.")
    offer = chat.of_kind("message")[-1]
    assert [b.label for b in offer.buttons] == ["Roll back now"]  # no automatic rollback to hold
    e.rollback_failed("carol", gave_up.id)
    assert e.wait_idle(30)
    done = chat.message(offer.ts)  # type: ignore[arg-type]
    assert done.buttons == () and done.text.endswith("↩️ Rollback #3 to #1 started by carol.")


def test_hold_keeps_only_roll_back_now_on_the_alert(tmp_path: Path, engines: list[Engine]) -> None:
    config = make_config(
        tmp_path, step="test {ref} != v2", env_keys='auto_rollback = true\nrollback_grace = "1h"'
    )
    chat = RecordingChat()
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), chat)
    engines.append(e)
    e.start()
    assert ship(e, "v1") and e.wait_idle(30)
    bad = ship(e, "v2")
    assert e.wait_idle(30) and e.deployment(bad).state == State.FAILED
    alert = chat.of_kind("message")[-1]
    assert [b.label for b in alert.buttons] == ["Roll back now", "Hold"]
    e.hold("bob", bad)
    held = chat.message(alert.ts)  # type: ignore[arg-type]
    assert [b.label for b in held.buttons] == ["Roll back now"]
    assert held.text.endswith("✋ Held by bob: no automatic rollback.")
    with pytest.raises(Refused, match="nothing to hold"):
        e.hold("carol", bad)


# -- live output and skipped hosts ---------------------------------------------------------


def test_output_is_streamed_into_the_record_while_the_step_runs(
    tmp_path: Path, engines: list[Engine]
) -> None:
    step = "for i in 1 2 3 4 5 6; do echo line$i; sleep 0.5; done"
    config = make_config(tmp_path, step=step)
    one_host = replace(config.environments["prod"], hosts=config.environments["prod"].hosts[:1])
    config = replace(config, environments={"prod": one_host})
    chat = RecordingChat()
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), chat)
    engines.append(e)
    e.start()
    d = ship(e)
    seen: set[str] = set()

    def live() -> bool:
        live = e.deployment(d).details.live
        tail = live.hosts.get("h1") if live else None
        if tail:
            seen.add(tail)
        return len(seen) >= 2

    wait_for(live, what="two live tails")
    assert seen <= {f"line{i}" for i in range(1, 7)}
    cards = [m.card for m in chat.of_kind("update") if m.card is not None]
    assert any(any(line.startswith("h1 │ line") for line in c.lines) for c in cards)
    assert e.wait_idle(30)
    done = e.deployment(d)
    assert done.state == State.SUCCEEDED and done.details.live is None  # cleared when the step ended


def test_a_failure_names_the_hosts_it_never_reached(tmp_path: Path, engines: list[Engine]) -> None:
    config = make_config(tmp_path, step="test {host} != h1")
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    engines.append(e)
    e.start()
    d = ship(e)
    assert e.wait_idle(30)
    failed = e.deployment(d)
    assert failed.state == State.FAILED
    assert failed.error is not None and failed.error.endswith("; not started on h2, h3 (2 hosts)")


# -- policies at the moment they matter ------------------------------------------------------


def test_rollback_never_targets_a_release_that_failed_and_was_rolled_back(
    tmp_path: Path, engines: list[Engine]
) -> None:
    config = make_config(tmp_path, step="test {ref} != v2")
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    engines.append(e)
    e.start()
    first = ship(e, "v1")
    assert e.wait_idle(30)
    bad = e.deployment(ship(e, "v2"))
    assert e.wait_idle(30)
    bad = e.deployment(bad.id)
    assert bad.state == State.FAILED
    e.store.transition(transition(bad, Event.ROLL_BACK, at=bad.created_at), bad.version)  # as undone
    ship(e, "v3")
    assert e.wait_idle(30)
    with pytest.raises(Refused, match="is not a successful deploy"):
        e.request_rollback("bob", "#d", "prod", target_id=bad.id)
    rollback = e.request_rollback("bob", "#d", "prod")
    assert rollback.release_id == first  # not v2


def test_hold_is_refused_when_no_automatic_rollback_waits(tmp_path: Path, engines: list[Engine]) -> None:
    config = make_config(tmp_path)
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    engines.append(e)
    e.start()
    d = ship(e)
    assert e.wait_idle(30)
    with pytest.raises(Refused, match="nothing to hold"):
        e.hold("bob", d)


def test_a_no_go_from_someone_who_may_not_approve_changes_nothing(
    tmp_path: Path, engines: list[Engine]
) -> None:
    extra = '[environments.prod.approvals]\nrequired = 1\napprovers = ["bob"]\n'
    config = make_config(tmp_path, extra=extra, env_keys='approval_ttl = "1h"')
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat())
    engines.append(e)
    e.start()
    d = e.request_deploy("alice", "#d", "prod", "v1")
    with pytest.raises(Refused):
        e.decline("mallory", d.id)
    assert [s.kind for s in e.store.pending_schedules() if s.deployment_id == d.id] == ["approval_expiry"]
    assert "refused_decline" in actions(e, d.id)


def test_go_outside_the_window_is_refused_even_if_the_card_was_posted_inside(
    tmp_path: Path, engines: list[Engine]
) -> None:
    config = make_config(tmp_path, env_keys='windows = ["Mon-Thu 09:00-16:00"]')
    clock = FakeClock(datetime(2026, 11, 26, 15, 50, tzinfo=UTC))  # a Thursday, ten minutes left
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat(), clock=clock)
    engines.append(e)
    d = e.request_deploy("alice", "#d", "prod", "v1")
    clock.advance(minutes=40)
    with pytest.raises(Refused, match=r"outside deploy windows.*next window opens Mon 2026-11-30 09:00"):
        e.approve("bob", d.id)
    assert e.deployment(d.id).state == State.PENDING
    assert "refused_approve" in actions(e, d.id)
    assert log_lines(tmp_path) == []  # nothing ran


# -- the record afterwards -----------------------------------------------------------------


class CommittedTwoHoursBefore(NullResolver):
    """Refs as labels, each committed two hours before it is requested."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def resolve(self, env: str, ref: str | None, current_sha: str | None, *, force: bool) -> Resolution:
        return replace(
            super().resolve(env, ref, current_sha, force=force), committed_at=self.clock.now() - 2 * HOUR
        )


HOUR = timedelta(hours=1)


def test_stats_measure_to_going_live_and_count_a_failed_then_undone_deploy_as_a_failure(
    tmp_path: Path, engines: list[Engine]
) -> None:
    monitored = """
[environments.prod.monitor]
interval = "60s"
duration = "600s"
[[environments.prod.checks]]
name = "alive"
type = "command"
command = "true"
"""
    config = make_config(tmp_path, step="test {ref} != v2", extra=monitored)
    clock = FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    e = make_engine(
        config,
        SqliteStore(tmp_path / "db.sqlite"),
        RecordingChat(),
        clock=clock,
        resolver=CommittedTwoHoursBefore(clock),
    )
    engines.append(e)
    e.start(run_scheduler=False)
    v1 = ship(e, "v1")
    assert e.wait_idle(30)
    assert e.deployment(v1).state == State.MONITORING and e.deployment(v1).live_at == clock.now()
    for _ in range(10):  # the whole window: ten minutes
        clock.advance(60)
        e.scheduler.run_due()
    assert e.deployment(v1).state == State.SUCCEEDED
    clock.advance(hours=1)
    v2 = ship(e, "v2")
    assert e.wait_idle(30) and e.deployment(v2).state == State.FAILED
    clock.advance(minutes=5)
    e.rollback_failed("bob", v2)
    assert e.wait_idle(30)
    assert e.deployment(v2).state == State.ROLLED_BACK
    dora = e.stats("prod", days=7)
    assert dora.deployments == 1  # v2 never shipped
    assert dora.lead_time_median == 2 * HOUR  # commit to live; the monitoring window is not lead time
    assert (dora.change_failures, dora.attempts) == (1, 2)
    assert dora.time_to_restore_median == timedelta(minutes=5)


def test_abort_says_what_it_did_where_the_deployment_was(tmp_path: Path, engines: list[Engine]) -> None:
    from commands.handlers import Context, handle_text

    monitored = '[environments.prod.monitor]\ninterval = "1h"\nduration = "4h"\n'
    checks = '[[environments.prod.checks]]\nname = "alive"\ntype = "command"\ncommand = "true"\n'
    config = make_config(tmp_path, extra=monitored + checks)
    chat = RecordingChat()
    e = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), chat)
    engines.append(e)
    e.start()
    d = ship(e)
    assert e.wait_idle(30) and e.deployment(d).state == State.MONITORING
    reply = handle_text(e, "/deploy", "abort prod", Context("bob", "#d"))
    assert reply is not None
    assert (
        reply.text == "Monitoring of #1 stopped by bob: prod keeps v1 (Roll back is offered in the channel)."
    )
    assert [b.label for b in chat.of_kind("message")[-1].buttons] == ["Roll back"]
