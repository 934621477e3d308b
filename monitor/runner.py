"""One run's execution: items -> endpoint -> scorers -> store, with the judge hook.

The runner talks to its adapters only through `monitor.ports`. It streams item results
to the store in batches, keeps in memory what the judge needs (`RunEvidence`), asks the
judge hook for verdicts before the run is marked finished, and records the run's final
state even when the database is briefly away. It catches broadly at one place: a run
that breaks is recorded as failed and logged once, and the caller carries on.

`monitor.service.RunService` decides what to run (the plan); this module only runs it.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from monitor.clock import utc_now
from monitor.core.cost import (
    Budget,
    PricingPlan,
    Rates,
    RunUsage,
    TableLookup,
    TokenTotals,
    configured_price,
    over_run_budget,
    run_usage,
)
from monitor.core.evidence import RunEvidence, predicted_label
from monitor.core.fingerprint import Fingerprint
from monitor.core.judging import JUDGE_KINDS, Graded, Rescored
from monitor.core.model import (
    TOKEN_FIELDS,
    Benchmark,
    ErrorKind,
    Item,
    ItemResult,
    Response,
    Run,
    RunStatus,
    ScoreSummary,
    Usage,
    Verdict,
)
from monitor.core.retry import RetryPolicy
from monitor.core.scoring import Scorer, build_scorer, macro_f1_summary, summarize_scores
from monitor.core.slices import slice_label
from monitor.documents import run_document
from monitor.errors import StorageError
from monitor.log import get_logger
from monitor.ports import (
    Clock,
    EndpointClient,
    Grader,
    JudgeHook,
    Pricer,
    RunStore,
    ScorerInfo,
    Sentinel,
)

__all__ = [
    "STORE_RETRY",
    "Progress",
    "RunOutcome",
    "RunRequest",
    "Runner",
    "retry_storage",
    "table_lookup",
]

T = TypeVar("T")

# Store writes while the database is briefly away (restart, failover): 0.5 s doubling to
# 10 s, about two minutes in all. Acknowledged (committed) results are never rewritten,
# and a batch written twice is deduplicated by the store's unique (run, item) key.
STORE_RETRY = RetryPolicy(retries=16, base_delay=0.5, max_delay=10.0, jitter=0.0)


async def retry_storage(policy: RetryPolicy, what: str, fn: Callable[..., T], *args: Any) -> T:
    """Call `fn` in a worker thread, retrying `StorageError` as `policy` says."""
    rng = random.Random()
    attempt = 0
    while True:
        try:
            return await asyncio.to_thread(fn, *args)
        except StorageError as exc:
            attempt += 1
            if attempt > policy.retries:
                raise
            delay = policy.delay(attempt, None, rng)
            get_logger("runner").warning(
                "storage_retry", action=what, error=str(exc), retry_in_s=delay
            )
            await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What to run: a monitor's benchmark, scored by `scorers`, against one endpoint."""

    monitor: str
    benchmark: Benchmark
    endpoint: EndpointClient
    concurrency: int
    degraded_threshold: float = 0.05
    trigger: str = "manual"
    # built once per plan (monitor.service); empty means "build the benchmark's own"
    scorers: tuple[Scorer, ...] = ()
    endpoint_url: str | None = None  # named in the log when items fail
    # the configured part of what the run measures (monitor.service builds it); the
    # runner adds what the answers said was served
    fingerprint: Fingerprint | None = None
    pricing: PricingPlan | None = None  # None: the run's cost is not computed
    budget: Budget | None = None  # limits checked after every answer (per-run part)
    graders: tuple[Grader, ...] = ()  # LLM-judge scorers, called once an answer arrives
    sentinels: tuple[Sentinel, ...] = ()  # calibration sets to re-score during this run
    # answers waiting for (or in) their judges at most; past it the model's workers wait
    judge_backlog: int = 256
    repeats: int = 1  # samples per item (a monitor's `repeats:`)
    # judge scorer -> its judge endpoint's prices (what the judge's calls cost)
    judge_pricing: Mapping[str, PricingPlan] = field(default_factory=dict)

    def built_scorers(self) -> tuple[Scorer, ...]:
        """The deterministic scorers: as given, or built from the benchmark's specs (the
        judge kinds are the graders' part; a benchmark may have only those)."""
        if self.scorers:
            return self.scorers
        return tuple(build_scorer(s) for s in self.benchmark.scorers if s.kind not in JUDGE_KINDS)


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
    # error kind -> items that got no usable answer with it ("connect", "timeout", ...)
    error_kinds: Mapping[str, int] = field(default_factory=dict)
    endpoint_url: str | None = None  # credentials masked

    def document(self) -> dict[str, Any]:
        """The run document (`monitor run --format json`, `GET /api/v1/runs`)."""
        return run_document(self.run, self.scores, self.verdicts, self.duration_s)


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
        retry: RetryPolicy,
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
            await retry_storage(
                self._retry, "store item results", self._store.add_item_results, self._run_id, batch
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
        observe: Callable[[str, Response], None] | None = None,
        clock: Clock = utc_now,
        batch_size: int = 256,
        flush_interval: float = 1.0,
        store_retry: RetryPolicy = STORE_RETRY,
        pricer: Pricer | None = None,
    ) -> None:
        self._store = store
        self._pricer = pricer
        self._observe = observe
        self._clock = clock
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry = store_retry
        self._unrecorded: dict[int, Callable[[], Run]] = {}
        self.active: set[int] = set()  # ids of runs executing in this process
        # benchmark version -> its (possibly still running) save; shared by concurrent runs
        self._saving: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._log = get_logger("runner")

    async def run(
        self,
        request: RunRequest,
        *,
        judge: JudgeHook | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> RunOutcome:
        """Run every item once, store results as they come, then aggregate and judge."""
        bench = request.benchmark
        run = await retry_storage(
            self._retry,
            "start the run",
            lambda: self._store.start_run(
                monitor=request.monitor,
                benchmark=bench.name,
                benchmark_version=bench.version,
                endpoint=request.endpoint.name,
                trigger=request.trigger,
                started_at=self._clock(),
                repeats=request.repeats,
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
        collected = _Collected(
            request.built_scorers(),
            request.fingerprint,
            request.pricing,
            request.graders,
            repeats=request.repeats,
        )
        self.active.add(run.id)
        try:
            return await self._complete(request, run, collected, progress, judge, on_progress, log)
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
                retry_storage(
                    self._retry,
                    "store the benchmark",
                    self._store.save_benchmark,
                    bench,
                    self._clock(),
                )
            )
            self._saving[key] = saving

            def forget_on_failure(done: asyncio.Future[None]) -> None:
                if done.cancelled() or done.exception() is not None:
                    self._saving.pop(key, None)

            saving.add_done_callback(forget_on_failure)
        return saving

    async def _complete(  # noqa: PLR0917 - private step of run()
        self,
        request: RunRequest,
        run: Run,
        collected: _Collected,
        progress: Progress,
        judge: JudgeHook | None,
        on_progress: Callable[[Progress], None] | None,
        log: Any,
    ) -> RunOutcome:
        started = progress.started
        if request.budget is not None and request.budget.per_run:
            collected.budget = request.budget
            collected.rates = await self._rates(run, collected, log)
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
            return RunOutcome(
                finished, (), (), duration, dict(collected.error_kinds), request.endpoint_url
            )

        if collected.stopped is not None:
            # stopped by its budget: the answers so far are stored; not judged (partial)
            finished = await self._finish(
                run, RunStatus.ABORTED, collected, progress, scores=(), reason=BUDGET
            )
            duration = time.perf_counter() - started
            log.warning(
                "run_budget_exceeded",
                reason=collected.stopped,
                items=progress.done,
                of=progress.total,
                duration_s=round(duration, 3),
            )
            return RunOutcome(
                finished, (), (), duration, dict(collected.error_kinds), request.endpoint_url
            )
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
        if collected.judge_tokens_by:
            collected.judge_usage = await asyncio.to_thread(
                self._judge_usage, run, request, collected
            )
        if judge is not None:
            judged = replace(
                run,
                status=status,
                n_items=progress.done,
                n_errors=progress.errors,
                model_id=collected.model_id,
                fingerprint=collected.fingerprint(),
            )
            try:
                verdicts = await judge(judged, collected.evidence())
            except Exception as exc:
                log.exception("judge_failed", error=f"{type(exc).__name__}: {exc}")
        finished = await self._finish(run, status, collected, progress, scores=summaries)
        duration = time.perf_counter() - started
        failures: dict[str, Any] = {}
        if collected.error_kinds:  # say why items failed, and where, without opening the DB
            failures = {"error_kinds": dict(collected.error_kinds), "url": request.endpoint_url}
        log.info(
            "run_finished",
            status=finished.status.value,
            duration_s=round(duration, 3),
            items=progress.done,
            errors=progress.errors,
            model_id=finished.model_id,
            scores={s.scorer: _round(s.value) for s in summaries},
            verdicts={v.scorer: v.verdict.value for v in verdicts},
            **failures,
        )
        return RunOutcome(
            finished,
            tuple(summaries),
            tuple(verdicts),
            duration,
            dict(collected.error_kinds),
            request.endpoint_url,
        )

    async def _execute(  # noqa: PLR0915 - one run's pipeline, its closures share its state
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
        repeats = max(1, request.repeats)
        # each sample is its own request; an item's samples are sent one after another
        items = ((item, r) for item in request.benchmark.items for r in range(repeats))
        samples: dict[str, list[ItemResult]] = {}  # item key -> its samples so far
        endpoint = request.endpoint
        observe = self._observe

        graders = request.graders
        judging: set[asyncio.Task[None]] = set()
        backlog = asyncio.Semaphore(max(1, request.judge_backlog))

        def record(item: Item, response: Response, graded: Mapping[str, Graded]) -> None:
            result = collected.add(item, response, graded)
            collected.check_budget()
            if repeats > 1:
                got = samples.setdefault(item.key, [])
                got.append(result)
                if len(got) < repeats:
                    return
                result = collected.combine(item, samples.pop(item.key))
            store(result)

        def store(result: ItemResult) -> None:
            writer.add(result)
            progress.done += 1
            if result.error is not None:
                progress.errors += 1
            if on_progress is not None:
                on_progress(progress)

        async def judged(item: Item, response: Response, output: str) -> None:
            # Pipelined: the model's worker is already on its next item while the judges
            # grade this answer under their own endpoints' limits.
            try:
                results = await asyncio.gather(*(g.grade(item, output) for g in graders))
                record(item, response, {g.name: r for g, r in zip(graders, results, strict=True)})
            finally:
                backlog.release()

        async def work() -> None:
            # Workers share one iterator: no await between next() and use, so no races.
            for item, _ in items:
                if collected.stopped is not None:
                    return  # the budget is spent: the requests in flight finish, no more start
                response = await endpoint.predict(item)
                if observe is not None:
                    observe(endpoint.name, response)
                if graders and response.error is None and response.output is not None:
                    await backlog.acquire()
                    task = asyncio.create_task(judged(item, response, response.output))
                    judging.add(task)
                    task.add_done_callback(judging.discard)
                else:
                    record(item, response, {})

        async def rescore(sentinel: Sentinel) -> None:
            rescored = await sentinel.rescore()
            collected.calibration[sentinel.name] = rescored
            graded = len(rescored.scores)  # the items the judge answered (votes summed)
            collected.add_judge_usage(sentinel.name, rescored.usage, max(1, graded))

        side = [asyncio.create_task(rescore(s)) for s in request.sentinels]
        workers = [asyncio.create_task(work()) for _ in range(max(1, request.concurrency))]
        try:
            await asyncio.gather(*workers)
            while judging:
                await asyncio.gather(*list(judging))
            by_key = {item.key: item for item in request.benchmark.items} if samples else {}
            for key, got in list(samples.items()):  # a budget stopped the run mid-item
                store(collected.combine(by_key[key], got))
            await asyncio.gather(*side)
            await writer.close()
            await asyncio.shield(saving)  # shared: an aborted run must not cancel it
        except BaseException:
            for w in (*workers, *judging, *side):
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
        reason: str | None = None,
    ) -> Run:
        finished_at = self._clock()
        fingerprint = collected.fingerprint()
        # priced in the same shielded thread as the write: a cancel cannot skip the write
        priced: list[RunUsage | None] = []

        def finish() -> Run:
            if not priced:
                priced.append(self._usage(run, collected))
            usage = priced[0]
            return self._store.finish_run(
                run.id,
                status=status,
                finished_at=finished_at,
                n_items=progress.done,
                n_errors=progress.errors,
                model_id=collected.model_id,
                scores=scores,
                fingerprint=fingerprint,
                usage=usage,
                reason=reason,
            )

        try:
            return await asyncio.shield(retry_storage(self._retry, "finish the run", finish))
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
                fingerprint=fingerprint,
                usage=priced[0] if priced else None,
                status_reason=reason,
            )

    async def _rates(self, run: Run, collected: _Collected, log: Any) -> Rates | None:
        """Dollars per token for the run's budget: its configured price, else the table's
        price of a million of each kind, looked up once. None: only tokens are limited."""
        plan = collected.pricing
        if plan is None:
            return None
        configured = configured_price(plan.prices, run.started_at)
        if configured is not None:
            return Rates.of(configured)
        pricer, model = self._pricer, plan.model or plan.configured
        if pricer is None or model is None:
            return None

        def per_million(tokens: TokenTotals) -> float | None:
            found = pricer.table_price(
                tokens, model=model, provider=plan.provider, api_url=plan.api_url,
                when=run.started_at,
            )  # fmt: skip
            return None if found is None else found[0] / 1_000_000

        def lookup() -> Rates | None:
            prompt = per_million(TokenTotals(prompt=1_000_000, answers=1))
            completion = per_million(TokenTotals(completion=1_000_000, answers=1))
            cached = per_million(TokenTotals(prompt=1_000_000, cached=1_000_000, answers=1))
            if prompt is None or completion is None:
                return None
            return Rates(prompt, completion, prompt if cached is None else cached)

        try:
            rates = await asyncio.to_thread(lookup)
        except Exception:  # noqa: BLE001 - a price table must never fail a run
            rates = None
        if rates is None and collected.budget is not None and collected.budget.run_dollars:
            log.warning("budget_cost_unknown", model=model, checked="tokens only")
        return rates

    def _usage(self, run: Run, collected: _Collected) -> RunUsage | None:
        """The run's tokens and cost (in a worker thread: the table loads its data on first
        use, ~0.2 s); a price table that fails leaves the cost unknown."""
        plan = collected.pricing
        if plan is None:
            return None
        try:
            return run_usage(
                collected.tokens,
                plan,
                served_model=collected.model_id,
                when=run.started_at,
                table=table_lookup(self._pricer),
            )
        except Exception as exc:  # noqa: BLE001 - a price table must never fail a run
            self._log.warning("run_cost_unknown", run_id=run.id, error=f"{type(exc).__name__}")
            return RunUsage(collected.tokens, None, "unknown: the price lookup failed")

    def _judge_usage(
        self, run: Run, request: RunRequest, collected: _Collected
    ) -> dict[str, RunUsage]:
        """Each judge scorer's tokens and their cost at its judge endpoint's prices (in a
        worker thread, as `_usage`); an unknown price is unknown, never 0."""
        out: dict[str, RunUsage] = {}
        for name, tokens in collected.judge_tokens_by.items():
            plan = request.judge_pricing.get(name)
            served = collected.judges_served.get(name, (Counter(), Counter()))[0]
            model = served.most_common(1)[0][0] if served else None
            if plan is None:
                out[name] = RunUsage(tokens, None, "unknown: no prices for the judge endpoint")
                continue
            try:
                out[name] = run_usage(
                    tokens,
                    plan,
                    served_model=model,
                    when=run.started_at,
                    table=table_lookup(self._pricer),
                )
            except Exception:  # noqa: BLE001 - a price table must never fail a run
                out[name] = RunUsage(tokens, None, "unknown: the price lookup failed")
        return out

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


def table_lookup(pricer: Pricer | None) -> TableLookup | None:
    """`pricer` as the plain function `monitor.core.cost.run_usage` takes."""
    if pricer is None:
        return None
    found = pricer

    def lookup(
        tokens: TokenTotals, model: str, provider: str | None, url: str | None, when: datetime
    ) -> tuple[float, str] | None:
        return found.table_price(tokens, model=model, provider=provider, api_url=url, when=when)

    return lookup


BUDGET = "budget"  # `status_reason` of a run its budget stopped
MAX_SERVED_VALUES = 20  # distinct served models / fingerprints kept per run


def _count(counts: Counter[str], value: str) -> None:
    """Count a served value; answers are untrusted, so the distinct values are bounded."""
    value = value[:200]
    if value not in counts and len(counts) >= MAX_SERVED_VALUES:
        value = "(other)"
    counts[value] += 1


class _Collected:
    """Scores every response and keeps what aggregation and the judge need."""

    def __init__(
        self,
        scorers: Sequence[Scorer],
        fingerprint: Fingerprint | None = None,
        pricing: PricingPlan | None = None,
        graders: Sequence[Grader] = (),
        *,
        repeats: int = 1,
    ) -> None:
        self.repeats = max(1, repeats)
        # binary scorer -> item key -> (passing samples, scored samples), with repeats
        self.passes: dict[str, dict[str, tuple[int, int]]] = {}
        self._scorers = scorers
        self._graders = graders
        self._kinds: list[ScorerInfo] = [*scorers, *graders]
        self._fingerprint = fingerprint
        self.pricing = pricing
        self.budget: Budget | None = None
        self.rates: Rates | None = None
        self.stopped: str | None = None  # why the budget stopped the run
        self.served_models: Counter[str] = Counter()
        self.system_fingerprints: Counter[str] = Counter()
        self.tokens = TokenTotals()
        self.scores: dict[str, dict[str, float]] = {s.name: {} for s in scorers}
        for g in graders:
            self.scores[g.name] = {}
        self._labels: dict[str, tuple[list[str], list[str]]] = {
            s.name: ([], []) for s in scorers if s.kind == "classification"
        }
        self.model_id: str | None = None
        # scorer -> split value or slice label -> item key -> score (`split:` and `slices:`)
        self.splits: dict[str, dict[str, dict[str, float]]] = {}
        # drift signals of the answered items (the judge's in-memory evidence)
        self.latencies: list[float] = []
        self.output_lengths: list[int] = []
        self.completion_tokens: list[int] = []
        self.predicted: list[str] = []
        self.error_kinds: Counter[str] = Counter()
        self.calibration: dict[str, Rescored] = {}
        # judge scorer -> what its judge served (model ids, system fingerprints)
        self.judges_served: dict[str, tuple[Counter[str], Counter[str]]] = {}
        self.judge_tokens = TokenTotals()
        self.judge_tokens_by: dict[str, TokenTotals] = {}
        self.judge_usage: dict[str, RunUsage] = {}  # priced before judging (Runner)

    def check_budget(self) -> None:
        """After an answer: stop the run once its budget is spent (cheap: no lookup)."""
        if self.budget is not None and self.stopped is None:
            self.stopped = over_run_budget(self.tokens, self.rates, self.budget)

    def fingerprint(self) -> Fingerprint | None:
        if self._fingerprint is None:
            return None
        judges = {name: (dict(m), dict(p)) for name, (m, p) in self.judges_served.items()}
        return self._fingerprint.served(self.served_models, self.system_fingerprints, judges)

    def add_judge_usage(self, scorer: str, usage: Usage | None, calls: int = 1) -> None:
        """Count a judge's tokens: one answer's grade, or a calibration re-score's calls."""
        totals = self.judge_tokens_by.get(scorer, TokenTotals())
        self.judge_tokens_by[scorer] = totals.add(usage, calls)

    def _subsets(self, scorer: str, item: Item, value: float) -> None:
        """File one score under the item's split and its slices (`field=value`)."""
        if item.split is None and not item.slices:
            return
        by_subset = self.splits.setdefault(scorer, {})
        if item.split is not None:
            by_subset.setdefault(item.split, {})[item.key] = value
        for name, text in item.slices.items():
            by_subset.setdefault(slice_label(name, text), {})[item.key] = value

    def _graded(
        self, item: Item, graded: Mapping[str, Graded], scores: dict[str, float]
    ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Record the judges' grades of one answer; returns the stored judgments and the
        judge errors."""
        judgments: dict[str, dict[str, Any]] = {}
        errors: list[str] = []
        for name, g in graded.items():
            models, prints = self.judges_served.setdefault(name, (Counter(), Counter()))
            if g.model_id:
                _count(models, g.model_id)
            if g.system_fingerprint:
                _count(prints, g.system_fingerprint)
            self.judge_tokens = self.judge_tokens.add(g.usage)
            self.add_judge_usage(name, g.usage)
            if g.score is None:
                errors.append(f"{name}: {g.error}")
                judgments[name] = {"error": g.error}
                continue
            scores[name] = g.score
            self.scores[name][item.key] = g.score
            self._subsets(name, item, g.score)
            judgments[name] = {"reason": g.reason, "votes": list(g.votes)}
        return judgments, errors

    def add(
        self, item: Item, response: Response, graded: Mapping[str, Graded] | None = None
    ) -> ItemResult:
        if response.model_id:
            if self.model_id is None:
                self.model_id = response.model_id
            _count(self.served_models, response.model_id)
        if response.system_fingerprint:
            _count(self.system_fingerprints, response.system_fingerprint)
        self.tokens = self.tokens.add(response.usage)
        item_scores: dict[str, float] = {}
        output = response.output
        if response.error is not None and self.repeats == 1:  # else counted per item (combine)
            self.error_kinds[response.error.value] += 1
        if response.error is None and output is not None:
            self.latencies.append(response.latency_s)
            self.output_lengths.append(len(output))
            if response.usage is not None and response.usage.completion_tokens is not None:
                self.completion_tokens.append(response.usage.completion_tokens)
            if self._labels:
                self.predicted.append(predicted_label(output))
            for scorer in self._scorers:
                value = scorer(output, item.reference)
                item_scores[scorer.name] = value
                self.scores[scorer.name][item.key] = value
                self._subsets(scorer.name, item, value)
                if scorer.name in self._labels:
                    preds, refs = self._labels[scorer.name]
                    preds.append(output)
                    refs.append("" if item.reference is None else str(item.reference))
        error, detail = response.error, response.error_detail
        judgments: dict[str, dict[str, Any]] = {}
        if graded:
            judgments, judge_errors = self._graded(item, graded, item_scores)
            if judge_errors and error is None:
                # the model answered: its latency and length count, but without a verdict
                # the item is unavailable to the judged scorer, never a wrong answer
                error, detail = ErrorKind.JUDGE, "; ".join(judge_errors)[:2000]
                if self.repeats == 1:
                    self.error_kinds[error.value] += 1
        return ItemResult(
            item_key=item.key,
            output=output,
            scores=item_scores,
            latency_s=response.latency_s,
            error=error,
            error_detail=detail,
            usage=response.usage,
            attempts=response.attempts,
            judgments=judgments,
        )

    def combine(self, item: Item, got: Sequence[ItemResult]) -> ItemResult:
        """A repeated item's samples as one result: each scorer's mean over the samples it
        scored, the first answer, and every sample kept (`ItemResult.repeats`)."""
        binary = {s.name for s in self._kinds if s.binary}
        means: dict[str, float] = {}
        for name in sorted({n for r in got for n in r.scores}):
            values = [r.scores[name] for r in got if name in r.scores]
            means[name] = math.fsum(values) / len(values)
            self.scores[name][item.key] = means[name]
            self._subsets(name, item, means[name])
            if name in binary:
                passed = sum(1 for v in values if v >= 0.5)
                self.passes.setdefault(name, {})[item.key] = (passed, len(values))
        answered = [r for r in got if r.error is None]
        failed = [r for r in got if r.error is not None]
        first = answered[0] if answered else got[0]
        # as for one sample: an item is an error when no sample came back whole (a judge
        # error keeps the deterministic scores), and counts once however many samples failed
        error, detail = (None, None) if answered else (first.error, first.error_detail)
        if failed and answered:
            kinds = ", ".join(sorted({r.error.value for r in failed if r.error is not None}))
            detail = f"{len(failed)} of {len(got)} samples failed: {kinds}"
        if error is not None:
            self.error_kinds[error.value] += 1
        latencies = [r.latency_s for r in answered if not math.isnan(r.latency_s)]
        return ItemResult(
            item_key=item.key,
            output=first.output,
            scores=means,
            latency_s=math.fsum(latencies) / len(latencies) if latencies else first.latency_s,
            error=error,
            error_detail=detail,
            usage=_summed_usage([r.usage for r in got]),
            attempts=sum(r.attempts for r in got),
            judgments=first.judgments,
            repeats=tuple(
                {
                    "scores": dict(r.scores),
                    "error": None if r.error is None else r.error.value,
                    "latency_s": None if math.isnan(r.latency_s) else r.latency_s,
                    "output": r.output,
                    **({"judgments": dict(r.judgments)} if r.judgments else {}),
                }
                for r in got
            ),
        )

    def summaries(self) -> list[ScoreSummary]:
        # with repeats an item's score is a share of samples: summarized as a mean, and
        # binary scorers get pass@n (any sample passed) and pass^n (every sample passed)
        single = self.repeats == 1
        out = [
            summarize_scores(s.name, list(self.scores[s.name].values()), binary=s.binary and single)
            for s in self._kinds
        ]
        for name, counts in sorted(self.passes.items()):
            n = self.repeats
            out.append(
                summarize_scores(
                    f"{name}:pass@{n}", [float(k >= 1) for k, _ in counts.values()], binary=True
                )
            )
            out.append(
                summarize_scores(
                    f"{name}:pass^{n}", [float(k == m) for k, m in counts.values()], binary=True
                )
            )
        out.extend(
            macro_f1_summary(f"{name}_macro_f1", preds, refs)
            for name, (preds, refs) in self._labels.items()
        )
        binary = {s.name: s.binary and single for s in self._kinds}
        out.extend(
            summarize_scores(f"{name}[{split}]", list(values.values()), binary=binary[name])
            for name, by_split in self.splits.items()
            for split, values in sorted(by_split.items())
        )
        return out

    def evidence(self) -> RunEvidence:
        """The judge's input: every scorer's item scores (plus `scorer[split]` and
        `scorer[field=value]` subsets)
        and the answered items' latency, output length and, for classifiers, label."""
        scores: dict[str, dict[str, float]] = dict(self.scores)
        for name, by_split in self.splits.items():
            for split, values in by_split.items():
                scores[f"{name}[{split}]"] = values
        return RunEvidence(
            scores=scores,
            latencies=self.latencies,
            output_lengths=self.output_lengths,
            labels=self.predicted,
            completion_tokens=self.completion_tokens,
            calibration=dict(self.calibration),
            judge_usage=dict(self.judge_usage),
            judges_served={
                name: (dict(models), dict(prints))
                for name, (models, prints) in self.judges_served.items()
            },
        )


def _summed_usage(usages: Sequence[Usage | None]) -> Usage | None:
    """Token counts of an item's samples added up (a count no sample reported stays None)."""
    reported = [u for u in usages if u is not None]
    if not reported:
        return None
    totals: dict[str, int | None] = {}
    for name in TOKEN_FIELDS:
        values = [v for u in reported if (v := getattr(u, name)) is not None]
        totals[name] = sum(values) if values else None
    return Usage.of(**totals)


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)
