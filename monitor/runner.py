"""One run end to end: items -> endpoint -> scorers -> store -> verdicts.

The runner talks to its adapters through the Protocols below, so tests hand it fakes
and the composition root (`monitor.app`) hands it the real ones. This is the one place
that catches broadly: a run that breaks is recorded as failed and logged once, and the
caller (CLI or scheduler) carries on with the next run.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from monitor.core.model import (
    Benchmark,
    Item,
    ItemResult,
    Response,
    Run,
    RunStatus,
    ScoreSummary,
    Verdict,
)
from monitor.core.scoring import Scorer, build_scorer, macro_f1_summary, summarize_scores
from monitor.errors import StorageError
from monitor.log import get_logger

T = TypeVar("T")


class EndpointClient(Protocol):
    """Sends one item to a model; never raises for endpoint failures (see Response.error)."""

    name: str

    async def predict(self, item: Item) -> Response: ...


class RunStore(Protocol):
    """The part of the store a run writes to."""

    def save_benchmark(self, bench: Benchmark, now: datetime) -> None: ...

    def start_run(
        self,
        *,
        monitor: str,
        benchmark: str,
        benchmark_version: str,
        endpoint: str,
        trigger: str,
        started_at: datetime,
    ) -> Run: ...

    def add_item_results(self, run_id: int, results: Sequence[ItemResult]) -> None: ...

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        finished_at: datetime,
        n_items: int,
        n_errors: int,
        model_id: str | None,
        scores: Sequence[ScoreSummary],
    ) -> Run: ...


class Judge(Protocol):
    """Turns a finished run's per-item scores into verdicts (statistics live behind it)."""

    async def judge(self, run: Run, scores: Mapping[str, Mapping[str, float]]) -> list[Verdict]: ...


def utc_now() -> datetime:
    """The wall clock, aware and in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What to run: a monitor's benchmark against one endpoint."""

    monitor: str
    benchmark: Benchmark
    endpoint: EndpointClient
    concurrency: int
    degraded_threshold: float = 0.05
    trigger: str = "manual"


@dataclass(slots=True)
class Progress:
    """Live counters of one run, handed to the progress callback."""

    total: int
    done: int = 0
    errors: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A finished run with its aggregates and verdicts."""

    run: Run
    scores: tuple[ScoreSummary, ...]
    verdicts: tuple[Verdict, ...]
    duration_s: float


@dataclass(frozen=True, slots=True)
class StoreRetry:
    """Retries of store writes while the database is briefly away (restart, failover).

    Exponential backoff from `first_delay` up to `max_delay`, giving up after `budget`
    seconds; results that were acknowledged (committed) are never rewritten, and a
    batch written twice is deduplicated by the store's unique (run, item) key.
    """

    budget: float = 120.0
    first_delay: float = 0.5
    max_delay: float = 10.0

    async def call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        delay, waited = self.first_delay, 0.0
        while True:
            try:
                return await asyncio.to_thread(fn, *args)
            except StorageError as exc:
                if waited >= self.budget:
                    raise
                get_logger("runner").warning(
                    "storage_retry", action=what, error=str(exc), retry_in_s=delay
                )
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, self.max_delay)


class _ResultWriter:
    """Batches item results and writes them off the event loop, in order.

    Results are written as they arrive (every `batch_size` items or `interval` seconds),
    so a crash loses at most the last batch of a run.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: int,
        batch_size: int,
        interval: float,
        retry: StoreRetry,
    ) -> None:
        self._store, self._run_id, self._retry = store, run_id, retry
        self._batch_size, self._interval = batch_size, interval
        self._buffer: list[ItemResult] = []
        self._queue: asyncio.Queue[list[ItemResult] | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._write_loop())
        self._ticker = asyncio.create_task(self._tick())

    def add(self, result: ItemResult) -> None:
        self._buffer.append(result)
        if len(self._buffer) >= self._batch_size:
            self._cut()

    def _cut(self) -> None:
        if self._buffer:
            self._queue.put_nowait(self._buffer)
            self._buffer = []

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._cut()

    async def _write_loop(self) -> None:
        while (batch := await self._queue.get()) is not None:
            await self._retry.call(
                "store item results", self._store.add_item_results, self._run_id, batch
            )

    async def close(self) -> None:
        """Flush everything; re-raises a write failure."""
        self._ticker.cancel()
        self._cut()
        self._queue.put_nowait(None)
        await self._task

    def cancel(self) -> None:
        self._ticker.cancel()
        self._task.cancel()


