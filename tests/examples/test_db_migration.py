"""examples/db-migration.toml end to end, through the terminal chat, as shipped.

Real components: two OpenSSH hosts (db1 runs pg_dump and psql, app1 runs the demo app in
release directories), a throwaway PostgreSQL database, a real Prometheus scraping app1's
/metrics. Only what is machine-specific is changed (tests/support/examples.py).
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from bot.domain.deployment import State
from tests.conftest import stop_demo_app
from tests.support.engines import wait_for
from tests.support.examples import EXAMPLES, ExampleChat, localize
from tests.support.pgfixtures import throwaway_database
from tests.support.prometheus import PrometheusServer, Slot

pytest_plugins = ["tests.support.sshd"]
pytestmark = [pytest.mark.ssh, pytest.mark.postgres]

NAME = "db-migration"
#: Two approvers besides the requester, as the example's policy asks.
SHIP = "/as alice\n/deploy prod {ref} --reason {why}\n/as bob\ntick all\npress go\n/as carol\npress go\n"


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The jobs service's database as production has it (v1's schema and rows), in JOBS_DB_URL."""
    if not shutil.which("psql") or not shutil.which("pg_dump"):
        pytest.skip("psql and pg_dump are needed (scripts/ensure-postgres.sh installs PostgreSQL)")
    with throwaway_database() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute((EXAMPLES / NAME / "v1.up.sql").read_text())
        monkeypatch.setenv("JOBS_DB_URL", dsn)
        yield dsn


@pytest.fixture
def slot(prometheus: PrometheusServer, tmp_path: Path) -> Iterator[Slot]:
    """app1's port, which the test Prometheus scrapes; the app is stopped afterwards."""
    with prometheus.slot() as leased:
        yield leased
        stop_demo_app(tmp_path / "srv")


