"""`monitor serve`'s life cycle: start, the scheduler hook, reload, drain and stop.

The daemon is handed every collaborator by the composition root (`monitor.app.
build_daemon`); it builds none. It marks runs orphaned by a crash as aborted, starts the
scheduler (paused on a replica that does not lead), serves the API, reloads on SIGHUP,
and on SIGTERM stops firing, lets in-flight runs finish within the grace period,
aborts the rest and returns 0.

On PostgreSQL, `Leadership` calls `on_leadership_acquired` and `on_leadership_lost`.
Losing the lock (a database restart, a cut session) does not end the process: the
schedule pauses and the runs in flight are cancelled; when this replica leads again,
runs left `running` are aborted with reason `leadership_lost`, each scheduled run cut
short that way is re-run once (trigger `rerun`), and the schedule resumes
(docs/operations.md, "Leadership and fencing").

Execution sits behind `submit(RunSpec)`, the scheduler hook: it never runs two runs of
one (monitor, endpoint) at once; a run requested while one is in flight is coalesced
into a single follow-up run that starts when the first ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.api import create_api, serve_api
from monitor.clock import utc_now
from monitor.config import Settings, mask_secrets
from monitor.core.alerts import Alert
from monitor.core.model import Rescore, ScorerSpec
from monitor.errors import BudgetExhaustedError, MonitorError
from monitor.housekeeping import RecordAndPrune
from monitor.leadership import Leadership
from monitor.log import get_logger, redactor
from monitor.metrics import Metrics, MonitorTarget, build_snapshot
from monitor.notify import AlertService
from monitor.ports import AlertStore, Clock
from monitor.scheduling import RunSpec, Scheduler, schedule_interval
from monitor.service import RunService
from monitor.storage import SqlStore
from monitor.storage.repository import LEADERSHIP_LOST

__all__ = ["RERUN_WITHIN_S", "Daemon"]

log = get_logger("daemon")
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

# A scheduled run cut short by a lost leadership is re-run if it started this recently:
# the scheduler's misfire grace (monitor/scheduling.py), the same catch-up rule.
RERUN_WITHIN_S = 3600.0


@dataclass
class _Pair:
    """Execution state of one (monitor, endpoint)."""

    task: asyncio.Task[None] | None = None
    queued: str | None = None  # trigger of a coalesced follow-up run
    last_scheduled: datetime | None = None  # when the last scheduled run was accepted


class Daemon:
    """The service: scheduler hook + executor + API + metrics over one store."""

    def __init__(
        self,
        *,
        config_path: Path,
        settings: Settings,
        store: SqlStore,
        service: RunService,
        metrics: Metrics,
        load_settings: Callable[[Path], Settings],
        validate: Callable[[Settings], None],
        scheduler: Scheduler | None = None,
        leadership: Leadership | None = None,
        alerts: AlertService | None = None,
        alert_store: AlertStore | None = None,
        housekeeping: RecordAndPrune | None = None,
        resources: Sequence[AbstractAsyncContextManager[Any]] = (),
        clock: Clock = utc_now,
    ) -> None:
        self.config_path = config_path
        self.settings = settings
        self.store = store
        self.service = service
        self.metrics = metrics
        self.alerts = alerts
        self._load_settings = load_settings
        self._validate = validate
        self._scheduler = scheduler
        self._leadership = leadership
        self._alert_store = alert_store
        self._housekeeping = housekeeping
        self._resources = resources
        self._clock = clock
        self.started = False
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._stopping = asyncio.Event()
        self._accepting = True
        self._target_list: list[MonitorTarget] = []
        self._metrics_dirty = False
        self._metrics_refreshing = False
        # runs cancelled because leadership was lost: their tasks still write `aborted`,
        # and their ids are aborted (not kept) when this replica leads again
        self._cut_tasks: set[asyncio.Task[None]] = set()
        self._cut_run_ids: set[int] = set()

    @property
    def leader(self) -> bool:
        """True on the replica that runs the schedule (always with SQLite)."""
        return self._leadership is None or self._leadership.leader

    # ------------------------------------------------------------------ life cycle

    async def serve(self) -> int:
        """Run with the API until SIGTERM/SIGINT; returns the process exit code."""
        async with self.running():
            await self._serve_http()
        log.info("daemon_stopped")
        return 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Daemon]:
        """Everything but the HTTP listener: resources, orphans, metrics, alerts, the
        scheduler, leadership and housekeeping; on exit, drain the in-flight runs."""
        async with contextlib.AsyncExitStack() as stack:
            for resource in self._resources:
                await stack.enter_async_context(resource)
            if self._leadership is None:  # SQLite's lock file made this process the only one
                await self._abort_orphans()
                self.metrics.leader.set(1)
            self._refresh_targets()
            await self.refresh_metrics()
            if self.alerts is not None:
                self.metrics.set_alerts_firing(await self.alerts.refresh())
            if self._scheduler is not None:
                self._scheduler.start(self.settings, self.submit, paused=not self.leader)
                stack.callback(self._scheduler.shutdown)
            for loop_task in self._background():
                task = asyncio.create_task(loop_task)
                stack.callback(task.cancel)
            self.started = True
            stack.callback(setattr, self, "started", False)
            stack.push_async_callback(self._drain)
            yield self

    def _background(self) -> list[Any]:
        tasks: list[Any] = []
        if self._leadership is not None:
            tasks.append(self._leadership.campaign_forever())
        if self._housekeeping is not None:
            tasks.append(self._housekeeping.forever())
        return tasks

    async def on_leadership_acquired(self) -> None:
        """Called by `Leadership` once this replica leads: take over the schedule.

        Runs left `running` by an earlier leadership (this process's own cut short, or a
        dead or cut-off leader's) are aborted with reason `leadership_lost`; each
        scheduled run aborted that way, if it is its pair's latest run and started
        within `RERUN_WITHIN_S`, is re-run once; then the schedule resumes, and fire
        times missed meanwhile follow the scheduler's catch-up rule (coalesced into one).
        A database error here propagates: `Leadership` gives the lock up and retries.
        """
        now = self._clock()
        cut = sorted(self._cut_run_ids)
        await asyncio.to_thread(self.store.abort_runs, cut, now, reason=LEADERSHIP_LOST)
        self._cut_run_ids.clear()
        keep = sorted(self.service.active)
        orphans = await asyncio.to_thread(
            self.store.abort_running, now, reason=LEADERSHIP_LOST, keep=keep
        )
        if orphans:
            log.warning("orphaned_runs_aborted", count=orphans, reason=LEADERSHIP_LOST)
        since = now - timedelta(seconds=RERUN_WITHIN_S)
        cut_short = await asyncio.to_thread(self.store.cut_short_runs, since)
        scheduled = {
            (m.name, ep) for m in self.settings.monitors if m.schedule for ep in m.endpoints
        }
        for run in cut_short:
            if (run.monitor, run.endpoint) in scheduled:
                log.info("run_rerun", monitor=run.monitor, endpoint=run.endpoint, cut_run=run.id)
                await self.submit(RunSpec(run.monitor, run.endpoint, "rerun"))
        self.metrics.leader.set(1)
        if self._scheduler is not None:
            self._scheduler.resume()

    async def on_leadership_lost(self) -> None:
        """Called by `Leadership` when the lock is gone: stop starting runs and cancel
        the ones in flight. The process stays up and campaigns again; the cancelled runs
        record `aborted` themselves once the database answers (the store's fence makes
        any final write of theirs `aborted`, reason `leadership_lost`)."""
        log.warning("leadership_lost", action="pausing the schedule, cancelling runs")
        self.metrics.leader.set(0)
        if self._scheduler is not None:
            self._scheduler.pause()
        self._cut_run_ids |= self.service.active
        for pair in self._pairs.values():
            pair.queued = None
            task, pair.task = pair.task, None
            if task is not None and not task.done():
                task.cancel()
                self._cut_tasks.add(task)
                task.add_done_callback(self._cut_tasks.discard)
        if self._cut_run_ids:
            log.warning("runs_cancelled", runs=sorted(self._cut_run_ids), reason=LEADERSHIP_LOST)

    def on_leadership_check(self) -> None:
        """Called by `Leadership` every few checks: see schedules edited elsewhere."""
        if self._scheduler is not None:
            self._scheduler.wakeup()

    async def _serve_http(self) -> None:
        """Serve the API until a stop is requested or the listener fails."""
        server, server_task = serve_api(create_api(self), self.settings.server)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        try:
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
        finally:
            for sig in _SIGNALS:
                loop.remove_signal_handler(sig)
            server.should_exit = True
            with contextlib.suppress(Exception):
                await server_task

    async def _abort_orphans(self) -> None:
        """Runs left `running` by a dead process (this one before a crash) are marked
        aborted; runs executing here are kept (SQLite: the only process)."""
        keep = sorted(self.service.active)
        orphans = await asyncio.to_thread(self.store.abort_running, self._clock(), keep=keep)
        if orphans:
            log.warning("orphaned_runs_aborted", count=orphans)

    def stop(self) -> None:
        """Begin a graceful shutdown (signal handler)."""
        if not self._stopping.is_set():
            log.info("shutdown_requested", grace_s=self.settings.server.shutdown_grace)
            self._stopping.set()

    async def wait_stopped(self) -> None:
        """Until `stop` is called."""
        await self._stopping.wait()

    async def _drain(self) -> None:
        self._accepting = False
        if self._scheduler is not None:
            self._scheduler.pause()
        tasks = [p.task for p in self._pairs.values() if p.task is not None and not p.task.done()]
        tasks += [t for t in self._cut_tasks if not t.done()]
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

    # ------------------------------------------------------------------ execution

    async def submit(self, spec: RunSpec) -> str:
        """Start a run now, or queue one follow-up if this pair is busy. Returns which."""
        if not self._accepting or (spec.trigger == "schedule" and not self.leader):
            return "rejected"
        key = (spec.monitor, spec.endpoint)
        pair = self._pairs.setdefault(key, _Pair())
        if spec.trigger == "schedule" and self._too_soon(spec, pair):
            return "skipped"
        if pair.task is not None and not pair.task.done():
            pair.queued = spec.trigger
            log.info("run_coalesced", monitor=spec.monitor, endpoint=spec.endpoint)
            return "queued"
        pair.task = asyncio.create_task(self._execute(spec, pair))
        return "started"

    def _too_soon(self, spec: RunSpec, pair: _Pair) -> bool:
        """A fire time less than half an interval after the last scheduled run is dropped.

        After downtime the scheduler runs a missed fire time at once (catch-up); when the
        next regular one falls seconds later, that run would measure the same moment
        twice. The catch-up run stands for the period, and the schedule goes on from the
        fire time after. Manual runs are never dropped.
        """
        mon = next((m for m in self.settings.monitors if m.name == spec.monitor), None)
        if mon is None or mon.schedule is None:
            return False
        now = self._clock()
        gap = schedule_interval(mon.schedule, now) / 2
        last = pair.last_scheduled
        if last is not None and (now - last).total_seconds() < gap:
            log.info(
                "run_skipped_too_soon",
                monitor=spec.monitor,
                endpoint=spec.endpoint,
                seconds_since_last=round((now - last).total_seconds(), 1),
                min_gap_s=gap,
            )
            return True
        pair.last_scheduled = now
        return False

    async def wait_idle(self) -> None:
        """Until no run (or coalesced follow-up) is executing."""
        while tasks := [p.task for p in self._pairs.values() if p.task and not p.task.done()]:
            await asyncio.wait(tasks)

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
        mon = next((m for m in self.settings.monitors if m.name == spec.monitor), None)
        if mon is None:
            log.warning("run_skipped_unknown_monitor", monitor=spec.monitor)
            return
        if spec.endpoint not in mon.endpoints:
            log.warning("run_skipped_unknown_endpoint", monitor=mon.name, endpoint=spec.endpoint)
            return
        try:
            plan = await self.service.plan(spec.monitor, spec.endpoint, spec.trigger)
        except BudgetExhaustedError as exc:  # an expected state, not a failure: no traceback
            log.warning(
                "run_skipped_budget", monitor=mon.name, endpoint=spec.endpoint, reason=str(exc)
            )
            return
        except MonitorError as exc:
            log.exception(
                "run_not_started", monitor=mon.name, endpoint=spec.endpoint, error=str(exc)
            )
            return
        await self.service.execute(plan)

    async def firing_alerts(self) -> list[Alert]:
        if self._alert_store is None:
            return []
        return await asyncio.to_thread(self._alert_store.firing)

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def running_pairs(self) -> set[tuple[str, str]]:
        return {k for k, p in self._pairs.items() if p.task is not None and not p.task.done()}

    def next_fire_times(self) -> dict[tuple[str, str], datetime | None]:
        return {} if self._scheduler is None else self._scheduler.next_fire_times()

    def ready(self) -> bool:
        return bool(
            self.started
            and (self._scheduler is None or self._scheduler.running)
            and self.store.ping()
        )

    # ------------------------------------------------------------------ config

    async def rescore(self, run_ids: Sequence[int], spec: ScorerSpec) -> list[Rescore]:
        """Apply a scorer to stored outputs (`POST /api/v1/rescores`); judge calls share
        the judge endpoint's client, and so its limits, with the scheduled runs."""
        return await self.service.rescore(run_ids, spec)

    async def reload(self) -> tuple[bool, str]:
        """Re-read the config file; on any error keep the running config."""
        new: Settings | None = None
        try:
            new = await asyncio.to_thread(self._load_settings, self.config_path)
            await asyncio.to_thread(self._validate, new)
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
        redactor.update(new.secrets)
        changes = self._scheduler.sync(new) if self._scheduler is not None else {}
        self._refresh_targets()
        await self.refresh_metrics()
        self.metrics.reload_ok.set(1)
        log.info("config_reloaded", schedule_changes=changes, needs_restart=ignored or None)
        return True, "reloaded"

    def _targets(self) -> list[MonitorTarget]:
        now = self._clock()
        out: list[MonitorTarget] = []
        for mon in self.settings.monitors:
            scorers = tuple(s.name for s in self.settings.benchmark(mon.benchmark).scorers)
            interval = schedule_interval(mon.schedule, now) if mon.schedule else None
            out.extend(
                MonitorTarget(
                    mon.name,
                    mon.benchmark,
                    ep,
                    interval,
                    mon.score_floor,
                    scorers,
                    slice_floors=dict(mon.slice_floors),
                )
                for ep in mon.endpoints
            )
        return out

    def _refresh_targets(self) -> None:
        self._target_list = self._targets()
        self.metrics.initialize_targets(self._target_list)
        self.metrics.set_ui_url(self.settings.server.base_url)

    async def refresh_metrics(self) -> None:
        """Rebuild the metrics snapshot from the store, off the event loop.

        Calls that arrive while a rebuild runs are coalesced into one more rebuild:
        at 5,000 series a rebuild costs a few hundred ms, and runs may finish in bursts.
        """
        self._metrics_dirty = True
        if self._metrics_refreshing:
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
                usage_totals=store.usage_totals(),
                judge_checks=store.latest_judge_checks(),
                targets=targets,
            )
        )
