"""Helpers of the chaos suite (tests/hardening/test_chaos.py, test_db_outage.py): replicas
of `monitor serve` on one PostgreSQL database, faults, and the figures of each scenario.

Every figure is read from the database itself (not from a replica's API, which a paused
or cut-off replica cannot answer): runs left `running`, duplicated item results, runs
of one (monitor, endpoint) that overlapped, cut-short runs with no re-run, and the time
from "the database answers" to the next run starting. `MONITOR_CHAOS_REPORT`, when set,
names a file each scenario appends its figures to as one JSON line (docs/operations.md,
"Chaos suite").
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.conftest import PG, cluster, pg_up
from tests.daemon.harness import Daemon, Simulator, free_port, write_config

# A run of 60 items at 0.1 s with 4 workers takes ~1.5 s of every 2 s: a fault at a
# random moment usually lands in a run.
EVERY_S = 2.0
ITEMS = 60
LATENCY_S = 0.1
CONCURRENCY = 4


def dsn(url: str) -> str:
    """A libpq DSN for a SQLAlchemy URL of the test database."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class RunRow:
    id: int
    status: str
    reason: str | None
    trigger: str
    started: float
    finished: float | None


def runs(url: str) -> list[RunRow]:
    """Every run of the database, oldest first (times as epoch seconds)."""
    with psycopg.connect(dsn(url), connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT id, status, status_reason, trigger, started_at, finished_at FROM run "
            "ORDER BY id"
        ).fetchall()
    return [
        RunRow(
            int(i),
            str(s),
            None if r is None else str(r),
            str(t),
            _epoch(a),
            None if b is None else _epoch(b),
        )
        for i, s, r, t, a, b in rows
    ]


def _epoch(value: object) -> float:
    assert isinstance(value, datetime)
    return value.timestamp()


