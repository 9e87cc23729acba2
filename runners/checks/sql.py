"""The SQL probe: one read-only query through psycopg, its single value compared with `expect`."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runners.checks.compare import compare, render
from runners.checks.probe import Context, Outcome, first_line
from runners.checks.spec import SqlCheck

if TYPE_CHECKING:  # psycopg (and libpq) load only when a SQL check runs
    import psycopg


def run_sql(check: SqlCheck, ctx: Context) -> Outcome:
    """Run the query read-only (DSN from `ctx.env`) and compare its single value with `check.expect`."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    dsn = ctx.env.get(check.dsn_env)
    if dsn is None:
        return Outcome(False, error=f"DSN env var {check.dsn_env} is not set")
    if not dsn.strip():
        return Outcome(False, error=f"DSN env var {check.dsn_env} is empty")
    ctx.secrets.add(dsn)
    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        return Outcome(False, error=f"DSN in env var {check.dsn_env} is not a valid connection string")
    ctx.secrets.add(params.get("password"))
    try:
        conn = psycopg.connect(dsn, **_session_options(check, params))
    except psycopg.Error as exc:
        return Outcome(False, error=_connect_error(check, params, exc))
    try:
        rows = _first_rows(check, conn)
    except psycopg.Error as exc:
        return Outcome(False, error=_query_error(check, exc))
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return _judge(check, rows)


def _session_options(check: SqlCheck, params: Mapping[str, Any]) -> dict[str, Any]:
    """Connection keywords: a read-only session with the check's statement and connect timeouts."""
    timeout_ms = max(1, round(check.timeout * 1000))
    options = (
        f"{params.get('options') or ''} -c default_transaction_read_only=on -c statement_timeout={timeout_ms}"
    )
    extra: dict[str, Any] = {"options": options.strip(), "connect_timeout": max(2, math.ceil(check.timeout))}
    if not params.get("application_name"):
        extra["application_name"] = "gonogo-check"
    return extra


def _connect_error(check: SqlCheck, params: Mapping[str, Any], exc: BaseException) -> str:
    where = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
    msg = _pg_message(exc)
    low = msg.lower()
    if "refused" in low:
        return f"connection refused to {where}"
    if "timeout expired" in low:
        return f"connect timeout after {check.timeout:g}s to {where}"
    if "could not translate host name" in low or "failed to resolve host" in low:
        return f"DNS lookup failed for {params.get('host')}"
    return f"cannot connect to {where}: {msg}"


def _first_rows(check: SqlCheck, conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """The query's first two rows at most (enough to tell "one row" from "more than one")."""
    conn.read_only = True
    rows: list[tuple[Any, ...]] = []
    with conn.cursor() as cur:
        # stream() forces the extended protocol: exactly one statement, no "COMMIT; ...".
        for row in cur.stream(check.query):
            rows.append(tuple(row))
            if len(rows) > 1:
                break
    return rows


def _query_error(check: SqlCheck, exc: BaseException) -> str:
    import psycopg

    if isinstance(exc, psycopg.errors.QueryCanceled):
        return f"query timed out after {check.timeout:g}s"
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return f"refused, checks are read-only: {_pg_message(exc)}"
    return f"SQL error: {_pg_message(exc)}"


def _judge(check: SqlCheck, rows: list[tuple[Any, ...]]) -> Outcome:
    """The query's single value compared with `check.expect` (or what is wrong with its shape)."""
    if not rows:
        return Outcome(False, error="query returned no row")
    if len(rows) > 1:
        return Outcome(False, error="query returned more than one row")
    if len(rows[0]) != 1:
        return Outcome(False, error=f"query returned {len(rows[0])} columns, expected exactly one")
    value = rows[0][0]
    shown = f"value {render(value)}"
    if value is None:
        return Outcome(False, shown, "query returned NULL")
    verdict = compare(value, check.op, check.expect)
    if verdict is None:
        return Outcome(False, shown, f"cannot compare {render(value)} {check.op} {render(check.expect)}")
    if not verdict:
        return Outcome(False, shown, f"{shown} is not {check.op} {render(check.expect)}")
    return Outcome(True, shown)


def _pg_message(exc: BaseException) -> str:
    msg = first_line(str(exc))
    # libpq: 'connection failed: connection to server at "h" (...), port 9 failed: Connection refused'
    if msg.startswith("connection failed: ") and " failed: " in msg[len("connection failed: ") :]:
        msg = msg.rsplit(" failed: ", 1)[1]
    return msg or type(exc).__name__
