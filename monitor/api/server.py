"""The HTTP listener: uvicorn serving the API, with the daemon owning the signals."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from monitor.config import ServerSettings

__all__ = ["serve_api"]


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve_api(app: FastAPI, server: ServerSettings) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Start serving `app` on `server.host:server.port`; set `should_exit` to stop."""
    srv = _Server(
        uvicorn.Config(
            app,
            host=server.host,
            port=server.port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    return srv, asyncio.create_task(srv.serve())
