"""A PostgreSQL restart in the middle of a run: the daemon waits, retries and loses nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import cluster
from tests.daemon.harness import TOKEN, Daemon, Simulator, free_port, write_config

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ITEMS = 300


class TestPostgresRestart:
    def test_restart_during_run_loses_no_result(
        self, tmp_path: Path, pg_database: str, daemons: list[Daemon]
    ) -> None:
        """readyz goes 503 while PostgreSQL is down; the run then completes with every item."""
        sim = Simulator(latency=0.03)
        try:
            port = free_port()
            config = write_config(
                tmp_path, sim.url, port=port, every=3600, items=ITEMS, concurrency=2
            )
            config.write_text(
                config.read_text().replace(f"sqlite:///{tmp_path / 'monitor.db'}", pg_database)
            )
            d = Daemon(config, port)
            daemons.append(d)
            d.wait_ready()
            assert d.request("POST", "/api/v1/monitors/fast/run", token=TOKEN)[0] == 202
            d.wait_for(lambda: [r for r in d.runs() if r["status"] == "running"], what="running")
            time.sleep(1.0)  # let some batches commit
            cluster("stop")
            try:
                d.wait_for(lambda: d.request("GET", "/readyz")[0] == 503, what="readyz 503")
                assert d.request("GET", "/healthz")[0] == 200
                time.sleep(3.0)
            finally:
                cluster("start")
            d.wait_for(lambda: d.request("GET", "/readyz")[0] == 200, timeout=60, what="ready")
            run = d.wait_for(
                lambda: [r for r in d.runs() if r["status"] != "running"],
                timeout=120,
                what="run finished",
            )[0]
            assert run["status"] == "succeeded", d.log_text()[-2000:]
            items = d.get(f"/api/v1/runs/{run['id']}/items?limit=1")
            assert items["total"] == ITEMS
            assert "storage_retry" in d.log_text()
            assert d.proc.poll() is None
        finally:
            sim.stop()
