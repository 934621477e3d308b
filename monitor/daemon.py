"""`monitor serve`: the long-lived service.

It owns the life cycle: lock the SQLite file, mark runs orphaned by a crash as aborted,
start the scheduler and the HTTP server on one asyncio loop, reload on SIGHUP, and on
SIGTERM stop firing, let in-flight runs finish within the grace period, abort the rest,
and exit 0.

Execution sits behind `submit(RunSpec)`: it never runs two runs of one (monitor,
endpoint) at once; a run requested while one is in flight is coalesced into a single
follow-up run that starts when the first ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

import uvicorn
from prometheus_client import disable_created_metrics

from monitor.api import create_api
from monitor.app import check_benchmarks
from monitor.benchmarks import load_benchmark
from monitor.config import BenchmarkSettings, Settings, load_settings, mask_secrets
from monitor.core.alerts import Alert
from monitor.core.model import Benchmark
from monitor.endpoints import HttpClient, build_endpoint, check_endpoints
from monitor.errors import ConfigError, MonitorError
from monitor.judge import StoreJudge
from monitor.log import get_logger, redactor
from monitor.metrics import Metrics, MonitorTarget, build_snapshot
from monitor.notify import AlertService, Notifier
from monitor.runner import EndpointClient, Runner, RunRequest, utc_now
from monitor.scheduling import RunSpec, Scheduler, check_schedules, schedule_interval
from monitor.storage import SqlStore, open_store
from monitor.storage.alerts import SqlAlertStore
from monitor.storage.engine import create_engine
from monitor.storage.leader import PostgresLeaderLock

log = get_logger("daemon")
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
EXIT_LOST_LEADERSHIP = 75  # EX_TEMPFAIL: the supervisor restarts us as a follower


def validate(settings: Settings) -> None:
    """Everything `check-config` and a reload verify before a config is accepted."""
    check_schedules(settings)
    check_endpoints(settings)
    check_benchmarks(settings)


def remember_secrets(settings: Settings) -> None:
    """Teach the log redactor this config's secrets (env values and the API token)."""
    redactor.update(settings.secrets)


@dataclass
class _Pair:
    """Execution state of one (monitor, endpoint)."""

    task: asyncio.Task[None] | None = None
    queued: str | None = None  # trigger of a coalesced follow-up run


