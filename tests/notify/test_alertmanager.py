"""The built-in notifier against a real Alertmanager (Debian's prometheus-alertmanager)
on a free loopback port: alerts arrive through its v2 API and resolve there."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.core.model import VerdictKind
from monitor.notify import AlertService, Notifier, RetryPolicy
from tests.fakes import MemoryAlertStore
from tests.notify.conftest import make_run, make_settings, make_verdict

pytestmark = [pytest.mark.ops, pytest.mark.timeout(120)]

BINARY = "prometheus-alertmanager"
CONFIG = """\
route:
  receiver: blackhole
  group_wait: 0s
receivers:
  - name: blackhole
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Alertmanager:
    """One Alertmanager process with its own config, storage and loopback port."""

    def __init__(self, folder: Path) -> None:
        path = shutil.which(BINARY) or shutil.which(BINARY, path="/usr/bin")
        if path is None:
            pytest.fail(f"{BINARY} is not installed (Debian package prometheus-alertmanager)")
        self.binary = path
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "alertmanager.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.folder / "alertmanager.yml"
        config.write_text(CONFIG, encoding="utf-8")
        (self.folder / "data").mkdir()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.path={self.folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    async def wait_ready(self, session: aiohttp.ClientSession, within: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"alertmanager exited: {self.log.read_text(errors='replace')}")
            try:
                async with session.get(f"{self.url}/-/ready") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        pytest.fail(f"alertmanager not ready after {within}s: {self.log.read_text()}")

    async def alerts(self, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
        """GET /api/v2/alerts filtered to the built-in notifier's alerts."""
        params = {"filter": 'alertname=~"Monitor.*"'}
        async with session.get(f"{self.url}/api/v2/alerts", params=params) as resp:
            assert resp.status == 200, await resp.text()
            data: list[dict[str, Any]] = await resp.json()
            return data


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """A session for querying Alertmanager, with a short per-request timeout."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


@pytest.fixture
async def alertmanager(
    tmp_path: Path, client: aiohttp.ClientSession
) -> AsyncIterator[Alertmanager]:
    """A running Alertmanager on 127.0.0.1, stopped (and reaped) after the test."""
    am = Alertmanager(tmp_path)
    am.start()
    try:
        await am.wait_ready(client)
        yield am
    finally:
        am.stop()


async def wait_for(
    check: Any, client: aiohttp.ClientSession, am: Alertmanager, within: float = 15.0
) -> list[dict[str, Any]]:
    """Poll Alertmanager's alerts until `check(alerts)` holds; fail with the last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    alerts = await am.alerts(client)
    while not check(alerts):
        if loop.time() > deadline:
            pytest.fail(f"alertmanager alerts never matched: {alerts}")
        await asyncio.sleep(0.1)
        alerts = await am.alerts(client)
    return alerts


class TestAlertmanagerV2:
    """Built-in alerts join a real Alertmanager through POST /api/v2/alerts."""

    async def test_firing_alert_arrives_and_resolves(
        self, alertmanager: Alertmanager, client: aiohttp.ClientSession
    ) -> None:
        """A regressed run's alert shows up active with its labels and annotations; the
        next ok run resolves it, so Alertmanager stops listing it."""
        settings = make_settings([{"name": "am", "alertmanager": {"url": alertmanager.url}}])
        store = MemoryAlertStore()
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        async with Notifier(retry=RetryPolicy(retries=2, base_delay=0.1), timeout=5) as notifier:
            service = AlertService(
                store, notifier, lambda: settings, api_base="http://monitor.test:9464"
            )
            outcomes = await service.handle_run(make_run(21), [make_verdict()], now=start)
            assert all(o.delivered for o in outcomes)

            alerts = await wait_for(lambda a: len(a) == 1, client, alertmanager)
            (alert,) = alerts
            assert alert["labels"] == {
                "alertname": "MonitorRegression",
                "monitor": "intents-prod",
                "endpoint": "chat-prod",
                "scorer": "exact_match",
                "benchmark": "support-intents",
                "severity": "critical",
            }
            assert alert["annotations"]["summary"].startswith(
                "intents-prod on chat-prod: exact_match dropped 4.2 points"
            )
            assert alert["annotations"]["run_url"] == "http://monitor.test:9464/api/v1/runs/21"
            assert alert["generatorURL"] == "http://monitor.test:9464/ui/runs/21"
            assert datetime.fromisoformat(alert["startsAt"]) == start
            assert alert["status"]["state"] in {"active", "unprocessed"}
            assert alert["receivers"][0]["name"] == "blackhole"

            await service.handle_run(
                make_run(22), [make_verdict(VerdictKind.OK)], now=start + timedelta(minutes=1)
            )
            await wait_for(lambda a: a == [], client, alertmanager)
