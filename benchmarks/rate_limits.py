"""Throughput under a provider's rate limits, with and without telling monitor the limits.

A stand-in OpenAI-compatible server runs in its own process and enforces a requests-per-
minute and a tokens-per-minute limit the two ways providers do, each answering a request
over either limit with 429 and ``Retry-After``:

- windows: fixed windows from its first request; Retry-After is the time until the
  window resets;
- buckets: continuous refill at the same rates with one second's worth of capacity;
  Retry-After is the time until the missing capacity has refilled.

A request's tokens are its prompt's characters / 4 plus 1 completion token, reported in
the answer's ``usage``. To keep the benchmark short, the "minute" is scaled down: each
limit is enforced as its share per ``--window`` seconds (6 s: a tenth), so Retry-After
values are fractional seconds.

The client runs N items through the code path of `monitor run` (RunService.execute of a
resolved plan, as benchmarks/runner_throughput.py does) with `concurrency` 32, once with
``rate_limit: {requests_per_minute, tokens_per_minute}`` set to the enforced limits
("told") and once without any (``not told``: the adaptive limit and the learned rate of
monitor/core/concurrency.py have to find it). Figures, from the server's counts:

- share of the limit: per complete window, the accepted requests or tokens over the
  window's quota, whichever limit binds; the mean over the complete windows (the last,
  partial window is left out) and the lowest;
- rejected: 429 answers over all requests received.

    python benchmarks/rate_limits.py            # prints and updates docs/performance.md
    python benchmarks/rate_limits.py --quick    # fewer items, no docs update
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from benchmarks._doc import update_doc

REQUESTS_PER_MINUTE = 3600.0
TOKENS_PER_MINUTE = 90_000.0
CONCURRENCY = 32
LATENCY_S = 0.05


class _Limits:
    """The enforcing server's state: fixed windows from the first request."""

    def __init__(self, rpm: float, tpm: float, window: float) -> None:
        self.window = window
        self.max_requests = rpm * window / 60.0
        self.max_tokens = tpm * window / 60.0
        self.start: float | None = None
        self.windows: dict[int, list[int]] = {}  # index -> [accepted, tokens, rejected]

    def admit(self, now: float, tokens: int) -> float | None:
        """None if the request is admitted, else the seconds until its window resets."""
        if self.start is None:
            self.start = now
        index = int((now - self.start) // self.window)
        counts = self.windows.setdefault(index, [0, 0, 0])
        if counts[0] + 1 > self.max_requests or counts[1] + tokens > self.max_tokens:
            counts[2] += 1
            return self.start + (index + 1) * self.window - now
        counts[0] += 1
        counts[1] += tokens
        return None


class _Buckets:
    """Continuous replenishment (token buckets holding one second's worth): the other
    way providers enforce per-minute limits. Counts are kept per ``window`` for the report."""

    def __init__(self, rpm: float, tpm: float, window: float) -> None:
        self.window = window
        self.max_requests = rpm * window / 60.0
        self.max_tokens = tpm * window / 60.0
        self.rates = (rpm / 60.0, tpm / 60.0)
        self.levels = list(self.rates)  # start full: one second's worth each
        self.stamp: float | None = None
        self.start: float | None = None
        self.windows: dict[int, list[int]] = {}

    def admit(self, now: float, tokens: int) -> float | None:
        if self.start is None:
            self.start = self.stamp = now
        assert self.stamp is not None
        for i, rate in enumerate(self.rates):
            self.levels[i] = min(rate, self.levels[i] + (now - self.stamp) * rate)
        self.stamp = now
        index = int((now - self.start) // self.window)
        counts = self.windows.setdefault(index, [0, 0, 0])
        costs = (1.0, float(tokens))
        short = [
            (cost - level) / rate
            for cost, level, rate in zip(costs, self.levels, self.rates, strict=True)
            if level < cost
        ]
        if short:
            counts[2] += 1
            return max(short)
        self.levels = [level - cost for level, cost in zip(self.levels, costs, strict=True)]
        counts[0] += 1
        counts[1] += tokens
        return None


def serve(rpm: float, tpm: float, window: float, latency: float, bucket: float) -> None:
    """Child process: the enforcing server, until stdin closes."""
    from aiohttp import web

    async def main() -> None:
        loop = asyncio.get_running_loop()
        limits = _Buckets(rpm, tpm, window) if bucket else _Limits(rpm, tpm, window)

        async def chat(request: web.Request) -> web.Response:
            body = await request.json()
            text = "".join(str(m.get("content", "")) for m in body.get("messages", []))
            prompt = max(1, len(text) // 4)
            wait = limits.admit(loop.time(), prompt + 1)
            if wait is not None:
                return web.json_response(
                    {"error": {"message": "rate limit reached", "type": "rate_limit"}},
                    status=429,
                    headers={"Retry-After": f"{max(wait, 0.001):.3f}"},
                )
            await asyncio.sleep(latency)
            return web.json_response(
                {
                    "id": "r",
                    "object": "chat.completion",
                    "model": "sim",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "billing"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": 1,
                        "total_tokens": prompt + 1,
                    },
                }
            )

        async def stats(_: web.Request) -> web.Response:
            windows = [limits.windows[i] for i in sorted(limits.windows)]
            return web.json_response(
                {
                    "windows": windows,
                    "max_requests": limits.max_requests,
                    "max_tokens": limits.max_tokens,
                }
            )

        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


CONFIG = """
storage: {{url: "sqlite:///{db}"}}
endpoints:
  - {{name: sim, type: openai-chat, url: "http://127.0.0.1:{port}/v1", model: sim,
      concurrency: {c}, timeout: 30s, retries: 20, backoff: 0.1s{rate_limit}}}
benchmarks:
  - name: intents
    data: {data}
    prompt: "Classify the customer request as refund, billing or other.\\nRequest: {{{{ text }}}}"
    reference: label
    scorers: [exact_match]
monitors:
  - {{name: bench, benchmark: intents, endpoints: [sim]}}
"""


def measure(n: int, window: float, told: bool, bucket: bool) -> dict[str, Any]:
    """One case: start the server, run once, return the server's and the run's figures."""
    from monitor.app import cli_service
    from monitor.config import parse_settings
    from monitor.demo.data import write_items
    from monitor.log import configure_logging
    from monitor.storage import open_store

    configure_logging(level="warning")
    server = subprocess.Popen(
        [
            *(sys.executable, __file__, "--serve"),
            *(str(REQUESTS_PER_MINUTE), str(TOKENS_PER_MINUTE), str(window), str(LATENCY_S)),
            "1" if bucket else "0",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    # per real minute: a 6 s window holding a tenth of each is the same rate
    rate_limit = (
        f", rate_limit: {{requests_per_minute: {REQUESTS_PER_MINUTE:g}, "
        f"tokens_per_minute: {TOKENS_PER_MINUTE:g}}}"
        if told
        else ""
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            data = write_items(Path(tmp) / "items.jsonl", n)
            settings = parse_settings(
                CONFIG.format(
                    db=f"{tmp}/m.db", port=port, c=CONCURRENCY, data=data, rate_limit=rate_limit
                )
            )
            store = open_store(settings.storage.url)

            async def run() -> Any:
                async with cli_service(settings, store) as service:
                    plan = await service.plan("bench", "sim")
                    return await service.execute(plan)

            outcome = asyncio.run(run())
            stored = store.item_results(outcome.run.id)
            store.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as resp:
            server_stats = json.load(resp)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    windows = server_stats["windows"]
    full = windows[:-1] or windows
    shares = [
        max(w[0] / server_stats["max_requests"], w[1] / server_stats["max_tokens"]) for w in full
    ]
    accepted = sum(w[0] for w in windows)
    rejected = sum(w[2] for w in windows)
    return {
        "told": told,
        "bucket": bucket,
        "n": n,
        "window_s": window,
        "windows": len(windows),
        "share_mean": sum(shares) / len(shares),
        "share_min": min(shares),
        "accepted": accepted,
        "rejected": rejected,
        "rejected_share": rejected / (accepted + rejected),
        "status": str(outcome.run.status),
        "errors": outcome.run.n_errors,
        "stored": len(stored),
        "answered": sum(1 for r in stored if r.output is not None),
        "per_window": windows,
    }


def line(r: dict[str, Any]) -> str:
    mode = "buckets" if r["bucket"] else "windows"
    told = "told    " if r["told"] else "not told"
    return (
        f"{mode} {told} N={r['n']:>5}  {r['windows'] - 1:>2} full windows: share of the limit "
        f"mean {r['share_mean']:6.1%} (lowest {r['share_min']:6.1%})  "
        f"rejected {r['rejected']:>4} of {r['accepted'] + r['rejected']:>5} "
        f"({r['rejected_share']:5.2%})  run {r['status']}, {r['answered']}/{r['n']} answered, "
        f"{r['errors']} errors"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", nargs=5, type=float, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="fewer items, no docs update")
    ap.add_argument("--window", type=float, default=6.0, help="seconds per 'minute' (6)")
    args = ap.parse_args()
    if args.serve is not None:
        serve(*args.serve)
        return
    window = args.window
    per_window = TOKENS_PER_MINUTE * window / 60.0 / 31.0  # ~31 tokens per request
    n = math.ceil(per_window * (2.5 if args.quick else 5.5))
    lines = [
        f"limits {REQUESTS_PER_MINUTE:g} requests and {TOKENS_PER_MINUTE:g} tokens per minute "
        f"(requests of ~31 tokens: the tokens limit binds); answers after "
        f"{LATENCY_S * 1000:g} ms; concurrency {CONCURRENCY}; 429 + fractional Retry-After",
        f"windows: fixed {window:g} s windows from the first request, a scaled-down minute "
        f"holding {REQUESTS_PER_MINUTE * window / 60:g} requests and "
        f"{TOKENS_PER_MINUTE * window / 60:g} tokens; Retry-After = until the window resets",
        "buckets: continuous refill at the same rates, one second's worth of capacity "
        "(full at the start: the first window's share exceeds 100 %); Retry-After = until "
        "the missing capacity refills; counted per window as above",
    ]
    for text in lines:
        print(text, flush=True)
    for bucket in (False, True):
        for told in (True, False):
            result = measure(n, window, told, bucket)
            lines.append(line(result))
            print(lines[-1], flush=True)
            print(json.dumps(result), file=sys.stderr)
    if not args.quick:
        update_doc("rate_limits", "Rate limits", lines, "python benchmarks/rate_limits.py")


if __name__ == "__main__":
    main()
