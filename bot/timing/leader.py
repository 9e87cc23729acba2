"""Leader election on PostgreSQL: exactly one replica runs the scheduler.

- `AlwaysLeader` (`bot.timing.election`): a single process (SQLite): leads from `start()` to `stop()`.
- `PostgresLeader`: replicas sharing a PostgreSQL database campaign for a session-level
  `pg_try_advisory_lock(key)` held on a *dedicated* autocommit connection (never a pooled one: a
  session lock would stay with the connection when it went back to the pool). A background
  thread retries every `retry_interval` while a follower, and while leader checks the
  connection with `SELECT 1` at the same pace; a failure means leadership is lost (`on_lost`),
  then it reconnects and campaigns again. When the leader process dies, its connection closes
  and PostgreSQL releases the lock, so a follower takes over within about `retry_interval`.
  Keepalives on both ends (client `keepalives_*`, server `tcp_keepalives_*`) bound how long a
  silently dead peer can hold or believe it holds the lock.

Callbacks run on the election thread; they must not block for long. The scheduler's firing is a
compare-and-set in the store (`claim_schedule`), so even a short overlap of two leaders (a
partitioned old leader that has not yet noticed) never runs a schedule twice.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from bot.store.postgres import advisory_key, conninfo, describe, split_url
from bot.timing.election import AlwaysLeader, Callback, Leadership, LeadershipFactory, call, noop

log = logging.getLogger("gonogo.leader")


#: Settings for the lock connection: fail fast, and let both ends notice a dead peer within ~15 s.
LOCK_CONNECTION: dict[str, str] = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
    "application_name": "gonogo-leader",
}
_SERVER_KEEPALIVES = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"


class PostgresLeader:
    """Leadership through a PostgreSQL session advisory lock on a dedicated connection.

    `dsn` may be the store URL (a `?schema=` parameter is removed and folded into the lock
    name, so gonogo installations in different schemas of one database elect separately).
    """

    single_process = False

    def __init__(
        self,
        dsn: str,
        name: str = "gonogo-scheduler",
        retry_interval: float = 1.0,
        on_elected: Callback | None = None,
        on_lost: Callback | None = None,
    ) -> None:
        libpq_url, schema = split_url(dsn)
        self.name = f"{name}:{schema}" if schema else name
        self.key = advisory_key(self.name)
        self.retry_interval = retry_interval
        self._conninfo = conninfo(libpq_url, extra_options=_SERVER_KEEPALIVES, **LOCK_CONNECTION)
        self._where = describe(dsn)
        self._on_elected = on_elected or noop
        self._on_lost = on_lost or noop
        self._leader = False
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None

    def is_leader(self) -> bool:
        """True while this replica holds the lock (as of the last check)."""
        return self._leader

    def start(self) -> None:
        """Start the campaign thread (the first attempt happens at once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gonogo-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Release the lock (fires on_lost if leading) and stop campaigning."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=float(LOCK_CONNECTION["connect_timeout"]) + self.retry_interval + 5)
        if thread.is_alive():
            log.warning("leader: campaign thread did not stop in time")

    # -- the campaign thread -------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._step()
                self._stop.wait(self.retry_interval)
        finally:
            self._resign()

    def _step(self) -> None:
        """One round: connect if needed, then try to take the lock, or check we still hold it."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
                self._last_error = None
            if self._leader:
                self._conn.execute("SELECT 1")
                return
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()
        except psycopg.Error as exc:
            self._connection_failed(exc)
            return
        if row is not None and row[0] is True:
            self._leader = True
            log.info("leader: elected (%s on %s)", self.name, self._where)
            if not call("on_elected", self._on_elected):
                self._resign()  # could not start leading: let another replica try
        elif self._last_error is None:
            log.debug("leader: following (%s is held elsewhere)", self.name)

    def _connection_failed(self, exc: psycopg.Error) -> None:
        message = " ".join(str(exc).split()) or type(exc).__name__
        if message != self._last_error:
            log.warning("leader: connection to %s failed: %s", self._where, message)
            self._last_error = message
        self._close()
        if self._leader:
            self._leader = False
            log.warning("leader: lost leadership (%s)", self.name)
            call("on_lost", self._on_lost)

    def _resign(self) -> None:
        """Give up the lock (if held) and fire on_lost."""
        was_leader, self._leader = self._leader, False
        conn = self._conn
        if was_leader and conn is not None and not conn.closed:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", [self.key])
            except psycopg.Error:
                self._close()  # closing the session releases the lock too
        if was_leader:
            log.info("leader: resigned (%s)", self.name)
            call("on_lost", self._on_lost)
        if self._stop.is_set():
            self._close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("leader: closing the connection failed", exc_info=True)


def leadership_for(store_url: str, *, retry_interval: float = 1.0) -> LeadershipFactory:
    """The leadership factory the Engine takes (`leadership=`) for a store URL: PostgreSQL
    replicas elect through an advisory lock; anything else is a single process."""
    if store_url.startswith(("postgresql://", "postgres://")):

        def make(on_elected: Callback, on_lost: Callback) -> Leadership:
            return PostgresLeader(
                store_url, retry_interval=retry_interval, on_elected=on_elected, on_lost=on_lost
            )

        return make
    return AlwaysLeader


__all__ = ["AlwaysLeader", "Leadership", "LeadershipFactory", "PostgresLeader", "leadership_for"]
