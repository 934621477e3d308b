"""A year of history (issue #17): 5,000 runs x 1,000 item results on SQLite and PostgreSQL.

The history is written through the store's own API (`SqlStore.start_run`,
`add_item_results` in batches of 1,000, `finish_run`, `save_verdicts`), one run every
~1.75 hours over 365 days, spread over 10 monitors x 5 endpoints. Then, per database:

* judging a new 1,000-item run against `rolling:20` (`StoreJudge.judge_sync`, what the
  runner's judge hook runs in a thread), with the store reads it makes timed apart;
* the runs API (one monitor/endpoint pair, and unfiltered) and the run-items API, p95 of
  200 requests each over HTTP from `monitor.api.create_api` under uvicorn on 127.0.0.1;
* the daemon's start-up with the metric restore (`build_daemon` and `Daemon.running()`
  up to the point it serves: orphans, the metrics snapshot from the store, the scheduler);
* the on-disk bytes per item result (SQLite: dbstat pages of the table and its indexes;
  PostgreSQL: pg_total_relation_size, heap + TOAST + indexes);
* a retention prune of 1 million rows (`SqlStore.prune_item_results`) while two writer
  threads keep running 1,000-item runs in batches of 256 (the runner's batch size): the
  longest any of their store calls took during the prune.

Targets: judging < 100 ms, API p95 < 50 ms, start-up restore < 2 s, no write stalled
> 1 s by the prune. Prints every figure and writes them to docs/performance.md.

    python benchmarks/history.py                      # both databases, full size
    python benchmarks/history.py --quick              # smoke check: 200 runs x 100 items
    python benchmarks/history.py --runs 1000 --items 500 --backend sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import sqlalchemy as sa
import uvicorn
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from benchmarks._doc import update_doc
from monitor.api import create_api
from monitor.app import build_daemon
from monitor.config import load_settings
from monitor.core.evidence import RunEvidence
from monitor.core.model import (
    Benchmark,
    Item,
    ItemResult,
    RunStatus,
    ScorerSpec,
    ScoreSummary,
    Usage,
    Verdict,
    VerdictKind,
)
from monitor.core.scoring import build_scorer
from monitor.judge import StoreJudge
from monitor.storage import SqlStore, open_store

MONITORS, ENDPOINTS = 10, 5
SCORER = "exact_match"
T0 = datetime(2025, 12, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
ADMIN = "host=127.0.0.1 user=postgres dbname=test"
PRUNE_ROWS = 1_000_000
WRITE_BATCH = 256  # the runner's default batch size (monitor/runner.py)
REQUESTS = 200
JUDGINGS = 20

CONFIG = """\
storage: {{url: "{url}"}}
server: {{listen: "127.0.0.1:1"}}
endpoints:
{endpoints}
benchmarks:
  - {{name: qa, data: items.jsonl, prompt: "{{{{ text }}}}", reference: label,
      scorers: [exact_match]}}
monitors:
{monitors}
"""


def pairs() -> list[tuple[str, str]]:
    return [(f"m{m:02d}", f"e{e}") for m in range(MONITORS) for e in range(ENDPOINTS)]


def write_config(folder: Path, url: str, items: int) -> Path:
    """The daemon's settings naming every seeded (monitor, endpoint) pair."""
    rows = [{"id": f"i{k}", "text": f"q{k}", "label": "yes"} for k in range(items)]
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    endpoints = "".join(
        f'  - {{name: e{e}, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}}\n'
        for e in range(ENDPOINTS)
    )
    endpoint_names = ", ".join(f"e{e}" for e in range(ENDPOINTS))
    monitors = "".join(
        f"  - {{name: m{m:02d}, benchmark: qa, endpoints: [{endpoint_names}], "
        f'drift: {{baseline: "rolling:20"}}}}\n'
        for m in range(MONITORS)
    )
    path = folder / "monitor.yaml"
    path.write_text(CONFIG.format(url=url, endpoints=endpoints, monitors=monitors))
    return path