def duplicated_item_results(url: str) -> int:
    """(run, item) pairs stored more than once."""
    with psycopg.connect(dsn(url), connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM (SELECT run_id, item_key FROM item_result "
            "GROUP BY run_id, item_key HAVING count(*) > 1) d"
        ).fetchone()
    assert row is not None
    return int(row[0])


def overlapping_runs(rows: list[RunRow]) -> int:
    """Finished, non-aborted runs that started before the previous one ended: two
    leaders executing the one (monitor, endpoint) at once (a duplicated data point)."""
    done = sorted(
        (r for r in rows if r.finished is not None and r.status != "aborted"),
        key=lambda r: r.started,
    )
    return sum(1 for a, b in itertools.pairwise(done) if b.started < (a.finished or 0))


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = predicate()
        except psycopg.OperationalError:
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def running_run(url: str, after: float = 0.0) -> RunRow | None:
    """A run executing now that started after `after` (epoch seconds)."""
    return next((r for r in runs(url) if r.status == "running" and r.started > after), None)


def pg_answers(url: str) -> bool:
    try:
        psycopg.connect(dsn(url), connect_timeout=1).close()
    except psycopg.OperationalError:
        return False
    return True


def start_server() -> None:
    """`pg_ctlcluster start`, content when the server is up already: another test
    session's clean-up (tests/conftest.py, `pg_database`) may have started it first."""
    try:
        cluster("start")
    except subprocess.CalledProcessError:
        if not pg_up():
            raise


class AnswerWatch:
    """Records the first moment the database accepts a connection again (polled every
    20 ms in a thread while the test restarts the server, which can take seconds)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.at: float | None = None
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if pg_answers(self.url):
                self.at = time.time()
                return
            time.sleep(0.02)

    def wait(self) -> float:
        self._thread.join(61)
        assert self.at is not None, "the database did not answer within 60 s"
        return self.at


def admin(statement: sql.Composable | str, *args: object) -> None:
    with psycopg.connect(PG, autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement, args or None)  # type: ignore[arg-type]


def terminate_sessions(database: str) -> None:
    """End every session on `database` (but the caller's own)."""
    admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        database,
    )


@dataclass
class Fault:
    """One fault: when it began, when the database answered again, what it cut."""

    began: float
    answered: float
    cut: int | None = None  # id of the run executing when the fault began
    back_s: float | None = None  # from `answered` to the next run starting


@dataclass
class Report:
    """The figures of one scenario (one row of docs/operations.md's chaos table)."""

    scenario: str
    replicas: int
    faults: int = 0
    survived: int = 0
    process_exits: int = 0
    left_running: int = 0
    duplicated_items: int = 0
    overlapping_runs: int = 0
    cut_short: int = 0
    reruns: int = 0
    lost: int = 0
    back_s: list[float] = field(default_factory=list)

    def finish(self, url: str, faults: list[Fault], replicas: list[Daemon]) -> None:
        """Read the figures from the database, after the replicas stopped."""
        rows = runs(url)
        self.faults = len(faults)
        self.left_running = sum(1 for r in rows if r.status == "running")
        self.duplicated_items = duplicated_item_results(url)
        self.overlapping_runs = overlapping_runs(rows)
        self.back_s = [round(f.back_s, 2) for f in faults if f.back_s is not None]
        cut = [r for r in rows if r.status == "aborted" and r.reason == "leadership_lost"]
        self.cut_short = len(cut)
        reruns = [r for r in rows if r.trigger == "rerun"]
        self.reruns = len(reruns)
        # a data point is lost when a scheduled run cut short has no re-run after it
        # that finished (succeeded or degraded) before the next cut-short run
        lost = 0
        for i, r in enumerate(cut):
            nxt = cut[i + 1].id if i + 1 < len(cut) else 10**12
            if not any(
                x.id > r.id and x.id <= nxt and x.status in {"succeeded", "degraded"}
                for x in reruns
            ):
                lost += 1
        self.lost = lost
        record = asdict(self)
        record["back_s_max"] = max(self.back_s, default=None)
        print("chaos", json.dumps(record))
        target = os.environ.get("MONITOR_CHAOS_REPORT")
        if target:
            with Path(target).open("a") as out:
                out.write(json.dumps(record) + "\n")


class Cluster:
    """Replicas of `monitor serve` on one database, sharing one simulated model."""

    def __init__(self, folder: Path, url: str, replicas: int, daemons: list[Daemon]) -> None:
        self.url = url
        self.database = url.rsplit("/", 1)[1]
        self.sim = Simulator(latency=LATENCY_S)
        self.replicas: list[Daemon] = []
        for i in range(replicas):
            home = folder / f"r{i}"
            home.mkdir()
            port = free_port()
            config = write_config(
                home, self.sim.url, port=port, every=EVERY_S, items=ITEMS, concurrency=CONCURRENCY
            )
            config.write_text(config.read_text().replace(f"sqlite:///{home / 'monitor.db'}", url))
            d = Daemon(config, port)
            daemons.append(d)
            self.replicas.append(d)
        for d in self.replicas:
            d.wait_ready(timeout=60)

    def leader(self) -> Daemon | None:
        for d in self.replicas:
            if d.proc.poll() is None:
                try:
                    status, body = d.request("GET", "/readyz")
                except OSError:
                    continue
                if status == 200 and isinstance(body, dict) and body.get("leader"):
                    return d
        return None

    def exits(self, *, except_: Daemon | None = None) -> int:
        return sum(1 for d in self.replicas if d is not except_ and d.proc.poll() is not None)

    def wait_run(self, after: float = 0.0, timeout: float = 30.0) -> RunRow:
        found: RunRow = wait_until(lambda: running_run(self.url, after), timeout, "a run executing")
        return found

    def back(self, fault: Fault, timeout: float = 30.0) -> None:
        """Wait for the first run that starts after the database answered again."""
        first: RunRow = wait_until(
            lambda: next((r for r in runs(self.url) if r.started > fault.answered), None),
            timeout,
            "the schedule back",
        )
        fault.back_s = first.started - fault.answered

    def settled(self, cut: RunRow, timeout: float = 30.0) -> None:
        """If `cut` was cut short, wait until its re-run has finished, so that the next
        fault does not land in the re-run itself."""
        row = next((r for r in runs(self.url) if r.id == cut.id), None)
        if row is None or row.status != "aborted":
            return
        wait_until(
            lambda: any(
                r.trigger == "rerun" and r.id > cut.id and r.status != "running"
                for r in runs(self.url)
            ),
            timeout,
            f"the re-run of run {cut.id}",
        )

    def stop(self) -> list[int]:
        """SIGTERM every replica still up; their in-flight runs finish (grace 30 s)."""
        for d in self.replicas:
            if d.proc.poll() is None:
                d.signal(15)
        codes = [d.wait_exit(60) for d in self.replicas]
        self.sim.stop()
        return codes

    def logs(self) -> Iterator[str]:
        for d in self.replicas:
            yield d.log_text()[-3000:]


def random_pause(rng: random.Random, low: float = 0.1, high: float = 1.2) -> None:
    """Sleep a random moment into the run that just started."""
    time.sleep(rng.uniform(low, high))
