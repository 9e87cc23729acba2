"""examples/build-and-restart.toml end to end, through the terminal chat, as shipped.

One OpenSSH host builds, migrates and restarts the demo app in place against a throwaway
PostgreSQL database. v2's migration (irreversible: it drops a column) breaks the app's query:
its health fails, nothing rolls back by itself, the alert offers the step's choices (Restore,
Hold), and Restore, pressed by an approver, brings back the database from the backup this
deploy took and the previous build.
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
from tests.support.examples import EXAMPLES, ExampleChat, localize
from tests.support.pgfixtures import throwaway_database

pytest_plugins = ["tests.support.sshd"]
pytestmark = [pytest.mark.ssh, pytest.mark.postgres]

NAME = "build-and-restart"
SHIP = "/as alice\n/deploy prod {ref}\n/as bob\ntick all\npress go\nwait\n"


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The shop's database as production has it (v1's schema, one order), in SHOP_DB_URL."""
    if not shutil.which("psql") or not shutil.which("pg_dump"):
        pytest.skip("psql and pg_dump are needed (scripts/ensure-postgres.sh installs PostgreSQL)")
    with throwaway_database() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute((EXAMPLES / NAME / "v1.sql").read_text())
        monkeypatch.setenv("SHOP_DB_URL", dsn)
        yield dsn


def version(port: int) -> str:
    return str(httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["version"])


def orders(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT * FROM orders ORDER BY id").fetchall()


def test_a_failed_irreversible_migration_waits_for_a_choice_and_restore_brings_v1_back(
    tmp_path: Path, sshd_hosts: object, database: str
) -> None:
    srv = tmp_path / "srv"
    port = free_port()
    raw = localize(NAME, tmp_path, fleet=sshd_hosts(2), hosts={"shop1": {"port": str(port)}})  # type: ignore[operator]
    try:
        with ExampleChat(raw, NAME) as bot:
            store = bot.engine.store
            out = bot.say(SHIP.format(ref="v1"))
            v1 = store.deployments("prod", limit=1)[0]
            assert v1.state == State.SUCCEEDED, out
            out = bot.say(SHIP.format(ref="v2"))
            v2 = store.deployments("prod", limit=1)[0]
            # the health failed after the irreversible migration: nothing was rolled back
            assert v2.state == State.FAILED, out
            assert 'orders query ✗ SQL error: column "customer_email" does not exist' in out
            assert not store.deployments("prod", kind="rollback", limit=5)
            assert len(orders(database)[0]) == 2  # the column is still gone
            assert version(port) == "v2" and (srv / "previous" / "VERSION").read_text() == "v1\n"
            (alert,) = [line for line in out.splitlines() if "🚨" in line]
            assert (
                "Irreversible step deploy › migrate (on shop1) ran, so gonogo does not roll back by itself"
                in alert
            )
            assert (
                "[1] Restore from backup  [2] Hold: change nothing" in out.split(alert, 1)[1].splitlines()[1]
            )

            # an approver (never the requester) chooses Restore
            out = bot.say("/as alice\npress restore\n/as bob\npress restore\nwait\n")
            assert "(to alice) Refused: you requested this deployment; someone else must approve it" in out
            rollback = store.deployments("prod", kind="rollback", limit=1)[0]
            assert rollback.state == State.SUCCEEDED and rollback.release_id == v1.id, out
            assert bot.engine.deployment(v2.id).state == State.ROLLED_BACK
            assert "• restore steps run in place of the undo of deploy › migrate" in out
            assert "✓ undo › deploy › install: shop1" in out  # the revert to the previous build
            assert "✓ undo › restore › restore database: shop1" in out
            assert "Smoke checks: health@shop1 ✓" in out and "orders query ✓ value 1" in out
            bot.wait_for_text(f"✅ Rolled back by #{rollback.id}: prod runs v1 again.")
        # restored from the dump v2's deploy took: the column and its data are back
        backup = srv / "backups" / f"{v2.id}.sql"
        assert "customer_email" in backup.read_text() and "ann@example.com" in backup.read_text()
        assert orders(database) == [(1, "teapot", "ann@example.com")]
        with psycopg.connect(database) as conn:
            assert conn.execute("SELECT to_regclass('customers')").fetchone() == (None,)
        assert version(port) == "v1" and (srv / "app" / "VERSION").read_text() == "v1\n"
    finally:
        stop_demo_app(srv)
