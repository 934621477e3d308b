"""A fault-injecting OpenAI-compatible server on loopback, for hardening tests and the soak.

Raw asyncio streams, so every byte on the wire is under control (half bodies, resets,
drips, endless headers). The fault is chosen per request by the first path segment
(``POST /reset/v1/chat/completions``) or else by the ``model`` of the JSON body
(``{"model": "reset", ...}``); anything else answers normally. Every request is
counted per fault in ``counts`` (also served as JSON by ``GET /_counts``).

    fault             what the server does                                  client sees
    ok                a valid chat completion                               success
    500 502 503       that status with a small JSON error body              http_5xx, retried
    400 404           that status                                           http_4xx, once
    429               429 without Retry-After                               http_4xx, retried
    retry-after       429 with ``Retry-After: 1`` (seconds)                 http_4xx, retried
    retry-after-date  429 with an HTTP-date ~2 s ahead                      http_4xx, retried
    flaky-503         503 for the first 2 requests of each prompt, then ok  success on try 3
    slow              nothing until the client gives up (or 60 s)           timeout, retried
    drip              headers, then the body at one byte per second         timeout, retried
    drip-headers      the status line and headers at one byte per second    timeout, retried
    reset             headers and half the body, then a TCP RST             connect, retried
    hangup            closes the connection without answering               connect, retried
    invalid-json      200 with a truncated JSON body                        invalid_response
    wrong-shape       200 with valid JSON that is not a chat completion     invalid_response
    deep-json         200 with valid JSON nested 100 000 levels deep        invalid_response
    huge              200, 50 MB chunked body (no length), 64 KiB at a time invalid_response
    huge-length       200 with ``Content-Length`` 50 MB, then the bytes     invalid_response
    gzip-bomb         200, ~50 KB of gzip that inflates to 50 MB            invalid_response
    corrupt-gzip      200, ``Content-Encoding: gzip`` over plain JSON        invalid_response
    bad-chunk         200, chunked body with a malformed chunk size line    invalid_response
    header-flood      200, then endless header lines                        invalid_response
    garbage           a non-HTTP banner instead of a status line            invalid_response
    redirect          302 to the same path on 127.0.0.2 (another host)      invalid_response
    mix               each request takes the next fault of ``MIX``          (varies)

``refused`` is not a behaviour but a place: `closed_port` gives a loopback port with
nothing listening. The redirect target listens on 127.0.0.2 and counts what reaches it
under ``redirect-target`` (a client that never follows redirects leaves it at 0).

Run stand-alone (for the soak and daemon tests)::

    python -m tests.hardening.faults [--port 0]

prints ``faults listening on http://127.0.0.1:PORT`` once ready and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

MIB = 1024 * 1024
HUGE_BYTES = 50 * MIB
CHUNK = 64 * 1024
MODEL_ID = "faults-1"
MIX = (
    "500",
    "reset",
    "invalid-json",
    "wrong-shape",
    "429",
    "slow",
    "404",
    "huge",
    "drip",
    "redirect",
    "hangup",
    "502",
)
_REASONS = {
    200: "OK",
    302: "Found",
    400: "Bad Request",
    404: "Not Found",
    411: "Length Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_HEAD_LIMIT = 64 * 1024
_BODY_LIMIT = 8 * MIB


def closed_port(host: str = "127.0.0.1") -> int:
    """A loopback port that nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def completion(content: str = "other") -> bytes:
    """A minimal valid chat completion."""
    return json.dumps(
        {
            "id": "cmpl-faults",
            "object": "chat.completion",
            "model": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1},
        }
    ).encode()


@functools.cache
def gzip_bomb(size: int) -> bytes:
    """Gzip of a JSON array padded with ``size`` blanks (~1000:1), built 64 KiB at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    blank = b" " * CHUNK
    parts = [packer.compress(b"[")]
    parts.extend(packer.compress(blank) for _ in range(size // CHUNK))
    parts.append(packer.compress(b"]"))
    parts.append(packer.flush())
    return b"".join(parts)


@dataclass(slots=True)
class Request:
    """One parsed request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class _ClientGoneError(Exception):
    """The client closed or reset the connection."""


