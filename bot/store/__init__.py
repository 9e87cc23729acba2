"""Stores: where deployments, the event log, locks and step results live.

`open_store(url)` picks the implementation from the URL: `sqlite:///path` (default) or
`postgresql://...`. Both implement `Store`.

The face is the seam (`Store`, its records and errors) and `open_store`; it imports neither
database driver. The implementations are imported where they are used: `bot.store.sqlite`
(`SqliteStore`) and `bot.store.postgres` (`PostgresStore`, and the PostgreSQL URL and
advisory-lock helpers that leader election shares). Inside: `base` (the seam), `codec` (rows
and the SQL both stores share), each store's `*_migrations`, `postgres_connection`.
"""

from __future__ import annotations

from bot.store.base import ActiveDeploymentExists, CheckRecord, Schedule, StaleDeployment, Store, StoreError


def open_store(url: str) -> Store:
    """Open the store named by `url` (`sqlite:///path/to/db` or `postgresql://...`)."""
    if url.startswith("sqlite:///") or url == "sqlite://:memory:":
        from bot.store.sqlite import SqliteStore

        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ":memory:"
        return SqliteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        from bot.store.postgres import PostgresStore  # type: ignore[import-not-found,unused-ignore]

        return PostgresStore(url)  # type: ignore[no-any-return,unused-ignore]
    raise StoreError(f"unsupported store URL {url!r} (use sqlite:///path or postgresql://...)")


__all__ = [
    "ActiveDeploymentExists",
    "CheckRecord",
    "Schedule",
    "StaleDeployment",
    "Store",
    "StoreError",
    "open_store",
]
