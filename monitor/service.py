"""The one use case: run a monitor's benchmark against one of its endpoints.

`RunService.run(monitor, endpoint, trigger)` is called by `monitor run` and by the
daemon's scheduler hook alike. It resolves a frozen `RunPlan` once (settings, benchmark
version, built scorers, the endpoint's client), executes it with the `Runner`, hands the
run's in-memory evidence to the judge through the runner's hook, and then records the
run's process metrics and alerts. Every setting a run uses comes from its plan, so a
configuration reload while the run is in flight changes nothing about that run.

This is the only module that builds endpoint clients or records endpoints in the store
(docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from monitor import __version__
from monitor.clock import utc_now
from monitor.config import (
    BenchmarkSettings,
    EndpointSettings,
    MonitorSettings,
    Settings,
    mask_secrets,
)
from monitor.core.cost import (
    Budget,
    Price,
    PricingPlan,
    RunUsage,
    from_prompts,
    over_day_budget,
    run_usage,
    scaled,
)
from monitor.core.fingerprint import Fingerprint
from monitor.core.judging import JUDGE_KINDS, CalibrationSpec, JudgeSpec, judge_spec, label_score
from monitor.core.model import Benchmark, Item, Rescore, Run, RunStatus, ScorerSpec
from monitor.core.scoring import Scorer, build_scorer, summarize_scores
from monitor.errors import BenchmarkError, BudgetExhaustedError, ConfigError, MissingRunError
from monitor.grading import CalibrationItem, CalibrationSet, JudgeScorer
from monitor.log import mask_url_credentials
from monitor.ports import (
    AlertSink,
    BenchmarkSource,
    Clock,
    EndpointClient,
    EndpointFactory,
    Judge,
    Pricer,
    ReportsConcurrency,
    RescoreStore,
    RunHistory,
    RunMetrics,
    RunStore,
)
from monitor.runner import Progress, Runner, RunOutcome, RunRequest, table_lookup

__all__ = [
    "Estimate",
    "RunPlan",
    "RunService",
    "estimate_runs",
    "measurement",
    "pricing_plan",
    "select_endpoints",
]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything one run uses, resolved once before it starts."""

    monitor: MonitorSettings
    endpoint: EndpointSettings
    benchmark: Benchmark
    scorers: tuple[Scorer, ...]
    client: EndpointClient
    trigger: str
    fingerprint: Fingerprint | None = None
    graders: tuple[JudgeScorer, ...] = ()  # the benchmark's LLM-judge scorers
    sentinels: tuple[JudgeScorer, ...] = ()  # those whose calibration set is due
    # judge scorer -> its judge endpoint's prices
    judge_pricing: Mapping[str, PricingPlan] = field(default_factory=dict)

    def request(self) -> RunRequest:
        return RunRequest(
            monitor=self.monitor.name,
            benchmark=self.benchmark,
            endpoint=self.client,
            concurrency=self.endpoint.concurrency,
            degraded_threshold=self.monitor.degraded_threshold,
            trigger=self.trigger,
            scorers=self.scorers,
            endpoint_url=mask_url_credentials(self.endpoint.url),
            fingerprint=self.fingerprint,
            pricing=pricing_plan(self.endpoint),
            budget=budget_of(self.monitor),
            graders=self.graders,
            sentinels=self.sentinels,
            repeats=self.monitor.repeats,
            judge_pricing=self.judge_pricing,
        )


def budget_of(mon: MonitorSettings) -> Budget:
    b = mon.budget
    return Budget(b.run_dollars, b.run_tokens, b.day_dollars, b.day_tokens)


def pricing_plan(ep: EndpointSettings) -> PricingPlan:
    """How runs on `ep` are priced: its configured prices, else the table's."""
    pricing = ep.pricing
    return PricingPlan(
        prices=tuple(
            Price(p.since, p.input_per_million, p.output_per_million, p.cached_input_per_million)
            for p in pricing.prices
        ),
        provider=pricing.provider,
        model=pricing.model,
        configured=ep.model,
        api_url=ep.url,
    )


