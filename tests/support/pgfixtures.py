"""PostgreSQL for tests: the server's DSN, and stores on fresh schemas that are dropped afterwards.

The DSN comes from `GONOGO_TEST_PG_DSN` (what `scripts/ensure-postgres.sh` exports) or defaults
to the server on this machine. When the server does not answer, a test that needs it is
skipped locally, but *fails* when the `CI` environment variable is set: in CI a missing
database is a broken setup, never a reason to go green.

Each store lives in its own schema `gonogo_test_<unix time>_<random>` (set through the
connection's search_path), so parallel test runs never see each other's rows. Schemas left
behind by a killed run are swept once they are an hour old, and so are the databases of
`throwaway_database()` (for examples that dump a whole application database).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from functools import cache

import psycopg
import pytest
from psycopg import sql

from bot.store.postgres import PostgresStore, describe, split_url

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "gonogo_test_"
STALE_AFTER = 3600.0


def pg_dsn() -> str:
    """The DSN of the test server (without a schema)."""
    return os.environ.get("GONOGO_TEST_PG_DSN") or DEFAULT_DSN


@cache
def _unreachable_reason() -> str | None:
    """None when the server answers; else why not (checked once per run)."""
    try:
        with psycopg.connect(pg_dsn(), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
            _sweep_stale_schemas(conn)
    except psycopg.Error as exc:
        return f"PostgreSQL at {describe(pg_dsn())} is unreachable ({' '.join(str(exc).split())})"
    return None


def require_postgres() -> str:
    """The DSN, or skip (locally) / fail (in CI) when the server is unreachable."""
    reason = _unreachable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(
                f"{reason}. Tests that need PostgreSQL never skip in CI: run "
                '`eval "$(scripts/ensure-postgres.sh)"` first, or set GONOGO_TEST_PG_DSN.',
                pytrace=False,
            )
        pytest.skip(f"{reason} (set GONOGO_TEST_PG_DSN or run scripts/ensure-postgres.sh)")
    return pg_dsn()


def new_schema_name() -> str:
    """A fresh schema name nobody else uses."""
    return f"{SCHEMA_PREFIX}{int(time.time())}_{secrets.token_hex(4)}"


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    """A new, empty database on the test server (an application's own, as `pg_dump` of the whole
    database expects); yields its DSN and drops it afterwards, even with clients still on it."""
    dsn = require_postgres()
    name = new_schema_name()
    with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, query = dsn.partition("?")
    try:
        yield f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    finally:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def schema_url(dsn: str, schema: str) -> str:
    """`dsn` with gonogo's `schema` query parameter."""
    return f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"


def drop_schema(schema: str) -> None:
    """Drop a test schema and everything in it."""
    with psycopg.connect(pg_dsn(), connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _sweep_stale_schemas(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [SCHEMA_PREFIX.replace("_", r"\_") + "%"]
    ).fetchall()
    for (name,) in rows:
        try:
            born = int(str(name).removeprefix(SCHEMA_PREFIX).split("_")[0])
        except ValueError:
            continue
        if time.time() - born > STALE_AFTER:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(str(name))))
    databases = conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", [SCHEMA_PREFIX.replace("_", r"\_") + "%"]
    ).fetchall()
    for (name,) in databases:  # throwaway_database()'s, left by a killed run
        try:
            born = int(str(name).removeprefix(SCHEMA_PREFIX).split("_")[0])
        except ValueError:
            continue
        if time.time() - born > STALE_AFTER:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))


class DisposablePostgresStore(PostgresStore):
    """A PostgresStore on its own fresh schema, dropped when the store is closed."""

    def __init__(self, schema: str | None = None, **kwargs: int) -> None:
        self.dsn = require_postgres()
        super().__init__(self.dsn, schema=schema or new_schema_name(), **kwargs)
        self._closed = False

    @property
    def schema_url(self) -> str:
        """The URL another replica would use to open the same schema."""
        assert self.schema is not None
        return schema_url(split_url(self.dsn)[0], self.schema)

    def close(self) -> None:
        """Close the pool, then drop the schema."""
        if self._closed:
            return
        self._closed = True
        super().close()
        assert self.schema is not None
        drop_schema(self.schema)
