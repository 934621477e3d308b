"""Runner throughput: wall time against the ideal N*L/C, and client CPU per item.

A minimal OpenAI-compatible server runs in a separate process and answers every request
after a fixed latency L (asyncio timers; tens of microseconds per request); the client
runs N items with concurrency C through exactly the code path of `monitor run`
(RunService.execute of a resolved plan: HTTP, scoring, batched SQLite writes, aggregation). CPU is
this process's CPU time (all threads, including the storage writer), so the server's
cost is not counted.

    python benchmarks/runner_throughput.py            # prints and updates docs/performance.md
    python benchmarks/runner_throughput.py --quick    # smaller N, no docs update
    python benchmarks/runner_throughput.py --judged   # with an LLM judge on its own server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- runner_throughput:begin -->", "<!-- runner_throughput:end -->"


_BODY = (
    b'{"id":"b","object":"chat.completion","model":"bench","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"billing"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":20,"completion_tokens":1,"total_tokens":21}}'
)
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(_BODY)).encode()
    + b"\r\n\r\n"
    + _BODY
)
# the stand-in judge's answer: a pass verdict as JSON (monitor/core/judging.py reads it)
_JUDGE_BODY = (
    b'{"id":"j","object":"chat.completion","model":"judge","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"{\\"verdict\\": \\"pass\\", '
    b'\\"reason\\": \\"ok\\"}"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":90,"completion_tokens":9,"total_tokens":99}}'
)
_JUDGE_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(_JUDGE_BODY)).encode()
    + b"\r\n\r\n"
    + _JUDGE_BODY
)
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


class _FixedLatency(asyncio.Protocol):
    """HTTP/1.1 keep-alive server answering every request after `latency` seconds.

    A canned answer from a bare asyncio protocol costs tens of microseconds per request,
    so the figures measure the client, not the stand-in model (an aiohttp app with JSON
    handling costs ~0.5 ms per request and, under bursts of 32, adds its own queueing).
    """

    def __init__(
        self, latency: float, phase: RequestPhase | None = None, body: bytes = _RESPONSE
    ) -> None:
        self.latency = latency
        self.phase = phase
        self.body = body
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            match = _LENGTH.search(self.buffer, 0, end)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            assert self.transport is not None
            answer = (
                self.transport.write if self.phase is None else self.phase.answer(self.transport)
            )
            if self.phase is not None:
                self.phase.received()
            if self.latency:
                asyncio.get_running_loop().call_later(self.latency, answer, self.body)
            else:
                answer(self.body)


class RequestPhase:
    """When the first request arrived and the last answer left (epoch seconds): what
    `benchmarks/startup.py` subtracts from a whole `monitor run` to get its fixed cost."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None

    def received(self) -> None:
        if self.first is None:
            self.first = time.time()

    def answer(self, transport: asyncio.Transport) -> Any:
        def write(data: bytes) -> None:
            transport.write(data)
            self.last = time.time()

        return write

    def take(self) -> str:
        """ "first last" of the requests since the previous take, and start again."""
        line = f"{self.first} {self.last}"
        self.first = self.last = None
        return line


