"""The fencing token of a leadership, and the SQL that checks it (no driver imports).

`monitor.storage.leader.PostgresLeaderLock` makes a `LeaderFence` when it takes the lock;
`monitor.storage.repository.SqlStore.finish_run` checks it in the transaction of a run's
final write (docs/operations.md, "Leadership and fencing"). Kept apart from the lock so
the store does not import psycopg on SQLite (docs/performance.md, "Start-up").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["HOLDER_SQL", "LeaderFence"]


@dataclass(frozen=True, slots=True)
class LeaderFence:
    """One leadership: the advisory-lock key and the session that took it.

    A PostgreSQL session, named by backend pid and start time, never comes back once it
    ended, so "this session holds the lock" is true only during this one leadership.
    """

    key: int
    pid: int
    backend_start: datetime


# Whether the session (pid, backend_start) holds advisory lock `key` (a bigint that
# pg_locks splits into classid, the high 32 bits, and objid, the low 32 bits).
HOLDER_SQL = (
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.classid = ((%(key)s::bigint >> 32) & 4294967295)::oid "
    "AND l.objid = (%(key)s::bigint & 4294967295)::oid "
    "AND l.pid = %(pid)s AND a.backend_start = %(start)s"
)
