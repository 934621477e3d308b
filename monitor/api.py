"""HTTP API (FastAPI): metrics, health, the registry, runs, and the mutating routes.

Mutating routes need ``Authorization: Bearer <server.api_token>``; with no token
configured they are disabled (403), never open. Tokens are compared in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from monitor import __version__
from monitor.config import Settings
from monitor.core.alerts import Alert
from monitor.core.model import ItemResult, Run, RunStatus
from monitor.judge import rebaseline
from monitor.runner import run_document, utc_now
from monitor.scheduling import RunSpec
from monitor.storage import SqlStore


class DaemonView(Protocol):
    """What the API needs from the running service."""

    settings: Settings
    store: SqlStore | None

    def metrics_text(self) -> bytes: ...

    async def firing_alerts(self) -> list[Alert]: ...

    def ready(self) -> bool: ...

    def next_fire_times(self) -> dict[tuple[str, str], Any]: ...

    def running_pairs(self) -> set[tuple[str, str]]: ...

    async def submit(self, spec: RunSpec) -> str: ...

    async def reload(self) -> tuple[bool, str]: ...


class BaselineRequest(BaseModel):
    """Pin these runs as the baseline of a (monitor, endpoint)."""

    monitor: str
    endpoint: str
    run_ids: list[int] = Field(min_length=1, max_length=100)


def _masked_url(url: str) -> str:
    # credentials in a URL (user:pass@host) never leave the process
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def _store(request: Request) -> SqlStore:
    store: SqlStore | None = request.app.state.daemon.store
    if store is None:
        raise HTTPException(503, "store not open")
    return store


def _require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    token = request.app.state.daemon.settings.server.api_token
    if not token:
        raise HTTPException(403, "mutating routes are disabled: set server.api_token")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


Authorized = Annotated[None, Depends(_require_token)]
Store = Annotated[SqlStore, Depends(_store)]


def create_api(daemon: DaemonView) -> FastAPI:  # noqa: PLR0915 - one closure per route
    """Build the FastAPI application bound to a daemon."""
    app = FastAPI(
        title="monitor",
        version=__version__,
        description="Continuous evaluation and drift monitoring of model endpoints.",
    )
    app.state.daemon = daemon

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body = await asyncio.to_thread(daemon.metrics_text)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ok = await asyncio.to_thread(daemon.ready)
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/api/v1/benchmarks")
    async def benchmarks() -> dict[str, Any]:
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

    @app.get("/api/v1/endpoints")
    async def endpoints() -> dict[str, Any]:
        return {
            "endpoints": [
                {
                    "name": e.name,
                    "type": e.type,
                    "url": _masked_url(e.url),
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

    @app.get("/api/v1/monitors")
    async def monitors(db: Store) -> dict[str, Any]:
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
                        "last_run": None if last_run is None else _run_summary(last_run),
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

    @app.get("/api/v1/alerts")
    async def alerts() -> dict[str, Any]:
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

    @app.get("/api/v1/runs")
    async def runs(
        db: Store,
        *,
        monitor: str | None = None,
        endpoint: str | None = None,
        status: RunStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> dict[str, Any]:
        def read() -> list[dict[str, Any]]:
            found = db.list_runs(
                monitor=monitor, endpoint=endpoint, status=status, limit=limit, offset=offset
            )
            ids = [r.id for r in found]
            scores, verdicts = db.run_scores(ids), db.run_verdicts(ids)
            return [run_document(r, scores[r.id], verdicts[r.id]) for r in found]

        return {"runs": await asyncio.to_thread(read), "limit": limit, "offset": offset}

    @app.get("/api/v1/runs/{run_id}")
    async def run(run_id: int, db: Store) -> dict[str, Any]:
        def read() -> dict[str, Any] | None:
            found = db.get_run(run_id)
            if found is None:
                return None
            return run_document(
                found, db.run_scores([run_id])[run_id], db.run_verdicts([run_id])[run_id]
            )

        doc = await asyncio.to_thread(read)
        if doc is None:
            raise HTTPException(404, f"no run {run_id}")
        return doc

    @app.get("/api/v1/runs/{run_id}/items")
    async def run_items(
        run_id: int,
        db: Store,
        changed: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> dict[str, Any]:
        def read() -> dict[str, Any] | None:
            found = db.get_run(run_id)
            if found is None:
                return None
            items = db.item_results(run_id)
            compared_with: dict[str, Any] | None = None
            if changed:
                flips = _changed_items(db, found, items)
                compared_with = flips["against"]
                keys = flips["keys"]
                items = [i for i in items if i.item_key in keys]
            page = items[offset : offset + limit]
            return {
                "run_id": run_id,
                "total": len(items),
                "limit": limit,
                "offset": offset,
                "compared_with": compared_with,
                "items": [
                    {
                        "item_key": i.item_key,
                        "output": i.output,
                        "scores": dict(i.scores),
                        "latency_s": i.latency_s,
                        "error": i.error.value if i.error else None,
                        "error_detail": i.error_detail,
                        "attempts": i.attempts,
                    }
                    for i in page
                ],
            }

        doc = await asyncio.to_thread(read)
        if doc is None:
            raise HTTPException(404, f"no run {run_id}")
        return doc

    @app.post("/api/v1/monitors/{name}/run", status_code=202)
    async def trigger(name: str, _: Authorized, endpoint: str | None = None) -> dict[str, Any]:
        mon = next((m for m in daemon.settings.monitors if m.name == name), None)
        if mon is None:
            raise HTTPException(404, f"no monitor {name!r}")
        if endpoint is not None and endpoint not in mon.endpoints:
            raise HTTPException(404, f"monitor {name!r} has no endpoint {endpoint!r}")
        chosen = [endpoint] if endpoint else list(mon.endpoints)
        results = [
            {"endpoint": ep, "status": await daemon.submit(RunSpec(name, ep, "manual"))}
            for ep in chosen
        ]
        return {"monitor": name, "runs": results}

    @app.post("/api/v1/baselines")
    async def pin(request: BaselineRequest, db: Store, _: Authorized) -> dict[str, Any]:
        def write() -> str | None:
            for rid in request.run_ids:
                found = db.get_run(rid)
                if found is None:
                    return f"no run {rid}"
                if (found.monitor, found.endpoint) != (request.monitor, request.endpoint):
                    return f"run {rid} belongs to {found.monitor}@{found.endpoint}"
                if found.status is not RunStatus.SUCCEEDED:
                    return f"run {rid} is {found.status.value}, not succeeded"
            rebaseline(
                db,
                monitor=request.monitor,
                endpoint=request.endpoint,
                run_ids=request.run_ids,
                now=utc_now(),
            )
            return None

        problem = await asyncio.to_thread(write)
        if problem is not None:
            raise HTTPException(422, problem)
        return {"monitor": request.monitor, "endpoint": request.endpoint, "pinned": request.run_ids}

    @app.post("/-/reload")
    async def reload(_: Authorized) -> JSONResponse:
        ok, message = await daemon.reload()
        return JSONResponse({"reloaded": ok, "message": message}, status_code=200 if ok else 400)

    return app


def _run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status.value,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _changed_items(db: SqlStore, run: Run, items: list[ItemResult]) -> dict[str, Any]:
    """Items whose outcome differs from the baseline (verdict evidence) or the previous run."""
    verdicts = db.run_verdicts([run.id])[run.id]
    flipped = {k for v in verdicts for k in (*v.changed.pass_to_fail, *v.changed.fail_to_pass)}
    if verdicts and any(v.baseline for v in verdicts):
        return {"keys": flipped, "against": {"kind": "baseline", "baseline": verdicts[0].baseline}}
    previous = [
        r
        for r in db.list_runs(monitor=run.monitor, endpoint=run.endpoint, limit=50)
        if r.id < run.id and r.status is RunStatus.SUCCEEDED
    ]
    if not previous:
        return {"keys": set(), "against": None}
    prev = previous[0]
    before = {i.item_key: i for i in db.item_results(prev.id)}
    keys = set()
    for item in items:
        old = before.get(item.item_key)
        if old is None:
            continue
        for scorer, value in item.scores.items():
            if scorer in old.scores and (value >= 0.5) != (old.scores[scorer] >= 0.5):
                keys.add(item.item_key)
    return {"keys": keys, "against": {"kind": "previous_run", "run_id": prev.id}}
