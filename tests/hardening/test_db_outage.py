"""A PostgreSQL restart in the middle of a run: the daemon waits, retries and loses nothing."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.daemon.harness import TOKEN, Daemon, Simulator, free_port, write_config

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ITEMS = 300
PG = os.environ.get("MONITOR_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")


def cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    if action == "stop":
        cmd += ["-m", "fast"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def pg_up() -> bool:
    try:
        psycopg.connect(PG, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database; the server is running again at the end whatever happens."""
    name = f"monitor_outage_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        if not pg_up():
            cluster("start")
        deadline = time.monotonic() + 60
        while not pg_up() and time.monotonic() < deadline:
            time.sleep(0.5)
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class TestPostgresRestart:
    def test_restart_during_run_loses_no_result(
        self, tmp_path: Path, database: str, daemons: list[Daemon]
    ) -> None:
        """readyz goes 503 while PostgreSQL is down; the run then completes with every item."""
        sim = Simulator(latency=0.03)
        try:
            port = free_port()
            config = write_config(
                tmp_path, sim.url, port=port, every=3600, items=ITEMS, concurrency=2
            )
            config.write_text(
                config.read_text().replace(f"sqlite:///{tmp_path / 'monitor.db'}", database)
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
