"""ASGI middleware and error handlers: a body-size limit before any route reads a body,
and 422 answers that do not echo large rejected values."""

from __future__ import annotations

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.api.deps import MAX_BODY_BYTES

__all__ = ["BodySizeLimit", "validation_error"]


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


async def validation_error(request: Request, exc: Exception) -> JSONResponse:  # noqa: ARG001
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
