"""The registry as configured and as it runs: benchmarks, endpoints, monitors, alerts."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from monitor.api.deps import Daemon, Store, masked, problems
from monitor.core.model import Run
from monitor.log import mask_url_credentials

router = APIRouter(prefix="/api/v1")


def run_summary(run: Run) -> dict[str, Any]:
    """The few fields of a run that a monitor listing shows."""
    return {
        "id": run.id,
        "status": run.status.value,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


@router.get("/benchmarks")
async def benchmarks(daemon: Daemon) -> dict[str, Any]:
    return {
        "benchmarks": [
            {
                "name": b.name,
                "data": b.data,
                "format": b.format,
                "reference": b.reference,
                "scorers": [{"name": s.name, "kind": s.kind} for s in b.scorers],
                "split": b.split,
            }
            for b in daemon.settings.benchmarks
        ]
    }


@router.get("/endpoints")
async def endpoints(daemon: Daemon) -> dict[str, Any]:
    return {
        "endpoints": [
            {
                "name": e.name,
                "type": e.type,
                "url": masked(daemon, mask_url_credentials(e.url)),
                "model": e.model,
                "concurrency": e.concurrency,
                "rate_limit_per_s": e.rate_limit,
                "timeout_s": e.timeout,
                "retries": e.retries,
                "header_names": sorted(e.headers),
                "config_hash": e.fingerprint(),
            }
            for e in daemon.settings.endpoints
        ]
    }


@router.get("/monitors", responses=problems(503))
async def monitors(daemon: Daemon, db: Store) -> dict[str, Any]:
    latest = await asyncio.to_thread(db.latest_runs)
    last: dict[tuple[str, str], Run] = {}
    for run in latest:  # ordered by id within each pair: the last one wins
        last[(run.monitor, run.endpoint)] = run
    fire_times = daemon.next_fire_times()
    running = daemon.running_pairs()
    out = []
    for mon in daemon.settings.monitors:
        eps = []
        for ep in mon.endpoints:
            last_run = last.get((mon.name, ep))
            nxt = fire_times.get((mon.name, ep))
            eps.append(
                {
                    "name": ep,
                    "next_run_at": nxt.isoformat() if nxt else None,
                    "running": (mon.name, ep) in running,
                    "last_run": None if last_run is None else run_summary(last_run),
                }
            )
        out.append(
            {
                "name": mon.name,
                "benchmark": mon.benchmark,
                "schedule": None if mon.schedule is None else mon.schedule.model_dump(),
                "drift": mon.drift.model_dump(),
                "endpoints": eps,
            }
        )
    return {"monitors": out}


@router.get("/alerts")
async def alerts(daemon: Daemon) -> dict[str, Any]:
    return {
        "alerts": [
            {
                "fingerprint": a.fingerprint,
                "name": a.name,
                "state": a.state,
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "since": a.since.isoformat(),
                "last_notified": a.last_notified.isoformat() if a.last_notified else None,
            }
            for a in await daemon.firing_alerts()
        ]
    }
