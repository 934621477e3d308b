"""The store's read-only queries behind the pages and `compare`, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from monitor.api.compare import ComparisonError, compare_endpoints, leaderboard
from monitor.api.deps import DaemonView
from monitor.api.ui import OverviewCache, overview_cells
from monitor.core.model import RunStatus
from monitor.storage import SqlStore, open_store
from tests.ui.seed import seed_benchmark, seed_run

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> SqlStore:
    """A migrated, empty store on each backend."""
    return open_store(database_url)


def runs_of(store: SqlStore, endpoint: str, n: int, version: str = "v1", hour: int = 0) -> None:
    keys = [f"i{k}" for k in range(10)]
    for h in range(n):
        seed_run(
            store,
            monitor="m",
            endpoint=endpoint,
            started_at=T0 + timedelta(hours=hour + h),
            passed={k: (i + h) % 5 != 0 for i, k in enumerate(keys)},
            version=version,
        )


class TestQueries:
    """Each query returns what was stored, newest first where it says so."""

    def test_latest_succeeded_runs_per_endpoint_and_version(self, store: SqlStore) -> None:
        """One run per (endpoint, version): the newest succeeded one, newest first."""
        seed_benchmark(store, T0, n=10)
        runs_of(store, "a", 3)
        runs_of(store, "b", 2)
        runs_of(store, "a", 1, version="v2", hour=10)
        seed_run(
            store, monitor="m", endpoint="b", started_at=T0 + timedelta(hours=20),
            passed={"i0": True}, status=RunStatus.FAILED,
        )  # fmt: skip
        found = store.latest_succeeded_runs("qa")
        assert [(r.endpoint, r.benchmark_version) for r in found] == [
            ("a", "v2"),
            ("b", "v1"),
            ("a", "v1"),
        ]
        assert all(r.status is RunStatus.SUCCEEDED for r in found)
        assert [r.id for r in found] == sorted((r.id for r in found), reverse=True)
        store.close()

    def test_recent_scores_are_the_newest_succeeded_runs(self, store: SqlStore) -> None:
        """At most `per_pair` runs per pair, newest first; a pair without runs maps to []."""
        seed_benchmark(store, T0, n=10)
        runs_of(store, "a", 6)
        newest = store.list_runs(endpoint="a", limit=4)
        recent = store.recent_scores([("m", "a"), ("m", "none")], 4)
        assert [rid for rid, _ in recent["m", "a"]] == [r.id for r in newest]
        assert recent["m", "none"] == []
        scores = store.run_scores([newest[0].id])[newest[0].id]
        assert recent["m", "a"][0][1] == scores[0]
        store.close()

    def test_items_results_and_splits_by_key(self, store: SqlStore) -> None:
        """Items, item results and splits come back for the asked keys only."""
        seed_benchmark(store, T0, n=10)
        runs_of(store, "a", 1)
        (run,) = store.list_runs()
        items = store.items_by_key("qa", "v1", ["i1", "i2", "nope"])
        assert sorted(items) == ["i1", "i2"]
        assert items["i1"].reference == "answer 1"
        assert items["i1"].fields["question"] == "What is item 1?"
        assert sorted(store.item_results_by_key(run.id, ["i3", "nope"])) == ["i3"]
        assert store.item_splits("qa", "v1", ["i1", "i2"]) == {"i1": "hard", "i2": "easy"}
        assert store.benchmark_splits("qa", "v1") == ["easy", "hard"]
        assert store.benchmark_splits("qa", "v9") == []
        assert store.run_latencies([run.id, 999]) == {run.id: pytest.approx((0.05, 0.05))}
        store.close()


class TestComparisonDocuments:
    """`compare_endpoints` and `leaderboard` on the stored runs."""

    def test_the_newest_shared_version_is_compared(self, store: SqlStore) -> None:
        """b has no v2 run, so a and b are compared on v1, their newest shared version."""
        seed_benchmark(store, T0, n=10)
        runs_of(store, "a", 2)
        runs_of(store, "b", 2)
        runs_of(store, "a", 1, version="v2", hour=10)
        report = compare_endpoints(store, benchmark="qa", a="a", b="b", margin=0.1)
        assert report["benchmark_version"] == "v1"
        assert report["same_version"]
        (name,) = report["scorers"]
        assert report["scorers"][name]["comparison"]["n"] == 10
        with pytest.raises(ComparisonError, match="'c' has no succeeded run"):
            compare_endpoints(store, benchmark="qa", a="a", b="c")
        board = leaderboard(store, benchmark="qa", margin=0.1)
        assert board["benchmark_version"] == "v2"  # the newest version: only a ran it
        assert [e["endpoint"] for e in board["entries"]] == ["a"]
        store.close()


class TestOverviewCache:
    """The overview re-reads only the pairs whose latest runs changed, and shows the same."""

    def test_a_new_run_rereads_only_its_pair(
        self, store: SqlStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Cached, unchanged, then one new run on `b`: one read of both, none, one of `b`."""
        seed_benchmark(store, T0, n=10)
        runs_of(store, "a", 3)
        runs_of(store, "b", 3)
        view = cast(DaemonView, SimpleNamespace(settings=SimpleNamespace(monitors=[])))
        now = T0 + timedelta(days=1)
        read: list[list[tuple[str, str]]] = []
        real = store.recent_scores

        def spy(pairs: Iterable[tuple[str, str]], per_pair: int) -> Any:
            pairs = sorted(pairs)
            read.append(pairs)
            return real(pairs, per_pair)

        monkeypatch.setattr(store, "recent_scores", spy)
        cache = OverviewCache()
        first = overview_cells(view, store, now, cache)
        assert read == [[("m", "a"), ("m", "b")]]
        assert overview_cells(view, store, now, cache) == first
        assert len(read) == 1
        seed_run(
            store, monitor="m", endpoint="b", started_at=T0 + timedelta(hours=10),
            passed={f"i{k}": k < 2 for k in range(10)},
        )  # fmt: skip
        cells = overview_cells(view, store, now, cache)
        assert read[-1] == [("m", "b")]
        assert cells == overview_cells(view, store, now)  # as if nothing were cached
        assert cells[0] == first[0]
        assert cells[1] != first[1]
        assert cells[1].score is not None
        assert cells[1].score.value == pytest.approx(0.2)
        store.close()
