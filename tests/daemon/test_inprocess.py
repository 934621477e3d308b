"""The daemon built in-process by `monitor.app.build_daemon`, with doubles for its edges.

A clock the test advances, a SQLite store in `tmp_path`, a scripted endpoint (through the
endpoint factory port) and a real loopback webhook receiver for alerts. No subprocess:
these tests drive fire -> run -> verdict -> metrics -> alert -> resolve, a refused
reload, a monitor removed while its run is in flight, and leadership loss, in seconds.
The subprocess tests in tests/daemon/test_serve.py prove the real process does the same.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.api import create_api
from monitor.app import build_daemon
from monitor.config import EndpointSettings, load_settings
from monitor.core.model import RunStatus
from monitor.daemon import Daemon
from monitor.notify import Notifier
from monitor.ports import EndpointClient
from monitor.scheduling import RunSpec, fire
from tests.daemon.harness import sample
from tests.fakes import (
    ManualClock,
    RecordingReceiver,
    RecordingSleep,
    ScriptedEndpoint,
    ScriptedLock,
)

N = 200
ALWAYS_WRONG = {f"i{k}": "no" for k in range(0, N, 10)}  # a 90% model: scores can vary

CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:1"}}
endpoints:
  - {{name: ep, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}}
benchmarks:
  - {{name: b, data: items.jsonl, prompt: "{{{{ text }}}}", reference: label,
      scorers: [exact_match]}}
monitors:
{monitors}
alerting:
  receivers: [{{name: hook, webhook: {{url: "{hook}/hook"}}}}]
"""
MONITOR = """\
  - name: {name}
    benchmark: b
    endpoints: [ep]
    drift: {{baseline: "rolling:3", alpha: 0.01, min_effect: 0.01}}
    alert: [hook]
{schedule}"""


