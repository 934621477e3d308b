"""/metrics latency at scale: 50 monitors x 10 endpoints x 10 scorers (5,000 score series).

Runs, scores and verdicts are written to a real SQLite store; the snapshot is built from
it by the daemon's own code (`build_snapshot` over the store reads); `/metrics` is served
by the daemon's FastAPI app under uvicorn on loopback and scraped over HTTP, as Prometheus
would. Prints the median and p95 latency and the size of the exposition.

    python benchmarks/scrape.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import uvicorn

from monitor.api import create_api
from monitor.core.model import (
    ChangedItems,
    RunStatus,
    ScoreSummary,
    Verdict,
    VerdictKind,
)
from monitor.metrics import Metrics, MonitorTarget, build_snapshot
from monitor.storage import open_store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from benchmarks._doc import update_doc

MONITORS, ENDPOINTS, SCORERS = 50, 10, 10


def populate(url: str) -> list[MonitorTarget]:
    store = open_store(url)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    targets = []
    for m in range(MONITORS):
        for e in range(ENDPOINTS):
            monitor, endpoint = f"monitor-{m:02d}", f"endpoint-{e}"
            scorers = tuple(f"scorer_{s}" for s in range(SCORERS))
            targets.append(MonitorTarget(monitor, f"bench-{m:02d}", endpoint, 3600.0, 0.8, scorers))
            run = store.start_run(
                monitor=monitor,
                benchmark=f"bench-{m:02d}",
                benchmark_version="v1",
                endpoint=endpoint,
                trigger="schedule",
                started_at=t0,
            )
            store.finish_run(
                run.id,
                status=RunStatus.SUCCEEDED,
                finished_at=t0 + timedelta(seconds=30),
                n_items=1000,
                n_errors=3,
                model_id="m",
                scores=[ScoreSummary(s, 0.9, 0.88, 0.92, 1000) for s in scorers],
            )
            store.save_verdicts(
                run.id,
                [
                    Verdict(
                        s,
                        VerdictKind.OK,
                        "paired_binary",
                        "rolling:5",
                        statistic=0.1,
                        p_value=0.4,
                        p_adjusted=0.8,
                        effect=-0.001,
                        effect_ci=(-0.01, 0.008),
                        baseline_score=0.901,
                        changed=ChangedItems(),
                    )
                    for s in scorers
                ],
            )
    snapshot_metrics = Metrics()
    latest = store.latest_runs()
    ids = [r.id for r in latest]
    t = time.perf_counter()
    snap = build_snapshot(
        latest_runs=latest,
        scores=store.run_scores(ids),
        verdicts=store.run_verdicts(ids),
        run_counts=store.run_counts(),
        item_totals=store.item_totals(),
        targets=targets,
    )
    print(f"snapshot rebuilt from the store in {1000 * (time.perf_counter() - t):.0f} ms")
    t = time.perf_counter()
    snapshot_metrics.update(snap)
    print(f"store series rendered once per snapshot in {1000 * (time.perf_counter() - t):.0f} ms")
    store.close()
    POPULATED.append(snapshot_metrics)
    return targets


POPULATED: list[Metrics] = []


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        populate(f"sqlite:///{tmp}/m.db")
    metrics = POPULATED[0]
    daemon = SimpleNamespace(metrics_text=metrics.render, store=None, settings=None)
    app = create_api(daemon)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/metrics"
    body = urllib.request.urlopen(url, timeout=10).read()
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    score_series = body.decode().count("monitor_benchmark_score{")
    times = []
    for _ in range(100):
        t = time.perf_counter()
        urllib.request.urlopen(url, timeout=10).read()
        times.append(1000 * (time.perf_counter() - t))
    server.should_exit = True
    thread.join(10)
    times.sort()
    line = (
        f"/metrics with {score_series} score series "
        f"({series} samples, {len(body) / 1024:.0f} KiB): "
        f"median {statistics.median(times):.1f} ms, p95 {times[94]:.1f} ms, "
        f"min {times[0]:.1f} ms over 100 scrapes"
    )
    print(line)
    update_doc("scrape", "Scrape latency", [line], "python benchmarks/scrape.py")


if __name__ == "__main__":
    main()
