"""The mutating routes, behind the bearer token: trigger a run, pin a baseline, reload."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from monitor.api.deps import (
    MAX_ID,
    NAME,
    Authorized,
    Daemon,
    NameFilter,
    Store,
    masked,
    problems,
)
from monitor.clock import utc_now
from monitor.config import scorer_option
from monitor.core.model import RunStatus
from monitor.documents import rescore_document
from monitor.errors import MissingRunError, MonitorError, StorageError
from monitor.judge import rebaseline
from monitor.scheduling import RunSpec

router = APIRouter()


class BaselineRequest(BaseModel):
    """Pin these runs as the baseline of a (monitor, endpoint)."""

    monitor: str = Field(pattern=NAME)
    endpoint: str = Field(pattern=NAME)
    run_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=100)


class RescoreRequest(BaseModel):
    """Apply one scorer (a judge too) to the outputs these runs stored."""

    run_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=100)
    # as in a benchmark's `scorers:` list: "exact_match", {"llm_rubric": {...}}, or YAML text
    scorer: str | dict[str, Any]


class ReloadResult(BaseModel):
    """The outcome of `POST /-/reload` (400 when the file was refused)."""

    reloaded: bool
    message: str


@router.post(
    "/api/v1/monitors/{name}/run",
    status_code=202,
    responses=problems(401, 403, 404, 413, 422),
)
async def trigger(
    name: Annotated[str, Path(pattern=NAME)],
    _: Authorized,
    daemon: Daemon,
    endpoint: NameFilter = None,
) -> dict[str, Any]:
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


@router.post(
    "/api/v1/rescores", status_code=201, responses=problems(400, 401, 403, 404, 413, 422, 503)
)
async def rescore(request: RescoreRequest, daemon: Daemon, _: Authorized) -> dict[str, Any]:
    """New score rows beside the runs' own; no request reaches a model endpoint."""
    try:
        spec = scorer_option(daemon.settings, request.scorer, where="scorer")
        done = await daemon.rescore(request.run_ids, spec)
    except MissingRunError as exc:
        raise HTTPException(404, masked(daemon, str(exc))) from None
    except StorageError:
        raise  # the app's handler answers 503
    except MonitorError as exc:
        raise HTTPException(422, masked(daemon, str(exc))) from None
    return {"rescores": [rescore_document(r) for r in done]}


@router.post("/api/v1/baselines", responses=problems(400, 401, 403, 404, 409, 413, 422, 503))
async def pin(request: BaselineRequest, db: Store, _: Authorized) -> dict[str, Any]:
    def write() -> tuple[int, str] | None:
        found = db.get_runs(request.run_ids)
        for rid in request.run_ids:
            run = found.get(rid)
            if run is None:
                return 404, f"no run {rid}"
            if (run.monitor, run.endpoint) != (request.monitor, request.endpoint):
                return 409, f"run {rid} belongs to {run.monitor}@{run.endpoint}"
            if run.status is not RunStatus.SUCCEEDED:
                return 409, f"run {rid} is {run.status.value}, not succeeded"
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
        raise HTTPException(*problem)
    return {"monitor": request.monitor, "endpoint": request.endpoint, "pinned": request.run_ids}


@router.post(
    "/-/reload",
    response_model=ReloadResult,
    responses={
        400: {"model": ReloadResult, "description": "Refused; the running config stays."},
        **problems(401, 403, 413),
    },
)
async def reload(_: Authorized, daemon: Daemon) -> JSONResponse:
    ok, message = await daemon.reload()
    return JSONResponse(
        {"reloaded": ok, "message": masked(daemon, message)}, status_code=200 if ok else 400
    )