def serve(latency: float, *, timed: bool = False, judge: bool = False) -> None:
    """Child process: the fixed-latency server, until stdin closes.

    With `timed`, each line read from stdin is answered with the request phase since the
    previous line (`RequestPhase.take`).
    """

    async def main() -> None:
        loop = asyncio.get_running_loop()
        phase = RequestPhase() if timed else None
        body = _JUDGE_RESPONSE if judge else _RESPONSE
        server = await loop.create_server(
            lambda: _FixedLatency(latency, phase, body), "127.0.0.1", 0
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        if phase is None:
            await loop.run_in_executor(None, sys.stdin.read)
        else:
            while await loop.run_in_executor(None, sys.stdin.readline):
                print(phase.take(), flush=True)
        server.close()

    # select() sleeps with microsecond resolution; epoll_wait() with milliseconds, which
    # asyncio rounds up: an epoll-based stand-in answers 0-1 ms late and releases answers
    # due within the same millisecond together, in bursts the client then queues behind.
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


CONFIG = """
storage: {{url: "sqlite:///{db}"}}
endpoints:
  - {{name: sim, type: openai-chat, url: "http://127.0.0.1:{port}/v1", model: sim,
      concurrency: {c}, timeout: 30s, retries: 2}}
benchmarks:
  - name: intents
    data: {data}
    prompt: "Classify the customer request as refund, billing or other.\\nRequest: {{{{ text }}}}"
    reference: label
    scorers: [exact_match, {{regex: {{pattern: "^(refund|billing|other)$", name: valid}}}}]
monitors:
  - {{name: bench, benchmark: intents, endpoints: [sim]}}
"""


JUDGED = """
storage: {{url: "sqlite:///{db}"}}
endpoints:
  - {{name: sim, type: openai-chat, url: "http://127.0.0.1:{port}/v1", model: sim,
      concurrency: {c}, timeout: 30s, retries: 2}}
  - {{name: judge, type: openai-chat, url: "http://127.0.0.1:{judge_port}/v1", model: judge,
      concurrency: {cj}, timeout: 30s, retries: 2}}
benchmarks:
  - name: intents
    data: {data}
    prompt: "Classify the customer request as refund, billing or other.\\nRequest: {{{{ text }}}}"
    reference: label
    scorers: [exact_match, {{llm_reference: {{endpoint: judge, name: judged}}}}]
monitors:
  - {{name: bench, benchmark: intents, endpoints: [sim]}}
"""


def _server(latency: float, *, judge: bool = False) -> tuple[subprocess.Popen[str], int]:
    args = [sys.executable, __file__, "--serve", str(latency), *(["--judge"] if judge else [])]
    server = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, int(server.stdout.readline())


def measure_judged(
    n: int, latency: float, c: int, judge_latency: float, cj: int
) -> dict[str, float]:
    """A run with an LLM-judge scorer on its own stand-in server: judge requests start as
    each answer arrives, so the limit is max(N*L/C, N*Lj/Cj) (docs/judges.md)."""
    from monitor.app import cli_service
    from monitor.config import parse_settings
    from monitor.demo.data import write_items
    from monitor.log import configure_logging
    from monitor.storage import open_store

    configure_logging(level="warning")
    import monitor.core.policy  # noqa: F401 - paid once per process, as in a daemon

    model, port = _server(latency)
    judge, judge_port = _server(judge_latency, judge=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = write_items(Path(tmp) / "items.jsonl", n)
            config = JUDGED.format(
                db=f"{tmp}/m.db", port=port, judge_port=judge_port, c=c, cj=cj, data=data
            )
            settings = parse_settings(config)
            store = open_store(settings.storage.url)

            async def timed() -> tuple[Any, float]:
                async with cli_service(settings, store) as service:
                    plan = await service.plan("bench", "sim")
                    wall0 = time.perf_counter()
                    done = await service.execute(plan)
                    return done, time.perf_counter() - wall0

            outcome, wall = asyncio.run(timed())
            judged = sum("judged" in r.scores for r in store.item_results(outcome.run.id))
            store.close()
    finally:
        for server in (model, judge):
            assert server.stdin is not None
            server.stdin.close()
            server.wait(10)
    assert judged == n, f"judged {judged} of {n} items"
    limit = max(n * latency / c, n * judge_latency / cj)
    return {
        "n": n,
        "latency_ms": latency * 1000,
        "concurrency": c,
        "judge_latency_ms": judge_latency * 1000,
        "judge_concurrency": cj,
        "wall_s": wall,
        "limit_s": limit,
        "ratio": wall / limit,
        "errors": outcome.run.n_errors,
    }


def judged_line(r: dict[str, float]) -> str:
    return (
        f"N={r['n']:>5.0f} L={r['latency_ms']:>3.0f}ms C={r['concurrency']:>3.0f} "
        f"Lj={r['judge_latency_ms']:>3.0f}ms Cj={r['judge_concurrency']:>3.0f}  "
        f"wall {r['wall_s']:6.2f}s  limit max(N*L/C, N*Lj/Cj) {r['limit_s']:5.2f}s  "
        f"wall/limit {r['ratio']:.3f}x  errors {r['errors']:.0f}"
    )


def measure(n: int, latency: float, concurrency: int) -> dict[str, float]:
    """One configuration: start the server, run once, return the figures."""
    from monitor.app import cli_service
    from monitor.config import parse_settings
    from monitor.demo.data import write_items
    from monitor.log import configure_logging
    from monitor.storage import open_store

    configure_logging(level="warning")
    # A daemon pays its lazy imports (the statistics stack) once per process, not per run:
    # do that here so the figures are the run's, as `duration_s` is in `monitor run`.
    import monitor.core.policy  # noqa: F401

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            data = write_items(Path(tmp) / "items.jsonl", n)
            settings = parse_settings(
                CONFIG.format(db=f"{tmp}/m.db", port=port, c=concurrency, data=data)
            )
            store = open_store(settings.storage.url)

            async def timed() -> tuple[Any, float, float]:
                async with cli_service(settings, store) as service:
                    plan = await service.plan("bench", "sim")  # loads the benchmark
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    done = await service.execute(plan)
                    return done, time.perf_counter() - wall0, time.process_time() - cpu0

            outcome, wall, cpu = asyncio.run(timed())
            stored = len(store.item_results(outcome.run.id))
            store.close()
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    assert stored == n, f"stored {stored} of {n} item results"
    ideal = n * latency / concurrency
    return {
        "n": n,
        "latency_ms": latency * 1000,
        "concurrency": concurrency,
        "wall_s": wall,
        "run_s": outcome.duration_s,
        "run_ratio": outcome.duration_s / ideal if ideal else float("nan"),
        "ideal_s": ideal,
        "ratio": wall / ideal if ideal else float("nan"),
        "cpu_ms_per_item": cpu / n * 1000,
        "items_per_s": n / wall,
        "errors": outcome.run.n_errors,
    }


def line(r: dict[str, float]) -> str:
    ratio = "   n/a" if r["ideal_s"] == 0 else f"{r['ratio']:.3f}x"
    run_ratio = "   n/a" if r["ideal_s"] == 0 else f"{r['run_ratio']:.3f}x"
    return (
        f"N={r['n']:>6.0f} L={r['latency_ms']:>3.0f}ms C={r['concurrency']:>3.0f}  "
        f"wall {r['wall_s']:7.2f}s  ideal {r['ideal_s']:6.2f}s  wall/ideal {ratio}  "
        f"run duration_s/ideal {run_ratio}  "
        f"CPU {r['cpu_ms_per_item']:.3f} ms/item  {r['items_per_s']:7.0f} items/s  "
        f"errors {r['errors']:.0f}"
    )


def write_doc(
    lines: list[str],
    repeat: int,
    markers: tuple[str, str] = (BEGIN, END),
    title: str = "",
    command: str = "python benchmarks/runner_throughput.py",
) -> None:
    begin, end = markers
    block = "\n".join(
        [
            begin,
            f"Measured {time.strftime('%Y-%m-%d')} on this machine "
            f"({os.cpu_count()} cores), `{command}` "
            f"(each case run {repeat} times, the median run shown):",
            "",
            "```",
            *lines,
            "```",
            end,
        ]
    )
    text = DOC.read_text() if DOC.exists() else "# Performance\n\n"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## {title or 'Runner throughput'}\n\n" + block + "\n"
    DOC.write_text(text)


JUDGED_MARKERS = (
    "<!-- runner_throughput_judged:begin -->",
    "<!-- runner_throughput_judged:end -->",
)


def main_judged(repeat: int, quick: bool) -> None:
    """`--judged`: runs with a judge scorer, against the pipelined limit."""
    cases = (
        [(300, 0.05, 32, 0.1, 32)]
        if quick
        else [(1000, 0.05, 32, 0.1, 32), (1000, 0.05, 32, 0.05, 16), (1000, 0.1, 32, 0.02, 8)]
    )
    lines = []
    for n, lat, c, lj, cj in cases:
        runs = sorted(
            (measure_judged(n, lat, c, lj, cj) for _ in range(repeat)), key=lambda r: r["wall_s"]
        )
        text = judged_line(runs[len(runs) // 2])
        if repeat > 1:
            text += f"  (median of {repeat}; {runs[0]['ratio']:.3f}-{runs[-1]['ratio']:.3f})"
        lines.append(text)
        print(text, flush=True)
    if not quick:
        write_doc(
            lines,
            repeat,
            JUDGED_MARKERS,
            "Runner throughput with an LLM judge",
            "python benchmarks/runner_throughput.py --judged",
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--timed", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--judge", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--judged", action="store_true", help="runs with an LLM-judge scorer")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs per case; the median run is reported (3)"
    )
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, timed=args.timed, judge=args.judge)
        return
    if args.judged:
        main_judged(1 if args.quick else max(1, args.repeat), args.quick)
        return
    cases = (
        [(500, 0.05, 32), (2000, 0.0, 32)]
        if args.quick
        else [(1000, 0.05, 32), (10_000, 0.05, 32), (10_000, 0.0, 32)]
    )
    repeat = 1 if args.quick else max(1, args.repeat)
    lines = []
    for n, lat, c in cases:
        # This machine is shared: repeat each case and report the run with the median
        # wall time, with the spread of the ratio across runs.
        runs = sorted((measure(n, lat, c) for _ in range(repeat)), key=lambda r: r["wall_s"])
        result = runs[len(runs) // 2]
        text = line(result)
        if repeat > 1 and lat:
            low, high = runs[0]["ratio"], runs[-1]["ratio"]
            text += f"  (median of {repeat}; wall/ideal {low:.3f}-{high:.3f})"
        lines.append(text)
        print(lines[-1], flush=True)
        for r in runs:
            print(json.dumps(r), file=sys.stderr)
    if not args.quick:
        write_doc(lines, repeat)


if __name__ == "__main__":
    main()
