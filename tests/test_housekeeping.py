"""Housekeeping that also prunes (`monitor.housekeeping.RecordAndPrune`) on a real store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import Settings, parse_settings
from monitor.core.model import ItemResult, RunStatus
from monitor.housekeeping import RecordAndPrune
from monitor.storage import SqlStore, open_store
from tests.fakes import T0, ManualClock


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    yield s
    s.close()


def add_run(store: SqlStore, days_ago: float, items: int = 3) -> int:
    run = store.start_run(
        monitor="m",
        benchmark="b",
        benchmark_version="v",
        endpoint="e",
        trigger="schedule",
        started_at=T0 - timedelta(days=days_ago),
    )
    store.add_item_results(
        run.id, [ItemResult(f"k{i}", "x", {"s": 1.0}, 0.1) for i in range(items)]
    )
    store.finish_run(
        run.id,
        status=RunStatus.SUCCEEDED,
        finished_at=T0 - timedelta(days=days_ago),
        n_items=items,
        n_errors=0,
        model_id=None,
        scores=[],
    )
    return run.id


def settings(retention: str) -> Settings:
    return parse_settings(f'storage: {{url: "sqlite:///x.db"{retention}}}\n')


class TestRecordAndPrune:
    async def test_prunes_item_results_past_retention_and_keeps_the_runs(
        self, store: SqlStore
    ) -> None:
        """Items of runs older than retention_days go; newer ones and every run row stay."""
        old, pinned, new = add_run(store, 40), add_run(store, 35), add_run(store, 2)
        store.pin_baseline(monitor="m", endpoint="e", run_ids=[pinned], now=T0)
        pending: list[int] = []

        async def record_pending() -> int:
            pending.append(1)
            return 0

        upkeep = RecordAndPrune(
            record_pending, store, lambda: settings(", retention_days: 30"), clock=ManualClock()
        )
        assert await upkeep.step() == 3
        assert pending == [1]
        assert store.item_results(old) == []
        assert len(store.item_results(pinned)) == 3  # a pinned baseline keeps its items
        assert len(store.item_results(new)) == 3
        assert store.get_run(old) is not None
        assert await upkeep.step() is None  # at most once an hour

    async def test_without_retention_nothing_is_deleted(self, store: SqlStore) -> None:
        """No retention_days: late states are still recorded, no item result is deleted."""
        run = add_run(store, 400)

        async def record_pending() -> int:
            return 0

        upkeep = RecordAndPrune(record_pending, store, lambda: settings(""), clock=ManualClock())
        assert await upkeep.step() is None
        assert len(store.item_results(run)) == 3


class TestPruneInBatches:
    def test_each_transaction_deletes_at_most_one_batch(self, store: SqlStore) -> None:
        """A big prune is many short write transactions (benchmarks/history.py): on SQLite a
        run writing its results waits for one batch at most, not for the whole prune."""
        old = [add_run(store, 40 + k, items=5) for k in range(4)]
        pinned, new = add_run(store, 35, items=5), add_run(store, 2, items=5)
        store.pin_baseline(monitor="m", endpoint="e", run_ids=[pinned], now=T0)
        engine = store._engine  # the store hides its engine; this test counts its commits
        per_transaction: list[int] = [0]

        def count(_c: Any, cursor: Any, statement: str, *_rest: Any) -> None:
            if statement.startswith("DELETE FROM item_result"):
                per_transaction[-1] += cursor.rowcount

        def commit(_conn: Any) -> None:
            per_transaction.append(0)

        sa.event.listen(engine, "after_cursor_execute", count)
        sa.event.listen(engine, "commit", commit)
        try:
            deleted = store.prune_item_results(T0 - timedelta(days=30), batch_rows=3, pause_s=0)
        finally:
            sa.event.remove(engine, "after_cursor_execute", count)
            sa.event.remove(engine, "commit", commit)
        assert deleted == 20
        batches = [n for n in per_transaction if n]
        assert max(batches) <= 3
        assert sum(batches) == 20
        assert len(batches) == 7  # ceil(20 / 3)
        assert all(store.item_results(run) == [] for run in old)
        assert len(store.item_results(pinned)) == 5
        assert len(store.item_results(new)) == 5
        assert store.prune_item_results(T0 - timedelta(days=30), batch_rows=3) == 0

    def test_runs_still_running_keep_their_items(self, store: SqlStore) -> None:
        """A run started before the cutoff but not finished is not pruned under its writer."""
        running = store.start_run(
            monitor="m",
            benchmark="b",
            benchmark_version="v",
            endpoint="e",
            trigger="schedule",
            started_at=T0 - timedelta(days=40),
        )
        store.add_item_results(running.id, [ItemResult("k", "x", {"s": 1.0}, 0.1)])
        assert store.prune_item_results(T0 - timedelta(days=30), batch_rows=1, pause_s=0) == 0
        assert len(store.item_results(running.id)) == 1

    def test_a_batch_size_must_be_positive(self, store: SqlStore) -> None:
        with pytest.raises(ValueError, match="positive"):
            store.prune_item_results(T0, batch_rows=0)
