"""The hot queries of a long history use their indexes, on SQLite and on PostgreSQL.

Each check runs a real store method, records the statements it sent (SQLAlchemy's
`before_cursor_execute`), and asks the database for their plans with the same
parameters: EXPLAIN QUERY PLAN on SQLite, EXPLAIN with `enable_seqscan = off` on
PostgreSQL (so the plan does not depend on how many rows a test can afford; a query
that has no usable index still shows a sequential scan then). A check passes when the
plan names the expected index and scans neither `run` nor `item_result` in full; the
last tests drop an index and see the check fail. Figures at 5 million item results:
benchmarks/history.py, docs/performance.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.core.model import ItemResult, RunStatus, ScoreSummary
from monitor.storage import SqlStore
from tests.storage.conftest import T0

RUNS, ITEMS = 40, 25
# The big tables: a plan may read them only through an index.
BIG = ("run", "item_result")
PAIR_INDEX = "ix_run_monitor_endpoint_started_at"
TIME_INDEX = "ix_run_started_at_id"


def engine_of(store: SqlStore) -> sa.Engine:
    engine: sa.Engine = store._engine  # the store hides its engine; a plan test looks inside
    return engine


def unique_index(store: SqlStore) -> str:
    """The index behind item_result's unique (run_id, item_key): SQLite names it itself."""
    engine = engine_of(store)
    if engine.dialect.name == "postgresql":
        return "uq_item_result_run_id_item_key"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("PRAGMA index_list('item_result')").all()
    (name,) = [row[1] for row in rows if row[3] == "u"]
    return str(name)


@pytest.fixture
def history(store: SqlStore) -> list[int]:
    """A few finished runs of two pairs with their item results; their ids."""
    ids = []
    for k in range(RUNS):
        started = T0 + timedelta(hours=k)
        run = store.start_run(
            monitor="m",
            benchmark="b",
            benchmark_version="v1",
            endpoint=f"e{k % 2}",
            trigger="schedule",
            started_at=started,
        )
        store.add_item_results(
            run.id,
            [ItemResult(f"i{i}", f"yes {i}", {"em": 1.0}, 0.1) for i in range(ITEMS)],
        )
        store.finish_run(
            run.id,
            status=RunStatus.SUCCEEDED,
            finished_at=started,
            n_items=ITEMS,
            n_errors=0,
            model_id=None,
            scores=[ScoreSummary("em", 1.0, 0.9, 1.0, ITEMS)],
        )
        ids.append(run.id)
    if engine_of(store).dialect.name == "postgresql":
        with engine_of(store).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    return ids


@contextmanager
def recorded(store: SqlStore) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT and DELETE statements the store sends inside the block, with parameters."""
    sent: list[tuple[str, Any]] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        if not many and statement.lstrip().upper().startswith(("SELECT", "DELETE")):
            sent.append((statement, parameters))

    engine = engine_of(store)
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def plan(store: SqlStore, statement: str, parameters: Any) -> str:
    engine = engine_of(store)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            return "\n".join(str(row[0]) for row in rows)
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "\n".join(str(row[-1]) for row in rows)


def full_scans(store: SqlStore, text: str, walks: tuple[str, ...] = ()) -> list[str]:
    """The plan lines that read a big table in full: a sequential scan, or a walk of a
    whole index (with `enable_seqscan = off`, PostgreSQL picks one instead of a
    sequential scan). A walk of an index in `walks` is allowed: the query reads it in
    its order and stops at its LIMIT."""
    lines = text.splitlines()
    found = []
    for n, line in enumerate(lines):
        node = line.strip().removeprefix("->").strip()
        if engine_of(store).dialect.name == "sqlite":
            match = re.match(
                rf"SCAN ({'|'.join(BIG)})\b(?: USING (?:COVERING )?INDEX (\w+))?", node
            )
            if match and match.group(2) not in walks:
                found.append(node)
            continue
        if re.match(rf"Seq Scan on ({'|'.join(BIG)})\b", node):
            found.append(node)
            continue
        match = re.match(
            rf"Index (?:Only )?Scan (?:Backward )?using (\w+) on ({'|'.join(BIG)})\b", node
        )
        if match is None or match.group(1) in walks:
            continue
        indent = len(line) - len(line.lstrip())
        details = []
        for below in lines[n + 1 :]:
            if len(below) - len(below.lstrip()) <= indent or below.strip().startswith("->"):
                break
            details.append(below)
        if not any("Index Cond" in d for d in details):
            found.append(node)
    return found


def check(
    store: SqlStore, call: Callable[[], object], *indexes: str, walks: tuple[str, ...] = ()
) -> None:
    """`call`'s statements name every index in `indexes` and read no big table in full."""
    with recorded(store) as sent:
        call()
    assert sent, "the call sent no SELECT or DELETE"
    plans = [plan(store, statement, parameters) for statement, parameters in sent]
    text = "\n".join(plans)
    for index in indexes:
        assert index in text, f"{index} is not used:\n{text}"
    for statement, found in zip(sent, plans, strict=True):
        assert not full_scans(store, found, walks), f"a full scan in\n{statement[0]}\n{found}"


