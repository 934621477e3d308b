"""Composition root: builds the adapters from settings and wires them to the runner.

Nothing else in the package constructs a store, an HTTP client or an endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from monitor.benchmarks import load_benchmark
from monitor.config import MonitorSettings, Settings
from monitor.core.model import Benchmark
from monitor.endpoints import HttpClient, build_endpoint
from monitor.errors import ConfigError
from monitor.judge import StoreJudge
from monitor.runner import Progress, Runner, RunOutcome, RunRequest, utc_now
from monitor.storage import SqlStore, open_store


@dataclass(frozen=True, slots=True)
class Prepared:
    """A monitor ready to run: its loaded benchmark and the endpoints chosen."""

    monitor: MonitorSettings
    benchmark: Benchmark
    endpoints: tuple[str, ...]


def prepare(settings: Settings, monitor: str, endpoints: Sequence[str] = ()) -> Prepared:
    """Load a monitor's benchmark and resolve its endpoints; raises Config/BenchmarkError."""
    mon = settings.monitor(monitor)
    chosen = tuple(endpoints) or tuple(mon.endpoints)
    unknown = [e for e in chosen if e not in mon.endpoints]
    if unknown:
        raise ConfigError(
            f"{settings.source}: monitor {monitor!r} has no endpoint {unknown[0]!r} "
            f"(its endpoints: {', '.join(mon.endpoints)})"
        )
    bench = load_benchmark(settings.benchmark(mon.benchmark))
    return Prepared(mon, bench, chosen)


def check_benchmarks(settings: Settings) -> list[Benchmark]:
    """Load every benchmark once, so `check-config` finds bad data before the daemon does."""
    return [load_benchmark(b) for b in settings.benchmarks]


async def run_prepared(
    settings: Settings,
    prepared: Prepared,
    store: SqlStore,
    *,
    trigger: str = "manual",
    on_progress: Callable[[str, Progress], None] | None = None,
) -> list[RunOutcome]:
    """Run one monitor against its endpoints concurrently; one endpoint failing spares the rest."""
    runner = Runner(store, judge=StoreJudge(store, lambda: settings))
    async with HttpClient() as http:
        requests = []
        for name in prepared.endpoints:
            ep = settings.endpoint(name)
            await asyncio.to_thread(store.save_endpoint, name, ep.fingerprint(), utc_now())
            requests.append(
                RunRequest(
                    monitor=prepared.monitor.name,
                    benchmark=prepared.benchmark,
                    endpoint=build_endpoint(ep, http),
                    concurrency=ep.concurrency,
                    degraded_threshold=prepared.monitor.degraded_threshold,
                    trigger=trigger,
                )
            )

        def callback(name: str) -> Callable[[Progress], None] | None:
            if on_progress is None:
                return None
            return lambda p: on_progress(name, p)

        return list(
            await asyncio.gather(
                *(runner.run(r, on_progress=callback(r.endpoint.name)) for r in requests)
            )
        )


def open_settings_store(settings: Settings) -> SqlStore:
    """Open (and migrate) the configured database."""
    return open_store(settings.storage.url)
