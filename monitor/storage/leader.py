"""Leader election for replicas sharing one PostgreSQL: a session advisory lock.

The lock lives on a dedicated connection (never from a pool, which could hand the session
to other work or recycle it) with TCP keepalives, so a dead leader's lock is released by
the server within seconds. The holder re-checks its session every second; if the check
fails it must stop running jobs at once, because another replica may already hold the lock.

Two more rules make the lock a lease with a fencing token (docs/operations.md, "Leadership
and fencing"):

* the session sets `idle_session_timeout` to `lease` seconds, so the server ends the
  session of a leader that stopped checking (a paused process still answers TCP
  keepalives from its kernel, so keepalives alone would keep its lock forever);
* `fence()` names the session that holds the lock now (backend pid and start time).
  The store checks, in the transaction of a run's final write, that this session still
  holds the lock (`monitor.storage.repository.SqlStore.finish_run`); a session that
  ended can never hold it again, so an old leader cannot finish a run after losing it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import psycopg
from sqlalchemy.engine import make_url

from monitor.log import get_logger
from monitor.storage.fence import LeaderFence

__all__ = ["LeaderFence", "PostgresLeaderLock", "lock_key"]

log = get_logger("leadership")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for `name`."""
    digest = hashlib.sha256(f"monitor-leader:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresLeaderLock:
    """`try_acquire` / `still_held` / `release` on one dedicated session."""

    def __init__(self, url: str, *, name: str = "scheduler", lease: float = 5.0) -> None:
        parsed = make_url(url)
        self._conninfo = psycopg.conninfo.make_conninfo(
            host=parsed.host or "",
            port=str(parsed.port or 5432),
            user=parsed.username or "",
            password=parsed.password or "",
            dbname=parsed.database or "",
            application_name="monitor-leader",
            connect_timeout="5",
            keepalives="1",
            keepalives_idle="5",
            keepalives_interval="2",
            keepalives_count="2",
        )
        self.key = lock_key(name)
        self._lease_ms = max(1, round(lease * 1000))
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._fence: LeaderFence | None = None

    def try_acquire(self) -> bool:
        """Take the lock if free; False if another session holds it or the DB is away.

        A follower's idle session may have been ended by the lease (or a restart) since
        its last attempt: then one fresh session tries at once.
        """
        for fresh in (self._conn is None or self._conn.closed, True):
            try:
                if fresh:
                    self._drop()
                    self._conn = self._connect()
                assert self._conn is not None  # noqa: S101 - set just above
                return self._take(self._conn)
            except psycopg.Error:
                self._drop()
                if fresh:
                    return False
        return False  # pragma: no cover - the loop always returns

    def _take(self, conn: psycopg.Connection[tuple[object, ...]]) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if not (row and row[0]):
            return False
        ident = conn.execute(
            "SELECT pg_backend_pid(), backend_start FROM pg_stat_activity "
            "WHERE pid = pg_backend_pid()"
        ).fetchone()
        if ident is None:  # pragma: no cover - our own session is always listed
            raise psycopg.OperationalError("own session missing from pg_stat_activity")
        pid, started = ident
        if not isinstance(pid, int) or not isinstance(started, datetime):  # pragma: no cover
            raise TypeError(f"unexpected session identity {ident!r}")
        self._fence = LeaderFence(self.key, pid, started)
        return True

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(self._conninfo, autocommit=True)
        try:
            # the lease: a leader that stops checking loses its session, so its lock
            conn.execute(
                "SELECT set_config('idle_session_timeout', %s, false)", (str(self._lease_ms),)
            )
        except psycopg.errors.UndefinedObject:  # PostgreSQL < 14: keepalives only
            log.warning("leader_lease_unavailable", reason="idle_session_timeout needs PG 14")
        return conn

    def fence(self) -> LeaderFence | None:
        """The token of the session that took the lock last (None before the first)."""
        return self._fence

    def still_held(self) -> bool:
        """Whether our session is alive and holds the lock (checked on the server).

        When it does not, the session is closed: the next `try_acquire` campaigns on a
        fresh one, whatever state the old one was left in.
        """
        if self._conn is None or self._conn.closed:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objid = (%s::bigint & 4294967295)::oid "
                "AND classid = ((%s::bigint >> 32) & 4294967295)::oid",
                (self.key, self.key),
            ).fetchone()
        except psycopg.Error:
            self._drop()
            return False
        held = bool(row and row[0])
        if not held:
            self._drop()
        return held

    def release(self) -> None:
        """Give the lock up (closing the session releases it too)."""
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error as exc:  # pragma: no cover - closing a dead socket
                log.warning("leader_session_close_failed", error=str(exc))
