"""Shared fixtures: a simulated model in a child process and `monitor serve` children."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon.harness import Daemon, Simulator


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = Simulator()
    yield sim
    sim.stop()


@pytest.fixture
def slow_simulator() -> Iterator[Simulator]:
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
