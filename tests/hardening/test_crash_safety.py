"""Crash safety: SIGKILL `monitor serve` at seeded random moments, restart, and audit the store."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest

from tests.daemon.harness import Daemon, Simulator, free_port, write_config

pytestmark = pytest.mark.slow

KILLS = 8  # each costs a daemon start and part of a run, ~4-6 s; 8 keep CI within its time
ITEMS = 60


def audit(db: Path) -> dict[str, object]:
    """Read the store directly: runs by status and item results per run."""
    con = sqlite3.connect(db)
    try:
        runs = con.execute("SELECT id, status, n_items FROM run ORDER BY id").fetchall()
        per_run = dict(
            con.execute("SELECT run_id, count(*) FROM item_result GROUP BY run_id").fetchall()
        )
        dupes = con.execute(
            "SELECT count(*) FROM (SELECT run_id, item_key FROM item_result "
            "GROUP BY run_id, item_key HAVING count(*) > 1)"
        ).fetchone()[0]
    finally:
        con.close()
    return {"runs": runs, "per_run": per_run, "dupes": dupes}


class TestSigkill:
    def test_repeated_sigkill_loses_nothing_committed(
        self, tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """Seeded SIGKILLs: no run stays running, no result is duplicated or lost."""
        rng = random.Random(20261128)
        sim = Simulator(latency=0.02)
        try:
            port = free_port()
            config = write_config(
                tmp_path, sim.url, port=port, every=1.0, items=ITEMS, concurrency=4
            )
            db = tmp_path / "monitor.db"
            committed: dict[int, int] = {}
            for _ in range(KILLS):
                d = Daemon(config, port)
                daemons.append(d)
                d.wait_ready()
                time.sleep(rng.uniform(0.0, 2.5))
                d.kill()
                # what was committed before the kill must still be there afterwards
                committed = {**committed, **audit(db)["per_run"]}  # type: ignore[dict-item]
            final = Daemon(config, port)
            daemons.append(final)
            final.wait_ready()
            before = len(final.runs())
            final.wait_for(lambda: len(final.runs()) >= before + 2, what="schedules continue")
            final.signal(15)
            assert final.wait_exit(60) == 0
        finally:
            sim.stop()
        state = audit(db)
        runs = state["runs"]
        per_run = state["per_run"]
        assert isinstance(runs, list)
        assert isinstance(per_run, dict)
        statuses = {status for _, status, _ in runs}
        assert "running" not in statuses, "every interrupted run is marked aborted"
        assert statuses <= {"succeeded", "aborted", "degraded", "failed"}
        assert state["dupes"] == 0, "no item result is stored twice"
        for run_id, count in committed.items():
            assert per_run.get(run_id, 0) >= count, f"run {run_id} lost committed results"
        for run_id, status, n_items in runs:
            if status == "succeeded":
                assert per_run.get(run_id) == n_items == ITEMS
        assert sum(1 for _, s, _ in runs if s == "aborted") >= 1
        assert sum(1 for _, s, _ in runs if s == "succeeded") >= KILLS // 2

    def test_gauges_after_restart_match_the_store(
        self, tmp_path: Path, simulator: Simulator, daemons: list[Daemon]
    ) -> None:
        """After a SIGKILL, the first scrape of a new process agrees with the database."""
        port = free_port()
        config = write_config(tmp_path, simulator.url, port=port, every=1.0, items=ITEMS)
        d = Daemon(config, port)
        daemons.append(d)
        d.wait_ready()
        d.wait_for(lambda: len([r for r in d.runs() if r["status"] == "succeeded"]) >= 3)
        d.kill()
        d2 = Daemon(config, port)
        daemons.append(d2)
        d2.wait_ready()
        d2.request("POST", "/api/v1/monitors/none/run")  # no-op: keeps the schedule untouched
        metrics = d2.metrics()
        runs = d2.runs()
        by_status: dict[str, int] = {}
        for r in runs:
            by_status[r["status"]] = by_status.get(r["status"], 0) + 1
        exported = {s.labels["status"]: s.value for s in metrics["monitor_runs_total"]}
        # runs may finish between the two reads: the exported count can only lag behind
        assert exported["succeeded"] <= by_status.get("succeeded", 0)
        assert exported["succeeded"] >= by_status.get("succeeded", 0) - 2
        latest = max((r for r in runs if r["status"] == "succeeded"), key=lambda r: r["id"])
        (score,) = metrics["monitor_benchmark_score"]
        ids = sorted(r["id"] for r in runs if r["status"] == "succeeded")
        candidates = {
            d2.get(f"/api/v1/runs/{i}")["scores"]["exact_match"]["value"] for i in ids[-3:]
        }
        assert score.value in candidates
        assert latest["scores"]["exact_match"]["value"] is not None
