"""Render time of the /ui/ pages at scale, over HTTP from the daemon's own app.

* run page: a 10,000-item run with 300 flipped items (its verdict names them; the
  baseline run holds the outputs before), the first page and a page deep in the list;
* overview: 200 (monitor, endpoint) pairs (20 monitors x 10 endpoints), 20 runs each:
  with no new run since the last view, with one (the usual case: a pair's run finished),
  and with nothing cached (the first view after a start).

History is written to a real SQLite store (tests/ui/seed.py); the pages are served by
`monitor.api.create_api` under uvicorn on 127.0.0.1 and fetched over HTTP with one
keep-alive connection, as a browser would, after `gc.freeze()` as in `monitor serve`.
Prints the median and p95 of 100 requests per page and writes them to
docs/performance.md. Targets (issue #15): run page < 300 ms p95, overview < 200 ms p95.

    python benchmarks/ui.py
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from benchmarks._doc import update_doc
from monitor.api import create_api
from monitor.api.ui import OverviewCache
from monitor.storage import SqlStore, open_store
from tests.ui.seed import flip_verdict, seed_benchmark, seed_run

ITEMS, FLIPPED = 10_000, 300
MONITORS, ENDPOINTS, HISTORY = 20, 10, 20
REQUESTS = 100
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def big_run(store: SqlStore) -> int:
    """A baseline run and a 10,000-item run with 300 items flipped pass -> fail."""
    keys = seed_benchmark(store, T0, name="big", n=ITEMS)
    passed = {k: i % 10 != 0 for i, k in enumerate(keys)}
    long_answer = "The answer, with the reasoning that led to it, is {}. " * 6
    outputs = {k: long_answer.replace("{}", k) for k in keys}
    base = seed_run(
        store, monitor="big", endpoint="ep", started_at=T0, passed=passed, outputs=outputs,
        benchmark="big",
    )  # fmt: skip
    flipped = [k for i, k in enumerate(keys) if i % 10 != 0][:: (ITEMS * 9 // 10) // FLIPPED][
        :FLIPPED
    ]
    after = dict(passed) | dict.fromkeys(flipped, False)
    changed = {k: outputs[k].replace("reasoning", "wrong reasoning") for k in flipped}
    run = seed_run(
        store,
        monitor="big",
        endpoint="ep",
        started_at=T0 + timedelta(hours=1),
        passed=after,
        outputs=outputs | changed,
        benchmark="big",
        verdict=flip_verdict(base.id, flipped),
    )
    return run.id


def many_pairs(store: SqlStore) -> SimpleNamespace:
    """20 monitors x 10 endpoints with 20 small runs each; the settings that name them."""
    keys = seed_benchmark(store, T0, name="small", n=20)
    monitors = []
    for m in range(MONITORS):
        endpoints = [f"endpoint-{e}" for e in range(ENDPOINTS)]
        monitors.append(
            SimpleNamespace(name=f"monitor-{m:02d}", benchmark="small", endpoints=endpoints,
                            schedule=None)
        )  # fmt: skip
        for e in endpoints:
            for h in range(HISTORY):
                seed_run(
                    store,
                    monitor=f"monitor-{m:02d}",
                    endpoint=e,
                    started_at=T0 + timedelta(hours=h),
                    passed={k: (i + h) % 7 != 0 for i, k in enumerate(keys)},
                    benchmark="small",
                )
    return SimpleNamespace(monitors=monitors, server=SimpleNamespace(ui_auth=False))


def timed(port: int, path: str, before: Callable[[], None]) -> tuple[float, float, int]:
    """(median ms, p95 ms, bytes) of `REQUESTS` GETs of `path` on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, size = [], 0
    for _ in range(REQUESTS + 5):
        before()
        t = time.perf_counter()
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
        times.append(1000 * (time.perf_counter() - t))
        assert answer.status == 200, (path, answer.status, body[:200])
        size = len(body)
    conn.close()
    times = sorted(times[5:])  # the first requests compile the templates
    return statistics.median(times), times[int(0.95 * len(times)) - 1], size


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/m.db")
        t = time.perf_counter()
        run_id = big_run(store)
        settings = many_pairs(store)
        print(f"seeded in {time.perf_counter() - t:.0f} s")
        app = create_api(SimpleNamespace(store=store, settings=settings))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        pairs = f"{MONITORS * ENDPOINTS} monitor/endpoint pairs x {HISTORY} runs"
        # as `monitor serve` does after start-up (monitor/app.py, run_daemon): the
        # start-up objects leave the collector's sight, so full collections scan only
        # what requests allocate
        gc.collect()
        gc.freeze()

        def cold() -> None:  # the first view after a start: nothing is cached
            app.state.ui_overview = OverviewCache()

        fresh = iter(range(10**6))

        def one_run() -> None:  # a run of one pair finished since the last view
            k = next(fresh)
            seed_run(
                store,
                monitor=f"monitor-{k % MONITORS:02d}",
                endpoint=f"endpoint-{k % ENDPOINTS}",
                started_at=T0 + timedelta(hours=HISTORY + k),
                passed={f"i{i}": (i + k) % 7 != 0 for i in range(20)},
                benchmark="small",
            )

        def keep() -> None:
            pass

        run_page = f"/ui/runs/{run_id}"
        pages: list[tuple[str, str, Callable[[], None]]] = [
            (f"run page, {ITEMS:,} items, {FLIPPED} flipped, page 1 of 6", run_page, keep),
            ("run page, same run, page 5 of 6", f"{run_page}?page=5", keep),
            ("run page, same run, filtered to one split", f"{run_page}?split=hard", keep),
            (f"overview, {pairs}, no run since the last view", "/ui/", keep),
            (f"overview, {pairs}, one run finished since the last view", "/ui/", one_run),
            (f"overview, {pairs}, first view after a start (nothing cached)", "/ui/", cold),
        ]
        lines = []
        for label, path, before in pages:
            median, p95, size = timed(port, path, before)
            line = (
                f"{label}: median {median:.0f} ms, p95 {p95:.0f} ms "
                f"({size / 1024:.0f} KiB, {REQUESTS} requests)"
            )
            print(line)
            lines.append(line)
        server.should_exit = True
        thread.join(10)
        store.close()
    load = os.getloadavg()[0]
    lines.append(f"(load average {load:.1f} on {os.cpu_count()} cores while measuring)")
    print(lines[-1])
    update_doc("ui", "Web pages (/ui/)", lines, "python benchmarks/ui.py")


if __name__ == "__main__":
    main()
