"""Client CPU per request: bare aiohttp, bare httpx, and monitor's full endpoint adapter.

Starts a local aiohttp server in a child process (so its CPU is not counted), then, for
each client, sends warm-up requests followed by ``--requests`` timed POSTs at
``--concurrency`` in flight, and reports the client process's CPU time (user + system)
per request, the median of ``--repeat`` rounds. The body and answer are an OpenAI chat
completion (about 300 bytes each way), parsed with json.loads as the product does.

    .venv/bin/python benchmarks/http_client.py [--requests 5000] [--concurrency 16]

httpx is not a dependency of monitor; its row is skipped unless it is importable, e.g.
``pip install --target /tmp/httpx-bench httpx`` and ``PYTHONPATH=/tmp/httpx-bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import aiohttp
from aiohttp import web

from monitor.config import EndpointSettings
from monitor.core.model import Item
from monitor.endpoints import HttpClient, build_endpoint

httpx: ModuleType | None
try:
    import httpx
except ImportError:  # optional: only for the comparison row
    httpx = None

ANSWER = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "refund"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 42, "completion_tokens": 1, "total_tokens": 43},
    }
).encode()
PROMPT = "Classify the request: I was charged twice for my subscription, please help"
BODY = json.dumps(
    {"model": "bench-model", "messages": [{"role": "user", "content": PROMPT}], "temperature": 0}
).encode()
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench-key"}


def serve() -> None:
    """Child process: answer every POST with ANSWER; print the port, run until stdin closes."""

    async def answer(_request: web.Request) -> web.Response:
        await _request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # parent closed the pipe: stop
        await runner.cleanup()

    asyncio.run(main())


async def drive(send: Callable[[], Awaitable[Any]], requests: int, concurrency: int) -> float:
    """Send `requests` requests with `concurrency` workers; CPU seconds used per request."""
    per_worker = requests // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await send()

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu) / (per_worker * concurrency)


async def bench_aiohttp(url: str, args: argparse.Namespace) -> list[float]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        timeout = aiohttp.ClientTimeout(total=30)

        async def send() -> Any:
            async with session.post(url, data=BODY, headers=HEADERS, timeout=timeout) as r:
                return json.loads(await r.read())

        await drive(send, args.warmup, args.concurrency)
        return [await drive(send, args.requests, args.concurrency) for _ in range(args.repeat)]


async def bench_httpx(url: str, args: argparse.Namespace) -> list[float] | None:
    if httpx is None:
        return None
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def send() -> Any:
            r = await client.post(url, content=BODY, headers=HEADERS)
            return json.loads(r.content)

        await drive(send, args.warmup, args.concurrency)
        return [await drive(send, args.requests, args.concurrency) for _ in range(args.repeat)]


async def bench_monitor(base: str, args: argparse.Namespace) -> list[float]:
    settings = EndpointSettings.model_validate(
        {
            "name": "bench",
            "type": "openai-chat",
            "url": base,
            "model": "bench-model",
            "headers": {"Authorization": "Bearer bench-key"},
            "params": {"temperature": 0},
            "concurrency": args.concurrency,
        }
    )
    item = Item(key="k", fields={"text": PROMPT}, prompt=PROMPT)
    async with HttpClient() as http:
        endpoint = build_endpoint(settings, http)

        async def send() -> Any:
            response = await endpoint.predict(item)
            assert response.output == "refund", response
            return response

        await drive(send, args.warmup, args.concurrency)
        return [await drive(send, args.requests, args.concurrency) for _ in range(args.repeat)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        base = f"http://127.0.0.1:{port}/v1"
        url = base + "/chat/completions"
        print(
            f"client CPU per request, median of {args.repeat} rounds of {args.requests} "
            f"requests at concurrency {args.concurrency} (server in a separate process)"
        )
        rows: list[tuple[str, list[float] | None]] = [
            ("aiohttp (bare ClientSession)", asyncio.run(bench_aiohttp(url, args))),
            ("httpx (bare AsyncClient)", asyncio.run(bench_httpx(url, args))),
            ("monitor openai-chat predict (all-in)", asyncio.run(bench_monitor(base, args))),
        ]
        for name, rounds in rows:
            if rounds is None:
                print(f"  {name:40s} skipped: not installed")
                continue
            spread = ", ".join(f"{r * 1e3:.3f}" for r in rounds)
            print(f"  {name:40s} {statistics.median(rounds) * 1e3:.3f} ms  ({spread})")
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
