"""SQL checks against the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from runners.checks import CheckResult, SqlCheck, run_check
from tests.runners.checks.helpers import DSN, ENV, closed_port


@pytest.fixture
def table() -> Iterator[str]:
    import psycopg

    name = f"checks_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int, state text)")
        conn.execute(f"INSERT INTO {name} VALUES (1, 'ok'), (2, 'ok'), (3, 'bad')")
    yield name
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def sql(query: str, op: str = "==", expect: object = 2, **kw: object) -> CheckResult:
    return run_check(SqlCheck("db", "TEST_DB_DSN", query, op, expect=expect, **kw), env=ENV)  # type: ignore[arg-type]


@pytest.mark.postgres
def test_sql_comparisons(table: str) -> None:
    count2 = "SELECT count(*) FROM (VALUES (1),(2)) t"
    res = sql(count2, "==", 2)
    assert res.ok and res.observed == "value 2" and res.kind == "sql"
    assert sql(count2, ">=", 2).ok
    assert sql(count2, "<", 2.5).ok
    assert sql(count2, "==", "2").ok  # numeric string compares numerically
    res = sql(count2, ">=", 4)
    assert not res.ok and res.error == "value 2 is not >= 4"
    assert sql(f"SELECT count(*) FROM {table} WHERE state = 'ok'", "==", 2).ok
    assert sql(f"SELECT state FROM {table} WHERE id = 3", "==", "bad").ok
    assert sql(f"SELECT state FROM {table} WHERE id = 3", "!=", "ok").ok
    assert sql("SELECT 0.1 + 0.2", "==", 0.3).ok  # numeric, not float
    assert sql("SELECT true", "==", "true").ok
    res = sql("SELECT NULL::int", "==", 1)
    assert not res.ok and res.error == "query returned NULL"


@pytest.mark.postgres
def test_sql_shape_errors(table: str) -> None:
    res = sql(f"SELECT id FROM {table} WHERE id > 100")
    assert not res.ok and res.error == "query returned no row"
    res = sql("SELECT 1, 2")
    assert not res.ok and res.error == "query returned 2 columns, expected exactly one"
    res = sql(f"SELECT id FROM {table}")
    assert not res.ok and res.error == "query returned more than one row"
    res = sql("SELEC 1")
    assert not res.ok and (res.error or "").startswith("SQL error: syntax error")


@pytest.mark.postgres
def test_sql_is_read_only(table: str) -> None:
    res = sql(f"INSERT INTO {table} VALUES (9, 'x') RETURNING id", "==", 9)
    assert not res.ok and (res.error or "").startswith("refused, checks are read-only")
    assert "INSERT" in (res.error or "")
    # No escaping the read-only transaction with a second statement.
    res = sql(f"COMMIT; SET default_transaction_read_only = off; DELETE FROM {table}")
    assert not res.ok and "SQL error" in (res.error or "")
    assert sql(f"SELECT count(*) FROM {table}", "==", 3).ok


@pytest.mark.postgres
def test_sql_timeout_and_connection_problems() -> None:
    res = sql("SELECT pg_sleep(2)", timeout=0.3)
    assert not res.ok and res.error == "query timed out after 0.3s"
    res = run_check(SqlCheck("db", "PROD_DB_DSN", "SELECT 1", expect=1), env={})
    assert not res.ok and res.error == "DSN env var PROD_DB_DSN is not set"
    port = closed_port()
    secret_dsn = f"postgresql://postgres:topsecretpw@127.0.0.1:{port}/test"
    res = run_check(SqlCheck("db", "X_DSN", "SELECT 1", expect=1), env={"X_DSN": secret_dsn})
    assert not res.ok and res.error == f"connection refused to 127.0.0.1:{port}"
    assert "topsecretpw" not in str(res)
    res = run_check(
        SqlCheck("db", "X_DSN", "SELECT 1", expect=1), env={"X_DSN": "host=db.invalid password=pw9999"}
    )
    assert not res.ok and res.error == "DNS lookup failed for db.invalid" and "pw9999" not in str(res)
    res = run_check(SqlCheck("db", "X_DSN", "SELECT 1", expect=1), env={"X_DSN": "not a dsn topsecretpw"})
    assert not res.ok and "topsecretpw" not in str(res)
    res = run_check(
        SqlCheck("db", "X_DSN", "SELECT 1", expect=1),
        env={"X_DSN": "postgresql://nosuchuser:topsecretpw@127.0.0.1:5432/no_such_db"},
    )
    assert not res.ok and res.error and "topsecretpw" not in str(res)