# ---------------------------------------------------------------- seeding


def result_pool(items: int, variants: int = 8) -> list[list[ItemResult]]:
    """Synthetic 1,000-item runs: a ~90% model whose misses move between variants,
    answers of 60-260 characters, latencies of 0.2-2 s, token counts on every answer."""
    rng = random.Random(17)
    words = [
        "the",
        "answer",
        "is",
        "based",
        "on",
        "the",
        "context",
        "given",
        "and",
        "the",
        "reference",
        "of",
        "item",
    ]
    pool = []
    for v in range(variants):
        results = []
        for k in range(items):
            ok = rng.random() < 0.9 or (k + v) % 23 == 0
            text = " ".join(rng.choice(words) for _ in range(rng.randint(10, 45)))
            results.append(
                ItemResult(
                    item_key=f"i{k}",
                    output=f"{'yes' if ok else 'no'}: {text}",
                    scores={SCORER: 1.0 if ok else 0.0},
                    latency_s=rng.uniform(0.2, 2.0),
                    usage=Usage(
                        prompt_tokens=rng.randint(80, 200), completion_tokens=len(text) // 4
                    ),
                )
            )
        pool.append(results)
    return pool


def summary(results: Sequence[ItemResult]) -> ScoreSummary:
    values = [r.scores[SCORER] for r in results]
    p = sum(values) / len(values)
    return ScoreSummary(SCORER, p, p - 0.02, p + 0.02, len(values))


def seed(store: SqlStore, runs: int, items: int, pool: list[list[ItemResult]]) -> float:
    """Write the history; returns the seconds it took."""
    store.save_benchmark(
        Benchmark(
            "qa",
            "v1",
            tuple(Item(f"i{k}", {"text": f"q{k}"}, None, "yes") for k in range(items)),
            (ScorerSpec(SCORER, SCORER),),
        ),
        T0,
    )
    all_pairs = pairs()
    step = YEAR / runs
    t = time.perf_counter()
    for k in range(runs):
        monitor, endpoint = all_pairs[k % len(all_pairs)]
        started = T0 + k * step
        run = store.start_run(
            monitor=monitor,
            benchmark="qa",
            benchmark_version="v1",
            endpoint=endpoint,
            trigger="schedule",
            started_at=started,
        )
        results = pool[k % len(pool)]
        for start in range(0, items, 1000):
            store.add_item_results(run.id, results[start : start + 1000])
        kind = VerdictKind.REGRESSED if k % 53 == 0 else VerdictKind.OK
        store.save_verdicts(run.id, [Verdict(SCORER, kind, "mcnemar_exact", "rolling:20")])
        store.finish_run(
            run.id,
            status=RunStatus.SUCCEEDED,
            finished_at=started + timedelta(minutes=3),
            n_items=items,
            n_errors=0,
            model_id="model-1",
            scores=[summary(results)],
        )
        if (k + 1) % max(1, runs // 10) == 0:
            rate = (k + 1) * items / (time.perf_counter() - t)
            print(f"  seeded {k + 1}/{runs} runs ({rate:,.0f} item results/s)", flush=True)
    return time.perf_counter() - t


def analyze(store: SqlStore) -> None:
    """Refresh the planner's statistics, as autovacuum (PostgreSQL) would after the load.

    SQLite is left as a deployment leaves it: monitor never runs ANALYZE there.
    """
    engine = store._engine  # a benchmark may look inside
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


# ---------------------------------------------------------------- measurements


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered)) - 1))]


