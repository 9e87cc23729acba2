"""How gonogo connects to PostgreSQL: URLs (with gonogo's `schema` parameter), libpq conninfo
with connection defaults, a password-free description for messages, advisory lock keys; the
store's pool, and connection trouble as a `StoreError`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.store.base import StoreError

#: Connection defaults a URL may override: fail fast when the server is unreachable, notice dead peers.
CONNECT_DEFAULTS: dict[str, str] = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "application_name": "gonogo",
}
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_advisory_lock` derived from `name` (same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def split_url(url: str) -> tuple[str, str | None]:
    """`(libpq URL, schema)`: removes gonogo's own `schema` query parameter from a postgresql:// URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = [(k, v) for k, v in query if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode(rest))), (schema or None)


def checked_schema(schema: str | None) -> str | None:
    """`schema` when it is a plain lowercase name (or None); a StoreError otherwise."""
    if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
        raise StoreError(f"invalid schema name {schema!r} (use lowercase letters, digits and _)")
    return schema


def conninfo(url: str, schema: str | None = None, *, extra_options: str = "", **overrides: str) -> str:
    """A libpq conninfo for `url`: CONNECT_DEFAULTS (overridable by the URL), then `overrides`.

    `extra_options` (server settings such as `-c name=value`) and, with `schema`, its
    `search_path` are appended to the URL's own `options`.
    """
    try:
        params: dict[str, Any] = {**CONNECT_DEFAULTS, **conninfo_to_dict(url), **overrides}
    except psycopg.ProgrammingError as exc:
        raise StoreError(f"invalid PostgreSQL URL {describe(url)}: {first_line(exc)}") from exc
    options = [str(params.get("options") or ""), extra_options]
    if schema:
        options.append(f"-c search_path={schema}")
    params["options"] = " ".join(o.strip() for o in options if o.strip()) or None
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


def describe(url: str) -> str:
    """The URL for messages: user@host:port/dbname, never the password."""
    try:
        p = conninfo_to_dict(split_url(url)[0])
    except (psycopg.Error, ValueError):
        try:
            parts = urlsplit(url)
            p = {"user": parts.username, "host": parts.hostname, "port": parts.port, "dbname": parts.path[1:]}
        except ValueError:
            return "<unparseable URL>"
    user = f"{p['user']}@" if p.get("user") else ""
    port = f":{p['port']}" if p.get("port") else ""
    return f"{user}{p.get('host') or 'localhost'}{port}/{p.get('dbname') or ''}"


def first_line(exc: BaseException) -> str:
    """An error's text on one line, for messages (psycopg's span several)."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def configure(conn: psycopg.Connection[Any]) -> None:
    """Per-connection settings: times come back in UTC."""
    conn.execute("SET TIME ZONE 'UTC'")


def open_pool(
    info: str, *, min_size: int, max_size: int, timeout: float, where: str
) -> ConnectionPool[psycopg.Connection[dict[str, Any]]]:
    """An open pool of autocommit connections to `info` returning dict rows, once `min_size`
    of them connected (else a StoreError naming `where`)."""
    pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
        info,
        open=True,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        kwargs={"autocommit": True, "row_factory": dict_row},
        configure=configure,
        check=ConnectionPool.check_connection,  # a server restart costs no failed request
        name="gonogo-store",
    )
    try:
        pool.wait(timeout=timeout)
    except (PoolTimeout, psycopg.Error) as exc:
        pool.close()
        raise StoreError(f"cannot connect to PostgreSQL at {where}: {first_line(exc)}") from exc
    return pool


@contextmanager
def pooled(
    pool: ConnectionPool[psycopg.Connection[dict[str, Any]]], where: str
) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection from `pool`; connection trouble becomes a StoreError naming `where`."""
    try:
        with pool.connection() as conn:
            yield conn
    except PoolTimeout as exc:
        raise StoreError(f"PostgreSQL at {where} is unavailable: {first_line(exc)}") from exc
    except psycopg.OperationalError as exc:
        raise StoreError(f"PostgreSQL at {where} failed: {first_line(exc)}") from exc
