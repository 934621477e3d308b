"""Monitors sharing an endpoint share one client, also when their fire times coincide.

Many monitors on one schedule plan their runs at the same instant. Each plan awaits the
store while it records the endpoint (`RunService._client`); without a lock every one of
them built its own client, and with it its own `concurrency` semaphore, so the endpoint
saw `concurrency` requests in flight per monitor (benchmarks/many_monitors.py found it:
50 monitors opened ~1,100 connections to endpoints whose limits summed to 100).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from monitor.benchmarks.cache import BenchmarkCache
from monitor.config import EndpointSettings, parse_settings
from monitor.ports import EndpointClient
from monitor.runner import Runner
from monitor.service import RunService
from tests.fakes import MemoryRunStore, ScriptedEndpoint

MONITORS = 12


def config(folder: Path) -> str:
    rows = [{"id": f"i{k}", "text": f"q{k}", "label": "yes"} for k in range(4)]
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monitors = "".join(
        f"  - {{name: m{k}, benchmark: b, endpoints: [ep]}}\n" for k in range(MONITORS)
    )
    return (
        'storage: {url: "sqlite:///unused.db"}\n'
        "endpoints:\n"
        '  - {name: ep, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m,'
        " concurrency: 4}\n"
        "benchmarks:\n"
        f'  - {{name: b, data: "{folder / "items.jsonl"}", prompt: "{{{{ text }}}}",'
        " reference: label, scorers: [exact_match]}\n"
        f"monitors:\n{monitors}"
    )


async def test_simultaneous_plans_share_one_client(tmp_path: Path) -> None:
    parsed = parse_settings(config(tmp_path))
    built: list[EndpointClient] = []

    def endpoints(settings: EndpointSettings) -> EndpointClient:
        built.append(ScriptedEndpoint(name=settings.name, default="yes"))
        return built[-1]

    store = MemoryRunStore()
    service = RunService(
        store,
        settings=lambda: parsed,
        endpoints=endpoints,
        benchmarks=BenchmarkCache(),
        runner=Runner(store),
    )
    plans = await asyncio.gather(*(service.plan(f"m{k}", "ep") for k in range(MONITORS)))
    assert len(built) == 1
    assert {id(plan.client) for plan in plans} == {id(built[0])}
    assert store.endpoints.keys() == {"ep"}
