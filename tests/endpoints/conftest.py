"""Fixtures for endpoint tests: a real, scriptable aiohttp server on 127.0.0.1.

``server.respond(...)`` queues answers; each request takes the next one and the last
keeps repeating. The server records every request (path, headers, body, arrival and
finish times on the loop clock) and the peak number of requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from monitor.config import EndpointSettings
from monitor.endpoints import EndpointClient, HttpClient, RetryPolicy, build_endpoint
from tests.fakes import RecordingSleep

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    raw_path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    started: float
    finished: float | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stream: int = 0  # send this many bytes in 64 KiB chunks, chunked encoding
    handler: Handler | None = None


class ScriptedServer:
    """A loopback HTTP server whose answers a test scripts."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.stream_sent = 0
        self.client_hung_up = False
        self.stream_done = asyncio.Event()
        self._script: list[Reply] = []
        self._release = asyncio.Event()
        self._ssl = ssl_context
        self._runner: web.AppRunner | None = None
        self.url = ""

    def respond(self, **reply: Any) -> None:
        """Queue one answer (see Reply); the last queued answer repeats."""
        self._script.append(Reply(**reply))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"{'https' if self._ssl else 'http'}://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        record = Recorded(
            request.method,
            request.path,
            request.raw_path,
            request.headers,
            await request.read(),
            loop.time(),
        )
        self.requests.append(record)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = self._script.pop(0) if len(self._script) > 1 else self._script[0]
            if reply.delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), reply.delay)
            return await self._answer(request, reply)
        finally:
            self.in_flight -= 1
            record.finished = loop.time()

    async def _answer(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.handler is not None:
            return await reply.handler(request)
        if reply.stream:
            return await self._stream(request, reply)
        body = reply.body if reply.body is not None else json.dumps(reply.json).encode()
        headers = {"Content-Type": "application/json", **reply.headers}
        return web.Response(status=reply.status, body=body, headers=headers)

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(status=reply.status)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"[" + b"0," * 32767 + b"0"
        try:
            while self.stream_sent < reply.stream:
                await response.write(chunk)
                self.stream_sent += len(chunk)
        except (ConnectionError, OSError, RuntimeError):
            self.client_hung_up = True  # exactly what the test wants
        finally:
            self.stream_done.set()
        return response


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    """A running plain-HTTP scripted server, stopped after the test."""
    srv = ScriptedServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def http(sleeps: RecordingSleep) -> AsyncIterator[HttpClient]:
    """A shared client with instant, recorded retry waits and a seeded jitter source."""
    async with HttpClient(sleep=sleeps, rng=random.Random(7)) as client:
        yield client


def endpoint_settings(url: str, type_: str = "openai-chat", **fields: Any) -> EndpointSettings:
    """Validated settings for one endpoint with sensible per-type defaults."""
    data: dict[str, Any] = {"name": "ep", "type": type_, "url": url, **fields}
    if type_.startswith("openai") or type_ == "kserve-v2":
        data.setdefault("model", "m1")
    if type_ == "http-json":
        data.setdefault("body", '{"text": {{ text | tojson }}}')
        data.setdefault("response", "$.label")
    if type_ in {"mlflow", "kserve-v2"}:
        data.setdefault("input", {"field": "x"})
    return EndpointSettings.model_validate(data)


MakeEndpoint = Callable[..., EndpointClient]


@pytest.fixture
def make_endpoint(server: ScriptedServer, http: HttpClient) -> MakeEndpoint:
    """Build an endpoint client against the scripted server: make_endpoint(type, **settings)."""

    def make(
        type_: str = "openai-chat", *, retry: RetryPolicy | None = None, **fields: Any
    ) -> EndpointClient:
        fields.setdefault("url", server.url)
        return build_endpoint(endpoint_settings(type_=type_, **fields), http, retry=retry)

    return make


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
async def tls_server(self_signed: tuple[Path, Path]) -> AsyncIterator[ScriptedServer]:
    """A running HTTPS scripted server with the self-signed certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*self_signed)
    srv = ScriptedServer(ssl_context=context)
    await srv.start()
    yield srv
    await srv.stop()