class TestHotQueries:
    def test_baseline_item_scores_of_a_run_id_set(
        self, store: SqlStore, history: list[int]
    ) -> None:
        """Judging's per-item scores of the rolling baseline: by run id, through the index."""
        check(store, lambda: store.item_scores(history[-4:], "em"), unique_index(store))

    def test_baseline_drift_signals(self, store: SqlStore, history: list[int]) -> None:
        check(store, lambda: store.baseline_signals(history[-4:], labels=True), unique_index(store))

    def test_rolling_baseline_run_ids(self, store: SqlStore, history: list[int]) -> None:
        def call() -> object:
            return store.baseline_run_ids(
                monitor="m", endpoint="e0", benchmark_version="v1", k=5, before_run_id=history[-1]
            )

        check(store, call)

    def test_runs_of_one_pair_newest_first(self, store: SqlStore, history: list[int]) -> None:
        """GET /api/v1/runs?monitor=&endpoint=."""
        assert history
        check(store, lambda: store.list_runs(monitor="m", endpoint="e1", limit=5), PAIR_INDEX)

    def test_newest_runs_of_all_monitors(self, store: SqlStore, history: list[int]) -> None:
        """GET /api/v1/runs: an ordered walk of the (started_at, id) index (migration 0004)."""
        assert history
        check(store, lambda: store.list_runs(limit=5), TIME_INDEX, walks=(TIME_INDEX,))

    def test_a_page_of_a_runs_items(self, store: SqlStore, history: list[int]) -> None:
        """GET /api/v1/runs/{id}/items: the count and one page, by run id."""

        def call() -> object:
            store.count_item_results(history[3])
            return store.item_results(history[3], limit=10, offset=10)

        check(store, call, unique_index(store))

    def test_prune_by_time(self, store: SqlStore, history: list[int]) -> None:
        """Retention: old runs by start time, then their item results by run id."""
        cutoff = T0 + timedelta(hours=RUNS // 2)
        check(
            store,
            lambda: store.prune_item_results(cutoff, batch_rows=ITEMS, pause_s=0),
            TIME_INDEX,
            unique_index(store),
        )
        assert store.item_results(history[0]) == []


class TestTheCheckIsLive:
    def test_without_the_time_index_the_prune_check_fails(
        self, store: SqlStore, history: list[int]
    ) -> None:
        with engine_of(store).begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX {TIME_INDEX}")
        cutoff = T0 + timedelta(hours=RUNS // 2)
        with pytest.raises(AssertionError):
            check(store, lambda: store.prune_item_results(cutoff, pause_s=0), TIME_INDEX)
        with pytest.raises(AssertionError, match="full scan"):
            check(store, lambda: store.list_runs(limit=5))
        assert history

    def test_without_the_pair_index_the_listing_scans_the_runs(
        self, store: SqlStore, history: list[int]
    ) -> None:
        with engine_of(store).begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX {PAIR_INDEX}")
        with pytest.raises(AssertionError, match="full scan"):
            check(store, lambda: store.list_runs(monitor="m", endpoint="e1", limit=5))
        assert history

    @pytest.mark.postgres
    @pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
    def test_without_the_unique_index_judging_scans_the_item_results(
        self, store: SqlStore, history: list[int]
    ) -> None:
        """PostgreSQL only: SQLite cannot drop the index behind a UNIQUE constraint."""
        with engine_of(store).begin() as conn:
            conn.exec_driver_sql(
                "ALTER TABLE item_result DROP CONSTRAINT uq_item_result_run_id_item_key"
            )
        with pytest.raises(AssertionError, match="full scan"):
            check(store, lambda: store.item_scores(history[-4:], "em"))
