"""Fixtures for hardening tests: the fault server, one-shot runs through `monitor run`'s code
path, RSS sampling, and child processes (daemons, simulator, fault server)."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.app import cli_service
from monitor.config import parse_settings
from monitor.core.model import ItemResult
from monitor.demo.data import PROMPT, write_items
from monitor.runner import RunOutcome
from monitor.storage import SqlStore, open_store
from tests.hardening.faults import FaultProcess, FaultServer

ITEMS = 20
TIMEOUT_S = 1.0
RETRIES = 2
BACKOFF_S = 0.05

RUN_CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
endpoints:
{endpoints}
benchmarks:
  - name: intents
    data: {data}
    prompt: {prompt}
    reference: label
    scorers: [exact_match]
monitors:
  - name: hostile
    benchmark: intents
    endpoints: [{names}]
"""
ENDPOINT = """\
  - name: {name}
    type: openai-chat
    url: {url}
    model: {model}
    timeout: {timeout}s
    retries: {retries}
    backoff: {backoff}s
    concurrency: {concurrency}
    max_response_bytes: {max_bytes}
"""


def rss_kib() -> int:
    """This process's resident set size (VmRSS) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


class RssSampler:
    """Samples VmRSS every few milliseconds in a thread; ``with`` it around the code to watch.

    RSS misses a spike that fits in heap freed earlier in the process, so the peak of
    Python allocations (tracemalloc, which sees every bytes object) is recorded as well.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.before = self.peak = self.after = 0
        self.traced_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        tracemalloc.start()
        self.before = self.peak = rss_kib()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.after = rss_kib()
        self.peak = max(self.peak, self.after)
        self.traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    @property
    def traced_peak_mib(self) -> float:
        return self.traced_peak / 1024 / 1024

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_kib())

    @property
    def growth_mib(self) -> float:
        return (self.after - self.before) / 1024

    @property
    def peak_growth_mib(self) -> float:
        return (self.peak - self.before) / 1024


@dataclass(frozen=True, slots=True)
class HostileRun:
    """One finished run against one endpoint, with what the store and the server saw."""

    outcome: RunOutcome
    results: list[ItemResult]
    wall_s: float
    counts: dict[str, int]

    @property
    def kinds(self) -> set[str | None]:
        return {None if r.error is None else r.error.value for r in self.results}

    @property
    def attempts(self) -> set[int]:
        return {r.attempts for r in self.results}


class HostileBench:
    """Runs a 20-item benchmark through `cli_service` (the `monitor run` path)
    against endpoints of the fault server, with a real SQLite store in ``tmp_path``."""

    def __init__(self, folder: Path, faults: FaultServer, store: SqlStore, db: Path) -> None:
        self.folder, self.faults, self.store, self.db = folder, faults, store, db
        self.data = write_items(folder / "items.jsonl", ITEMS)

    def settings_text(self, endpoints: dict[str, str], **fields: Any) -> str:
        """Config text with one endpoint per ``name -> url`` and one monitor using them all."""
        values: dict[str, Any] = {
            "timeout": TIMEOUT_S,
            "retries": RETRIES,
            "backoff": BACKOFF_S,
            "concurrency": ITEMS,
            "max_bytes": 1 << 20,
            "model": "faults",
            **fields,
        }
        blocks = "".join(
            ENDPOINT.format(name=name, url=json.dumps(url), **values)
            for name, url in endpoints.items()
        )
        return RUN_CONFIG.format(
            db=self.db,
            endpoints=blocks,
            data=json.dumps(str(self.data)),
            prompt=json.dumps(PROMPT),
            names=", ".join(endpoints),
        )

    async def run_many(self, endpoints: dict[str, str], **fields: Any) -> list[HostileRun]:
        """One run of the monitor on every endpoint at once; results in ``endpoints`` order."""
        settings = parse_settings(self.settings_text(endpoints, **fields), source="hostile.yaml")
        async with cli_service(settings, self.store) as service:
            self.faults.reset_counts()
            start = time.perf_counter()
            outcomes = await service.run_monitor("hostile")
        wall = time.perf_counter() - start
        counts = dict(self.faults.counts)
        by_name = {o.run.endpoint: o for o in outcomes}
        return [
            HostileRun(by_name[name], self.store.item_results(by_name[name].run.id), wall, counts)
            for name in endpoints
        ]

    async def run(self, fault: str, url: str | None = None, **fields: Any) -> HostileRun:
        """One run against ``fault`` (selected by path) or against ``url``."""
        target = url if url is not None else self.faults.url_for(fault)
        (only,) = await self.run_many({"hostile": target}, **fields)
        return only


@pytest.fixture
async def faults() -> AsyncIterator[FaultServer]:
    """The fault server on 127.0.0.1 (redirect target on 127.0.0.2), in this event loop."""
    async with FaultServer() as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    """A migrated SQLite store in the test's folder."""
    with open_store(f"sqlite:///{tmp_path / 'monitor.db'}") as opened:
        yield opened


@pytest.fixture
def bench(tmp_path: Path, faults: FaultServer, store: SqlStore) -> HostileBench:
    """Runs of a 20-item benchmark against the fault server (see HostileBench)."""
    return HostileBench(tmp_path, faults, store, tmp_path / "monitor.db")


@pytest.fixture
def fault_process() -> Iterator[FaultProcess]:
    """The fault server as a child process."""
    proc = FaultProcess(cwd=str(Path(__file__).resolve().parents[2]))
    yield proc
    proc.stop()
