"""Fixtures for storage tests: a fresh database per test on SQLite and on PostgreSQL.

The PostgreSQL parameter creates a uniquely named database through the maintenance
database (``MONITOR_TEST_PG``, default ``postgresql://postgres@127.0.0.1:5432/test``) and
drops it afterwards; it is marked ``postgres`` and fails when the server is unreachable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from monitor.core.model import Run, RunStatus, ScoreSummary, Verdict, VerdictKind
from monitor.storage import SqlStore, open_store

MAINTENANCE_DSN = os.environ.get("MONITOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _pg_conninfo() -> str:
    return MAINTENANCE_DSN.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    name = f"monitor_test_{uuid.uuid4().hex[:16]}"
    try:
        admin = psycopg.connect(_pg_conninfo(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        # A failure, not a skip: scripts/test.sh starts PostgreSQL, so this means it is broken.
        pytest.fail(f"PostgreSQL unreachable at {MAINTENANCE_DSN}: {exc}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(_pg_conninfo())
    user = info.get("user", "postgres")
    host = info.get("host", "127.0.0.1")
    port = info.get("port", 5432)
    try:
        yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(_pg_conninfo(), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


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
