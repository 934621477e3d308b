"""The composition root: the one place that builds adapters and wires them together.

`cli_service` gives `monitor run` a `RunService` over the configured store and one
HTTP client; `build_daemon` gives `monitor serve` (and `monitor demo`) a `Daemon` with
every collaborator. Tests build the same objects with doubles through the keyword
arguments (a clock, an endpoint factory, a notifier), never by patching. Nothing else
in the package constructs a store, an HTTP client, a scheduler or a leader lock
(docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.benchmarks import load_benchmark
from monitor.benchmarks.cache import BenchmarkCache
from monitor.clock import utc_now
from monitor.config import Settings, check_body_templates, check_slice_floors, load_settings
from monitor.core.model import Benchmark
from monitor.endpoints import HttpClient, build_endpoint, check_endpoints
from monitor.judge import StoreJudge
from monitor.log import redactor
from monitor.ports import AlertSink, Clock, EndpointFactory, LeaderLock, Pricer, RunMetrics
from monitor.pricing import TablePricer
from monitor.runner import Runner
from monitor.service import Estimate, RunService, estimate_runs

if TYPE_CHECKING:  # the service's modules (FastAPI, APScheduler, ...) load in build_daemon
    from monitor.daemon import Daemon
    from monitor.leadership import Leadership
    from monitor.notify import Notifier
    from monitor.storage import SqlStore

# Commands must start fast (docs/performance.md, "Start-up"): the daemon's adapters are
# imported only by `build_daemon`, `check_schedules` (APScheduler) only by the config
# check, and the store (SQLAlchemy, ~0.35 s) only by commands that open it.

__all__ = [
    "build_daemon",
    "build_service",
    "check_config",
    "cli_service",
    "load_checked_settings",
    "open_settings_store",
    "run_daemon",
    "validate",
]


def check_config(settings: Settings) -> list[Benchmark]:
    """Everything `check-config` and a reload verify before a config is accepted:
    schedules, endpoint settings only the adapter can judge, and every benchmark's data."""
    from monitor.scheduling import check_schedules  # noqa: PLC0415 - see the note above

    check_schedules(settings)
    check_endpoints(settings)
    benches = [load_benchmark(b) for b in settings.benchmarks]
    check_body_templates(settings, benches)  # http-json bodies over the first items, capped
    check_slice_floors(settings, benches)
    return benches


def validate(settings: Settings) -> None:
    """`check_config` without its result (the daemon's reload check)."""
    check_config(settings)


def load_checked_settings(path: str | Path) -> Settings:
    """Load a config, teach the log redactor its secrets, and check it whole."""
    settings = load_settings(path)
    redactor.update(settings.secrets)
    validate(settings)
    return settings


def open_settings_store(settings: Settings) -> SqlStore:
    """Open (and migrate) the configured database."""
    from monitor.storage import open_store  # noqa: PLC0415 - check-config needs no SQL

    return open_store(settings.storage.url)


def build_service(
    settings: Callable[[], Settings],
    store: SqlStore,
    http: HttpClient,
    *,
    endpoints: EndpointFactory | None = None,
    metrics: RunMetrics | None = None,
    alerts: AlertSink | None = None,
    clock: Clock = utc_now,
    pricer: Pricer | None = None,
) -> RunService:
    """The run use case over `store`, with endpoints sharing `http`'s connection pool;
    runs are priced from the genai-prices table unless another `pricer` is given."""
    runner = Runner(
        store,
        observe=None if metrics is None else metrics.observe_response,
        clock=clock,
        pricer=pricer or TablePricer(),
    )
    return RunService(
        store,
        settings=settings,
        endpoints=endpoints or functools.partial(build_endpoint, http=http),
        benchmarks=BenchmarkCache(),
        runner=runner,
        judge=StoreJudge(store, clock=clock),
        metrics=metrics,
        alerts=alerts,
        outputs=store,
        clock=clock,
    )


def estimate(
    settings: Settings, store: SqlStore, monitor: str, endpoints: Sequence[str] = ()
) -> list[Estimate]:
    """`monitor run --dry-run`: each endpoint's next run estimated, no endpoint called."""
    return estimate_runs(
        settings, store, BenchmarkCache(), monitor, endpoints, pricer=TablePricer()
    )


@contextlib.asynccontextmanager
async def cli_service(settings: Settings, store: SqlStore) -> AsyncIterator[RunService]:
    """A `RunService` for one command: its HTTP client closes when the block ends."""
    async with HttpClient() as http:
        yield build_service(lambda: settings, store, http)