Handler = Callable[[str, Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class FaultServer:
    """The fault server; ``await start()``, use ``url_for(fault)``, ``await stop()``.

    Handlers return True to keep the connection open for the next request (keep-alive).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        redirect_host: str = "127.0.0.2",
        slow_s: float = 60.0,
        drip_interval: float = 1.0,
        huge_bytes: int = HUGE_BYTES,
        flaky_failures: int = 2,
        retry_after_s: int = 1,
    ) -> None:
        self.host, self.port = host, port
        self.redirect_host = redirect_host
        self.slow_s = slow_s
        self.drip_interval = drip_interval
        self.huge_bytes = huge_bytes
        self.flaky_failures = flaky_failures
        self.retry_after_s = retry_after_s
        self.counts: Counter[str] = Counter()
        self.bytes_sent: Counter[str] = Counter()
        self.hung_up: Counter[str] = Counter()  # the client left before the fault finished
        self.url = ""
        self.redirect_url = ""
        self._flaky_seen: Counter[str] = Counter()
        self._mix_next = 0
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._bomb_lock = asyncio.Lock()
        self._handlers: dict[str, Handler] = {
            "ok": self._ok,
            "500": self._status,
            "502": self._status,
            "503": self._status,
            "400": self._status,
            "404": self._status,
            "429": self._status,
            "retry-after": self._retry_after,
            "retry-after-date": self._retry_after_date,
            "flaky-503": self._flaky,
            "slow": self._slow,
            "drip": self._drip,
            "drip-headers": self._drip_headers,
            "reset": self._reset,
            "hangup": self._hangup,
            "invalid-json": self._invalid_json,
            "wrong-shape": self._wrong_shape,
            "deep-json": self._deep_json,
            "huge": self._huge,
            "huge-length": self._huge_length,
            "gzip-bomb": self._gzip,
            "corrupt-gzip": self._corrupt_gzip,
            "bad-chunk": self._bad_chunk,
            "header-flood": self._header_flood,
            "garbage": self._garbage,
            "redirect": self._redirect,
        }

    @property
    def faults(self) -> tuple[str, ...]:
        """Every behaviour this server knows, ``mix`` included."""
        return (*self._handlers, "mix")

    def url_for(self, fault: str) -> str:
        """The base URL (for an endpoint's ``url``) that selects ``fault`` by path."""
        return f"{self.url}/{fault}/v1"

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        main = await asyncio.start_server(self._connection, self.host, self.port, limit=_HEAD_LIMIT)
        self._servers.append(main)
        self.port = int(main.sockets[0].getsockname()[1])
        self.url = f"http://{self.host}:{self.port}"
        target = await asyncio.start_server(self._redirect_target, self.redirect_host, 0)
        self._servers.append(target)
        self.redirect_url = f"http://{self.redirect_host}:{target.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        """Stop listening and end every open connection."""
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def __aenter__(self) -> FaultServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def _track(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- connections

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track()
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if request.method == "GET" and request.path == "/_counts":
                    await _send(writer, 200, json.dumps(self.snapshot()).encode())
                    continue
                fault = self._choose(request)
                self.counts[fault] += 1
                handler: Handler = self._handlers.get(fault, self._ok)
                try:
                    keep = await handler(fault, request, reader, writer)
                except _ClientGoneError:
                    self.hung_up[fault] += 1
                    return
                if not keep:
                    return
        except (_ClientGoneError, ConnectionError, asyncio.IncompleteReadError):
            return  # the client left
        except (asyncio.LimitOverrunError, ValueError):
            return  # not a request this server understands: drop the connection
        except asyncio.CancelledError:
            # stop(): nobody awaits this task, and asyncio's stream callback would log
            # a cancelled one as an error, so end it normally
            return
        finally:
            await _close(writer)

    async def _redirect_target(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._track()
        try:
            request = await _read_request(reader)
            if request is not None:
                self.counts["redirect-target"] += 1
                await _send(writer, 200, completion("stolen"))
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass
        except asyncio.CancelledError:
            return  # see _connection
        finally:
            await _close(writer)

    def _choose(self, request: Request) -> str:
        first = request.path.lstrip("/").split("/", 1)[0]
        if first in self._handlers or first == "mix":
            fault = first
        else:
            body = request.json()
            model = body.get("model") if isinstance(body, dict) else None
            fault = model if isinstance(model, str) else "ok"
        if fault == "mix":
            fault = MIX[self._mix_next % len(MIX)]
            self._mix_next += 1
        return fault

    def snapshot(self) -> dict[str, Any]:
        """Counters as plain data."""
        return {
            "counts": dict(self.counts),
            "bytes_sent": dict(self.bytes_sent),
            "hung_up": dict(self.hung_up),
        }

    def reset_counts(self) -> None:
        """Forget every counter (and the flaky-503 memory)."""
        self.counts.clear()
        self.bytes_sent.clear()
        self.hung_up.clear()
        self._flaky_seen.clear()

    # ---------------------------------------------------------------- behaviours

    async def _ok(
        self, fault: str, request: Request, reader: Any, writer: asyncio.StreamWriter
    ) -> bool:
        await _send(writer, 200, completion())
        return True

    async def _status(
        self, fault: str, request: Request, reader: Any, writer: asyncio.StreamWriter
    ) -> bool:
        status = int(fault)
        body = json.dumps({"error": {"message": f"injected {status}", "type": "fault"}})
        await _send(writer, status, body.encode())
        return True

    async def _retry_after(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        await _send(
            writer, 429, b'{"error": "slow down"}', {"Retry-After": str(self.retry_after_s)}
        )
        return True

    async def _retry_after_date(
        self, fault: str, request: Request, reader: Any, writer: Any
    ) -> bool:
        when = formatdate(time.time() + 2.0, usegmt=True)
        await _send(writer, 429, b'{"error": "slow down"}', {"Retry-After": when})
        return True

    async def _flaky(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        key = hashlib.sha256(request.body).hexdigest()
        self._flaky_seen[key] += 1
        if self._flaky_seen[key] <= self.flaky_failures:
            await _send(writer, 503, b'{"error": "warming up"}')
        else:
            await _send(writer, 200, completion())
        return True

    async def _slow(
        self, fault: str, request: Request, reader: asyncio.StreamReader, writer: Any
    ) -> bool:
        # wait for the client to give up (EOF) or for slow_s, whichever comes first
        with contextlib.suppress(TimeoutError):
            if not await asyncio.wait_for(reader.read(1), self.slow_s):
                raise _ClientGoneError
        await _send(writer, 200, completion())
        return False

    async def _drip(
        self, fault: str, request: Request, reader: Any, writer: asyncio.StreamWriter
    ) -> bool:
        body = completion()
        head = _head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        await _write(writer, head)
        for i in range(len(body)):
            await asyncio.sleep(self.drip_interval)
            await _write(writer, body[i : i + 1])
            self.bytes_sent["drip"] += 1
        return True

    async def _drip_headers(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        body = completion()
        head = _head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        for i in range(len(head)):
            await _write(writer, head[i : i + 1])
            await asyncio.sleep(self.drip_interval)
        await _write(writer, body)
        return True

    async def _reset(
        self, fault: str, request: Request, reader: Any, writer: asyncio.StreamWriter
    ) -> bool:
        body = completion()
        head = _head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        await _write(writer, head + body[: len(body) // 2])
        await asyncio.sleep(0.01)  # let the client start on the body
        sock = writer.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False

    async def _hangup(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        return False

    async def _invalid_json(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        await _send(writer, 200, completion()[:40])
        return True

    async def _wrong_shape(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        body = {"object": "list", "data": [{"embedding": [0.1, 0.2], "index": 0}]}
        await _send(writer, 200, json.dumps(body).encode())
        return True

    async def _deep_json(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        depth = 100_000  # 200 KB: well under max_response_bytes, far past the parser's stack
        await _send(writer, 200, b"[" * depth + b"]" * depth)
        return True

    async def _huge(
        self, fault: str, request: Request, reader: Any, writer: asyncio.StreamWriter
    ) -> bool:
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        await _write(writer, _head(200, headers))
        chunk = b"[" + b"0," * (CHUNK // 2 - 1) + b"0"  # never more than one chunk in memory
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        while sent < self.huge_bytes:
            await _write(writer, framed)
            sent += len(chunk)
            self.bytes_sent["huge"] += len(chunk)
        await _write(writer, b"0\r\n\r\n")
        return True

    async def _huge_length(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        headers = {"Content-Type": "application/json", "Content-Length": str(self.huge_bytes)}
        await _write(writer, _head(200, headers))
        chunk = b" " * CHUNK
        sent = 0
        while sent < self.huge_bytes:
            piece = chunk[: self.huge_bytes - sent]
            await _write(writer, piece)
            sent += len(piece)
            self.bytes_sent["huge-length"] += len(piece)
        return True

    async def _gzip(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        async with self._bomb_lock:  # built once, not by every concurrent request
            bomb = await asyncio.to_thread(gzip_bomb, self.huge_bytes)
        await _send(writer, 200, bomb, {"Content-Encoding": "gzip"})
        return True

    async def _corrupt_gzip(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        await _send(writer, 200, completion(), {"Content-Encoding": "gzip"})
        return False

    async def _bad_chunk(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        await _write(writer, _head(200, headers) + b"zz\r\n{}\r\n0\r\n\r\n")
        return False

    async def _header_flood(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        await _write(writer, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        line = b"X-Flood: " + b"a" * 1000 + b"\r\n"
        sent = 0
        while sent < self.huge_bytes:
            await _write(writer, line)
            sent += len(line)
            self.bytes_sent["header-flood"] += len(line)
        return False

    async def _garbage(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        await _write(writer, b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        return False

    async def _redirect(self, fault: str, request: Request, reader: Any, writer: Any) -> bool:
        location = self.redirect_url + request.path
        await _send(writer, 302, b"", {"Location": location})
        return True


# ---------------------------------------------------------------- wire helpers


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on the connection; None at a clean EOF between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length > _BODY_LIMIT:
        raise ConnectionResetError("request body too large")
    body = await reader.readexactly(length) if length else b""
    return Request(method, path.split("?", 1)[0], headers, body)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    if writer.is_closing():
        raise _ClientGoneError
    try:
        writer.write(data)
        await writer.drain()
    except (ConnectionError, OSError) as exc:
        raise _ClientGoneError from exc


async def _send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    extra: dict[str, str] | None = None,
) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    headers.update(extra or {})
    await _write(writer, _head(status, headers) + body)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


# ---------------------------------------------------------------- stand-alone


async def _serve(port: int, host: str) -> None:
    server = FaultServer(host, port)
    await server.start()
    print(f"faults listening on {server.url} (redirect target {server.redirect_url})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    """Serve faults until SIGTERM."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    if not args.host.startswith("127."):
        ap.error("the fault server listens on loopback (127.0.0.0/8) only")
    asyncio.run(_serve(args.port, args.host))
    return 0


if __name__ == "__main__":
    sys.exit(main())


class FaultProcess:
    """``python -m tests.hardening.faults`` as a child process (for daemons and the soak)."""

    def __init__(self, port: int = 0, cwd: str | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.hardening.faults", "--port", str(port)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if " on " not in line:
            self.stop()
            raise RuntimeError(f"fault server did not start: {line!r}")
        self.url = line.split(" on ")[1].split(" ")[0]

    def url_for(self, fault: str) -> str:
        """The base URL selecting ``fault`` by path."""
        return f"{self.url}/{fault}/v1"

    def counts(self) -> dict[str, int]:
        """Requests per fault so far, read from ``GET /_counts``."""
        with urllib.request.urlopen(f"{self.url}/_counts", timeout=5) as resp:
            return dict(json.loads(resp.read())["counts"])

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 10 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
