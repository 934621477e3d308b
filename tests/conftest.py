"""Fixtures every test package shares: fresh databases on both backends, a closed port,
recorded retry waits, a simulated model in a child process and `monitor serve` children.

The doubles themselves live in tests/fakes.py."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.daemon.harness import Daemon, Simulator
from tests.fakes import RecordingReceiver, RecordingSleep


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


@pytest.fixture
async def receiver() -> AsyncIterator[RecordingReceiver]:
    """A running recording receiver, stopped after the test."""
    server = RecordingReceiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def sleeps() -> RecordingSleep:
    """The retry waits a client (HttpClient, Notifier) was asked to make, returned at once."""
    return RecordingSleep()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


MAINTENANCE_DSN = os.environ.get("MONITOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_conninfo() -> str:
    return MAINTENANCE_DSN.replace("postgresql+psycopg://", "postgresql://", 1)


LEAKS: list[str] = []  # what each module left to the garbage collector


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage_per_module(request: pytest.FixtureRequest) -> Iterator[None]:
    """Collect each module's garbage at its end and name what it left unclosed.

    An object left unclosed in a reference cycle (a socket under an unread HTTP response)
    is finalized whenever the collector next runs, and its ResourceWarning, an error here,
    then failed whichever unrelated test was running (CI, 2026-12-03: an e2e fixture's
    setup). Collected here, the warning is printed with the module that left it, for the
    next one to fix, instead of failing a test that did nothing wrong.
    """
    yield
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    LEAKS.extend(
        f"{request.module.__name__}: {w.message}"
        for w in caught
        if issubclass(w.category, ResourceWarning)
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What `_collect_garbage_per_module` found, where the whole run's log shows it."""
    if LEAKS:
        terminalreporter.section("left unclosed (ResourceWarning), by module")
        for leak in LEAKS:
            terminalreporter.write_line(leak)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database on SQLite and on PostgreSQL (marked postgres)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    name = f"monitor_test_{uuid.uuid4().hex[:16]}"
    try:
        admin = psycopg.connect(_pg_conninfo(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        # A failure, not a skip: scripts/test.sh starts PostgreSQL, so this means it is broken.
        pytest.fail(f"PostgreSQL unreachable at {MAINTENANCE_DSN}: {exc}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(_pg_conninfo())
    user, host, port = info.get("user", "postgres"), info.get("host", "127.0.0.1"), info.get("port")
    try:
        yield f"postgresql+psycopg://{user}@{host}:{port or 5432}/{name}"
    finally:
        with psycopg.connect(_pg_conninfo(), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


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
