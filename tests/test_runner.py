"""The runner through fakes: streaming writes, statuses, aborts and the per-item hook."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from monitor.core.evidence import RunEvidence
from monitor.core.model import (
    Benchmark,
    Item,
    Run,
    RunStatus,
    ScorerSpec,
    Verdict,
    VerdictKind,
)
from monitor.core.retry import RetryPolicy
from monitor.runner import Runner, RunRequest
from tests.fakes import MemoryRunStore as MemoryStore
from tests.fakes import ScriptedEndpoint

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def bench(n: int, scorers: Sequence[ScorerSpec] | None = None) -> Benchmark:
    items = tuple(Item(key=f"i{k}", fields={}, prompt="p", reference="yes") for k in range(n))
    specs = tuple(scorers or (ScorerSpec("exact_match", "exact_match"),))
    return Benchmark(name="b", version="v1", items=items, scorers=specs)


def request(endpoint: ScriptedEndpoint, n: int, **kw: object) -> RunRequest:
    return RunRequest(
        monitor="m",
        benchmark=kw.pop("benchmark", None) or bench(n),  # type: ignore[arg-type]
        endpoint=endpoint,
        concurrency=int(kw.pop("concurrency", 4)),  # type: ignore[call-overload]
        **kw,  # type: ignore[arg-type]
    )


class TestRunner:
    async def test_scores_and_succeeds(self) -> None:
        """Every item is scored, written, and aggregated with a Wilson interval."""
        store = MemoryStore()
        answers = {f"i{k}": "yes" if k % 4 else "no" for k in range(100)}
        outcome = await Runner(store, batch_size=16).run(request(ScriptedEndpoint(answers), 100))
        assert outcome.run.status is RunStatus.SUCCEEDED
        assert outcome.run.model_id == "m-1"
        (score,) = outcome.scores
        assert score.value == pytest.approx(0.75)
        assert score.ci_lower < 0.75 < score.ci_upper
        assert sum(len(b) for b in store.batches) == 100
        assert max(len(b) for b in store.batches) <= 16

    async def test_concurrency_is_bounded(self) -> None:
        """No more requests are in flight than the configured concurrency."""
        endpoint = ScriptedEndpoint({f"i{k}": "yes" for k in range(40)}, delay=0.005)
        await Runner(MemoryStore()).run(request(endpoint, 40, concurrency=5))
        assert endpoint.max_in_flight == 5

    async def test_error_share_above_threshold_is_degraded(self) -> None:
        """A run with more endpoint errors than the threshold is degraded, not judged."""
        answers = {f"i{k}": "yes" for k in range(20)}
        endpoint = ScriptedEndpoint(answers, errors=frozenset({"i1", "i2"}))
        outcome = await Runner(MemoryStore()).run(request(endpoint, 20, degraded_threshold=0.05))
        assert outcome.run.status is RunStatus.DEGRADED
        assert outcome.run.n_errors == 2
        assert outcome.scores[0].n == 18  # errored items are not scored as wrong answers

    async def test_errors_below_threshold_succeed(self) -> None:
        """A few errors under the threshold leave the run succeeded."""
        answers = {f"i{k}": "yes" for k in range(100)}
        endpoint = ScriptedEndpoint(answers, errors=frozenset({"i1"}))
        outcome = await Runner(MemoryStore()).run(request(endpoint, 100))
        assert outcome.run.status is RunStatus.SUCCEEDED

    async def test_storage_failure_marks_run_failed(self) -> None:
        """A store that refuses item results fails the run instead of crashing the caller."""
        store = MemoryStore(fail_writes=True)
        runner = Runner(store, store_retry=RetryPolicy(retries=3, base_delay=0.01, jitter=0.0))
        outcome = await runner.run(request(ScriptedEndpoint({"i0": "yes"}), 1))
        assert outcome.run.status is RunStatus.FAILED
        assert store.runs[1].status is RunStatus.FAILED

    async def test_benchmark_version_is_stored_once_and_before_the_run_finishes(self) -> None:
        """A new version is saved alongside the first run's requests, once per process."""
        store = MemoryStore()
        runner = Runner(store, batch_size=10)
        answers = {f"i{k}": "yes" for k in range(30)}
        for _ in range(2):
            outcome = await runner.run(request(ScriptedEndpoint(answers), 30))
            assert outcome.run.status is RunStatus.SUCCEEDED
        assert store.benchmarks == ["v1"]
        assert store.calls == ["save_benchmark", "finish_run", "finish_run"]

    async def test_concurrent_runs_of_a_new_version_wait_for_its_save(self) -> None:
        """Two endpoints' first runs share one save and neither finishes before it."""
        store = MemoryStore(slow_benchmark=0.3)
        runner = Runner(store)
        answers = {f"i{k}": "yes" for k in range(5)}
        outcomes = await asyncio.gather(
            runner.run(request(ScriptedEndpoint(answers), 5)),
            runner.run(request(ScriptedEndpoint(answers), 5)),
        )
        assert [o.run.status for o in outcomes] == [RunStatus.SUCCEEDED] * 2
        assert store.calls == ["save_benchmark", "finish_run", "finish_run"]

    async def test_benchmark_that_cannot_be_stored_fails_the_run_and_is_retried(self) -> None:
        """A version the store refuses fails its run; the next run tries to store it again."""
        store = MemoryStore(fail_benchmark=1)
        runner = Runner(store, store_retry=RetryPolicy(retries=0))
        answers = {f"i{k}": "yes" for k in range(5)}
        first = await runner.run(request(ScriptedEndpoint(answers), 5))
        assert first.run.status is RunStatus.FAILED
        second = await runner.run(request(ScriptedEndpoint(answers), 5))
        assert second.run.status is RunStatus.SUCCEEDED
        assert store.benchmarks == ["v1"]

    async def test_transient_storage_failure_is_retried(self) -> None:
        """A database that drops two writes and comes back loses no item result."""
        store = MemoryStore(fail_times=2)
        runner = Runner(
            store,
            batch_size=10,
            store_retry=RetryPolicy(retries=16, base_delay=0.01, max_delay=0.05, jitter=0.0),
        )
        answers = {f"i{k}": "yes" for k in range(50)}
        outcome = await runner.run(request(ScriptedEndpoint(answers), 50))
        assert outcome.run.status is RunStatus.SUCCEEDED
        assert sorted(r.item_key for b in store.batches for r in b) == sorted(answers)

    async def test_cancel_marks_run_aborted_and_keeps_written_results(self) -> None:
        """Cancelling mid-run records the run as aborted; flushed batches stay stored."""
        store = MemoryStore()
        endpoint = ScriptedEndpoint({f"i{k}": "yes" for k in range(1000)}, delay=0.002)
        runner = Runner(store, batch_size=10, flush_interval=0.01)
        task = asyncio.create_task(runner.run(request(endpoint, 1000, concurrency=2)))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert store.runs[1].status is RunStatus.ABORTED
        assert 0 < sum(len(b) for b in store.batches) < 1000

    async def test_observer_sees_every_response(self) -> None:
        """The per-item hook is called once per item with the endpoint name."""
        seen: list[str] = []
        runner = Runner(MemoryStore(), observe=lambda name, _r: seen.append(name))
        await runner.run(request(ScriptedEndpoint({f"i{k}": "yes" for k in range(7)}), 7))
        assert seen == ["fake"] * 7

    async def test_classification_adds_macro_f1(self) -> None:
        """A classification scorer also yields a run-level macro-F1 aggregate."""
        spec = ScorerSpec("classification", "label")
        answers = {f"i{k}": "yes" for k in range(10)}
        outcome = await Runner(MemoryStore()).run(
            request(ScriptedEndpoint(answers), 10, benchmark=bench(10, [spec]))
        )
        assert [s.scorer for s in outcome.scores] == ["label", "label_macro_f1"]
        assert outcome.scores[1].value == pytest.approx(1.0)

    async def test_benchmark_saved_once_per_version(self) -> None:
        """The benchmark version is stored once per process, not once per run."""
        store = MemoryStore()
        runner = Runner(store)
        for _ in range(3):
            await runner.run(request(ScriptedEndpoint({"i0": "yes"}), 1))
        assert store.benchmarks == ["v1"]

    async def test_judge_verdicts_are_returned_and_serialized(self) -> None:
        """Verdicts from the judge hook appear in the outcome and its JSON document."""

        async def judge(run: Run, evidence: RunEvidence) -> list[Verdict]:
            assert dict(evidence.scores["exact_match"]) == {"i0": 1.0}
            return [Verdict("exact_match", VerdictKind.OK, "test", "rolling:5")]

        outcome = await Runner(MemoryStore()).run(
            request(ScriptedEndpoint({"i0": "yes"}), 1), judge=judge
        )
        doc = outcome.document()
        assert doc["verdicts"]["exact_match"]["verdict"] == "ok"
        assert doc["scores"]["exact_match"]["value"] == 1.0
        assert doc["started_at"].endswith("+00:00")

    async def test_judge_gets_the_answered_items_signals_in_memory(self) -> None:
        """The evidence carries latency and output length of answered items only."""
        seen: list[RunEvidence] = []

        async def judge(run: Run, evidence: RunEvidence) -> list[Verdict]:
            seen.append(evidence)
            return []

        answers = {f"i{k}": "y" * k for k in range(1, 6)}
        endpoint = ScriptedEndpoint(answers, errors=frozenset({"i2"}))
        items = tuple(Item(key=k, fields={}, prompt="p", reference="yes") for k in answers)
        benchmark = Benchmark("b", "v1", items, (ScorerSpec("exact_match", "exact_match"),))
        await Runner(MemoryStore()).run(
            request(endpoint, 5, benchmark=benchmark, degraded_threshold=0.5), judge=judge
        )
        (evidence,) = seen
        assert sorted(evidence.output_lengths) == [1, 3, 4, 5]
        assert evidence.latencies == [0.01] * 4
        assert evidence.labels == []  # no classification scorer: no labels kept
