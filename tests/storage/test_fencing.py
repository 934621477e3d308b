"""The leader lock's lease and fencing token on the real PostgreSQL server.

A run started under one leadership cannot record a final state once that leadership's
lock session is gone (docs/operations.md, "Leadership and fencing"): the store checks,
in the transaction of the final write, that the session which took the lock holds it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest

from monitor.core.model import Run, RunStatus, ScoreSummary
from monitor.storage import SqlStore, open_store
from monitor.storage.leader import PostgresLeaderLock
from tests.conftest import PG

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def start(store: SqlStore) -> Run:
    return store.start_run(
        monitor="m",
        benchmark="b",
        benchmark_version="v1",
        endpoint="ep",
        trigger="schedule",
        started_at=T0,
    )


def finish(store: SqlStore, run: Run) -> Run:
    return store.finish_run(
        run.id,
        status=RunStatus.SUCCEEDED,
        finished_at=T0,
        n_items=3,
        n_errors=0,
        model_id="m-1",
        scores=[ScoreSummary("exact_match", 1.0, 0.3, 1.0, 3)],
    )


def reason(url: str, run_id: int) -> str | None:
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT status_reason FROM run WHERE id = %s", (run_id,)).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


def terminate(pid: int) -> None:
    """End the session `pid` and wait until it is gone (pg_terminate_backend only signals)."""
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


class TestFence:
    def test_the_holder_finishes_its_run(self, pg_database: str) -> None:
        """While the session that took the lock holds it, the final write is stored."""
        store = open_store(pg_database)
        lock = PostgresLeaderLock(pg_database)
        try:
            assert lock.try_acquire()
            store.fence_with(lock.fence())
            run = start(store)
            assert finish(store, run).status is RunStatus.SUCCEEDED
            assert store.run_scores([run.id])[run.id][0].value == 1.0
        finally:
            lock.release()
            store.close()

    def test_a_run_of_an_ended_leadership_cannot_succeed(self, pg_database: str) -> None:
        """After the old session ended and a new one leads, the old run becomes aborted."""
        old_leader, new_leader = open_store(pg_database), open_store(pg_database)
        a, b = PostgresLeaderLock(pg_database), PostgresLeaderLock(pg_database)
        try:
            assert a.try_acquire()
            fence = a.fence()
            assert fence is not None
            old_leader.fence_with(fence)
            run = start(old_leader)
            assert not b.try_acquire()
            terminate(fence.pid)  # the session is cut, as by a restart or the lease
            assert b.try_acquire()
            new_leader.fence_with(b.fence())
            finished = finish(old_leader, run)
            assert finished.status is RunStatus.ABORTED
            assert reason(pg_database, run.id) == "leadership_lost"
            assert old_leader.run_scores([run.id])[run.id] == []
            assert not a.still_held()
            # a run of the new leadership is not affected
            assert finish(new_leader, start(new_leader)).status is RunStatus.SUCCEEDED
        finally:
            a.release()
            b.release()
            old_leader.close()
            new_leader.close()

    def test_the_fence_holds_even_when_the_same_process_leads_again(self, pg_database: str) -> None:
        """A new session of the same lock is a new leadership: the old run stays fenced."""
        store = open_store(pg_database)
        lock = PostgresLeaderLock(pg_database)
        try:
            assert lock.try_acquire()
            first = lock.fence()
            assert first is not None
            store.fence_with(first)
            run = start(store)
            terminate(first.pid)
            assert not lock.still_held()
            assert lock.try_acquire()
            assert lock.fence() != first
            store.fence_with(lock.fence())
            assert finish(store, run).status is RunStatus.ABORTED
        finally:
            lock.release()
            store.close()


class TestLease:
    def test_a_leader_that_stops_checking_loses_the_lock(self, pg_database: str) -> None:
        """The server ends an idle lock session after the lease; another replica takes it."""
        a = PostgresLeaderLock(pg_database, lease=0.5)
        b = PostgresLeaderLock(pg_database, lease=0.5)
        try:
            assert a.try_acquire()
            assert not b.try_acquire()
            time.sleep(1.0)  # a is "paused": it makes no check for twice the lease
            assert b.try_acquire()
            assert not a.still_held()
            for _ in range(3):  # a holder that checks keeps it
                time.sleep(0.3)
                assert b.still_held()
        finally:
            a.release()
            b.release()
