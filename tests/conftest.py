"""Shared fixtures: a simulated model in a child process and `monitor serve` children."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.daemon.harness import Daemon, Simulator


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A healthy simulated model in a child process."""
    sim = Simulator()
    yield sim
    sim.stop()


@pytest.fixture
def slow_simulator() -> Iterator[Simulator]:
    """A simulated model that takes 200 ms per answer, for runs that last a while."""
    sim = Simulator(latency=0.2)
    yield sim
    sim.stop()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons started by a test; killed at the end whatever happened."""
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


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
def pg_database() -> Iterator[str]:
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
