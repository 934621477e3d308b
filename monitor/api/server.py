"""The HTTP listener: uvicorn serving the API, with the daemon owning the signals.

The socket is bound here, before uvicorn starts, so an address already in use is a
`ConfigError` naming `server.listen` (exit 2), not an error inside uvicorn's task.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from monitor.config import ServerSettings
from monitor.errors import ConfigError

__all__ = ["bind_listener", "serve_api"]


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port; ConfigError naming the address if it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ConfigError(f"server.listen {host}:{port}: cannot listen: {reason}") from None
    return sock


def serve_api(app: FastAPI, server: ServerSettings) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Start serving `app` on `server.host:server.port`; set `should_exit` to stop."""
    sock = bind_listener(server.host, server.port)
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
    return srv, asyncio.create_task(srv.serve(sockets=[sock]))