class Users:
    """People using the API while the window is open: a job created every 20 ms."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/jobs"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self.stop.wait(0.02):
                try:
                    client.post(self.url, json={"name": "user job"})
                except httpx.HTTPError:
                    pass  # the app restarting

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def run_example(
    tmp_path: Path, fleet: object, slot: Slot, prometheus: PrometheusServer, duration: str
) -> ExampleChat:
    raw = localize(
        NAME,
        tmp_path,
        fleet=fleet,  # type: ignore[arg-type]
        hosts={"app1": {"port": str(slot.port)}},
        prometheus_url=prometheus.url,
        monitor={"interval": "0.5s", "duration": duration},
    )
    return ExampleChat(raw, NAME)


def columns(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs' ORDER BY ordinal_position"
        ).fetchall()
    return [r[0] for r in rows]


def tables(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def version(slot: Slot) -> str:
    return str(httpx.get(f"http://127.0.0.1:{slot.port}/health", timeout=5).json()["version"])


BASELINE = ["id", "name", "created_at"]
V2 = [*BASELINE, "priority", "owner", "retries", "timeout_s"]


def test_v2_migrates_deploys_signs_off_and_a_bad_v3_is_undone(
    tmp_path: Path, sshd_hosts: object, database: str, slot: Slot, prometheus: PrometheusServer
) -> None:
    srv = tmp_path / "srv"
    with run_example(tmp_path, sshd_hosts(2), slot, prometheus, duration="1.5s") as bot:  # type: ignore[operator]
        store = bot.engine.store
        out = bot.say(SHIP.format(ref="v1", why="baseline") + "wait\n")
        v1 = store.deployments("prod", limit=1)[0]
        assert v1.state == State.SUCCEEDED, out
        assert columns(database) == BASELINE  # the verify queries are for v2 on (`since`)

        # v2: backup, migration verified right after it, release dir, five smoke checks, window
        out = bot.say(SHIP.format(ref="v2", why="job queue columns") + "wait\n")
        v2 = store.deployments("prod", limit=1)[0]
        assert v2.state == State.SUCCEEDED, out
        assert "Verify deploy › migrate: job columns ✓ value 4" in out and "old tables ✓ value 0" in out
        smoke = out[out.index("Smoke checks:") :].splitlines()[0]
        for check in (
            "health@app1 ✓",
            "create job@app1 ✓",
            "approve job@app1 ✓",
            "read job@app1 ✓",
            "jobs kept ✓",
        ):
            assert check in smoke, smoke
        passed = bot.wait_for_text("prod runs v2.")
        assert re.search(r"Monitoring window passed \(\d+ rounds\)\. prod runs v2\.", passed)
        assert columns(database) == V2
        assert tables(database) == ["archived_legacy_job_runs", "archived_legacy_jobs", "jobs"]
        # the backup taken before the migration: a real dump of the v1 schema, on the card
        backup = srv / "backups" / f"before-{v2.id}.sql"
        assert backup.stat().st_size >= 1024
        dump = backup.read_text()
        assert (
            "CREATE TABLE public.legacy_jobs" in dump and "nightly report" in dump and "priority" not in dump
        )
        assert v2.details.artifacts["backup_path"] == {"db1": str(backup)}
        assert f"📦 backup_path: {backup}" in out
        # release dirs on app1, `current` on v2's, the app serving v2
        assert sorted(p.name for p in (srv / "releases").iterdir()) == sorted([str(v1.id), str(v2.id)])
        assert (srv / "current").resolve() == srv / "releases" / str(v2.id)
        assert (srv / "releases" / str(v2.id) / "VERSION").read_text() == "v2\n"
        assert version(slot) == "v2"

        # sign-off: the GO/NO-GO items, then KEEP
        out = bot.say("/as bob\n/signoff prod\ntick all\npress keep\n")
        assert "GO/NO-GO:" in out and "Five smoke checks passed" in out
        signed = bot.engine.deployment(v2.id)
        assert signed.state == State.SIGNED_OFF, out
        assert signed.details.signoff is not None
        assert (signed.details.signoff.decision, signed.details.signoff.by) == ("KEEP", "bob")
        assert "signoff" in " ".join(e.action for e in store.events(deployment_id=v2.id))

        # v3's migration breaks the schema: its verify fails, nothing after it runs, the
        # rollback runs its undo (the rollback migration) and the environment is locked
        out = bot.say(SHIP.format(ref="v3", why="rename owner") + "wait\n/status prod\n")
        v3 = bot.engine.deployment(v2.id + 1)
        assert v3.state == State.ROLLED_BACK, out
        assert (v3.error or "").startswith("deploy › migrate: verify failed: job columns"), v3.error
        assert "Verify deploy › migrate: job columns ✗ value 3" in out
        assert [r.step for r in v3.details.ran] == [
            "prepare db host", "backup", "backup size", "ship migration", "ship rollback migration", "migrate",
        ]  # fmt: skip
        assert not (srv / "releases" / str(v3.id)).exists()
        assert "✓ undo › deploy › migrate: db1" in out
        assert columns(database) == V2  # owner is back
        with psycopg.connect(database) as conn:
            assert conn.execute("SELECT name, owner FROM jobs").fetchall() == [("nightly report", "ops")]
        assert (srv / "current").resolve() == srv / "releases" / str(v2.id)
        assert version(slot) == "v2"
        (lock,) = store.locks()
        assert (lock.env, lock.automatic) == ("prod", True), lock
        status = out[out.index("/status prod") :]
        assert "🔒 locked by gonogo" in status and "after rollback of #3" in status, status
        (alert,) = [line for line in out.splitlines() if "🚨" in line]
        assert alert.startswith(
            "[#deploys] @alice @U0ONCALL 🚨 Deploy #3 of v3 to prod FAILED: deploy › migrate"
        )
        assert alert.endswith("Rolling back automatically now.")


def test_a_prometheus_threshold_breach_rolls_back_the_migration_and_the_symlink(
    tmp_path: Path, sshd_hosts: object, database: str, slot: Slot, prometheus: PrometheusServer
) -> None:
    srv = tmp_path / "srv"
    users = Users(slot.port)
    try:
        with run_example(tmp_path, sshd_hosts(2), slot, prometheus, duration="60s") as bot:  # type: ignore[operator]
            breach_rolls_back(bot, srv, slot, prometheus, database)
    finally:
        users.close()


def breach_rolls_back(
    bot: ExampleChat, srv: Path, slot: Slot, prometheus: PrometheusServer, database: str
) -> None:
    store = bot.engine.store
    out = bot.say(SHIP.format(ref="v1", why="baseline") + "wait runs\n/as bob\n/deploy abort prod\n")
    v1 = store.deployments("prod", limit=1)[0]
    assert v1.state == State.SUCCEEDED, out  # v1 is the good release (its window stopped)
    out = bot.say(SHIP.format(ref="v2", why="job queue columns") + "wait runs\n")
    v2 = store.deployments("prod", limit=1)[0]
    assert v2.state == State.MONITORING, out
    assert columns(database) == V2
    prometheus.wait_for(f'demo_http_requests_total{{instance="{slot.address}",path="/jobs"}} > 20')
    assert bot.engine.deployment(v2.id).state == State.MONITORING  # healthy: the window goes on
    (srv / "current" / "FAIL_RATE").write_text("1")  # every job creation now fails
    out = bot.say("wait\n")
    # The lock is taken right after the rollback starts, on the monitoring round's thread: "wait"
    # (for runs) can return first.
    wait_for(store.locks, 30, "the lock after the automatic rollback")
    out += bot.say("/status prod\n")
    v2 = bot.engine.deployment(v2.id)
    assert v2.state == State.ROLLED_BACK, out
    failed = {c.name for c in store.check_results(deployment_id=v2.id, limit=500) if not c.ok}
    assert failed == {"job creation failures@app1"}, failed
    # one alert, updated in place as the incident moved: the breach, then the rollback's end
    rollback = store.deployments("prod", kind="rollback", limit=1)[0]
    ended = f"✅ Rolled back by #{rollback.id}: prod runs v1 again."
    lines = bot.wait_for_text(ended).splitlines()
    end = lines.index(ended)
    alert = lines[end - 1]
    assert alert.startswith(
        "[#deploys] @alice @U0ONCALL (updated) 🚨 Deploy #2 of v2 to prod FAILED: monitoring:"
    )
    assert "job creation failures@app1 ✗ result" in alert and "not result <= 10%" in alert, alert
    assert "Rolling back automatically now." in alert
    # the rollback ran the rollback migration, switched `current` back and restarted v1
    assert rollback.state == State.SUCCEEDED and rollback.release_id == v1.id
    assert columns(database) == BASELINE
    assert tables(database) == ["jobs", "legacy_job_runs", "legacy_jobs"]
    assert (srv / "current").resolve() == srv / "releases" / str(v1.id)
    assert version(slot) == "v1"
    (lock,) = store.locks()
    assert lock.automatic and "🔒 locked by gonogo" in out
