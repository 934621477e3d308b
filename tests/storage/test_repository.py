"""Tests for monitor.storage.SqlStore on SQLite and PostgreSQL (see conftest `store`)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from monitor.core.fingerprint import Fingerprint
from monitor.core.model import (
    Benchmark,
    ChangedItems,
    ErrorKind,
    Item,
    ItemResult,
    Run,
    RunStatus,
    ScorerSpec,
    ScoreSummary,
    Usage,
    Verdict,
    VerdictKind,
)
from monitor.errors import StorageError
from monitor.storage import SqlStore, open_store
from monitor.storage import tables as t
from monitor.storage.repository import OUTPUT_CAP_BYTES, VERDICT_SEVERITY, worst_verdict

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # same origin as conftest's `new_run`
NewRun = Callable[..., Run]


def count(store: SqlStore, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    """Number of rows of `table` matching `where`, read straight from the database."""
    with store._engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
        )


def bench(version: str = "v1", n: int = 3) -> Benchmark:
    """A small benchmark with unicode fields and a split."""
    items = tuple(
        Item(
            key=f"item-{i}",
            fields={"text": f"Rückerstattung {i} 退款 🙂", "n": i, "tags": ["a", "b"]},
            prompt=f"Classify {i}",
            reference="refund",
            split="public" if i % 2 else "private",
        )
        for i in range(n)
    )
    return Benchmark(
        name="support-intents",
        version=version,
        items=items,
        scorers=(ScorerSpec(kind="exact_match", name="exact_match"),),
    )


def result(key: str, score: float | None = 1.0, error: ErrorKind | None = None) -> ItemResult:
    """An item result with one `em` score (none when `score` is None)."""
    scores = {} if score is None else {"em": score}
    return ItemResult(item_key=key, output=f"out {key}", scores=scores, latency_s=0.25, error=error)


class TestBenchmarksAndEndpoints:
    def test_save_benchmark_is_idempotent(self, store: SqlStore) -> None:
        """Saving the same benchmark version twice stores one version and its items once."""
        store.save_benchmark(bench(n=3), T0)
        store.save_benchmark(bench(n=3), T0 + timedelta(hours=1))
        assert count(store, t.benchmark_version) == 1
        assert count(store, t.item) == 3

    def test_concurrent_saves_store_once(self, store: SqlStore) -> None:
        """Replicas saving the same new version at the same time store it exactly once."""
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def save() -> None:
            barrier.wait()
            try:
                store.save_benchmark(bench(n=50), T0)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=save) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert count(store, t.benchmark_version) == 1
        assert count(store, t.item) == 50

    def test_new_version_stores_its_own_items(self, store: SqlStore) -> None:
        """A second content version of the same benchmark adds a version with its items."""
        store.save_benchmark(bench("v1", n=3), T0)
        store.save_benchmark(bench("v2", n=4), T0)
        assert count(store, t.benchmark_version) == 2
        assert count(store, t.item) == 7

    def test_items_round_trip_unicode_fields(self, store: SqlStore) -> None:
        """Item fields, reference and split are stored as given, unicode included."""
        store.save_benchmark(bench(n=2), T0)
        with store._engine.connect() as conn:
            rows = conn.execute(sa.select(t.item).order_by(t.item.c.item_key)).mappings().all()
        assert rows[1]["fields"] == {"text": "Rückerstattung 1 退款 🙂", "n": 1, "tags": ["a", "b"]}
        assert rows[1]["reference"] == "refund"
        assert [r["split"] for r in rows] == ["private", "public"]

    def test_numpy_and_nan_fields(self, store: SqlStore) -> None:
        """Numpy values become plain JSON and NaN becomes null inside item fields."""
        fields = {"pixels": np.array([0.5, np.nan]), "label": np.int64(7), "w": math.nan}
        store.save_benchmark(
            Benchmark("digits", "v1", (Item("d-1", fields, reference=np.int64(7)),), ()), T0
        )
        with store._engine.connect() as conn:
            row = conn.execute(sa.select(t.item)).mappings().one()
        assert row["fields"] == {"pixels": [0.5, None], "label": 7, "w": None}
        assert row["reference"] == 7

    def test_unserializable_fields_fail_cleanly(self, store: SqlStore) -> None:
        """A field that is not JSON is a StorageError and stores nothing."""
        broken = Benchmark("b", "v1", (Item("k", {"when": T0}),), ())
        with pytest.raises(StorageError, match="not JSON serializable"):
            store.save_benchmark(broken, T0)
        assert count(store, t.benchmark_version) == 0

    def test_empty_benchmark_is_saved(self, store: SqlStore) -> None:
        """A benchmark without items still records its version."""
        store.save_benchmark(bench(n=0), T0)
        assert count(store, t.benchmark_version) == 1

    def test_save_endpoint_upserts(self, store: SqlStore) -> None:
        """Saving an endpoint again updates its hash instead of adding a row."""
        store.save_endpoint("chat-prod", "hash-1", T0)
        store.save_endpoint("chat-prod", "hash-2", T0 + timedelta(minutes=5))
        with store._engine.connect() as conn:
            rows = conn.execute(sa.select(t.endpoint)).mappings().all()
        assert [(r["name"], r["config_hash"]) for r in rows] == [("chat-prod", "hash-2")]
        assert rows[0]["updated_at"] == T0 + timedelta(minutes=5)


class TestRuns:
    def test_start_run_returns_a_running_run(self, store: SqlStore) -> None:
        """A started run has an id, status running and the given fields."""
        run = store.start_run(
            monitor="m",
            benchmark="b",
            benchmark_version="v1",
            endpoint="e",
            trigger="manual",
            started_at=T0,
        )
        assert run.id > 0
        assert run.status is RunStatus.RUNNING
        assert (run.monitor, run.benchmark, run.benchmark_version, run.endpoint, run.trigger) == (
            "m",
            "b",
            "v1",
            "e",
            "manual",
        )
        assert run.started_at == T0
        assert run.finished_at is None
        assert store.get_run(run.id) == run

    def test_finish_run_round_trip(self, store: SqlStore, new_run: NewRun) -> None:
        """Finishing a run stores status, counts, model id and run-level scores."""
        run = new_run(status=RunStatus.RUNNING)
        scores = [ScoreSummary("em", 0.8, 0.7, 0.9, 100), ScoreSummary("f1", 0.5, 0.4, 0.6, 100)]
        done = store.finish_run(
            run.id,
            status=RunStatus.DEGRADED,
            finished_at=run.started_at + timedelta(seconds=42),
            n_items=100,
            n_errors=31,
            model_id="our-model-2025",
            scores=scores,
        )
        assert done.status is RunStatus.DEGRADED
        assert (done.n_items, done.n_errors, done.model_id) == (100, 31, "our-model-2025")
        assert done.finished_at == run.started_at + timedelta(seconds=42)
        assert store.get_run(run.id) == done
        assert store.run_scores([run.id]) == {run.id: scores}

    def test_fingerprint_and_events_round_trip(self, store: SqlStore, new_run: NewRun) -> None:
        """The fingerprint given at finish and the events judging sets come back as given."""
        run = new_run(status=RunStatus.RUNNING)
        fp = Fingerprint(
            endpoint_type="openai-chat",
            endpoint_host="llm:443",
            model="gpt-x",
            params={"temperature": 0.2, "stop": ["\n"], "nested": {"a": None}},
            request=None,
            benchmark_version="v1",
            scorers=("em=exact_match",),
            monitor_version="0.1.0",
            served_models={"gpt-x-1": 9, "gpt-x-2": 1},
            system_fingerprints={"fp_a": 10},
        )
        done = store.finish_run(
            run.id,
            status=RunStatus.SUCCEEDED,
            finished_at=T0,
            n_items=10,
            n_errors=0,
            model_id="gpt-x-1",
            scores=(),
            fingerprint=fp,
        )
        assert done.fingerprint == fp
        event = {"kind": "served_model_changed", "field": "model", "before": ["a"], "after": "b"}
        store.set_run_events(run.id, [event])
        stored = store.get_run(run.id)
        assert stored is not None
        assert (stored.fingerprint, [dict(e) for e in stored.events]) == (fp, [event])
        store.set_run_events(run.id, [])
        assert store.get_run(run.id).events == ()  # type: ignore[union-attr]
        assert new_run().fingerprint is None  # a run finished without one

    def test_finish_run_twice_replaces_scores(self, store: SqlStore, new_run: NewRun) -> None:
        """Re-finishing a run replaces its scores rather than duplicating them."""
        run = new_run(scores=(ScoreSummary("em", 0.8, 0.7, 0.9, 10),))
        store.finish_run(
            run.id,
            status=RunStatus.SUCCEEDED,
            finished_at=T0,
            n_items=10,
            n_errors=0,
            model_id=None,
            scores=[ScoreSummary("em", 0.6, 0.5, 0.7, 10)],
        )
        assert store.run_scores([run.id])[run.id] == [ScoreSummary("em", 0.6, 0.5, 0.7, 10)]

    def test_finish_unknown_run_raises(self, store: SqlStore) -> None:
        """Finishing a run that does not exist is a StorageError."""
        with pytest.raises(StorageError, match="no such run"):
            store.finish_run(
                999,
                status=RunStatus.FAILED,
                finished_at=T0,
                n_items=0,
                n_errors=0,
                model_id=None,
                scores=[],
            )

    def test_finish_run_rejects_running(self, store: SqlStore, new_run: NewRun) -> None:
        """A run cannot be finished with status running."""
        run = new_run(status=RunStatus.RUNNING)
        with pytest.raises(ValueError, match="final status"):
            store.finish_run(
                run.id,
                status=RunStatus.RUNNING,
                finished_at=T0,
                n_items=0,
                n_errors=0,
                model_id=None,
                scores=[],
            )

    def test_get_missing_run_is_none(self, store: SqlStore) -> None:
        """Reading an unknown run id returns None."""
        assert store.get_run(12345) is None

    def test_list_runs_newest_first_with_filters(self, store: SqlStore, new_run: NewRun) -> None:
        """Runs list newest first and filter by monitor, endpoint and status."""
        a = new_run(monitor="m1", endpoint="e1")
        b = new_run(monitor="m1", endpoint="e2", status=RunStatus.FAILED)
        c = new_run(monitor="m2", endpoint="e1")
        d = new_run(monitor="m1", endpoint="e1", status=RunStatus.RUNNING)
        assert [r.id for r in store.list_runs()] == [d.id, c.id, b.id, a.id]
        assert [r.id for r in store.list_runs(monitor="m1")] == [d.id, b.id, a.id]
        assert [r.id for r in store.list_runs(endpoint="e1")] == [d.id, c.id, a.id]
        assert [r.id for r in store.list_runs(status=RunStatus.FAILED)] == [b.id]
        assert [r.id for r in store.list_runs(monitor="m1", endpoint="e1")] == [d.id, a.id]
        assert [r.id for r in store.list_runs(limit=2, offset=1)] == [c.id, b.id]
        assert store.list_runs(monitor="nope") == []

    def test_abort_running(self, store: SqlStore, new_run: NewRun) -> None:
        """Runs left running are aborted with a finish time; finished runs are untouched."""
        done = new_run()
        left = [new_run(status=RunStatus.RUNNING), new_run(status=RunStatus.RUNNING)]
        now = T0 + timedelta(hours=2)
        assert store.abort_running(now, reason="leader lost") == 2
        for run in left:
            aborted = store.get_run(run.id)
            assert aborted is not None
            assert aborted.status is RunStatus.ABORTED
            assert aborted.finished_at == now
        assert store.get_run(done.id) == done
        assert store.abort_running(now) == 0

    def test_latest_runs(self, store: SqlStore, new_run: NewRun) -> None:
        """Latest runs include, per monitor and endpoint, the latest run and latest success."""
        old_ok = new_run(monitor="m1")
        ok = new_run(monitor="m1")
        failed = new_run(monitor="m1", status=RunStatus.FAILED)
        other = new_run(monitor="m2", status=RunStatus.RUNNING)
        latest = store.latest_runs()
        ids = {r.id for r in latest}
        assert {ok.id, failed.id, other.id} <= ids
        assert old_ok.id not in ids
        by_pair: dict[tuple[str, str], list[int]] = {}
        for run in latest:
            by_pair.setdefault((run.monitor, run.endpoint), []).append(run.id)
        assert max(by_pair[("m1", "chat-prod")]) == failed.id
        succeeded = [r.id for r in latest if r.status is RunStatus.SUCCEEDED and r.monitor == "m1"]
        assert succeeded == [ok.id]
        assert by_pair[("m2", "chat-prod")] == [other.id]

    def test_latest_runs_empty(self, store: SqlStore) -> None:
        """An empty store has no latest runs and no counts."""
        assert store.latest_runs() == []
        assert store.run_counts() == {}

    def test_run_counts(self, store: SqlStore, new_run: NewRun) -> None:
        """Runs are counted per monitor, endpoint and status."""
        new_run(monitor="m1")
        new_run(monitor="m1")
        new_run(monitor="m1", status=RunStatus.FAILED)
        new_run(monitor="m2", endpoint="e2")
        assert store.run_counts() == {
            ("m1", "chat-prod", "succeeded"): 2,
            ("m1", "chat-prod", "failed"): 1,
            ("m2", "e2", "succeeded"): 1,
        }


class TestItemResults:
    def test_round_trip(self, store: SqlStore, new_run: NewRun) -> None:
        """Item results come back as stored, in insertion order, errors and usage included."""
        run = new_run(status=RunStatus.RUNNING)
        results = [
            ItemResult(
                item_key="b-1",
                output="réponse: remboursement 🙂",
                scores={"em": 1.0, "f1": 0.5},
                latency_s=0.125,
                usage=Usage(prompt_tokens=12, completion_tokens=3),
                attempts=2,
            ),
            ItemResult(
                item_key="a-2",
                output=None,
                scores={},
                latency_s=30.0,
                error=ErrorKind.TIMEOUT,
                error_detail="read timed out after 30s",
                attempts=4,
            ),
            ItemResult(
                item_key="c-3",
                output="",
                scores={"em": 0.0},
                latency_s=0.5,
                usage=Usage(prompt_tokens=None, completion_tokens=7),
            ),
        ]
        store.add_item_results(run.id, results)
        assert store.item_results(run.id) == results

    def test_pagination(self, store: SqlStore, new_run: NewRun) -> None:
        """`limit` and `offset` page through a run's results."""
        run = new_run(status=RunStatus.RUNNING)
        store.add_item_results(run.id, [result(f"k{i}") for i in range(10)])
        page = store.item_results(run.id, limit=3, offset=4)
        assert [r.item_key for r in page] == ["k4", "k5", "k6"]
        assert len(store.item_results(run.id, offset=8)) == 2

    def test_re_adding_keys_is_ignored(self, store: SqlStore, new_run: NewRun) -> None:
        """Writing the same (run, item key) twice keeps the first result and no duplicate."""
        run = new_run(status=RunStatus.RUNNING)
        store.add_item_results(run.id, [result("k1", 1.0), result("k2", 1.0)])
        store.add_item_results(run.id, [result("k2", 0.0), result("k3", 0.0)])
        store.add_item_results(run.id, [result("k3", 1.0), result("k3", 1.0)])
        got = store.item_results(run.id)
        assert [r.item_key for r in got] == ["k1", "k2", "k3"]
        assert [r.scores["em"] for r in got] == [1.0, 1.0, 0.0]
        assert count(store, t.item_result) == 3

    def test_same_key_in_two_runs(self, store: SqlStore, new_run: NewRun) -> None:
        """The same item key is stored once per run."""
        runs = [new_run(status=RunStatus.RUNNING) for _ in range(2)]
        for run in runs:
            store.add_item_results(run.id, [result("k1")])
        assert count(store, t.item_result) == 2

    def test_empty_batch_is_a_no_op(self, store: SqlStore, new_run: NewRun) -> None:
        """Adding no results does nothing."""
        run = new_run(status=RunStatus.RUNNING)
        store.add_item_results(run.id, [])
        assert store.item_results(run.id) == []

    def test_unknown_run_is_refused(self, store: SqlStore) -> None:
        """Results for a run that does not exist violate the foreign key."""
        with pytest.raises(StorageError, match="item results of run 777"):
            store.add_item_results(777, [result("k1")])

    def test_output_is_capped(self, store: SqlStore, new_run: NewRun) -> None:
        """Outputs longer than 64 KiB of UTF-8 are cut on a character boundary."""
        run = new_run(status=RunStatus.RUNNING)
        long = "é" * OUTPUT_CAP_BYTES  # 2 bytes each: twice the cap
        emoji = "🙂" * (OUTPUT_CAP_BYTES // 4 + 1) + "tail"
        store.add_item_results(
            run.id,
            [
                ItemResult("long", long, {}, 1.0),
                ItemResult("emoji", emoji, {}, 1.0),
                ItemResult("fits", "x" * OUTPUT_CAP_BYTES, {}, 1.0),
            ],
        )
        got = {r.item_key: r.output for r in store.item_results(run.id)}
        assert got["long"] == "é" * (OUTPUT_CAP_BYTES // 2)
        assert got["emoji"] == "🙂" * (OUTPUT_CAP_BYTES // 4)
        assert got["fits"] == "x" * OUTPUT_CAP_BYTES

    def test_unstorable_characters_are_replaced(self, store: SqlStore, new_run: NewRun) -> None:
        """NUL characters and lone surrogates become U+FFFD instead of failing the write."""
        run = new_run(status=RunStatus.RUNNING)
        store.add_item_results(
            run.id, [ItemResult("k", "a\x00b\ud800c", {}, 1.0, error_detail="x\x00")]
        )
        (got,) = store.item_results(run.id)
        assert got.output == "a\ufffdb\ufffdc"
        assert got.error_detail == "x\ufffd"

    def test_nan_is_stored_as_null(self, store: SqlStore, new_run: NewRun) -> None:
        """NaN scores and latencies are NULL in the database and NaN again when read."""
        run = new_run(status=RunStatus.RUNNING)
        store.add_item_results(
            run.id, [ItemResult("k", "o", {"em": math.nan, "f1": 0.5}, math.nan)]
        )
        with store._engine.connect() as conn:
            latency, scores = conn.execute(
                sa.select(t.item_result.c.latency_s, t.item_result.c.scores)
            ).one()
        assert latency is None
        assert scores == {"em": None, "f1": 0.5}
        (got,) = store.item_results(run.id)
        assert math.isnan(got.latency_s)
        assert math.isnan(got.scores["em"])
        assert got.scores["f1"] == 0.5

    def test_item_scores(self, store: SqlStore, new_run: NewRun) -> None:
        """Item scores map run -> item -> score, leaving out errored, missing and NaN scores."""
        a = new_run(status=RunStatus.RUNNING)
        b = new_run(status=RunStatus.RUNNING)
        store.add_item_results(
            a.id,
            [
                result("k1", 1.0),
                result("k2", 0.0),
                result("k3", None, error=ErrorKind.HTTP_5XX),
                result("k4", math.nan),
                ItemResult("k5", "o", {"other": 1.0}, 0.1),
            ],
        )
        store.add_item_results(b.id, [result("k1", 0.0)])
        assert store.item_scores([a.id, b.id, 999], "em") == {
            a.id: {"k1": 1.0, "k2": 0.0},
            b.id: {"k1": 0.0},
            999: {},
        }
        assert store.item_scores([], "em") == {}

    def test_bulk_insert_of_10k_results(self, store: SqlStore, new_run: NewRun) -> None:
        """Ten thousand results go in as one batch and come back complete."""
        run = new_run(status=RunStatus.RUNNING)
        results = [
            ItemResult(
                f"item-{i:05d}",
                f"label {i % 7}",
                {"em": float(i % 2)},
                0.01 * (i % 100),
                usage=Usage(20, 2),
            )
            for i in range(10_000)
        ]
        store.add_item_results(run.id, results)
        store.add_item_results(run.id, results[:5_000])
        assert count(store, t.item_result) == 10_000
        scores = store.item_scores([run.id], "em")[run.id]
        assert len(scores) == 10_000
        assert sum(scores.values()) == 5_000
        assert store.item_results(run.id, limit=1, offset=9_999) == [results[-1]]

    def test_concurrent_writers(self, store: SqlStore, new_run: NewRun) -> None:
        """Batches written from several threads at once all land (SQLite waits, no 'locked')."""
        runs = [new_run(status=RunStatus.RUNNING) for _ in range(4)]
        errors: list[BaseException] = []

        def write(run_id: int) -> None:
            try:
                for batch in range(10):
                    store.add_item_results(run_id, [result(f"b{batch}-{i}") for i in range(50)])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(run.id,)) for run in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert count(store, t.item_result) == 4 * 10 * 50


class TestVerdicts:
    def test_round_trip(self, store: SqlStore, new_run: NewRun) -> None:
        """Verdicts come back with their numbers, CI and flipped items."""
        run = new_run()
        verdicts = [
            Verdict(
                scorer="em",
                verdict=VerdictKind.REGRESSED,
                test="mcnemar_exact",
                baseline="rolling:5 (runs 1-5)",
                statistic=12.0,
                p_value=0.001,
                p_adjusted=0.004,
                effect=-0.05,
                effect_ci=(-0.08, -0.02),
                baseline_score=0.91,
                changed=ChangedItems(pass_to_fail=("k1", "k9"), fail_to_pass=("k3",)),
                detail="stable items broke",
            ),
            Verdict(scorer="f1", verdict=VerdictKind.OK, test="wilcoxon", baseline="pinned"),
        ]
        store.save_verdicts(run.id, verdicts)
        assert store.run_verdicts([run.id, 404]) == {run.id: verdicts, 404: []}

    def test_saving_again_replaces(self, store: SqlStore, new_run: NewRun) -> None:
        """Saving verdicts again replaces the previous ones."""
        run = new_run()
        store.save_verdicts(run.id, [Verdict("em", VerdictKind.WARN, "t", "b")])
        store.save_verdicts(run.id, [Verdict("em", VerdictKind.OK, "t", "b")])
        assert store.run_verdicts([run.id])[run.id] == [Verdict("em", VerdictKind.OK, "t", "b")]

    def test_nan_numbers_come_back_as_none(self, store: SqlStore, new_run: NewRun) -> None:
        """NaN statistics are stored as NULL and read back as None."""
        run = new_run()
        store.save_verdicts(
            run.id,
            [
                Verdict(
                    "em",
                    VerdictKind.INSUFFICIENT_DATA,
                    "t",
                    "b",
                    statistic=math.nan,
                    p_value=math.nan,
                    effect=math.inf,
                    effect_ci=(math.nan, 0.1),
                )
            ],
        )
        (got,) = store.run_verdicts([run.id])[run.id]
        assert (got.statistic, got.p_value, got.effect, got.effect_ci) == (None, None, None, None)

    def test_unknown_run_raises(self, store: SqlStore) -> None:
        """Saving verdicts of an unknown run is a StorageError."""
        with pytest.raises(StorageError, match="no such run"):
            store.save_verdicts(31337, [Verdict("em", VerdictKind.OK, "t", "b")])

    def test_worst_verdict_ordering(self) -> None:
        """The worst verdict follows VERDICT_SEVERITY, with regressed and degraded on top."""
        assert VERDICT_SEVERITY[:2] == (VerdictKind.REGRESSED, VerdictKind.DEGRADED)
        assert set(VERDICT_SEVERITY) == set(VerdictKind)
        kinds = [VerdictKind.OK, VerdictKind.WARN, VerdictKind.DEGRADED]
        assert worst_verdict(Verdict("s", k, "t", "b") for k in kinds) is VerdictKind.DEGRADED
        assert worst_verdict([]) is None

    def test_judged_is_the_worst(self, store: SqlStore, new_run: NewRun) -> None:
        """The run's `judged` column holds the worst saved verdict and clears with none."""
        run = new_run()
        store.save_verdicts(
            run.id,
            [Verdict("a", VerdictKind.OK, "t", "b"), Verdict("b", VerdictKind.REGRESSED, "t", "b")],
        )
        with store._engine.connect() as conn:
            judged = conn.execute(sa.select(t.run.c.judged).where(t.run.c.id == run.id))
            assert judged.scalar_one() == "regressed"
        store.save_verdicts(run.id, [])
        with store._engine.connect() as conn:
            judged = conn.execute(sa.select(t.run.c.judged).where(t.run.c.id == run.id))
            assert judged.scalar_one() is None


class TestScores:
    def test_run_scores_of_many_runs(self, store: SqlStore, new_run: NewRun) -> None:
        """Scores of several runs come back keyed by run, each requested id present."""
        a = new_run(scores=(ScoreSummary("em", 0.9, 0.85, 0.95, 100),))
        b = new_run(scores=(ScoreSummary("em", 0.7, 0.6, 0.8, 100),))
        c = new_run()
        assert store.run_scores([b.id, a.id, c.id, a.id]) == {
            b.id: [ScoreSummary("em", 0.7, 0.6, 0.8, 100)],
            a.id: [ScoreSummary("em", 0.9, 0.85, 0.95, 100)],
            c.id: [],
        }
        assert store.run_scores([]) == {}

    def test_more_runs_than_one_in_list(self, store: SqlStore, new_run: NewRun) -> None:
        """Asking for more ids than fit one IN list still answers for all of them."""
        run = new_run(scores=(ScoreSummary("em", 0.5, 0.4, 0.6, 10),))
        ids = [run.id, *range(10_000, 11_200)]
        got = store.run_scores(ids)
        assert len(got) == len(ids)
        assert got[run.id] == [ScoreSummary("em", 0.5, 0.4, 0.6, 10)]

    def test_nan_score_round_trip(self, store: SqlStore, new_run: NewRun) -> None:
        """A NaN run-level score is stored as NULL and read back as NaN."""
        run = new_run(scores=(ScoreSummary("em", math.nan, math.nan, math.nan, 0),))
        with store._engine.connect() as conn:
            row = conn.execute(sa.select(t.run_score)).mappings().one()
        assert (row["value"], row["ci_lower"], row["ci_upper"]) == (None, None, None)
        (got,) = store.run_scores([run.id])[run.id]
        assert all(math.isnan(v) for v in (got.value, got.ci_lower, got.ci_upper))


class TestBaselines:
    def test_rolling_selection(self, store: SqlStore, new_run: NewRun) -> None:
        """The rolling baseline skips failed, degraded, regressed and other-version runs."""
        ok1 = new_run()
        new_run(status=RunStatus.FAILED)
        ok2 = new_run(judged="ok")
        new_run(status=RunStatus.DEGRADED)
        new_run(judged="regressed")
        new_run(judged="degraded")
        new_run(benchmark_version="v0")
        new_run(endpoint="other")
        new_run(monitor="other")
        new_run(status=RunStatus.ABORTED)
        warned = new_run(judged="warn")
        new_run(status=RunStatus.RUNNING)
        current = new_run(status=RunStatus.RUNNING)
        kwargs: dict[str, Any] = {
            "monitor": "intents-prod",
            "endpoint": "chat-prod",
            "benchmark_version": "v1",
        }
        assert store.baseline_run_ids(**kwargs, k=5, before_run_id=current.id) == [
            ok1.id,
            ok2.id,
            warned.id,
        ]
        assert store.baseline_run_ids(**kwargs, k=2, before_run_id=current.id) == [
            ok2.id,
            warned.id,
        ]
        assert store.baseline_run_ids(**kwargs, k=0, before_run_id=current.id) == []

    def test_respects_before_run_id(self, store: SqlStore, new_run: NewRun) -> None:
        """Only runs with a smaller id than `before_run_id` are candidates."""
        runs = [new_run() for _ in range(4)]
        kwargs: dict[str, Any] = {
            "monitor": "intents-prod",
            "endpoint": "chat-prod",
            "benchmark_version": "v1",
        }
        assert store.baseline_run_ids(**kwargs, k=5, before_run_id=runs[2].id) == [
            runs[0].id,
            runs[1].id,
        ]
        assert store.baseline_run_ids(**kwargs, k=5, before_run_id=runs[0].id) == []

    def test_pin_replace_and_unpin(self, store: SqlStore, new_run: NewRun) -> None:
        """Pinning replaces the pinned set per (monitor, endpoint); an empty set unpins."""
        runs = [new_run() for _ in range(3)]
        assert store.pinned_run_ids(monitor="intents-prod", endpoint="chat-prod") == []
        store.pin_baseline(
            monitor="intents-prod", endpoint="chat-prod", run_ids=[runs[1].id, runs[0].id], now=T0
        )
        store.pin_baseline(monitor="intents-prod", endpoint="other", run_ids=[runs[2].id], now=T0)
        assert store.pinned_run_ids(monitor="intents-prod", endpoint="chat-prod") == [
            runs[0].id,
            runs[1].id,
        ]
        store.pin_baseline(
            monitor="intents-prod",
            endpoint="chat-prod",
            run_ids=[runs[2].id, runs[2].id],
            now=T0,
        )
        assert store.pinned_run_ids(monitor="intents-prod", endpoint="chat-prod") == [runs[2].id]
        store.pin_baseline(monitor="intents-prod", endpoint="chat-prod", run_ids=[], now=T0)
        assert store.pinned_run_ids(monitor="intents-prod", endpoint="chat-prod") == []
        assert store.pinned_run_ids(monitor="intents-prod", endpoint="other") == [runs[2].id]

    def test_pin_unknown_run_keeps_old_pins(self, store: SqlStore, new_run: NewRun) -> None:
        """Pinning a run that does not exist fails and leaves the previous pins in place."""
        run = new_run()
        store.pin_baseline(monitor="m", endpoint="e", run_ids=[run.id], now=T0)
        with pytest.raises(StorageError):
            store.pin_baseline(monitor="m", endpoint="e", run_ids=[run.id, 9999], now=T0)
        assert store.pinned_run_ids(monitor="m", endpoint="e") == [run.id]


class TestSequentialState:
    def test_default_is_zero(self, store: SqlStore) -> None:
        """A detector without stored state starts at 0.0."""
        assert store.get_sequential_state("m", "e", "em", "v1") == 0.0

    def test_set_and_overwrite(self, store: SqlStore) -> None:
        """Setting a state stores it per key and overwrites the previous value."""
        store.set_sequential_state("m", "e", "em", "v1", 1.5, T0)
        store.set_sequential_state("m", "e", "em", "v1", 2.25, T0 + timedelta(minutes=1))
        store.set_sequential_state("m", "e", "em", "v2", -1.0, T0)
        assert store.get_sequential_state("m", "e", "em", "v1") == 2.25
        assert store.get_sequential_state("m", "e", "em", "v2") == -1.0
        assert count(store, t.sequential_state) == 2

    def test_nan_round_trip(self, store: SqlStore) -> None:
        """A NaN state is stored as NULL and read back as NaN."""
        store.set_sequential_state("m", "e", "em", "v1", math.nan, T0)
        assert count(store, t.sequential_state, t.sequential_state.c.value.is_(None)) == 1
        assert math.isnan(store.get_sequential_state("m", "e", "em", "v1"))


class TestDatetimes:
    def test_offsets_are_normalized_to_utc(self, store: SqlStore) -> None:
        """A datetime with any offset comes back as the same instant in UTC."""
        local = datetime(2025, 6, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
        run = store.start_run(
            monitor="m",
            benchmark="b",
            benchmark_version="v",
            endpoint="e",
            trigger="t",
            started_at=local,
        )
        got = store.get_run(run.id)
        assert got is not None
        assert got.started_at == local
        assert got.started_at.tzinfo is UTC
        assert got.started_at.hour == 12
        assert got.started_at.microsecond == 123456

    def test_listed_runs_are_aware(self, store: SqlStore, new_run: NewRun) -> None:
        """Datetimes from every read path carry UTC."""
        new_run()
        (run,) = store.list_runs()
        (latest,) = store.latest_runs()
        for value in (run.started_at, run.finished_at, latest.started_at, latest.finished_at):
            assert value is not None
            assert value.tzinfo is UTC

    def test_naive_datetimes_are_refused(self, store: SqlStore) -> None:
        """A naive datetime is a StorageError rather than a silently shifted time."""
        with pytest.raises(StorageError, match="naive datetime"):
            store.start_run(
                monitor="m",
                benchmark="b",
                benchmark_version="v",
                endpoint="e",
                trigger="t",
                started_at=datetime(2025, 1, 1),  # noqa: DTZ001  # the point of the test
            )


class TestConnection:
    def test_ping(self, store: SqlStore) -> None:
        """A working store answers ping."""
        assert store.ping() is True

    def test_repr_masks_password(self) -> None:
        """The URL shown by the store never contains the password."""
        with open_store("postgresql://monitor:s3cret@127.0.0.1:1/db", migrate=False) as store:
            assert "s3cret" not in repr(store)
            assert "s3cret" not in str(store)
            assert "***" in store.url
            assert store.url.startswith("postgresql+psycopg://")

    def test_unreachable_server(self) -> None:
        """An unreachable server fails ping and migration with a password-free StorageError."""
        url = "postgresql://monitor:s3cret@127.0.0.1:1/db?connect_timeout=2"
        with open_store(url, migrate=False) as store:
            assert store.ping() is False
            with pytest.raises(StorageError) as info:
                store.get_run(1)
        assert "s3cret" not in str(info.value)
        with pytest.raises(StorageError, match="could not migrate") as info:
            open_store(url)
        assert "s3cret" not in str(info.value)

    @pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
    def test_unsupported_urls(self, url: str) -> None:
        """Backends other than SQLite and PostgreSQL are refused."""
        with pytest.raises(StorageError):
            open_store(url, migrate=False)

    def test_sqlite_pragmas(self, tmp_path: Path) -> None:
        """SQLite connections use WAL, NORMAL sync, foreign keys and a busy timeout."""
        with open_store(f"sqlite:///{tmp_path}/p.db") as store, store._engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 1,
            "foreign_keys": 1,
            "busy_timeout": 5000,
        }

    def test_sqlite_connections_racing_to_wal(self, tmp_path: Path) -> None:
        """Connections opening one fresh file at once all switch it to WAL without an error.

        SQLite answers "database is locked" at once to the losers of that race (no busy
        handler); before the retry, 3 threads failed in ~7 of 100 fresh files.
        """
        from monitor.storage.engine import create_engine  # noqa: PLC0415 - only here

        errors: list[BaseException] = []

        def connect(url: str) -> None:
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                engine.dispose()

        for i in range(40):
            url = f"sqlite:///{tmp_path}/race{i}.db"
            threads = [threading.Thread(target=connect, args=(url,)) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert errors == []

    def test_sqlite_in_memory(self) -> None:
        """An in-memory SQLite store keeps its data across calls (one shared connection)."""
        with open_store("sqlite://") as store:
            run = store.start_run(
                monitor="m",
                benchmark="b",
                benchmark_version="v",
                endpoint="e",
                trigger="t",
                started_at=datetime.now(UTC),
            )
            assert store.get_run(run.id) == run


class TestRetention:
    def test_prune_keeps_aggregates_recent_and_pinned_runs(
        self, store: SqlStore, new_run: NewRun
    ) -> None:
        """Pruning drops old item results only: run rows, scores and pinned runs' items stay."""
        old = new_run(scores=(ScoreSummary("em", 0.8, 0.7, 0.9, 10),))
        pinned = new_run()
        recent = new_run()
        for r in (old, pinned, recent):
            store.add_item_results(r.id, [result("a"), result("b")])
        store.pin_baseline(monitor=old.monitor, endpoint=old.endpoint, run_ids=[pinned.id], now=T0)
        deleted = store.prune_item_results(recent.started_at)
        assert deleted == 2
        assert store.item_results(old.id) == []
        assert len(store.item_results(pinned.id)) == 2
        assert len(store.item_results(recent.id)) == 2
        assert store.get_run(old.id) is not None
        assert store.run_scores([old.id])[old.id][0].value == 0.8
