"""examples/idempotent.toml end to end, through the terminal chat, as shipped.

The deploy is interrupted while its schema step waits behind a long report (a real open
transaction in PostgreSQL); the bot stops (as on SIGTERM, the step stopped after a short grace),
a new bot on the same store announces the interrupted deploy, and Resume finishes it: the steps
that had finished do not run again (the deploy log on the hosts has one line per host), the
schema step in flight runs again and is safe to.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from bot.domain.deployment import State
from tests.conftest import free_port, stop_demo_app
from tests.support.engines import wait_for
from tests.support.examples import ExampleChat, localize
from tests.support.pgfixtures import throwaway_database

pytest_plugins = ["tests.support.sshd"]
pytestmark = [pytest.mark.ssh, pytest.mark.postgres]

NAME = "idempotent"


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The shop's database as it is before the release: orders without a status, one order."""
    if not shutil.which("psql"):
        pytest.skip("psql is needed (scripts/ensure-postgres.sh installs PostgreSQL)")
    with throwaway_database() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.execute("INSERT INTO orders (item) VALUES ('teapot')")
        monkeypatch.setenv("SHOP_DB_URL", dsn)
        yield dsn


def waiting_on_a_lock(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


def test_resuming_an_interrupted_deploy_runs_no_finished_step_again(
    tmp_path: Path, sshd_hosts: object, database: str
) -> None:
    srv = tmp_path / "srv"
    port = free_port()
    raw = localize(NAME, tmp_path, fleet=sshd_hosts(2), hosts={"web1": {"port": str(port)}})  # type: ignore[operator]
    try:
        with psycopg.connect(database) as report:
            report.execute("SELECT count(*) FROM orders")  # a long report: its transaction holds the table
            first = ExampleChat(raw, NAME)
            try:
                first.say("/deploy prod v1 --reason status column\n/as bob\ntick all\npress go\n", idle=False)
                wait_for(
                    lambda: waiting_on_a_lock(database), timeout=60, what="the schema step behind the report"
                )
                running = first.engine.store.deployments("prod", limit=1)[0]
                assert running.state == State.RUNNING and "apply schema" in (running.progress or ""), running
            finally:
                first.close(grace=0.5)  # the bot stops (SIGTERM); the schema step does not finish in time
            report.rollback()  # the report ends
        assert "⚠️ interrupted: deploy › apply schema on db1" in first.transcript
        before = (srv / "deploys.log").read_text()
        assert before.splitlines() == ["1 v1 db1 alice", "1 v1 web1 alice"]

        with ExampleChat(raw, NAME) as second:  # a new bot on the same store
            d = second.engine.deployment(running.id)
            assert d.state == State.INTERRUPTED, d
            announced = second.transcript
            assert (
                "Deployment #1 of v1 to prod is still interrupted" in announced
                and "[1] Resume  [2] Roll back" in announced
            )
            out = second.say("/as bob\npress resume\nwait\n")
            d = second.engine.deployment(running.id)
            assert d.state == State.SUCCEEDED, out
            results = second.engine.store.host_results(d.id)
            actions = [e.action for e in second.engine.store.events(deployment_id=d.id)]
        # nothing of pre_deploy ran again: not the deploy log (it appends), not the release dir
        assert "pre_deploy ›" not in "".join(line for line in out.splitlines() if "✓" in line or "✗" in line)
        assert (srv / "deploys.log").read_text() == before
        ran = [(r["step"], r["host"], r["status"]) for r in results]
        for finished in (
            ("deploy log", "db1"),
            ("ship schema", "db1"),
            ("deploy log", "web1"),
            ("release dir", "web1"),
        ):
            assert [x for x in ran if x[:2] == finished] == [(*finished, "ok")], ran
        # the schema step in flight ran again, and finished what it had not
        assert "✓ deploy › apply schema: db1" in out and "schema ✓ value 1" in out
        assert [x for x in ran if x[:2] == ("apply schema", "db1")][-1] == ("apply schema", "db1", "ok"), ran
        with psycopg.connect(database) as conn:
            assert conn.execute("SELECT item, status FROM orders").fetchall() == [("teapot", "new")]
            assert conn.execute("SELECT value FROM settings WHERE name = 'checkout'").fetchall() == [("on",)]
            assert conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_by_status'"
            ).fetchone() == (1,)
        assert actions.index("interrupt") < actions.index("resume")
        # and the release is live
        assert (srv / "current").resolve() == srv / "releases" / str(d.id)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["version"] == "v1"
    finally:
        stop_demo_app(srv)
