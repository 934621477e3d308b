"""HTTP API (FastAPI): metrics, health, the registry, runs, and the mutating routes.

Mutating routes need ``Authorization: Bearer <server.api_token>``; with no token
configured they are disabled (403), never open. Tokens are compared in constant time.
Request bodies over `MAX_BODY_BYTES` are refused with 413 before any route reads them,
and values that came from ``${ENV}`` are masked in what the API returns.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor import __version__
from monitor.config import Settings
from monitor.core.alerts import Alert
from monitor.core.model import ItemResult, Run, RunStatus
from monitor.judge import rebaseline
from monitor.log import Redactor
from monitor.runner import run_document, utc_now
from monitor.scheduling import RunSpec
from monitor.storage import SqlStore


class DaemonView(Protocol):
    """What the API needs from the running service."""

    settings: Settings
    store: SqlStore | None
    leader: bool

    def metrics_text(self) -> bytes: ...

    async def firing_alerts(self) -> list[Alert]: ...

    def ready(self) -> bool: ...

    def next_fire_times(self) -> dict[tuple[str, str], Any]: ...

    def running_pairs(self) -> set[tuple[str, str]]: ...

    async def submit(self, spec: RunSpec) -> str: ...

    async def reload(self) -> tuple[bool, str]: ...


MAX_BODY_BYTES = 1 << 20  # no route takes a body anywhere near 1 MiB
_MAX_ID = 2**53 - 1  # the largest id a JSON client (a double) represents exactly
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"  # config names (monitor.config.check_name)

RunId = Annotated[int, Path(ge=1, le=_MAX_ID)]
NameFilter = Annotated[str | None, Query(pattern=_NAME)]


class BaselineRequest(BaseModel):
    """Pin these runs as the baseline of a (monitor, endpoint)."""

    monitor: str = Field(pattern=_NAME)
    endpoint: str = Field(pattern=_NAME)
    run_ids: list[Annotated[int, Field(ge=1, le=_MAX_ID)]] = Field(min_length=1, max_length=100)


class Problem(BaseModel):
    """An error answer: a message, or FastAPI's list of validation errors."""

    detail: str | list[dict[str, Any]]


class ReloadResult(BaseModel):
    """The outcome of `POST /-/reload` (400 when the file was refused)."""

    reloaded: bool
    message: str


_PROBLEMS = {
    400: "The body is not valid JSON.",
    401: "Missing or wrong bearer token.",
    403: "Mutating routes are disabled: `server.api_token` is not set.",
    404: "No such run, monitor or endpoint.",
    409: "The runs cannot be pinned: another (monitor, endpoint), or not succeeded.",
    413: f"Request body larger than {MAX_BODY_BYTES} bytes.",
    422: "Invalid parameters or body.",
    503: "The store is not open.",
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error answers a route gives."""
    return {code: {"model": Problem, "description": _PROBLEMS[code]} for code in codes}


class BodySizeLimit:
    """ASGI middleware that answers 413 to a request body over `max_bytes`.

    A declared ``Content-Length`` over the limit is refused before the body is read; a
    chunked body is read up to the limit, then refused. Either way no route ever holds
    more than `max_bytes` of a body, whoever sent it (authentication comes later).
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _content_length(scope) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was complete
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = JSONResponse(
            {"detail": f"request body exceeds {self.max_bytes} bytes"},
            status_code=413,
            headers={"Connection": "close"},  # the rest of the body is not read
        )
        await answer(scope, receive, send)


_ECHO_ITEMS = 100  # a 422 quotes a rejected value only up to this length


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:  # noqa: ARG001
    """FastAPI's 422 answer, without quoting rejected values that are large: a body of
    100k run ids must not come back as a 600 kB error."""
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    errors = []
    for error in exc.errors():
        shown = dict(error)
        value = shown.get("input")
        if isinstance(value, str | bytes | list | dict) and len(value) > _ECHO_ITEMS:
            del shown["input"]
        errors.append(shown)
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def _content_length(scope: Scope) -> int:
    """The declared body length, 0 when absent (uvicorn rejects malformed values)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


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


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <server.api_token>`")


def _require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    token = request.app.state.daemon.settings.server.api_token
    if not token:
        raise HTTPException(403, "mutating routes are disabled: set server.api_token")
    given = "" if credentials is None else credentials.credentials
    if (
        credentials is None
        or credentials.scheme.lower() != "bearer"
        or not hmac.compare_digest(given.encode(), token.encode())
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
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, _validation_error)

    def masked(text: str) -> str:
        return Redactor(daemon.settings.secrets).mask(text)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body = await asyncio.to_thread(daemon.metrics_text)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "Not ready yet, or the store is down."}})
    async def readyz() -> JSONResponse:
        ok = await asyncio.to_thread(daemon.ready)
        body = {"ready": ok, "leader": daemon.leader}
        return JSONResponse(body, status_code=200 if ok else 503)

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
                    "url": masked(_masked_url(e.url)),
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

    @app.get("/api/v1/monitors", responses=_problems(503))
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

    @app.get("/api/v1/runs", responses=_problems(422, 503))
    async def runs(
        db: Store,
        *,
        monitor: NameFilter = None,
        endpoint: NameFilter = None,
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

    @app.get("/api/v1/runs/{run_id}", responses=_problems(404, 422, 503))
    async def run(run_id: RunId, db: Store) -> dict[str, Any]:
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

    @app.get("/api/v1/runs/{run_id}/items", responses=_problems(404, 422, 503))
    async def run_items(
        run_id: RunId,
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
                        "error_detail": i.error_detail and masked(i.error_detail),
                        "attempts": i.attempts,
                    }
                    for i in page
                ],
            }

        doc = await asyncio.to_thread(read)
        if doc is None:
            raise HTTPException(404, f"no run {run_id}")
        return doc

    @app.post(
        "/api/v1/monitors/{name}/run",
        status_code=202,
        responses=_problems(401, 403, 404, 413, 422),
    )
    async def trigger(
        name: Annotated[str, Path(pattern=_NAME)], _: Authorized, endpoint: NameFilter = None
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

    @app.post("/api/v1/baselines", responses=_problems(400, 401, 403, 404, 409, 413, 422, 503))
    async def pin(request: BaselineRequest, db: Store, _: Authorized) -> dict[str, Any]:
        def write() -> tuple[int, str] | None:
            for rid in request.run_ids:
                found = db.get_run(rid)
                if found is None:
                    return 404, f"no run {rid}"
                if (found.monitor, found.endpoint) != (request.monitor, request.endpoint):
                    return 409, f"run {rid} belongs to {found.monitor}@{found.endpoint}"
                if found.status is not RunStatus.SUCCEEDED:
                    return 409, f"run {rid} is {found.status.value}, not succeeded"
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

    @app.post(
        "/-/reload",
        response_model=ReloadResult,
        responses={
            400: {"model": ReloadResult, "description": "Refused; the running config stays."},
            **_problems(401, 403, 413),
        },
    )
    async def reload(_: Authorized) -> JSONResponse:
        ok, message = await daemon.reload()
        return JSONResponse(
            {"reloaded": ok, "message": masked(message)}, status_code=200 if ok else 400
        )

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