@dataclass
class _Benchmarks:
    """Loaded benchmarks, re-read when their settings or data file change."""

    cache: dict[str, tuple[tuple[Any, ...], Benchmark]] = field(default_factory=dict)

    def get(self, settings: BenchmarkSettings) -> Benchmark:
        path = Path(settings.data)
        try:
            stat = path.stat()
            stamp: tuple[Any, ...] = (settings, stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (settings, None, None)  # let the loader raise its own clear error
        hit = self.cache.get(settings.name)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        bench = load_benchmark(settings)
        self.cache[settings.name] = (stamp, bench)
        return bench


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Daemon:
    """The service: scheduler + executor + API + metrics over one store."""

    def __init__(self, config_path: str | Path, settings: Settings) -> None:
        self.config_path = Path(config_path)
        self.settings = settings
        self.metrics = Metrics()
        self.store: SqlStore | None = None
        self.started = False
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._clients: dict[str, tuple[str, EndpointClient]] = {}
        self._benchmarks = _Benchmarks()
        self._http: HttpClient | None = None
        self._runner: Runner | None = None
        self._scheduler: Scheduler | None = None
        self._stopping = asyncio.Event()
        self._accepting = True
        self._lock_file: TextIO | None = None
        self._target_list: list[MonitorTarget] = []
        self._metrics_dirty = False
        self.alerts: AlertService | None = None
        self.leader = False
        self._alert_store: SqlAlertStore | None = None
        self._metrics_refreshing = False

    # ------------------------------------------------------------------ life cycle

    async def serve(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""
        self._lock_sqlite()
        disable_created_metrics()  # type: ignore[no-untyped-call]
        try:
            return await self._serve()
        finally:
            self._unlock_sqlite()

    async def _serve(self) -> int:
        async with contextlib.AsyncExitStack() as stack:
            self.store = store = await asyncio.to_thread(open_store, self.settings.storage.url)
            stack.callback(store.close)
            shared = not self.settings.storage.url.startswith("sqlite")
            if not shared:  # the lock file made this process the only one: it leads
                await self._abort_orphans()
            self._http = await stack.enter_async_context(HttpClient())
            self._runner = Runner(
                store,
                judge=StoreJudge(store, lambda: self.settings),
                observe=self.metrics.observe_response,
            )
            self._refresh_targets()
            await self.refresh_metrics()
            jobs_engine = create_engine(self.settings.storage.url)
            stack.callback(jobs_engine.dispose)
            notifier = await stack.enter_async_context(Notifier())
            self._alert_store = SqlAlertStore(jobs_engine)
            self.alerts = AlertService(self._alert_store, notifier, lambda: self.settings)
            self.metrics.alerts_firing.set(await self.alerts.refresh())
            self._scheduler = Scheduler(jobs_engine, self.submit)
            self._scheduler.start(self.settings, paused=shared)
            stack.callback(self._scheduler.shutdown)
            if shared:
                lock = PostgresLeaderLock(self.settings.storage.url)
                stack.callback(lock.release)
                leading = asyncio.create_task(self._lead(lock))
                stack.callback(leading.cancel)
            else:
                self.leader = True
                self.metrics.leader.set(1)
            janitor = asyncio.create_task(self._record_pending_forever())
            stack.callback(janitor.cancel)
            await self._serve_http(stack)
        log.info("daemon_stopped")
        return 0

    async def _serve_http(self, stack: contextlib.AsyncExitStack) -> None:
        """Serve the API until a stop is requested, then drain the in-flight runs."""
        server = _Server(
            uvicorn.Config(
                create_api(self),
                host=self.settings.server.host,
                port=self.settings.server.port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        server_task = asyncio.create_task(server.serve())

        async def stop_server() -> None:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await server_task

        stack.push_async_callback(stop_server)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        stack.callback(lambda: [loop.remove_signal_handler(s) for s in _SIGNALS])
        self.started = True
        stack.callback(setattr, self, "started", False)
        log.info(
            "daemon_started",
            listen=self.settings.server.listen,
            config=str(self.config_path),
            monitors=len(self.settings.monitors),
            pid=os.getpid(),
        )
        stop = asyncio.create_task(self._stopping.wait())
        done, _ = await asyncio.wait({stop, server_task}, return_when=asyncio.FIRST_COMPLETED)
        if server_task in done and not stop.done():
            stop.cancel()
            server_task.result()  # re-raises a failure to bind
            raise MonitorError(f"cannot serve on {self.settings.server.listen}")
        await self._drain()

    async def _abort_orphans(self) -> None:
        """Runs left `running` by a dead process (this one before a crash, or a dead
        leader) are marked aborted; runs executing here are kept."""
        assert self.store is not None  # noqa: S101 - opened before leadership
        keep = sorted(self._runner.active) if self._runner is not None else []
        orphans = await asyncio.to_thread(self.store.abort_running, utc_now(), keep=keep)
        if orphans:
            log.warning("orphaned_runs_aborted", count=orphans)

    async def _lead(
        self,
        lock: PostgresLeaderLock,
        *,
        grace: float = 2.0,
        check_every: float = 1.0,
        wake_every: int = 5,
    ) -> None:
        """Replicas on PostgreSQL: only the holder of the advisory lock runs scheduled jobs.

        The holder re-checks its lock every second and exits at once if it lost it
        (another replica may already be running the same fire times). A new leader
        waits `grace` seconds first, so an old leader that lost its session has stopped,
        and it wakes the scheduler every few seconds to see schedules edited elsewhere.
        """
        ticks = 0
        while True:
            if not self.leader:
                if await asyncio.to_thread(lock.try_acquire):
                    log.info("leadership_acquired", grace_s=grace)
                    await asyncio.sleep(grace)
                    if await asyncio.to_thread(lock.still_held):
                        await self._abort_orphans()
                        self.leader = True
                        self.metrics.leader.set(1)
                        if self._scheduler is not None:
                            self._scheduler.resume()
            elif not await asyncio.to_thread(lock.still_held):
                log.critical("leadership_lost", action="exiting so no job runs twice")
                os._exit(EXIT_LOST_LEADERSHIP)
            else:
                ticks += 1
                if ticks % wake_every == 0 and self._scheduler is not None:
                    self._scheduler.wakeup()
            await asyncio.sleep(check_every)

    async def _record_pending_forever(self, every: float = 10.0) -> None:
        """Housekeeping: write run states the database refused while it was away, once it
        is back; hourly, prune item results past `storage.retention_days`."""
        next_prune = 0.0
        while True:
            await asyncio.sleep(every)
            if self._runner is not None:
                await self._runner.record_pending()
            days = self.settings.storage.retention_days
            if days and self.store is not None and time.monotonic() >= next_prune:
                next_prune = time.monotonic() + 3600
                try:
                    cutoff = utc_now() - timedelta(days=days)
                    deleted = await asyncio.to_thread(self.store.prune_item_results, cutoff)
                    log.info("item_results_pruned", rows=deleted, before=cutoff.isoformat())
                except MonitorError:
                    log.exception("prune_failed")

    def stop(self) -> None:
        """Begin a graceful shutdown (signal handler)."""
        if not self._stopping.is_set():
            log.info("shutdown_requested", grace_s=self.settings.server.shutdown_grace)
            self._stopping.set()

    async def _drain(self) -> None:
        self._accepting = False
        if self._scheduler is not None:
            self._scheduler.pause()
        tasks = [p.task for p in self._pairs.values() if p.task is not None and not p.task.done()]
        for p in self._pairs.values():
            p.queued = None
        if not tasks:
            return
        log.info("waiting_for_runs", runs=len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=self.settings.server.shutdown_grace)
        for task in pending:
            task.cancel()  # the runner records the run as aborted
        if pending:
            await asyncio.wait(pending, timeout=10)
            log.warning("runs_aborted_at_shutdown", runs=len(pending))

    def _lock_sqlite(self) -> None:
        url = self.settings.storage.url
        if not url.startswith("sqlite:///") or url.endswith(":memory:"):
            return
        path = Path(url.removeprefix("sqlite:///") + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ConfigError(
                f"{url}: another `monitor serve` is using this SQLite database "
                f"(lock {path}); use PostgreSQL to run several replicas"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _unlock_sqlite(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # ------------------------------------------------------------------ execution

    async def submit(self, spec: RunSpec) -> str:
        """Start a run now, or queue one follow-up if this pair is busy. Returns which."""
        if not self._accepting:
            return "rejected"
        key = (spec.monitor, spec.endpoint)
        pair = self._pairs.setdefault(key, _Pair())
        if pair.task is not None and not pair.task.done():
            pair.queued = spec.trigger
            log.info("run_coalesced", monitor=spec.monitor, endpoint=spec.endpoint)
            return "queued"
        pair.task = asyncio.create_task(self._execute(spec, pair))
        return "started"

    async def _execute(self, spec: RunSpec, pair: _Pair) -> None:
        self.metrics.in_progress.labels(spec.monitor, spec.endpoint).set(1)
        try:
            await self._run(spec)
        except Exception:
            log.exception("run_crashed", monitor=spec.monitor, endpoint=spec.endpoint)
        finally:
            self.metrics.in_progress.labels(spec.monitor, spec.endpoint).set(0)
            with contextlib.suppress(Exception):
                await self.refresh_metrics()
        if pair.queued is not None and self._accepting:
            trigger, pair.queued = pair.queued, None
            follow_up = RunSpec(spec.monitor, spec.endpoint, trigger)
            pair.task = asyncio.create_task(self._execute(follow_up, pair))

    async def _run(self, spec: RunSpec) -> None:
        settings = self.settings
        try:
            mon = settings.monitor(spec.monitor)
        except ConfigError:
            log.warning("run_skipped_unknown_monitor", monitor=spec.monitor)
            return
        if spec.endpoint not in mon.endpoints:
            log.warning("run_skipped_unknown_endpoint", monitor=mon.name, endpoint=spec.endpoint)
            return
        try:
            bench = await asyncio.to_thread(self._benchmarks.get, settings.benchmark(mon.benchmark))
            client = await self._client(settings, spec.endpoint)
        except MonitorError as exc:
            log.exception(
                "run_not_started", monitor=mon.name, endpoint=spec.endpoint, error=str(exc)
            )
            return
        assert self._runner is not None  # noqa: S101 - set in _serve before any submit
        outcome = await self._runner.run(
            RunRequest(
                monitor=mon.name,
                benchmark=bench,
                endpoint=client,
                concurrency=settings.endpoint(spec.endpoint).concurrency,
                degraded_threshold=mon.degraded_threshold,
                trigger=spec.trigger,
            )
        )
        self.metrics.observe_run(mon.name, spec.endpoint, outcome.duration_s)
        if self.alerts is not None:  # never raises: delivery problems are logged and retried
            await self.alerts.handle_run(outcome.run, outcome.verdicts, scores=outcome.scores)
            self.metrics.alerts_firing.set(self.alerts.firing_count())

    async def _client(self, settings: Settings, name: str) -> EndpointClient:
        ep = settings.endpoint(name)
        fingerprint = ep.fingerprint() + str(hash(tuple(sorted(ep.headers.items()))))
        hit = self._clients.get(name)
        if hit is not None and hit[0] == fingerprint:
            return hit[1]
        assert self._http is not None  # noqa: S101 - set in _serve before any submit
        assert self.store is not None  # noqa: S101
        try:
            client = build_endpoint(ep, self._http)
        except ValueError as exc:
            raise ConfigError(f"{settings.where(('endpoints',))}: {name}: {exc}") from None
        await asyncio.to_thread(self.store.save_endpoint, name, ep.fingerprint(), utc_now())
        self._clients[name] = (fingerprint, client)
        return client

    async def firing_alerts(self) -> list[Alert]:
        if self._alert_store is None:
            return []
        return await asyncio.to_thread(self._alert_store.firing)

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def running_pairs(self) -> set[tuple[str, str]]:
        return {k for k, p in self._pairs.items() if p.task is not None and not p.task.done()}

    def next_fire_times(self) -> dict[tuple[str, str], Any]:
        return {} if self._scheduler is None else self._scheduler.next_fire_times()

    def ready(self) -> bool:
        return bool(
            self.started
            and self._scheduler is not None
            and self._scheduler.running
            and self.store is not None
            and self.store.ping()
        )

    # ------------------------------------------------------------------ config

    async def reload(self) -> tuple[bool, str]:
        """Re-read the config file; on any error keep the running config."""
        new: Settings | None = None
        try:
            new = await asyncio.to_thread(load_settings, self.config_path)
            await asyncio.to_thread(validate, new)
        except MonitorError as exc:
            self.metrics.reload_ok.set(0)
            secrets = self.settings.secrets | (new.secrets if new is not None else frozenset())
            message = mask_secrets(str(exc), secrets)
            log.warning("config_reload_failed", error=message)
            return False, message
        ignored = [
            section
            for section, old_v, new_v in (
                ("storage", self.settings.storage, new.storage),
                ("server.listen", self.settings.server.listen, new.server.listen),
            )
            if old_v != new_v
        ]
        self.settings = new
        remember_secrets(new)
        changes = self._scheduler.sync(new) if self._scheduler is not None else {}
        self._refresh_targets()
        await self.refresh_metrics()
        self.metrics.reload_ok.set(1)
        log.info("config_reloaded", schedule_changes=changes, needs_restart=ignored or None)
        return True, "reloaded"

    def _targets(self) -> list[MonitorTarget]:
        now = utc_now()
        out: list[MonitorTarget] = []
        for mon in self.settings.monitors:
            scorers = tuple(s.name for s in self.settings.benchmark(mon.benchmark).scorers)
            interval = schedule_interval(mon.schedule, now) if mon.schedule else None
            out.extend(
                MonitorTarget(mon.name, mon.benchmark, ep, interval, mon.score_floor, scorers)
                for ep in mon.endpoints
            )
        return out

    def _refresh_targets(self) -> None:
        self._target_list = self._targets()
        self.metrics.initialize_targets(self._target_list)

    async def refresh_metrics(self) -> None:
        """Rebuild the metrics snapshot from the store, off the event loop.

        Calls that arrive while a rebuild runs are coalesced into one more rebuild:
        at 5,000 series a rebuild costs a few hundred ms, and runs may finish in bursts.
        """
        self._metrics_dirty = True
        if self._metrics_refreshing or self.store is None:
            return
        self._metrics_refreshing = True
        try:
            while self._metrics_dirty:
                self._metrics_dirty = False
                await asyncio.to_thread(self._rebuild_metrics, self.store, self._target_list)
        finally:
            self._metrics_refreshing = False

    def _rebuild_metrics(self, store: SqlStore, targets: list[MonitorTarget]) -> None:
        latest = store.latest_runs()
        ids = [r.id for r in latest]
        self.metrics.update(
            build_snapshot(
                latest_runs=latest,
                scores=store.run_scores(ids),
                verdicts=store.run_verdicts(ids),
                run_counts=store.run_counts(),
                item_totals=store.item_totals(),
                targets=targets,
            )
        )


def run_daemon(config_path: str) -> int:
    """Load, validate and serve; the `monitor serve` command."""
    settings = load_settings(config_path)
    remember_secrets(settings)
    validate(settings)
    return asyncio.run(Daemon(config_path, settings).serve())