def measurement(
    ep: EndpointSettings, bench: Benchmark, secrets: Collection[str] = ()
) -> Fingerprint:
    """The configured part of a run's fingerprint (monitor/core/fingerprint.py).

    The URL contributes its host only (a path or query may carry a key); parameter
    values that came from secrets are masked; the request and response templates of
    the generic protocols enter as a digest.
    """
    url = urlsplit(ep.url)
    shape: dict[str, Any] = {"body": ep.body, "response": ep.response, "output": ep.output}
    shape["input"] = ep.input.model_dump(mode="json") if ep.input is not None else None
    request = None
    if any(v is not None for v in shape.values()):
        encoded = json.dumps(shape, sort_keys=True).encode()
        request = hashlib.sha256(encoded).hexdigest()[:16]
    return Fingerprint(
        endpoint_type=ep.type,
        endpoint_host=url.hostname + (f":{url.port}" if url.port else "") if url.hostname else "",
        model=ep.model,
        params={k: _masked(v, secrets) for k, v in ep.params.items()},
        request=request,
        benchmark_version=bench.version,
        scorers=tuple(_scorer_id(s) for s in bench.scorers),
        monitor_version=__version__,
        judges={s.name: {"judge": dict(s.judge)} for s in bench.scorers if s.judge is not None},
    )


def _masked(value: Any, secrets: Collection[str]) -> Any:
    if isinstance(value, str):
        return mask_secrets(value, secrets)
    if isinstance(value, dict):
        return {k: _masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, secrets) for v in value]
    return value


def _scorer_id(spec: ScorerSpec) -> str:
    """``name=kind`` plus its parameters and, for a custom scorer, its version; for a judge
    scorer its judge's identity (and not its calibration file's path)."""
    params = dict(spec.params)
    if spec.judge is not None:
        params.pop("calibration", None)
        params["judge"] = dict(spec.judge)
    extra = json.dumps(params, sort_keys=True, default=str) if params else ""
    version = f"@{spec.custom.version}" if spec.custom is not None and spec.custom.version else ""
    return f"{spec.name}={spec.kind}{version}{extra}"


def select_endpoints(settings: Settings, monitor: str, endpoints: Sequence[str] = ()) -> list[str]:
    """The endpoints to run `monitor` against: the named ones, or all of its own."""
    mon = settings.monitor(monitor)
    chosen = list(endpoints) or list(mon.endpoints)
    unknown = [e for e in chosen if e not in mon.endpoints]
    if unknown:
        raise ConfigError(
            f"{settings.source}: monitor {monitor!r} has no endpoint {unknown[0]!r} "
            f"(its endpoints: {', '.join(mon.endpoints)})"
        )
    return chosen


def _client_key(ep: EndpointSettings) -> str:
    # headers may hold secrets that fingerprint() leaves out; a changed one needs a new client
    return ep.fingerprint() + str(hash(tuple(sorted(ep.headers.items()))))


