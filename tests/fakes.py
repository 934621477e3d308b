"""Doubles of the ports in `monitor.ports`, shared by every test that needs one.

Each implements its Protocol structurally; tests that need a real part (a store on
SQLite or PostgreSQL, a loopback HTTP server) use the real one instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy

from monitor.core.alerts import Alert, AlertState
from monitor.core.cost import RunUsage, TokenTotals
from monitor.core.fingerprint import Fingerprint
from monitor.core.model import (
    Benchmark,
    ErrorKind,
    Item,
    ItemResult,
    Response,
    Run,
    RunStatus,
    ScoreSummary,
)
from monitor.errors import StorageError

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class ManualClock:
    """A `Clock` that stands still until the test advances it."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class RecordingSleep:
    """A `sleep` for HttpClient and Notifier that records the wait and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


class ScriptedEndpoint:
    """An `EndpointClient` answering `answers[key]` (or `default`); keys in `errors` fail
    with a 5xx; an optional delay per request; counts requests in flight."""

    def __init__(
        self,
        answers: Mapping[str, str] | None = None,
        errors: Collection[str] = frozenset(),
        delay: float = 0.0,
        *,
        name: str = "fake",
        default: str | None = None,
        model_id: str = "m-1",
    ) -> None:
        self.name = name
        self.answers = dict(answers or {})
        self.errors = set(errors)
        self.delay = delay
        self.default = default
        self.model_id = model_id
        self.in_flight = self.max_in_flight = self.requests = 0

    async def predict(self, item: Item) -> Response:
        self.in_flight += 1
        self.requests += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if item.key in self.errors:
                return Response(None, 0.01, error=ErrorKind.HTTP_5XX, error_detail="503")
            answer = self.answers.get(item.key, self.default)
            if answer is None:
                raise KeyError(item.key)
            return Response(answer, 0.01, model_id=self.model_id)
        finally:
            self.in_flight -= 1


class MemoryRunStore:
    """An in-memory `RunStore` that records every call and can be told to fail."""

    def __init__(
        self,
        *,
        fail_writes: bool = False,
        fail_times: int = 0,
        fail_benchmark: int = 0,
        slow_benchmark: float = 0.0,
    ) -> None:
        self.runs: dict[int, Run] = {}
        self.batches: list[list[ItemResult]] = []
        self.benchmarks: list[str] = []
        self.endpoints: dict[str, str] = {}
        self.scores: dict[int, list[ScoreSummary]] = {}
        self.fail_writes = fail_writes
        self.fail_times = fail_times
        self.fail_benchmark = fail_benchmark
        self.slow_benchmark = slow_benchmark
        self.calls: list[str] = []

    def save_benchmark(self, bench: Benchmark, now: datetime) -> None:
        if self.fail_benchmark:
            self.fail_benchmark -= 1
            raise StorageError("could not store item 'i3' of benchmark 'b': bad value")
        time.sleep(self.slow_benchmark)  # runs in a worker thread, like the real store
        self.calls.append("save_benchmark")
        self.benchmarks.append(bench.version)

    def save_endpoint(self, name: str, config_hash: str, now: datetime) -> None:
        self.endpoints[name] = config_hash

    def start_run(
        self,
        *,
        monitor: str,
        benchmark: str,
        benchmark_version: str,
        endpoint: str,
        trigger: str,
        started_at: datetime,
        repeats: int = 1,
    ) -> Run:
        run = Run(
            id=len(self.runs) + 1,
            monitor=monitor,
            endpoint=endpoint,
            benchmark=benchmark,
            benchmark_version=benchmark_version,
            trigger=trigger,
            status=RunStatus.RUNNING,
            started_at=started_at,
            repeats=repeats,
        )
        self.runs[run.id] = run
        return run

    def add_item_results(self, run_id: int, results: Sequence[ItemResult]) -> None:
        if self.fail_writes:
            raise StorageError("disk full")
        if self.fail_times:
            self.fail_times -= 1
            raise StorageError("server closed the connection unexpectedly")
        self.batches.append(list(results))

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        finished_at: datetime,
        n_items: int,
        n_errors: int,
        model_id: str | None,
        scores: Sequence[ScoreSummary],
        fingerprint: Fingerprint | None = None,
        usage: RunUsage | None = None,
        reason: str | None = None,
    ) -> Run:
        self.calls.append("finish_run")
        run = replace(
            self.runs[run_id],
            status=status,
            finished_at=finished_at,
            n_items=n_items,
            n_errors=n_errors,
            model_id=model_id,
            fingerprint=fingerprint,
            usage=usage,
            status_reason=reason,
        )
        self.runs[run_id] = run
        self.scores[run_id] = list(scores)
        return run

    def usage_since(self, monitor: str, since: datetime) -> tuple[TokenTotals, float]:
        totals, dollars = TokenTotals(), 0.0
        for run in self.runs.values():
            if run.monitor == monitor and run.started_at >= since and run.usage is not None:
                u = run.usage.tokens
                totals = TokenTotals(
                    totals.prompt + u.prompt,
                    totals.completion + u.completion,
                    totals.cached + u.cached,
                    totals.reasoning + u.reasoning,
                    totals.answers + u.answers,
                )
                dollars += run.usage.dollars or 0.0
        return totals, dollars


class MemoryAlertStore:
    """An `AlertStore` in a dict; records every save."""

    def __init__(self) -> None:
        self.rows: dict[str, Alert] = {}
        self.saves: list[list[Alert]] = []

    def load(self, fingerprints: Collection[str]) -> dict[str, Alert]:
        return {fp: self.rows[fp] for fp in fingerprints if fp in self.rows}

    def save(self, alerts: Sequence[Alert], now: datetime) -> None:
        self.saves.append(list(alerts))
        for alert in alerts:
            self.rows[alert.fingerprint] = alert

    def firing(self) -> list[Alert]:
        return [a for a in self.rows.values() if a.state is AlertState.FIRING]


class ScriptedLock:
    """A `LeaderLock` whose holding the test switches: `held` is what the database says."""

    def __init__(self, *, free: bool = True) -> None:
        self.free = free
        self.held = False
        self.released = 0

    def try_acquire(self) -> bool:
        if self.free:
            self.held = True
        return self.held

    def still_held(self) -> bool:
        return self.held

    def release(self) -> None:
        self.released += 1
        self.held = False


@dataclass
class Posted:
    """One request the receiver got."""

    method: str
    path: str
    query: str
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    """One scripted answer."""

    status: int = 200
    body: bytes = b"{}"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


class RecordingReceiver:
    """A loopback HTTP server that records every request and answers as scripted."""

    def __init__(self) -> None:
        self.posts: list[Posted] = []
        self._script: list[Answer] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def respond(self, status: int = 200, **answer: Any) -> None:
        """Queue one answer; the last queued answer repeats."""
        self._script.append(Answer(status=status, **answer))

    def always(self, status: int = 200, **answer: Any) -> None:
        """Drop the queued answers and give this one from now on."""
        self._script = [Answer(status=status, **answer)]

    def on(self, path: str) -> list[Posted]:
        """The requests that reached `path`."""
        return [p for p in self.posts if p.path == path]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.posts.append(
            Posted(
                request.method,
                request.path,
                request.query_string,
                request.headers,
                await request.read(),
            )
        )
        answer = Answer()
        if self._script:
            answer = self._script.pop(0) if len(self._script) > 1 else self._script[0]
        if answer.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), answer.delay)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


_TAG = re.compile(r"<(answer|reference|task)>\n?(.*?)\n?</\1>", re.DOTALL)


class ScriptedChat:
    """A loopback OpenAI-compatible chat server: the model (``/model/v1``) and the judge
    (``/judge/v1``) of judged-benchmark tests, each counting its requests.

    The model answers `answers[prompt]` (default: the prompt reversed). The judge reads
    the `<answer>` and `<reference>` of the prompt monitor/core/judging.py writes and
    passes an answer that contains its reference (or, without one, the word "good").
    Switches, changeable during a test:

    * `strict` / `lenient`: answers the judge now fails / passes whatever they say;
    * `flaky`: answers whose verdict alternates between calls (a non-deterministic judge);
    * `mode`: "json" (default), "fallback" (``VERDICT: PASS`` lines), "garbage",
      "truncated" (JSON cut mid-way), "slow" (answers after `slow_s`), "http_500";
    * `modes`: the mode for a given answer, over `mode`.
    """

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        self.strict: set[str] = set()
        self.lenient: set[str] = set()
        self.flaky: set[str] = set()
        self.mode = "json"
        self.modes: dict[str, str] = {}
        self.slow_s = 5.0
        self.judge_model = "judge-1"
        self.judge_fingerprint: str | None = "jfp_a"
        self.model_requests = 0
        self.judge_requests = 0
        self.judge_bodies: list[dict[str, Any]] = []
        self._calls: dict[str, int] = {}
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/model/v1/chat/completions", self._model)
        app.router.add_post("/judge/v1/chat/completions", self._judge)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _reply(content: str, model: str, fingerprint: str | None) -> web.Response:
        return web.json_response(
            {
                "model": model,
                "system_fingerprint": fingerprint,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 5},
            }
        )

    async def _model(self, request: web.Request) -> web.Response:
        self.model_requests += 1
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        return self._reply(self.answers.get(prompt, prompt[::-1]), "model-1", "fp_m")

    def verdict(self, answer: str, reference: str | None) -> bool:
        """The judge's verdict on `answer` as the switches stand (counts flaky calls)."""
        if answer in self.strict:
            return False
        if answer in self.lenient:
            return True
        good = reference.lower() in answer.lower() if reference else "good" in answer.lower()
        if answer in self.flaky:
            n = self._calls[answer] = self._calls.get(answer, 0) + 1
            return n % 2 == 0
        return good

    async def _judge(self, request: web.Request) -> web.Response:
        self.judge_requests += 1
        body = await request.json()
        self.judge_bodies.append(body)
        text = body["messages"][-1]["content"]
        parts = {m.group(1): m.group(2) for m in _TAG.finditer(text)}
        answer = parts.get("answer", "")
        mode = self.modes.get(answer, self.mode)
        if mode == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.slow_s)
        if mode == "http_500":
            return web.json_response({"error": "judge down"}, status=500)
        passed = self.verdict(answer, parts.get("reference"))
        word = "pass" if passed else "fail"
        content = json.dumps({"reason": f"scripted: {word}", "verdict": word})
        if mode == "fallback":
            content = f"Thinking done.\nVERDICT: {word.upper()}\nREASON: scripted {word}"
        elif mode == "garbage":
            content = "I cannot decide, sorry."
        elif mode == "truncated":
            content = content[: len(content) // 2]
        return self._reply(content, self.judge_model, self.judge_fingerprint)