class Harness:
    """One in-process daemon over a config file the test can rewrite."""

    def __init__(self, folder: Path, hook: str) -> None:
        self.folder, self.hook = folder, hook
        self.config = folder / "monitor.yaml"
        rows = [{"id": f"i{k}", "text": f"q{k}", "label": "yes"} for k in range(N)]
        (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.write("m")
        self.model = ScriptedEndpoint(ALWAYS_WRONG, name="ep", default="yes")
        self.clock = ManualClock()

    def write(
        self,
        *monitors: str,
        broken: bool = False,
        scheduled: bool = False,
        public_url: str | None = None,
    ) -> None:
        # an hourly schedule never fires during a test; it makes the runs "scheduled"
        schedule = "    schedule: {every: 3600s}\n" if scheduled else ""
        text = CONFIG.format(
            db=self.folder / "monitor.db",
            hook=self.hook,
            monitors="".join(MONITOR.format(name=m, schedule=schedule) for m in monitors),
        )
        if public_url:
            text = text.replace("listen:", f'public_url: "{public_url}", listen:', 1)
        self.config.write_text(text + ("monitors: [unclosed\n" if broken else ""))

    def endpoints(self, settings: EndpointSettings) -> EndpointClient:
        return self.model

    def build(self, **kw: Any) -> tuple[Daemon, Callable[[], None]]:
        notifier = Notifier(sleep=RecordingSleep(), timeout=2.0)
        return build_daemon(
            self.config,
            load_settings(self.config),
            clock=self.clock,
            endpoints=self.endpoints,
            notifier=notifier,
            **kw,
        )


@pytest.fixture
def harness(tmp_path: Path, receiver: RecordingReceiver) -> Harness:
    """A config for one monitor `m` on endpoint `ep`, alerting the receiver."""
    return Harness(tmp_path, receiver.url)


@pytest.fixture
async def daemon(harness: Harness) -> AsyncIterator[Daemon]:
    """The daemon running (scheduler, metrics, alerts; no HTTP listener)."""
    built, close = harness.build()
    try:
        async with built.running():
            yield built
    finally:
        close()


async def until(condition: Callable[[], bool]) -> None:
    """Poll `condition` until it holds; fail after 2 s."""
    async with asyncio.timeout(2.0):
        while not condition():  # noqa: ASYNC110 - the conditions are plain attributes
            await asyncio.sleep(0.02)


async def fire_and_wait(daemon: Daemon, monitor: str = "m") -> None:
    """A scheduled fire time, through the scheduler's own job target."""
    await fire("monitor", monitor, "ep")
    await daemon.wait_idle()


class TestRunPath:
    async def test_fire_run_verdict_metrics_alert_and_resolve(
        self, daemon: Daemon, harness: Harness, receiver: RecordingReceiver
    ) -> None:
        """A break fires an alert with the regressed gauge at 1; recovery resolves it."""
        for _ in range(4):
            harness.clock.advance(3600)
            await fire_and_wait(daemon)
        labels = {"monitor": "m", "endpoint": "ep", "scorer": "exact_match"}
        assert sample(daemon, "monitor_regression_detected", **labels) == 0
        assert receiver.on("/hook") == []
        harness.model.answers = ALWAYS_WRONG | {f"i{k}": "no" for k in range(5, N, 10)}
        harness.clock.advance(3600)
        await fire_and_wait(daemon)
        assert sample(daemon, "monitor_regression_detected", **labels) == 1
        assert sample(daemon, "monitor_alerts_firing") == 1
        (firing,) = receiver.on("/hook")
        assert json.loads(firing.body)["status"] == "firing"
        harness.model.answers = dict(ALWAYS_WRONG)
        harness.clock.advance(3600)
        await fire_and_wait(daemon)
        assert sample(daemon, "monitor_regression_detected", **labels) == 0
        assert sample(daemon, "monitor_alerts_firing") == 0
        assert json.loads(receiver.on("/hook")[-1].body)["status"] == "resolved"
        runs = daemon.store.list_runs(limit=10)
        assert runs[0].started_at == harness.clock.now  # the injected clock
        assert sample(daemon, "monitor_runs_total", monitor="m", status="succeeded") == 6

    async def test_runs_requested_while_busy_are_coalesced_into_one(
        self, daemon: Daemon, harness: Harness
    ) -> None:
        """Three requests during a run give one follow-up run, not three."""
        harness.model.delay = 0.002
        spec = RunSpec("m", "ep", "manual")
        assert await daemon.submit(spec) == "started"
        assert [await daemon.submit(spec) for _ in range(3)] == ["queued"] * 3
        await daemon.wait_idle()
        assert len(daemon.store.list_runs()) == 2


class TestConfig:
    async def test_broken_reload_keeps_the_running_config(
        self, daemon: Daemon, harness: Harness
    ) -> None:
        """A file that does not parse is refused with its line, and runs go on."""
        harness.write("m", broken=True)
        ok, message = await daemon.reload()
        assert not ok
        assert f"{harness.config}:" in message
        assert sample(daemon, "monitor_config_last_reload_successful") == 0
        await fire_and_wait(daemon)
        assert daemon.store.list_runs()[0].status is RunStatus.SUCCEEDED

    async def test_public_url_is_exported_and_starts_the_alert_links(
        self, daemon: Daemon, harness: Harness, receiver: RecordingReceiver
    ) -> None:
        """monitor_ui_info carries server.public_url (a reload swaps it), and so do the links."""
        assert sample(daemon, "monitor_ui_info", url="http://127.0.0.1:1") == 1
        harness.write("m", public_url="https://ml.example.org/monitor/")
        assert (await daemon.reload())[0]
        assert sample(daemon, "monitor_ui_info", url="https://ml.example.org/monitor") == 1
        assert sample(daemon, "monitor_ui_info", url="http://127.0.0.1:1") is None
        for _ in range(4):
            harness.clock.advance(3600)
            await fire_and_wait(daemon)
        harness.model.answers = ALWAYS_WRONG | {f"i{k}": "no" for k in range(5, N, 10)}
        harness.clock.advance(3600)
        await fire_and_wait(daemon)
        (firing,) = receiver.on("/hook")
        body = json.loads(firing.body)
        run_id = body["run"]["id"]
        assert body["run"]["page_url"] == f"https://ml.example.org/monitor/ui/runs/{run_id}"
        assert body["trend_url"] == "https://ml.example.org/monitor/ui/monitors/m/ep"

    async def test_monitor_removed_while_its_run_is_in_flight(
        self, daemon: Daemon, harness: Harness
    ) -> None:
        """The run finishes on its plan's settings; later fire times of it are skipped."""
        harness.model.delay = 0.005
        await fire("monitor", "m", "ep")
        await asyncio.sleep(0.05)
        harness.write("other")
        assert (await daemon.reload())[0]
        await daemon.wait_idle()
        (run,) = daemon.store.list_runs()
        assert run.monitor == "m"
        assert run.status is RunStatus.SUCCEEDED
        assert run.n_items == N
        await fire_and_wait(daemon, "m")
        assert len(daemon.store.list_runs()) == 1


class TestLeadership:
    async def test_leader_takes_the_schedule_and_reports_losing_it(self, harness: Harness) -> None:
        """The lock holder leads after its grace period; a lost lock calls on_lost."""
        lock = ScriptedLock()
        lost: list[bool] = []
        built, close = harness.build(
            leader_lock=lock,
            leader_timing=(0.05, 0.02),
            on_lost_leadership=lambda: lost.append(True),
        )
        try:
            async with built.running():
                assert not built.leader
                await until(lambda: built.leader)
                assert sample(built, "monitor_leader") == 1
                lock.held = False  # the database dropped the session
                await until(lambda: bool(lost))
                assert lost == [True]
                assert built.leader is False
        finally:
            close()
        assert lock.released == 1


def run_rows(harness: Harness) -> list[tuple[str, str | None, str]]:
    """(status, status_reason, trigger) of every run, oldest first, read with sqlite3."""
    with sqlite3.connect(harness.folder / "monitor.db") as conn:
        rows = conn.execute("SELECT status, status_reason, trigger FROM run ORDER BY id")
        return [(str(a), b, str(c)) for a, b, c in rows]


async def until_for(condition: Callable[[], bool], seconds: float) -> None:
    """Poll `condition` until it holds; fail after `seconds`."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - the conditions are plain attributes
            await asyncio.sleep(0.02)


class TestLeadershipLoss:
    async def test_lost_lock_cancels_the_run_and_the_next_term_reruns_it_once(
        self, harness: Harness
    ) -> None:
        """The daemon stays up, aborts its run for leadership_lost, and re-runs it once."""
        harness.write("m", scheduled=True)
        harness.model.delay = 0.02  # 200 items: a run of about a second
        lock = ScriptedLock()
        built, close = harness.build(leader_lock=lock, leader_timing=(0.05, 0.02))
        try:
            async with built.running():
                await until(lambda: built.leader)
                await fire("monitor", "m", "ep")
                await until(lambda: bool(built.running_pairs()))
                await until(lambda: run_rows(harness) == [("running", None, "schedule")])
                lock.free, lock.held = False, False  # the database dropped the session
                await until(lambda: not built.leader)
                assert sample(built, "monitor_leader") == 0
                await until(lambda: not built.running_pairs())
                assert await built.submit(RunSpec("m", "ep", "schedule")) == "rejected"
                lock.free = True  # the database answers again
                await until(lambda: built.leader)
                await until(lambda: len(run_rows(harness)) == 2)
                await built.wait_idle()
                await asyncio.sleep(0.3)  # several more campaign steps: no second re-run
                assert run_rows(harness) == [
                    ("aborted", "leadership_lost", "schedule"),
                    ("succeeded", None, "rerun"),
                ]
                assert sample(built, "monitor_leader") == 1
        finally:
            close()

    async def test_a_run_that_finished_before_the_loss_is_not_rerun(self, harness: Harness) -> None:
        """Only runs cut short are re-run: a new term after a finished run adds nothing."""
        harness.write("m", scheduled=True)
        lock = ScriptedLock()
        built, close = harness.build(leader_lock=lock, leader_timing=(0.05, 0.02))
        try:
            async with built.running():
                await until(lambda: built.leader)
                await fire_and_wait(built)
                lock.held = False
                await until(lambda: not built.leader)
                await until(lambda: built.leader)
                await asyncio.sleep(0.2)
                assert run_rows(harness) == [("succeeded", None, "schedule")]
        finally:
            close()

    async def test_campaign_backs_off_while_the_database_is_away(self, harness: Harness) -> None:
        """Failed attempts space out (doubling, capped at 2 checks) and a win resets them."""
        lock = ScriptedLock(free=False)
        attempts: list[float] = []
        real_try = lock.try_acquire

        def counting_try() -> bool:
            attempts.append(time.monotonic())  # called in a worker thread
            return real_try()

        lock.try_acquire = counting_try  # type: ignore[method-assign]
        built, close = harness.build(leader_lock=lock, leader_timing=(0.05, 0.05))
        try:
            async with built.running():
                await until_for(lambda: len(attempts) >= 6, 3.0)
                gaps = [b - a for a, b in itertools.pairwise(attempts)]
                # jittered in [0.75, 1] x 0.05, then the 0.1 cap
                assert gaps[0] < 0.07
                assert max(gaps) < 0.2
                assert gaps[-1] > 0.07
                lock.free = True
                await until(lambda: built.leader)
        finally:
            close()


class TestItemsApi:
    async def test_items_carry_their_input_reference_and_split(
        self, daemon: Daemon, harness: Harness
    ) -> None:
        """`GET /api/v1/runs/{id}/items` shows each item's stored input and reference."""
        await fire_and_wait(daemon)
        (run,) = daemon.store.list_runs()
        transport = httpx.ASGITransport(app=create_api(daemon))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.get(f"/api/v1/runs/{run.id}/items", params={"limit": 3})
        assert answer.status_code == 200
        first = answer.json()["items"][0]
        assert first["input"]["text"] == f"q{first['item_key'][1:]}"  # items.jsonl: i<k> -> q<k>
        assert first["reference"] == "yes"
        assert first["split"] is None
