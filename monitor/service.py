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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from monitor.clock import utc_now
from monitor.config import EndpointSettings, MonitorSettings, Settings
from monitor.core.model import Benchmark
from monitor.core.scoring import Scorer, build_scorer
from monitor.errors import ConfigError
from monitor.log import mask_url_credentials
from monitor.ports import (
    AlertSink,
    BenchmarkSource,
    Clock,
    EndpointClient,
    EndpointFactory,
    Judge,
    RunMetrics,
    RunStore,
)
from monitor.runner import Progress, Runner, RunOutcome, RunRequest

__all__ = ["RunPlan", "RunService", "select_endpoints"]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything one run uses, resolved once before it starts."""

    monitor: MonitorSettings
    endpoint: EndpointSettings
    benchmark: Benchmark
    scorers: tuple[Scorer, ...]
    client: EndpointClient
    trigger: str

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
        )


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
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._settings = settings
        self._endpoints = endpoints
        self._benchmarks = benchmarks
        self._runner = runner
        self._judge = judge
        self._metrics = metrics
        self._alerts = alerts
        self._clock = clock
        self._clients: dict[str, tuple[str, EndpointClient]] = {}

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
        bench = await asyncio.to_thread(self._benchmarks, settings.benchmark(mon.benchmark))
        scorers = tuple(build_scorer(s) for s in bench.scorers)
        client = await self._client(settings, ep)
        return RunPlan(mon, ep, bench, scorers, client, trigger)

    async def _client(self, settings: Settings, ep: EndpointSettings) -> EndpointClient:
        key = _client_key(ep)
        hit = self._clients.get(ep.name)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            client = self._endpoints(ep)
        except ValueError as exc:
            raise ConfigError(f"{settings.where(('endpoints',))}: {ep.name}: {exc}") from None
        await asyncio.to_thread(self._store.save_endpoint, ep.name, ep.fingerprint(), self._clock())
        self._clients[ep.name] = (key, client)
        return client

    async def execute(
        self, plan: RunPlan, *, on_progress: Callable[[Progress], None] | None = None
    ) -> RunOutcome:
        """Run a plan, judge it, and record its metrics and alerts."""
        judge = None
        if self._judge is not None:
            judge = functools.partial(self._judge.judge, monitor=plan.monitor, scorers=plan.scorers)
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

    async def record_pending(self) -> int:
        """Write run states the store refused earlier; returns how many remain."""
        return await self._runner.record_pending()