def judging(store: SqlStore, config: Path, items: int, pool: list[list[ItemResult]]) -> list[str]:
    """Judge new runs of several pairs against rolling:20 (median, p95, max), and the
    store reads of one judging timed alone."""
    settings = load_settings(config)
    scorers = (build_scorer(ScorerSpec(SCORER, SCORER)),)
    judge = StoreJudge(store)
    times, reads = [], []
    when = T0 + YEAR + timedelta(hours=1)
    for k in range(JUDGINGS + 2):  # the first two import the statistics stack and warm up
        monitor, endpoint = pairs()[(7 * k) % (MONITORS * ENDPOINTS)]
        run = store.start_run(
            monitor=monitor,
            benchmark="qa",
            benchmark_version="v1",
            endpoint=endpoint,
            trigger="schedule",
            started_at=when + timedelta(minutes=k),
        )
        results = pool[(k + 3) % len(pool)]
        store.add_item_results(run.id, results)
        evidence = RunEvidence(
            scores={SCORER: {r.item_key: r.scores[SCORER] for r in results}},
            latencies=[r.latency_s for r in results],
            output_lengths=[len(r.output or "") for r in results],
            completion_tokens=[
                r.usage.completion_tokens
                for r in results
                if r.usage is not None and r.usage.completion_tokens is not None
            ],
        )
        judged = replace(run, status=RunStatus.SUCCEEDED, n_items=items)
        t = time.perf_counter()
        verdicts = judge.judge_sync(judged, evidence, settings.monitor(monitor), scorers)
        elapsed = time.perf_counter() - t
        assert any("runs " in v.baseline for v in verdicts), verdicts
        t = time.perf_counter()
        ids = store.baseline_run_ids(
            monitor=monitor, endpoint=endpoint, benchmark_version="v1", k=20, before_run_id=run.id
        )
        t_ids = time.perf_counter()
        store.item_scores(ids, SCORER)
        t_scores = time.perf_counter()
        store.baseline_signals(ids, labels=False)
        t_signals = time.perf_counter()
        store.finish_run(
            run.id,
            status=RunStatus.SUCCEEDED,
            finished_at=when + timedelta(minutes=k, seconds=30),
            n_items=items,
            n_errors=0,
            model_id="model-1",
            scores=[summary(results)],
        )
        if k >= 2:
            assert ids, "no baseline"
            times.append(1000 * elapsed)
            reads.append(
                (1000 * (t_ids - t), 1000 * (t_scores - t_ids), 1000 * (t_signals - t_scores))
            )
    med = [statistics.median(r[i] for r in reads) for i in range(3)]
    return [
        f"judging a {items:,}-item run against rolling:20 ({20 * items:,} baseline item "
        f"results): median {statistics.median(times):.0f} ms, p95 {pct(times, 0.95):.0f} ms, "
        f"max {max(times):.0f} ms ({JUDGINGS} runs of different pairs)",
        f"  of which store reads (medians): baseline run ids {med[0]:.1f} ms, item scores "
        f"{med[1]:.0f} ms, drift signals {med[2]:.0f} ms; the rest is the policy (SciPy) "
        "and the verdict writes",
    ]


