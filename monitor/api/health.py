"""Probes and the scrape target: `/metrics`, `/healthz`, `/readyz`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from monitor.api.deps import Daemon

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(daemon: Daemon) -> Response:
    body = await asyncio.to_thread(daemon.metrics_text)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready yet, or the store is down."}})
async def readyz(daemon: Daemon) -> JSONResponse:
    ok = await asyncio.to_thread(daemon.ready)
    body = {"ready": ok, "leader": daemon.leader}
    return JSONResponse(body, status_code=200 if ok else 503)
