"""Leader election for replicas sharing one PostgreSQL: a session advisory lock.

The lock lives on a dedicated connection (never from a pool, which could hand the session
to other work or recycle it) with TCP keepalives, so a dead leader's lock is released by
the server within seconds. The holder re-checks its session every second; if the check
fails it must stop running jobs at once, because another replica may already hold the lock.
"""

from __future__ import annotations

import hashlib

import psycopg
from sqlalchemy.engine import make_url

from monitor.errors import StorageError


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for `name`."""
    digest = hashlib.sha256(f"monitor-leader:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresLeaderLock:
    """`try_acquire` / `still_held` / `release` on one dedicated session."""

    def __init__(self, url: str, *, name: str = "scheduler") -> None:
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
        self._key = lock_key(name)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if free; False if another session holds it or the DB is away."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        except psycopg.Error:
            self._drop()
            return False
        return bool(row and row[0])

    def still_held(self) -> bool:
        """Whether our session is alive and holds the lock (checked on the server)."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objid = (%s::bigint & 4294967295)::oid "
                "AND classid = ((%s::bigint >> 32) & 4294967295)::oid",
                (self._key, self._key),
            ).fetchone()
        except psycopg.Error:
            self._drop()
            return False
        return bool(row and row[0])

    def release(self) -> None:
        """Give the lock up (closing the session releases it too)."""
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error as exc:  # pragma: no cover - closing a dead socket
                raise StorageError(f"closing the leader session: {exc}") from None
            finally:
                self._conn = None
