"""What every router shares: the daemon view, the store and bearer-token dependencies,
name and id parameter types, and the documented error answers."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from monitor.config import Settings
from monitor.core.alerts import Alert
from monitor.core.model import Rescore, ScorerSpec
from monitor.log import Redactor
from monitor.scheduling import RunSpec
from monitor.storage import SqlStore

MAX_BODY_BYTES = 1 << 20  # no route takes a body anywhere near 1 MiB
MAX_ID = 2**53 - 1  # the largest id a JSON client (a double) represents exactly
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"  # config names (monitor.config.check_name)

RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
NameFilter = Annotated[str | None, Query(pattern=NAME)]


class DaemonView(Protocol):
    """What the API needs from the running service (`monitor.daemon.Daemon`)."""

    settings: Settings
    store: SqlStore

    @property
    def leader(self) -> bool: ...

    def metrics_text(self) -> bytes: ...

    async def firing_alerts(self) -> list[Alert]: ...

    def ready(self) -> bool: ...

    def next_fire_times(self) -> dict[tuple[str, str], datetime | None]: ...

    def running_pairs(self) -> set[tuple[str, str]]: ...

    async def submit(self, spec: RunSpec) -> str: ...

    async def reload(self) -> tuple[bool, str]: ...

    async def rescore(self, run_ids: Sequence[int], spec: ScorerSpec) -> list[Rescore]: ...


class Problem(BaseModel):
    """An error answer: a message, or FastAPI's list of validation errors."""

    detail: str | list[dict[str, Any]]


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


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error answers a route gives."""
    return {code: {"model": Problem, "description": _PROBLEMS[code]} for code in codes}


def _daemon(request: Request) -> DaemonView:
    daemon: DaemonView = request.app.state.daemon
    return daemon


def _store(request: Request) -> SqlStore:
    store: SqlStore | None = getattr(request.app.state.daemon, "store", None)
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


def masked(daemon: DaemonView, text: str) -> str:
    """`text` with every value that came from ``${ENV}`` masked."""
    return Redactor(daemon.settings.secrets).mask(text)


Authorized = Annotated[None, Depends(_require_token)]
Daemon = Annotated[DaemonView, Depends(_daemon)]
Store = Annotated[SqlStore, Depends(_store)]
