"""Store backends under test. Every store test is parametrised over STORE_BACKENDS.

`make_store(kind, tmp_path)` opens a fresh, empty store of that kind. A `postgres` store lives
in its own schema on the test server (see `tests.pgfixtures`) and drops it when closed; when
the server is unreachable the test is skipped locally and fails in CI.
"""

from __future__ import annotations

from pathlib import Path

from bot.store import Store
from bot.store.sqlite import SqliteStore

STORE_BACKENDS = ["sqlite", "postgres"]


def make_store(kind: str, tmp_path: Path) -> Store:
    """A fresh empty store of `kind`."""
    if kind == "sqlite":
        return SqliteStore(tmp_path / "gonogo.db")
    if kind == "postgres":
        from tests.support.pgfixtures import DisposablePostgresStore

        return DisposablePostgresStore()
    raise ValueError(kind)
