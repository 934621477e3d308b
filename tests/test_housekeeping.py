"""Housekeeping that also prunes (`monitor.housekeeping.RecordAndPrune`) on a real store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

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