@contextmanager
def serving(store: SqlStore, config: Path) -> Iterator[int]:
    """The daemon's API app over `store` under uvicorn on 127.0.0.1; yields the port."""
    app = create_api(SimpleNamespace(store=store, settings=load_settings(config)))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def timed_gets(port: int, paths: Callable[[int], str]) -> tuple[float, float, int]:
    """(median ms, p95 ms, bytes of the last answer) of REQUESTS GETs on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, size = [], 0
    for k in range(REQUESTS + 5):
        path = paths(k)
        t = time.perf_counter()
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
        times.append(1000 * (time.perf_counter() - t))
        assert answer.status == 200, (path, answer.status, body[:200])
        size = len(body)
    conn.close()
    times = times[5:]  # warm-up
    return statistics.median(times), pct(times, 0.95), size


def api(store: SqlStore, config: Path, runs: int, items: int) -> list[str]:
    rng = random.Random(5)
    all_pairs = pairs()

    def pair_runs(k: int) -> str:
        monitor, endpoint = all_pairs[k % len(all_pairs)]
        return f"/api/v1/runs?monitor={monitor}&endpoint={endpoint}&limit=50"

    def run_items(_k: int) -> str:
        run_id = rng.randint(runs // 5 + 1, runs)  # not the ones the prune will delete
        offset = rng.randrange(0, max(1, items - 99), 100)
        return f"/api/v1/runs/{run_id}/items?limit=100&offset={offset}"

    cases: list[tuple[str, Callable[[int], str]]] = [
        ("GET /api/v1/runs?monitor=&endpoint=&limit=50 (one pair)", pair_runs),
        ("GET /api/v1/runs?limit=50 (newest of all runs)", lambda _k: "/api/v1/runs?limit=50"),
        (
            f"GET /api/v1/runs/{{id}}/items?limit=100&offset=0..{max(0, items - 100)} "
            "(random runs)",
            run_items,
        ),
    ]
    lines = []
    gc.collect()
    gc.freeze()  # as `monitor serve` does after start-up (monitor/app.py)
    with serving(store, config) as port:
        for label, paths in cases:
            median, p95, size = timed_gets(port, paths)
            lines.append(
                f"{label}: median {median:.1f} ms, p95 {p95:.1f} ms "
                f"({size / 1024:.0f} KiB, {REQUESTS} requests)"
            )
    gc.unfreeze()
    return lines


def startup(config: Path, repeats: int = 3) -> list[str]:
    """`build_daemon` + `Daemon.running()` until started, over the seeded store."""
    settings = load_settings(config)
    totals, restores = [], []

    async def start() -> tuple[float, float]:
        t = time.perf_counter()
        daemon, close = build_daemon(config, settings)
        try:
            async with daemon.running():
                total = time.perf_counter() - t
                r = time.perf_counter()
                await daemon.refresh_metrics()  # the restore alone, once more
                restore = time.perf_counter() - r
                assert b"monitor_score" in daemon.metrics.render()
        finally:
            close()
        return total, restore

    for _ in range(repeats):
        total, restore = asyncio.run(start())
        totals.append(1000 * total)
        restores.append(1000 * restore)
    return [
        f"daemon start-up (build_daemon + running(), {MONITORS * ENDPOINTS} monitor/endpoint "
        f"pairs): median {statistics.median(totals):.0f} ms, max {max(totals):.0f} ms "
        f"({repeats} starts); the metric restore alone: median "
        f"{statistics.median(restores):.0f} ms"
    ]


def bytes_per_item(store: SqlStore) -> str:
    engine = store._engine  # a benchmark may look inside
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM item_result")).scalar_one()
        if engine.dialect.name == "sqlite":
            names = [
                n
                for (n,) in conn.execute(
                    sa.text(
                        "SELECT name FROM sqlite_master WHERE tbl_name = 'item_result' "
                        "AND type IN ('table', 'index')"
                    )
                )
            ]
            query = sa.text("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
            sizes: dict[str, int] = {str(n): int(b) for n, b in conn.execute(query).all()}
            table = sizes["item_result"]
            indexes = sum(sizes.get(n, 0) for n in names if n != "item_result")
            file_size = Path(str(engine.url.database)).stat().st_size
            return (
                f"on disk: {(table + indexes) / rows:.0f} bytes per item result "
                f"(table {table / rows:.0f} + indexes {indexes / rows:.0f}; {rows:,} rows; "
                f"whole file {file_size / 2**20:,.0f} MiB)"
            )
        total, heap, index = conn.execute(
            sa.text(
                "SELECT pg_total_relation_size('item_result'), pg_table_size('item_result'), "
                "pg_indexes_size('item_result')"
            )
        ).one()
        database = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
    return (
        f"on disk: {total / rows:.0f} bytes per item result (heap + TOAST {heap / rows:.0f} + "
        f"indexes {index / rows:.0f}; {rows:,} rows; whole database {database / 2**20:,.0f} MiB)"
    )


def partitioning(store: SqlStore, runs: int) -> list[str]:
    """PostgreSQL: the item results copied into a table partitioned by time, measured.

    Run ids grow with time (one sequence, runs start in order), so five ranges of run ids
    are five ~73-day partitions, and retention could drop the oldest one instead of
    deleting its rows. Measured here: the copy, the judging read (item scores of the 20
    newest runs of a pair) on both tables, and dropping the oldest partition.
    """
    engine = store._engine  # a benchmark may look inside
    step = max(1, runs // 5)
    lows = [1 + k * step for k in range(5)]
    ranges = [(lo, str(lo + step) if k < 4 else "MAXVALUE") for k, lo in enumerate(lows)]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE item_result_part (LIKE item_result INCLUDING DEFAULTS) "
            "PARTITION BY RANGE (run_id)"
        )
        for k, (lo, hi) in enumerate(ranges):
            conn.exec_driver_sql(
                f"CREATE TABLE item_result_part_{k} PARTITION OF item_result_part "
                f"FOR VALUES FROM ({lo}) TO ({hi})"
            )
    t = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO item_result_part SELECT * FROM item_result")
        conn.exec_driver_sql("CREATE UNIQUE INDEX ON item_result_part (run_id, item_key)")
        conn.exec_driver_sql("CREATE INDEX ON item_result_part (id)")
    copy_s = time.perf_counter() - t
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE item_result_part")
    query = (
        "SELECT run_id, item_key, CAST((scores ->> 'exact_match') AS FLOAT) FROM {} "
        "WHERE run_id = ANY(%(ids)s) AND error_kind IS NULL ORDER BY id"
    )
    timings: dict[str, list[float]] = {"item_result": [], "item_result_part": []}
    with engine.connect() as conn:
        for k in range(20):
            newest = runs - (k % 50)
            ids = [newest - 50 * j for j in range(20)]
            for table, times in timings.items():
                t = time.perf_counter()
                conn.exec_driver_sql(query.format(table), {"ids": ids}).all()
                times.append(1000 * (time.perf_counter() - t))
        plain, parted = conn.execute(
            sa.text(
                "SELECT pg_total_relation_size('item_result'), "
                "(SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                "WHERE inhparent = 'item_result_part'::regclass)"
            )
        ).one()
        rows = conn.exec_driver_sql("SELECT count(*) FROM item_result_part_0").scalar_one()
    t = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE item_result_part DETACH PARTITION item_result_part_0")
        conn.exec_driver_sql("DROP TABLE item_result_part_0")
    drop_ms = 1000 * (time.perf_counter() - t)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE item_result_part")
    return [
        f"partitioned by time (5 run-id ranges of ~73 days), measured on a copy: copy + "
        f"indexes {copy_s:.0f} s, {int(parted) / 2**20:,.0f} MiB vs {int(plain) / 2**20:,.0f} MiB",
        f"  judging's item-score read (20 runs): median "
        f"{statistics.median(timings['item_result']):.1f} ms unpartitioned, "
        f"{statistics.median(timings['item_result_part']):.1f} ms partitioned; dropping the "
        f"oldest partition ({int(rows):,} rows) {drop_ms:.0f} ms",
    ]


class Writer(threading.Thread):
    """Keeps running 1,000-item runs of its own monitor, timing every store call."""

    def __init__(
        self, store: SqlStore, name: str, items: int, pool: list[list[ItemResult]]
    ) -> None:
        super().__init__(daemon=True)
        self.store, self.monitor, self.items, self.pool = store, name, items, pool
        self.calls: list[tuple[float, float]] = []  # (start, seconds)
        self.errors: list[str] = []
        self.stop = threading.Event()

    def timed(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kw)
        except Exception as exc:  # noqa: BLE001  # counted and shown
            self.errors.append(str(exc)[:120])
            return None
        finally:
            self.calls.append((t, time.perf_counter() - t))

    def run(self) -> None:
        k = 0
        while not self.stop.is_set():
            started = T0 + YEAR + timedelta(days=1, minutes=k)
            run = self.timed(
                self.store.start_run,
                monitor=self.monitor,
                benchmark="qa",
                benchmark_version="v1",
                endpoint="live",
                trigger="schedule",
                started_at=started,
            )
            if run is None:
                time.sleep(0.01)
                continue
            results = self.pool[k % len(self.pool)]
            for start in range(0, self.items, WRITE_BATCH):
                self.timed(
                    self.store.add_item_results, run.id, results[start : start + WRITE_BATCH]
                )
                time.sleep(0.005)  # the answers take time to arrive
            self.timed(
                self.store.finish_run,
                run.id,
                status=RunStatus.SUCCEEDED,
                finished_at=started,
                n_items=self.items,
                n_errors=0,
                model_id="model-1",
                scores=[summary(results)],
            )
            k += 1

    def within(self, start: float, end: float) -> list[float]:
        return [s for t, s in self.calls if start <= t <= end or start <= t + s <= end]


def prune(store: SqlStore, runs: int, items: int, pool: list[list[ItemResult]]) -> list[str]:
    """Prune the oldest PRUNE_ROWS item results while two writers keep running runs."""
    old_runs = max(1, min(runs // 5, PRUNE_ROWS // items))
    cutoff = T0 + old_runs * (YEAR / runs)
    writers = [Writer(store, f"live-{w}", items, pool) for w in range(2)]
    for w in writers:
        w.start()
    time.sleep(3.0)
    quiet_end = time.perf_counter()
    quiet = [s for w in writers for s in w.within(quiet_end - 2.0, quiet_end)]
    t = time.perf_counter()
    deleted = store.prune_item_results(cutoff)
    end = time.perf_counter()
    time.sleep(1.0)
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(30)
    during = [s for w in writers for s in w.within(t, end)]
    errors = [e for w in writers for e in w.errors]
    return [
        f"retention prune of {deleted:,} item results ({old_runs:,} runs) in "
        f"{end - t:.1f} s while 2 writers ran {items:,}-item runs in batches of {WRITE_BATCH}",
        f"  writer store calls during the prune: {len(during)}, "
        f"longest {1000 * max(during):.0f} ms, "
        f"p99 {1000 * pct(during, 0.99):.0f} ms; before it: longest {1000 * max(quiet):.0f} ms; "
        f"errors {len(errors)}{': ' + errors[0] if errors else ''}",
    ]


# ---------------------------------------------------------------- driver


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'monitor.db'}"
        return
    name = f"monitor_history_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def measure(backend: str, runs: int, items: int) -> list[str]:
    pool = result_pool(items)
    with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url:
        config = write_config(Path(tmp), url, items)
        store = open_store(url)
        try:
            seconds = seed(store, runs, items, pool)
            analyze(store)
            head = f"{backend}: {runs:,} runs x {items:,} items = {runs * items:,} item results"
            lines = [f"{head}, seeded through the store's API in {seconds:.0f} s"]
            print(lines[0], flush=True)
            steps: list[Callable[[], list[str]]] = [
                lambda: [bytes_per_item(store)],
                lambda: judging(store, config, items, pool),
                lambda: api(store, config, runs, items),
                lambda: startup(config),
            ]
            if backend == "postgres":
                steps.append(lambda: partitioning(store, runs))
            steps.append(lambda: prune(store, runs, items, pool))
            for step in steps:
                for line in step():
                    print(f"  {line}", flush=True)
                    lines.append(f"  {line}")
        finally:
            store.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="200 runs x 100 items, no doc")
    args = parser.parse_args()
    runs, items = (200, 100) if args.quick else (args.runs, args.items)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    full = not args.quick and runs * items >= 5_000_000
    for backend in backends:  # each database's block is written as soon as it is measured
        lines = measure(backend, runs, items)
        lines.append(
            f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end)"
        )
        print(lines[-1])
        if full:
            update_doc(
                f"history_{backend}",
                f"A year of history: {'SQLite' if backend == 'sqlite' else 'PostgreSQL'}",
                lines,
                f"python benchmarks/history.py --backend {backend}",
            )


if __name__ == "__main__":
    main()