class RunService:
    """Plans and executes runs; one instance serves the whole process.

    Endpoint clients are kept per endpoint while its settings are unchanged, so every
    monitor that uses an endpoint shares its concurrency and rate limit.
    """

    def __init__(
        self,
        store: RunStore,
        *,
        settings: Callable[[], Settings],
        endpoints: EndpointFactory,
        benchmarks: BenchmarkSource,
        runner: Runner,
        judge: Judge | None = None,
        metrics: RunMetrics | None = None,
        alerts: AlertSink | None = None,
        outputs: RescoreStore | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._outputs = outputs  # stored outputs, for `rescore`
        self._settings = settings
        self._endpoints = endpoints
        self._benchmarks = benchmarks
        self._runner = runner
        self._judge = judge
        self._metrics = metrics
        self._alerts = alerts
        self._clock = clock
        self._clients: dict[str, tuple[str, EndpointClient]] = {}
        self._client_locks: dict[str, asyncio.Lock] = {}
        # judge clients by (judge endpoint, its request parameters): one per judge setup
        self._judge_clients: dict[str, tuple[str, EndpointClient]] = {}
        # (monitor, endpoint, scorer) -> runs since its calibration set was last re-scored
        self._since_calibration: dict[tuple[str, str, str], int] = {}

    @property
    def active(self) -> set[int]:
        """Ids of the runs executing in this process."""
        return self._runner.active

    async def plan(self, monitor: str, endpoint: str, trigger: str = "manual") -> RunPlan:
        """Resolve what a run of (monitor, endpoint) uses; raises ConfigError or
        BenchmarkError naming the file and field when it cannot run."""
        settings = self._settings()
        mon = settings.monitor(monitor)
        select_endpoints(settings, monitor, [endpoint])
        ep = settings.endpoint(endpoint)
        bench_settings = settings.benchmark(mon.benchmark)
        bench = await asyncio.to_thread(self._benchmarks, bench_settings)
        scorers = tuple(build_scorer(s) for s in bench.scorers if s.kind not in JUDGE_KINDS)
        if trigger == "schedule" and mon.budget.per_day_set:
            await self._check_day_budget(mon)
        client = await self._client(settings, ep)
        graders = tuple(
            [
                await self._grader(settings, bench_settings, s)
                for s in bench.scorers
                if s.kind in JUDGE_KINDS
            ]
        )
        sentinels = tuple(g for g in graders if self._calibration_due(mon.name, ep.name, g))
        fingerprint = measurement(ep, bench, settings.secrets)
        judge_pricing = {
            s.name: pricing_plan(settings.endpoint(judge_spec(s).endpoint))
            for s in bench.scorers
            if s.kind in JUDGE_KINDS
        }
        return RunPlan(
            mon, ep, bench, scorers, client, trigger, fingerprint, graders, sentinels, judge_pricing
        )

    def _calibration_due(self, monitor: str, endpoint: str, grader: JudgeScorer) -> bool:
        """Every `calibration.every`-th run of (monitor, endpoint) re-scores the set; the
        first run after a start always does (the count is kept in memory)."""
        if grader.calibration is None:
            return False
        key = (monitor, endpoint, grader.name)
        since = self._since_calibration.get(key)
        due = since is None or since + 1 >= grader.calibration.spec.every
        self._since_calibration[key] = 0 if due else (since or 0) + 1
        return due

    async def _grader(
        self, settings: Settings, bench: BenchmarkSettings, spec: ScorerSpec
    ) -> JudgeScorer:
        """A judge scorer bound to its judge endpoint's client (built once per setup)."""
        judge = judge_spec(spec)
        jep = settings.endpoint(judge.endpoint)
        params = judge.request_params(jep.params)
        if judge.json_mode and jep.type == "openai-chat":
            params.setdefault("response_format", {"type": "json_object"})
        judged = jep.model_copy(update={"params": params})
        key = _client_key(judged) + json.dumps(params, sort_keys=True, default=str)
        hit = self._judge_clients.get(f"{jep.name}/{key}")
        if hit is None:
            try:
                client = self._endpoints(judged)
            except ValueError as exc:
                where = settings.where(("endpoints",))
                raise ConfigError(f"{where}: {jep.name} (judge of {spec.name}): {exc}") from None
            hit = (key, client)
            self._judge_clients[f"{jep.name}/{key}"] = hit
        calibration = None
        if judge.calibration is not None:
            calibration = await asyncio.to_thread(
                self._calibration, bench, spec.name, judge, judge.calibration
            )
        return JudgeScorer(
            spec.name,
            judge,
            hit[1],
            chat=jep.type == "openai-chat",
            limits=bench.template_limits,
            calibration=calibration,
            identity=spec.judge,
        )

    def _calibration(
        self, bench: BenchmarkSettings, scorer: str, judge: JudgeSpec, cal: CalibrationSpec
    ) -> CalibrationSet:
        """Load a calibration set with the benchmark loaders; BenchmarkError names the file
        and item for a missing field or a label off the judge's scale."""
        loaded = self._benchmarks(
            BenchmarkSettings(
                name=f"{bench.name}.{scorer}.calibration",
                data=cal.data,
                format=cal.format,
                reference=cal.label,
                id_field=cal.id_field,
                scorers=[ScorerSpec(kind="exact_match", name="label")],
            )
        )
        items = []
        needs = (cal.input, cal.output, *([cal.reference] if judge.kind == "llm_reference" else []))
        for it in loaded.items:
            label = label_score(it.reference, judge.scale)
            for name in needs:
                if not isinstance(it.fields.get(name), str):
                    raise BenchmarkError(
                        f"{cal.data}: calibration item {it.key!r} of scorer {scorer!r} has "
                        f"no text field {name!r}"
                    )
            if label is None:
                raise BenchmarkError(
                    f"{cal.data}: calibration item {it.key!r} of scorer {scorer!r}: label "
                    f"{it.reference!r} is not on the scale {judge.scale.label()}"
                )
            reference = it.fields.get(cal.reference) if judge.kind == "llm_reference" else ""
            items.append(
                CalibrationItem(
                    it.key, it.fields[cal.input], it.fields[cal.output], label, str(reference)
                )
            )
        return CalibrationSet(cal, loaded.version, tuple(items))

    async def _check_day_budget(self, mon: MonitorSettings) -> None:
        """Raise BudgetExhaustedError when the monitor's runs today used up its day budget."""
        now = self._clock()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        tokens, dollars = await asyncio.to_thread(self._store.usage_since, mon.name, midnight)
        reason = over_day_budget(tokens, dollars, budget_of(mon))
        if reason is not None:
            raise BudgetExhaustedError(
                f"monitor {mon.name!r}: {reason}; scheduled runs resume on the next UTC day"
            )

    async def _client(self, settings: Settings, ep: EndpointSettings) -> EndpointClient:
        key = _client_key(ep)
        hit = self._clients.get(ep.name)
        if hit is not None and hit[0] == key:
            return hit[1]
        # Plans of simultaneous fire times wait here for the first one's client: without
        # the lock each would build its own during the await below, and the endpoint
        # would see `concurrency` requests in flight per monitor, not in all.
        async with self._client_locks.setdefault(ep.name, asyncio.Lock()):
            hit = self._clients.get(ep.name)
            if hit is not None and hit[0] == key:
                return hit[1]
            try:
                client = self._endpoints(ep)
            except ValueError as exc:
                raise ConfigError(f"{settings.where(('endpoints',))}: {ep.name}: {exc}") from None
            await asyncio.to_thread(
                self._store.save_endpoint, ep.name, ep.fingerprint(), self._clock()
            )
            self._clients[ep.name] = (key, client)
            return client

    async def execute(
        self, plan: RunPlan, *, on_progress: Callable[[Progress], None] | None = None
    ) -> RunOutcome:
        """Run a plan, judge it, and record its metrics and alerts."""
        judge = None
        if self._judge is not None:
            self._judge.prepare()
            judge = functools.partial(
                self._judge.judge, monitor=plan.monitor, scorers=(*plan.scorers, *plan.graders)
            )
        outcome = await self._runner.run(plan.request(), judge=judge, on_progress=on_progress)
        if self._metrics is not None:
            self._metrics.observe_run(plan.monitor.name, plan.endpoint.name, outcome.duration_s)
        if self._alerts is not None:  # never raises: delivery problems are logged and retried
            await self._alerts.handle_run(outcome.run, outcome.verdicts, scores=outcome.scores)
            if self._metrics is not None:
                self._metrics.set_alerts_firing(self._alerts.firing_count())
        return outcome

    async def run(
        self,
        monitor: str,
        endpoint: str,
        trigger: str = "manual",
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> RunOutcome:
        """Plan and execute one run of (monitor, endpoint)."""
        return await self.execute(
            await self.plan(monitor, endpoint, trigger), on_progress=on_progress
        )

    async def run_monitor(
        self,
        monitor: str,
        endpoints: Sequence[str] = (),
        trigger: str = "manual",
        *,
        on_progress: Callable[[str, Progress], None] | None = None,
    ) -> list[RunOutcome]:
        """Run `monitor` against its endpoints (or the named ones) concurrently.

        Every plan is resolved before the first request, so a bad endpoint or benchmark
        fails the command before anything runs; once running, one endpoint failing
        spares the rest.
        """
        chosen = select_endpoints(self._settings(), monitor, endpoints)
        plans = [await self.plan(monitor, name, trigger) for name in chosen]

        def progress_of(name: str) -> Callable[[Progress], None] | None:
            if on_progress is None:
                return None
            return lambda p: on_progress(name, p)

        return list(
            await asyncio.gather(
                *(self.execute(p, on_progress=progress_of(p.endpoint.name)) for p in plans)
            )
        )

    def endpoint_concurrency(self) -> dict[str, tuple[int, int]]:
        """Endpoint -> (limit on requests in flight, requests in flight) of the clients this
        service keeps, model and judge ones, summed over an endpoint's clients; for
        `monitor_endpoint_concurrency_limit` and `monitor_endpoint_in_flight`."""
        out: dict[str, tuple[int, int]] = {}
        for _, client in (*self._clients.values(), *self._judge_clients.values()):
            if isinstance(client, ReportsConcurrency):
                limit, in_flight = client.concurrency()
                was = out.get(client.name, (0, 0))
                out[client.name] = (was[0] + limit, was[1] + in_flight)
        return out

    async def record_pending(self) -> int:
        """Write run states the store refused earlier; returns how many remain."""
        return await self._runner.record_pending()

    async def rescore(self, run_ids: Sequence[int], spec: ScorerSpec) -> list[Rescore]:
        """Apply `spec` (a judge included) to the outputs the runs stored, and store the
        scores beside theirs. No model request is sent; a judge's go through its
        endpoint's shared client, within its limits. ConfigError names a missing run or
        a run whose benchmark is no longer configured (its prompt is needed)."""
        if self._outputs is None:
            raise ConfigError("re-scoring needs the store of the runs' outputs")
        settings, store = self._settings(), self._outputs
        runs = await asyncio.to_thread(store.get_runs, list(run_ids))
        missing = [rid for rid in run_ids if rid not in runs]
        if missing:
            raise MissingRunError(f"no run {', '.join(map(str, missing))} in the store")
        repeated = [rid for rid in run_ids if runs[rid].repeats > 1]
        if repeated:  # only a prefix of each sample's answer is stored
            raise ConfigError(
                f"run {', '.join(map(str, repeated))}: sampled each item several times "
                "(repeats); re-scoring needs whole answers, stored for single-sample runs only"
            )
        out = []
        for rid in run_ids:
            run = runs[rid]
            bench_settings = next((b for b in settings.benchmarks if b.name == run.benchmark), None)
            if bench_settings is None:
                raise ConfigError(
                    f"run {rid}: benchmark {run.benchmark!r} is not in the configuration; "
                    "re-scoring renders its prompt again from it"
                )
            rescore = await self._rescore_run(store, settings, bench_settings, run, spec)
            new_id = await asyncio.to_thread(store.save_rescore, rescore, self._clock())
            out.append(replace(rescore, id=new_id))
        return out

    async def _rescore_run(
        self,
        store: RescoreStore,
        settings: Settings,
        bench_settings: BenchmarkSettings,
        run: Run,
        spec: ScorerSpec,
    ) -> Rescore:
        results = await asyncio.to_thread(store.item_results, run.id)
        stored = await asyncio.to_thread(store.items_by_key, run.benchmark, run.benchmark_version)
        # the prompt is not stored: it is rendered again from the configured benchmark
        loaded = await asyncio.to_thread(self._benchmarks, bench_settings)
        prompts = {it.key: it for it in loaded.items}
        answered = [r for r in results if r.output is not None]
        scores: dict[str, float] = {}
        judgments: dict[str, dict[str, Any]] = {}
        errors = 0

        def item_of(key: str) -> Item:
            base = stored.get(key) or Item(key=key, fields={})
            shown = prompts.get(key)
            return replace(
                base,
                prompt=shown.prompt if shown is not None else None,
                messages=shown.messages if shown is not None else (),
            )

        if spec.kind in JUDGE_KINDS:
            plain = replace(
                spec, params={k: v for k, v in spec.params.items() if k != "calibration"}
            )
            grader = await self._grader(settings, bench_settings, plain)
            graded = await asyncio.gather(
                *(grader.grade(item_of(r.item_key), r.output or "") for r in answered)
            )
            binary = grader.binary
            for r, g in zip(answered, graded, strict=True):
                if g.score is None:
                    errors += 1
                    judgments[r.item_key] = {"error": g.error}
                else:
                    scores[r.item_key] = g.score
                    judgments[r.item_key] = {"reason": g.reason, "votes": list(g.votes)}
        else:
            scorer = build_scorer(spec)
            binary = scorer.binary
            for r in answered:
                try:
                    scores[r.item_key] = scorer(r.output or "", item_of(r.item_key).reference)
                except Exception as exc:  # noqa: BLE001 - a custom scorer's bug is one item's
                    errors += 1
                    judgments[r.item_key] = {"error": f"{type(exc).__name__}: {exc}"}
        summary = (
            summarize_scores(spec.name, list(scores.values()), binary=binary) if scores else None
        )
        return Rescore(
            run_id=run.id,
            scorer=spec.name,
            scorer_id=_scorer_id(spec),
            summary=summary,
            scores=scores,
            judgments=judgments,
            errors=errors,
            skipped=len(results) - len(answered),
        )


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a run of a monitor on one endpoint would use and cost (`monitor run --dry-run`)."""

    monitor: str
    endpoint: str
    items: int
    usage: RunUsage
    source: str  # what the token counts were estimated from


def estimate_runs(
    settings: Settings,
    history: RunHistory,
    benchmarks: BenchmarkSource,
    monitor: str,
    endpoints: Sequence[str] = (),
    *,
    pricer: Pricer | None = None,
    now: datetime | None = None,
) -> list[Estimate]:
    """Estimate each endpoint's next run without calling it: from the newest succeeded run
    of the same benchmark version that reported tokens, scaled to the benchmark's size, or
    else from the prompts' length (and `params.max_tokens` per answer)."""
    mon = settings.monitor(monitor)
    bench = benchmarks(settings.benchmark(mon.benchmark))
    when = now or utc_now()
    out: list[Estimate] = []
    for name in select_endpoints(settings, monitor, endpoints):
        ep = settings.endpoint(name)
        past = history.list_runs(
            monitor=monitor, endpoint=name, status=RunStatus.SUCCEEDED, limit=50
        )
        last = next(
            (
                r
                for r in past
                if r.benchmark_version == bench.version and r.usage and r.usage.tokens.answers
            ),
            None,
        )
        if last is not None and last.usage is not None:
            tokens = scaled(last.usage.tokens, len(bench.items))
            source = f"run {last.id} of this benchmark version"
        else:
            cap = ep.params.get("max_tokens")
            cap = cap if isinstance(cap, int) and not isinstance(cap, bool) else None
            tokens = from_prompts(bench.items, cap)
            source = "the prompts' length (4 characters a token)" + (
                f", and max_tokens {cap} per answer" if cap else "; answers not counted"
            )
        usage = run_usage(
            tokens,
            pricing_plan(ep),
            served_model=last.model_id if last is not None else None,
            when=when,
            table=table_lookup(pricer),
        )
        out.append(Estimate(monitor, name, len(bench.items), usage, source))
    return out
