"""Fixtures for storage tests: a fresh database per test on SQLite and on PostgreSQL.

The PostgreSQL parameter creates a uniquely named database through the maintenance
database (``MONITOR_TEST_PG``, default ``postgresql://postgres@127.0.0.1:5432/test``) and
drops it afterwards; it is marked ``postgres`` and fails when the server is unreachable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from monitor.core.model import Run, RunStatus, ScoreSummary, Verdict, VerdictKind
from monitor.storage import SqlStore, open_store

MAINTENANCE_DSN = os.environ.get("MONITOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    """A migrated store on a fresh database, closed after the test."""
    opened = open_store(database_url)
    try:
        yield opened
    finally:
        opened.close()


NewRun = Callable[..., Run]


@pytest.fixture
def new_run(store: SqlStore) -> NewRun:
    """Start (and, unless `status` is RUNNING, finish) a run with sensible defaults."""
    counter = iter(range(1_000_000))

    def make(
        *,
        monitor: str = "intents-prod",
        endpoint: str = "chat-prod",
        benchmark: str = "support-intents",
        benchmark_version: str = "v1",
        status: RunStatus = RunStatus.SUCCEEDED,
        judged: str | None = None,
        scores: tuple[ScoreSummary, ...] = (),
    ) -> Run:
        started = T0 + timedelta(minutes=next(counter))
        run = store.start_run(
            monitor=monitor,
            benchmark=benchmark,
            benchmark_version=benchmark_version,
            endpoint=endpoint,
            trigger="schedule",
            started_at=started,
        )
        if status is not RunStatus.RUNNING:
            run = store.finish_run(
                run.id,
                status=status,
                finished_at=started + timedelta(seconds=30),
                n_items=10,
                n_errors=0,
                model_id="m-1",
                scores=scores,
            )
        if judged is not None:
            store.save_verdicts(
                run.id, [Verdict(scorer="em", verdict=VerdictKind(judged), test="t", baseline="b")]
            )
        return run

    return make
