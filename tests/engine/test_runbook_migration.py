"""A real migration runbook over real OpenSSH hosts against the real PostgreSQL server.

The runbook (seed 001's shape): a `pg_dump` backup publishing its path as an artifact, a forward
migration run with `psql` (with its undo, the DSN given to that step alone as a secret), verify
queries right after it (SQL checks: the four job columns are there, the legacy tables are gone),
then the app switched host by host. Release v2's migration is buggy: its verify fails, so
nothing after it runs and the automatic rollback runs the migration's undo, then switches back.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bot.config import parse_config
from bot.domain.deployment import State
from bot.engine import Engine, Refused
from bot.store.sqlite import SqliteStore
from tests.support.engines import make_engine
from tests.support.pgfixtures import new_schema_name, require_postgres
from tests.support.recording import RecordingChat
from tests.support.sshd import SSHFleet

pytest_plugins = ["tests.support.sshd"]
pytestmark = [pytest.mark.ssh, pytest.mark.postgres]

CONFIG = """
[bot]
data_dir = "{data}"
[ssh]
user = "{user}"
identity_file = "{key}"
known_hosts = "{known_hosts}"
ssh_config = "{ssh_config}"
connect_timeout = "5s"
[environments.prod]
backend = "ssh"
hosts = [{hosts}]
deploy_to = "{data}/srv"
step_timeout = "60s"
auto_rollback = true
[environments.prod.strategy]
kind = "sequential"

[[environments.prod.checks]]
name = "job columns"
type = "sql"
dsn_env = "SHOP_DB_URL"
query = "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'jobs' AND column_name IN ('priority', 'owner', 'retries', 'timeout_s')"
expect = "= 4"
[[environments.prod.checks]]
name = "legacy tables"
type = "sql"
dsn_env = "SHOP_DB_URL"
query = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'legacy_%'"
expect = "= 0"

[[environments.prod.steps.pre_deploy]]
name = "backup"
run = "pg_dump --dbname=\\"$SHOP_DB_URL\\" --schema={{vars_schema}} --file={{deploy_to}}/backup-{{deploy_id}}.sql && test -s {{deploy_to}}/backup-{{deploy_id}}.sql && echo ::gonogo artifact backup_path={{deploy_to}}/backup-{{deploy_id}}.sql"
once = true
roles = ["db"]
secrets = ["SHOP_DB_URL"]
artifacts = ["backup_path"]

[[environments.prod.steps.deploy]]
name = "migrate"
run = "psql --dbname=\\"$SHOP_DB_URL\\" -v ON_ERROR_STOP=1 -q -f {{config_dir}}/migrations/{{ref}}.up.sql"
undo = "psql --dbname=\\"$SHOP_DB_URL\\" -v ON_ERROR_STOP=1 -q -f {{config_dir}}/migrations/{{ref}}.down.sql && echo undone {{ref}} with {{artifact.backup_path}} at hand >> {{deploy_to}}/undo.log"
once = true
roles = ["db"]
secrets = ["SHOP_DB_URL"]
verify = ["job columns", "legacy tables"]

[[environments.prod.steps.deploy]]
name = "switch"
run = "mkdir -p {{release_dir}} && ln -sfn {{release_dir}} {{deploy_to}}/current-{{host}}"

[[environments.prod.steps.rollback]]
name = "switch back"
run = "ln -sfn {{release_dir}} {{deploy_to}}/current-{{host}}"