class Runner:
    """Executes runs against a store; one instance serves the whole process."""

    def __init__(
        self,
        store: RunStore,
        *,
        judge: Judge | None = None,
        observe: Callable[[str, Response], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
        batch_size: int = 256,
        flush_interval: float = 1.0,
        store_retry: StoreRetry | None = None,
    ) -> None:
        self._store = store
        self._judge = judge
        self._observe = observe
        self._clock = clock
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry = store_retry or StoreRetry()
        self._unrecorded: dict[int, Callable[[], Run]] = {}
        self.active: set[int] = set()  # ids of runs executing in this process
        # benchmark version -> its (possibly still running) save; shared by concurrent runs
        self._saving: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._log = get_logger("runner")

    async def run(
        self, request: RunRequest, *, on_progress: Callable[[Progress], None] | None = None
    ) -> RunOutcome:
        """Run every item once, store results as they come, then aggregate and judge."""
        bench = request.benchmark
        scorers = [build_scorer(spec) for spec in bench.scorers]
        run = await self._retry.call(
            "start the run",
            lambda: self._store.start_run(
                monitor=request.monitor,
                benchmark=bench.name,
                benchmark_version=bench.version,
                endpoint=request.endpoint.name,
                trigger=request.trigger,
                started_at=self._clock(),
            ),
        )
        log = self._log.bind(
            run_id=run.id,
            monitor=request.monitor,
            endpoint=request.endpoint.name,
            benchmark=bench.name,
            benchmark_version=bench.version,
        )
        log.info("run_started", items=len(bench.items), trigger=request.trigger)
        progress = Progress(total=len(bench.items))
        collected = _Collected(scorers)
        self.active.add(run.id)
        try:
            return await self._complete(
                request, run, collected, progress, on_progress=on_progress, log=log
            )
        finally:
            self.active.discard(run.id)

    def _save_benchmark(self, bench: Benchmark) -> asyncio.Future[None]:
        """Store a new benchmark version while the run's requests are in flight.

        The first run of a version would otherwise wait for thousands of item rows
        (~12 us each) before sending its first request. Every run of the version awaits
        the same save before it finishes, so a finished run always has its benchmark
        version stored; a failed save is forgotten, and the next run tries again.
        """
        key = (bench.name, bench.version)
        saving = self._saving.get(key)
        if saving is None:
            saving = asyncio.ensure_future(
                self._retry.call(
                    "store the benchmark", self._store.save_benchmark, bench, self._clock()
                )
            )
            self._saving[key] = saving

            def forget_on_failure(done: asyncio.Future[None]) -> None:
                if done.cancelled() or done.exception() is not None:
                    self._saving.pop(key, None)

            saving.add_done_callback(forget_on_failure)
        return saving

    async def _complete(
        self,
        request: RunRequest,
        run: Run,
        collected: _Collected,
        progress: Progress,
        *,
        on_progress: Callable[[Progress], None] | None,
        log: Any,
    ) -> RunOutcome:
        started = progress.started
        try:
            await self._execute(request, run, collected, progress, on_progress)
        except asyncio.CancelledError:
            await self._finish(run, RunStatus.ABORTED, collected, progress, scores=())
            log.warning("run_aborted", items=progress.done, errors=progress.errors)
            raise
        except Exception as exc:
            finished = await self._finish(run, RunStatus.FAILED, collected, progress, scores=())
            duration = time.perf_counter() - started
            log.exception("run_failed", error=f"{type(exc).__name__}: {exc}", duration_s=duration)
            return RunOutcome(finished, (), (), duration)

        summaries = collected.summaries()
        error_share = progress.errors / progress.total if progress.total else 1.0
        status = (
            RunStatus.DEGRADED
            if error_share > request.degraded_threshold or progress.done == progress.errors
            else RunStatus.SUCCEEDED
        )
        # Judge before marking the run finished, so that anyone who sees a finished run
        # (API, metrics, demo) also sees its verdicts.
        verdicts: list[Verdict] = []
        if self._judge is not None:
            judged = replace(run, status=status, n_items=progress.done, n_errors=progress.errors)
            try:
                verdicts = await self._judge.judge(judged, collected.judged_scores())
            except Exception as exc:
                log.exception("judge_failed", error=f"{type(exc).__name__}: {exc}")
        finished = await self._finish(run, status, collected, progress, scores=summaries)
        duration = time.perf_counter() - started
        log.info(
            "run_finished",
            status=finished.status.value,
            duration_s=round(duration, 3),
            items=progress.done,
            errors=progress.errors,
            model_id=finished.model_id,
            scores={s.scorer: _round(s.value) for s in summaries},
            verdicts={v.scorer: v.verdict.value for v in verdicts},
        )
        return RunOutcome(finished, tuple(summaries), tuple(verdicts), duration)

    async def _execute(
        self,
        request: RunRequest,
        run: Run,
        collected: _Collected,
        progress: Progress,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        saving = self._save_benchmark(request.benchmark)
        writer = _ResultWriter(
            self._store, run.id, self._batch_size, self._flush_interval, self._retry
        )
        items = iter(request.benchmark.items)
        endpoint = request.endpoint
        observe = self._observe

        async def work() -> None:
            # Workers share one iterator: no await between next() and use, so no races.
            for item in items:
                response = await endpoint.predict(item)
                if observe is not None:
                    observe(endpoint.name, response)
                result = collected.add(item, response)
                writer.add(result)
                progress.done += 1
                if response.error is not None:
                    progress.errors += 1
                if on_progress is not None:
                    on_progress(progress)

        workers = [asyncio.create_task(work()) for _ in range(max(1, request.concurrency))]
        try:
            await asyncio.gather(*workers)
            await writer.close()
            await asyncio.shield(saving)  # shared: an aborted run must not cancel it
        except BaseException:
            for w in workers:
                w.cancel()
            writer.cancel()
            raise

    async def _finish(
        self,
        run: Run,
        status: RunStatus,
        collected: _Collected,
        progress: Progress,
        *,
        scores: Sequence[ScoreSummary],
    ) -> Run:
        finished_at = self._clock()

        def finish() -> Run:
            return self._store.finish_run(
                run.id,
                status=status,
                finished_at=finished_at,
                n_items=progress.done,
                n_errors=progress.errors,
                model_id=collected.model_id,
                scores=scores,
            )

        try:
            return await asyncio.shield(self._retry.call("finish the run", finish))
        except StorageError:
            # The database is still away: keep the final state and write it when it is
            # back (`record_pending`), so the run is marked, not left `running`.
            self._log.exception("run_finish_not_stored", run_id=run.id, status=status.value)
            self._unrecorded[run.id] = finish
            return replace(
                run,
                status=status,
                finished_at=finished_at,
                n_items=progress.done,
                n_errors=progress.errors,
                model_id=collected.model_id,
            )

    async def record_pending(self) -> int:
        """Write final states that could not be stored earlier; returns how many remain."""
        for run_id, finish in list(self._unrecorded.items()):
            try:
                await asyncio.to_thread(finish)
            except StorageError:
                break  # still down: try again on the next call
            del self._unrecorded[run_id]
            self._log.info("run_finish_recorded", run_id=run_id)
        return len(self._unrecorded)


class _Collected:
    """Scores every response and keeps what aggregation and statistics need."""

    def __init__(self, scorers: Sequence[Scorer]) -> None:
        self._scorers = scorers
        self.scores: dict[str, dict[str, float]] = {s.name: {} for s in scorers}
        self._labels: dict[str, tuple[list[str], list[str]]] = {
            s.name: ([], []) for s in scorers if s.kind == "classification"
        }
        self.model_id: str | None = None
        # scorer -> split value -> item key -> score (benchmarks with a `split:` field)
        self.splits: dict[str, dict[str, dict[str, float]]] = {}

    def add(self, item: Item, response: Response) -> ItemResult:
        if self.model_id is None and response.model_id:
            self.model_id = response.model_id
        item_scores: dict[str, float] = {}
        output = response.output
        if response.error is None and output is not None:
            for scorer in self._scorers:
                value = scorer(output, item.reference)
                item_scores[scorer.name] = value
                self.scores[scorer.name][item.key] = value
                if item.split is not None:
                    by_split = self.splits.setdefault(scorer.name, {})
                    by_split.setdefault(item.split, {})[item.key] = value
                if scorer.name in self._labels:
                    preds, refs = self._labels[scorer.name]
                    preds.append(output)
                    refs.append("" if item.reference is None else str(item.reference))
        return ItemResult(
            item_key=item.key,
            output=output,
            scores=item_scores,
            latency_s=response.latency_s,
            error=response.error,
            error_detail=response.error_detail,
            usage=response.usage,
            attempts=response.attempts,
        )

    def summaries(self) -> list[ScoreSummary]:
        out = [
            summarize_scores(s.name, list(self.scores[s.name].values()), binary=s.binary)
            for s in self._scorers
        ]
        out.extend(
            macro_f1_summary(f"{name}_macro_f1", preds, refs)
            for name, (preds, refs) in self._labels.items()
        )
        binary = {s.name: s.binary for s in self._scorers}
        out.extend(
            summarize_scores(f"{name}[{split}]", list(values.values()), binary=binary[name])
            for name, by_split in self.splits.items()
            for split, values in sorted(by_split.items())
        )
        return out

    def judged_scores(self) -> dict[str, dict[str, float]]:
        """Per-item scores for the judge: every scorer, plus `scorer[split]` subsets."""
        out = dict(self.scores)
        for name, by_split in self.splits.items():
            for split, values in by_split.items():
                out[f"{name}[{split}]"] = values
        return out


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def describe_outcome(outcome: RunOutcome) -> dict[str, Any]:
    """The run object of design.md §8 (`monitor run --format json`, `GET /api/v1/runs`)."""
    run = outcome.run
    return run_document(run, outcome.scores, outcome.verdicts, outcome.duration_s)


def run_document(
    run: Run,
    scores: Sequence[ScoreSummary],
    verdicts: Sequence[Verdict],
    duration_s: float | None = None,
) -> dict[str, Any]:
    """Serialize a run with its scores and verdicts to plain JSON-ready data."""
    if duration_s is None and run.finished_at is not None:
        duration_s = (run.finished_at - run.started_at).total_seconds()
    return {
        "id": run.id,
        "monitor": run.monitor,
        "endpoint": run.endpoint,
        "benchmark": run.benchmark,
        "benchmark_version": run.benchmark_version,
        "trigger": run.trigger,
        "status": run.status.value,
        "model_id": run.model_id,
        "n_items": run.n_items,
        "n_errors": run.n_errors,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_s": None if duration_s is None else round(duration_s, 3),
        "scores": {
            s.scorer: {
                "value": _json_float(s.value),
                "ci_lower": _json_float(s.ci_lower),
                "ci_upper": _json_float(s.ci_upper),
                "n": s.n,
            }
            for s in scores
        },
        "verdicts": {v.scorer: verdict_document(v) for v in verdicts},
    }


def verdict_document(v: Verdict) -> dict[str, Any]:
    """Serialize one verdict with the evidence behind it."""
    return {
        "verdict": v.verdict.value,
        "test": v.test,
        "baseline": v.baseline,
        "baseline_score": _json_float(v.baseline_score),
        "statistic": _json_float(v.statistic),
        "p_value": _json_float(v.p_value),
        "p_adjusted": _json_float(v.p_adjusted),
        "effect": _json_float(v.effect),
        "effect_ci": None
        if v.effect_ci is None
        else [_json_float(v.effect_ci[0]), _json_float(v.effect_ci[1])],
        "changed_items": {
            "pass_to_fail": list(v.changed.pass_to_fail),
            "fail_to_pass": list(v.changed.fail_to_pass),
        },
        "detail": v.detail,
    }


def _json_float(value: float | None) -> float | None:
    # JSON has no NaN; None says "not computed" to every consumer
    return None if value is None or math.isnan(value) else value