def build_daemon(
    config_path: str | Path,
    settings: Settings,
    *,
    clock: Clock = utc_now,
    endpoints: EndpointFactory | None = None,
    notifier: Notifier | None = None,
    load: Callable[[Path], Settings] = load_settings,
    leader_lock: LeaderLock | None = None,
    leader_timing: tuple[float, float] = (2.0, 1.0),
    on_lost_leadership: Callable[[], None] | None = None,
) -> tuple[Daemon, Callable[[], None]]:
    """The service with every collaborator, and the function that releases what it
    opened (the store, the job store's engine, the SQLite lock file).

    On SQLite the lock file makes this process the only one, so it leads; on
    PostgreSQL it campaigns for the advisory lock (`monitor.leadership`), or for
    `leader_lock` when one is given, with `leader_timing` = (grace, check interval).
    Losing the lock pauses the daemon (`Daemon.on_leadership_lost`), or exits the
    process with `server.on_leadership_lost: exit`; `on_lost_leadership` replaces both.
    The PostgreSQL lock's fencing token is handed to the store at every acquisition,
    so runs started under one leadership cannot finish under the next.
    """
    # the service's adapters load only here (see the note above)
    from prometheus_client import disable_created_metrics  # noqa: PLC0415

    from monitor.daemon import Daemon  # noqa: PLC0415
    from monitor.housekeeping import RecordAndPrune  # noqa: PLC0415
    from monitor.metrics import Metrics  # noqa: PLC0415
    from monitor.notify import AlertService, Notifier  # noqa: PLC0415
    from monitor.scheduling import Scheduler  # noqa: PLC0415
    from monitor.storage import open_store  # noqa: PLC0415
    from monitor.storage.alerts import SqlAlertStore  # noqa: PLC0415
    from monitor.storage.engine import create_engine  # noqa: PLC0415
    from monitor.storage.lockfile import SqliteLock  # noqa: PLC0415

    disable_created_metrics()  # type: ignore[no-untyped-call]
    url = settings.storage.url
    sqlite_lock = SqliteLock(url)
    sqlite_lock.acquire()
    closers: list[Callable[[], None]] = [sqlite_lock.release]

    def close() -> None:
        for closer in reversed(closers):
            closer()

    try:
        store = open_store(url)
        closers.append(store.close)
        jobs_engine = create_engine(url)
        closers.append(jobs_engine.dispose)
    except BaseException:
        close()
        raise
    metrics = Metrics()
    http = HttpClient()
    notifier = notifier or Notifier()
    holder: list[Daemon] = []

    def current() -> Settings:
        return holder[0].settings if holder else settings

    alert_store = SqlAlertStore(jobs_engine)
    alerts = AlertService(alert_store, notifier, current, clock=clock)
    service = build_service(
        current, store, http, endpoints=endpoints, metrics=metrics, alerts=alerts, clock=clock
    )
    metrics.watch_concurrency(service.endpoint_concurrency)
    leadership = None
    if leader_lock is not None or not url.startswith("sqlite"):
        leadership = _leadership(
            holder, store, settings, leader_lock, leader_timing, on_lost_leadership
        )
    daemon = Daemon(
        config_path=Path(config_path),
        settings=settings,
        store=store,
        service=service,
        metrics=metrics,
        load_settings=load,
        validate=validate,
        scheduler=Scheduler(jobs_engine),
        leadership=leadership,
        alerts=alerts,
        alert_store=alert_store,
        housekeeping=RecordAndPrune(service.record_pending, store, current, clock=clock),
        resources=(http, notifier),
        clock=clock,
    )
    holder.append(daemon)
    return daemon, close


def _leadership(  # noqa: PLR0917 - private step of build_daemon
    holder: list[Daemon],
    store: SqlStore,
    settings: Settings,
    leader_lock: LeaderLock | None,
    timing: tuple[float, float],
    on_lost_leadership: Callable[[], None] | None,
) -> Leadership:
    """The campaign loop wired to the daemon in `holder` and to the store's fence."""
    from monitor.leadership import Leadership, exit_process  # noqa: PLC0415
    from monitor.storage.leader import PostgresLeaderLock  # noqa: PLC0415

    grace, check_every = timing
    pg_lock: PostgresLeaderLock | None = None
    lock: LeaderLock
    if leader_lock is None:
        lock = pg_lock = PostgresLeaderLock(settings.storage.url)
    else:
        lock = leader_lock

    async def acquired() -> None:
        store.fence_with(None if pg_lock is None else pg_lock.fence())
        await holder[0].on_leadership_acquired()

    async def lost() -> None:
        store.fence_with(None)
        await holder[0].on_leadership_lost()

    def check() -> None:
        holder[0].on_leadership_check()

    stay = settings.server.on_leadership_lost == "stay"
    return Leadership(
        lock,
        on_acquired=acquired,
        on_lost=on_lost_leadership or (lost if stay else exit_process),
        on_check=check,
        grace=grace,
        check_every=check_every,
    )


def run_daemon(config_path: str) -> int:
    """Load, validate and serve; the `monitor serve` command."""
    settings = load_checked_settings(config_path)

    async def serve() -> int:
        daemon, close = build_daemon(config_path, settings)
        # A long-lived process: load the statistics stack now rather than at the first
        # judged run, then move every start-up object out of the garbage collector's
        # sight. Full collections then scan only what the service allocates later; they
        # were the tail of the uncached /ui/ overview (docs/ui.md, "Speed").
        import monitor.core.policy  # noqa: F401, PLC0415 - loaded for its side effect

        gc.freeze()
        try:
            return await daemon.serve()
        finally:
            close()

    return asyncio.run(serve())
