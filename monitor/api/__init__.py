"""HTTP API (FastAPI): metrics, health, the registry, runs, and the mutating routes.

One router per resource (`health`, `registry`, `runs`, `actions`, `compare`), and the
read-only web pages under `/ui/` (`ui`, docs/ui.md). Mutating routes need
``Authorization: Bearer <server.api_token>``; with no token configured they are
disabled (403), never open. Tokens are compared in constant time. Request bodies over
`MAX_BODY_BYTES` are refused with 413 before any route reads them, and values that came
from ``${ENV}`` are masked in what the API returns.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from monitor import __version__
from monitor.api import actions, compare, health, registry, runs, ui
from monitor.api.deps import MAX_BODY_BYTES, DaemonView
from monitor.api.middleware import BodySizeLimit, validation_error
from monitor.api.server import serve_api

__all__ = ["MAX_BODY_BYTES", "DaemonView", "create_api", "serve_api"]


def create_api(daemon: DaemonView) -> FastAPI:
    """Build the FastAPI application bound to a daemon."""
    app = FastAPI(
        title="monitor",
        version=__version__,
        description="Continuous evaluation and drift monitoring of model endpoints.",
    )
    app.state.daemon = daemon
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ui.LoginRequiredError, ui.login_required)
    for module in (health, registry, runs, actions, compare, ui):
        app.include_router(module.router)
    return app
