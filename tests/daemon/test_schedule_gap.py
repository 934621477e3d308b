"""A catch-up run after downtime is not followed by a regular run seconds later."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.daemon import Daemon
from monitor.scheduling import RunSpec
from tests.daemon.test_inprocess import Harness
from tests.fakes import RecordingReceiver


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """The in-process harness of tests/daemon/test_inprocess.py, with its webhook."""
    hook = RecordingReceiver()
    await hook.start()
    yield Harness(tmp_path, hook.url)
    await hook.stop()


@pytest.fixture
async def hourly(harness: Harness) -> AsyncIterator[Daemon]:
    """The in-process daemon with monitor `m` scheduled every hour."""
    text = harness.config.read_text()
    harness.config.write_text(
        text.replace("    alert: [hook]\n", "    alert: [hook]\n    schedule: {every: 1h}\n")
    )
    built, close = harness.build()
    try:
        async with built.running():
            yield built
    finally:
        close()


class TestScheduleGap:
    async def test_fire_time_within_half_an_interval_of_the_last_is_skipped(
        self, hourly: Daemon, harness: Harness
    ) -> None:
        """Catch-up at start, the regular fire 2.5 s later is dropped, the next hour runs."""
        spec = RunSpec("m", "ep", "schedule")
        assert await hourly.submit(spec) == "started"  # the catch-up of a missed fire time
        await hourly.wait_idle()
        harness.clock.advance(2.5)
        assert await hourly.submit(spec) == "skipped"
        assert await hourly.submit(RunSpec("m", "ep", "manual")) == "started"  # never dropped
        await hourly.wait_idle()
        harness.clock.advance(3600)
        assert await hourly.submit(spec) == "started"
        await hourly.wait_idle()
        assert [r.trigger for r in hourly.store.list_runs()] == ["schedule", "manual", "schedule"][
            ::-1
        ]