[environments.prod.vars]
vars_schema = "{schema}"
"""

MIGRATIONS = {
    # v1 creates the jobs table in its final shape, and drops the legacy one
    "v1.up.sql": "CREATE TABLE jobs (id serial PRIMARY KEY, name text, priority int, owner text,"
    " retries int, timeout_s int); DROP TABLE legacy_jobs; INSERT INTO jobs (name, owner) VALUES ('nightly', 'ops');",
    "v1.down.sql": "CREATE TABLE legacy_jobs (id int); DROP TABLE jobs;",
    # v2 is buggy: it renames a column the app still needs (the verify query catches it)
    "v2.up.sql": "ALTER TABLE jobs RENAME COLUMN owner TO owner_id;",
    "v2.down.sql": "ALTER TABLE jobs RENAME COLUMN owner_id TO owner;",
}


RESTORE = """
[[environments.prod.steps.restore]]
name = "restore database"
run = "psql --dbname=\\"$SHOP_DB_URL\\" -v ON_ERROR_STOP=1 -q -c 'DROP SCHEMA '{{vars_schema}}' CASCADE' && psql --dbname=\\"$SHOP_DB_URL\\" -v ON_ERROR_STOP=1 -q -f {{artifact.backup_path}}"
once = true
roles = ["db"]
secrets = ["SHOP_DB_URL"]
"""


@pytest.fixture
def schema() -> Iterator[tuple[str, str]]:
    """A fresh schema with the legacy table, and the DSN whose search_path is that schema."""
    if not shutil.which("psql") or not shutil.which("pg_dump"):
        pytest.skip("psql and pg_dump are needed (scripts/ensure-postgres.sh installs PostgreSQL)")
    dsn = require_postgres()
    name = new_schema_name()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE TABLE {}.legacy_jobs (id int)").format(sql.Identifier(name)))
    sep = "&" if "?" in dsn else "?"
    yield name, f"{dsn}{sep}options=-csearch_path%3D{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def make(tmp_path: Path, fleet: SSHFleet, schema: str, runbook: str = CONFIG) -> Engine:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for name, text in MIGRATIONS.items():
        (migrations / name).write_text(text)
    (tmp_path / "srv").mkdir()
    db = ', roles = ["db"]'
    hosts = [
        f'{{ name = "{h.name}", address = "{h.address}", port = {h.port}{db if i == 0 else ""} }}'
        for i, h in enumerate(fleet.hosts(3))
    ]
    text = runbook.format(
        data=tmp_path,
        user=fleet.user,
        key=fleet.key,
        known_hosts=fleet.known_hosts,
        ssh_config=fleet.root / "ssh_config",
        hosts=", ".join(hosts),
        schema=schema,
    )
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    return make_engine(config, SqliteStore(tmp_path / "db"), RecordingChat())


def columns(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = 'jobs' ORDER BY ordinal_position"
        ).fetchall()
    return [r[0] for r in rows]


def test_a_failing_migration_verify_runs_its_undo_and_nothing_after_it(
    tmp_path: Path, sshd_hosts: object, schema: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, dsn = schema
    monkeypatch.setenv("SHOP_DB_URL", dsn)
    fleet = sshd_hosts(2)  # type: ignore[operator]
    engine = make(tmp_path, fleet, name)
    chat = engine.chat
    try:
        engine.start()
        ids = []
        for ref in ("v1", "v2"):
            d = engine.request_deploy("alice", "#d", "prod", ref)
            engine.approve("bob", d.id)
            assert engine.wait_idle(120)
            ids.append(d.id)
        v1, v2 = (engine.deployment(i) for i in ids)
        assert v1.state == State.SUCCEEDED, v1.error
        srv = tmp_path / "srv"
        # v2's verify failed right after its migration: the switch never ran for v2
        assert v2.state == State.ROLLED_BACK
        assert v2.error is not None and v2.error.startswith("deploy › migrate: verify failed: job columns")
        assert [(r.step, r.hosts()) for r in v2.details.ran] == [
            ("backup", ("app1",)),
            ("migrate", ("app1",)),
        ]
        # the backup this deploy took is real, published as an artifact, and on the card
        backup = srv / f"backup-{v2.id}.sql"
        assert "CREATE TABLE" in backup.read_text() and "owner" in backup.read_text()
        assert v2.details.artifacts["backup_path"] == {"app1": str(backup)}
        assert f"📦 backup_path: {backup}" in chat.last_card(v2.id).lines  # type: ignore[attr-defined]
        # the rollback ran the migration's undo on the db host, then switched every host back
        assert columns(dsn) == ["id", "name", "priority", "owner", "retries", "timeout_s"]
        assert (srv / "undo.log").read_text() == f"undone v2 with {backup} at hand\n"
        for host in ("app1", "app2", "app3"):
            assert (srv / f"current-{host}").resolve() == srv / "releases" / str(v1.id)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT owner FROM jobs").fetchall() == [("ops",)]  # the data survived
        texts = chat.texts()  # type: ignore[attr-defined]
        assert "Verify deploy › migrate: job columns ✗" in texts
        assert "✓ undo › deploy › migrate: app1" in texts
        # the DSN (a step secret) never reached the chat or the stored output
        stored = " ".join(
            str(r.get("output")) + str(r.get("error")) for r in engine.store.host_results(v2.id)
        )
        assert dsn not in texts + stored
        assert os.environ["SHOP_DB_URL"] == dsn
    finally:
        engine.shutdown()


def test_an_irreversible_migration_waits_for_a_choice_and_restores_from_the_backup(
    tmp_path: Path, sshd_hosts: object, schema: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, dsn = schema
    monkeypatch.setenv("SHOP_DB_URL", dsn)
    irreversible = CONFIG.replace(
        'verify = ["job columns", "legacy tables"]',
        'verify = ["job columns", "legacy tables"]\nirreversible = true\non_failure = ["undo", "restore", "hold"]',
    )
    engine = make(tmp_path, sshd_hosts(2), name, irreversible + RESTORE)  # type: ignore[operator]
    chat = engine.chat
    try:
        engine.start()
        ids = []
        for ref in ("v1", "v2"):
            d = engine.request_deploy("alice", "#d", "prod", ref)
            engine.approve("bob", d.id)
            assert engine.wait_idle(120)
            ids.append(d.id)
        v2 = engine.deployment(ids[1])
        assert v2.state == State.FAILED  # nothing was rolled back blindly
        assert not engine.store.deployments("prod", kind="rollback", limit=5)
        assert columns(dsn)[3] == "owner_id"
        alert = next(m for m in chat.of_kind("message") if m.deployment_id == v2.id and m.buttons)  # type: ignore[attr-defined]
        assert "Irreversible step deploy › migrate (on app1) ran" in alert.text
        assert [b.value for b in alert.buttons] == [f"{v2.id}:undo", f"{v2.id}:restore", f"{v2.id}:hold"]
        with pytest.raises(Refused, match="you requested this deployment"):
            engine.recover("alice", v2.id, "restore")
        rb = engine.recover("bob", v2.id, "restore")
        assert engine.wait_idle(120)
        assert engine.deployment(rb.id).state == State.SUCCEEDED
        # restored from the pg_dump this deploy took: the column and the data are back
        assert columns(dsn) == ["id", "name", "priority", "owner", "retries", "timeout_s"]
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT owner FROM jobs").fetchall() == [("ops",)]
        assert not (tmp_path / "srv" / "undo.log").exists()  # restore stood in for the undo
        assert "✓ undo › restore › restore database: app1" in chat.texts()  # type: ignore[attr-defined]
    finally:
        engine.shutdown()
