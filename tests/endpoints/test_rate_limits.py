"""Rate limits and adaptive concurrency against real loopback servers that enforce limits.

No wall-clock bounds: the tests assert orderings (client send times against the moment a
Retry-After was received plus its seconds), counts and final states. The client's times
are the event loop's clock, recorded around `HttpClient.post_json`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from monitor.config import parse_settings
from monitor.core.model import ErrorKind, RunStatus
from monitor.endpoints import HttpClient, RetryPolicy, build_endpoint
from monitor.endpoints.http import JsonEndpoint
from monitor.endpoints.limits import SendLimits
from monitor.errors import ConfigError, TransientEndpointError
from monitor.runner import Runner, RunRequest
from tests.endpoints.conftest import MakeEndpoint, ScriptedServer, endpoint_settings
from tests.fakes import MemoryRunStore
from tests.test_runner import bench

TOLERANCE_S = 1e-3  # the loop clock's resolution is far finer; asyncio may wake that early

ANSWER = {
    "id": "r",
    "object": "chat.completion",
    "model": "m1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "yes"}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21},
}


class WindowLimit:
    """A handler for ScriptedServer: ``quota`` requests per fixed ``window`` seconds from
    the first request, then 429 with Retry-After (rounded up to the millisecond) until
    the window resets. ``storm`` rejects the first that many requests whatever the count."""

    def __init__(self, quota: int, window: float, *, storm: int = 0, status: int = 429) -> None:
        self.quota = quota
        self.window = window
        self.storm = storm
        self.status = status
        self.start: float | None = None
        self.counts: dict[int, int] = {}
        self.accepted = 0
        self.rejected = 0

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        now = asyncio.get_running_loop().time()
        if self.start is None:
            self.start = now
        index = int((now - self.start) // self.window)
        if self.storm > 0 or self.counts.get(index, 0) >= self.quota:
            self.storm -= 1
            self.rejected += 1
            wait = self.start + (index + 1) * self.window - now
            headers = {"Retry-After": f"{math.ceil(wait * 1000) / 1000:.3f}"}
            return web.json_response({"error": "slow down"}, status=self.status, headers=headers)
        self.counts[index] = self.counts.get(index, 0) + 1
        self.accepted += 1
        await asyncio.sleep(0.002)  # a little time in flight, so requests overlap
        return web.json_response(ANSWER)


@dataclass
class Sent:
    at: float  # loop time the attempt was handed to aiohttp
    limit: int  # the endpoint's adaptive limit then
    in_use: int


@dataclass
class Refused:
    at: float  # loop time the client saw the answer
    retry_after: float | None


class RecordingHttp(HttpClient):
    """The real client with real sleeps, recording every attempt and every refusal."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Sent] = []
        self.refused: list[Refused] = []
        self.limits: SendLimits | None = None

    async def post_json(self, url: URL, body: bytes, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        limits = self.limits
        assert limits is not None
        self.sent.append(Sent(loop.time(), limits.limiter.control.limit, limits.limiter.in_use))
        try:
            return await super().post_json(url, body, **kwargs)
        except TransientEndpointError as exc:
            self.refused.append(Refused(loop.time(), exc.retry_after))
            raise


@pytest.fixture
async def recording() -> AsyncIterator[RecordingHttp]:
    async with RecordingHttp() as client:
        yield client


def endpoint_on(http: RecordingHttp, url: str, **fields: Any) -> JsonEndpoint:
    fields.setdefault("retries", 20)
    fields.setdefault("backoff", "10ms")
    endpoint = build_endpoint(endpoint_settings(url, **fields), http)
    assert isinstance(endpoint, JsonEndpoint)
    http.limits = endpoint.limits
    return endpoint


async def predict_all(endpoint: JsonEndpoint, n: int) -> list[Any]:
    items = bench(n).items
    return await asyncio.gather(*(endpoint.predict(item) for item in items))


class TestRetryAfter:
    async def test_no_request_is_sent_before_a_retry_after_allows(
        self, server: ScriptedServer, recording: RecordingHttp
    ) -> None:
        """Once any worker has seen a 429 with Retry-After, no worker of the endpoint sends
        before that time, not only the one that got it."""
        limit = WindowLimit(quota=6, window=0.15)
        server.respond(handler=limit)
        endpoint = endpoint_on(recording, server.url, concurrency=8)
        responses = await predict_all(endpoint, 40)
        assert all(r.output == "yes" for r in responses)
        gated = [r for r in recording.refused if r.retry_after is not None]
        assert len(gated) >= 3  # 40 items at 6 per window: several windows were hit
        for refusal in gated:
            assert refusal.retry_after is not None
            allowed = refusal.at + refusal.retry_after - TOLERANCE_S
            later = [s.at for s in recording.sent if s.at > refusal.at]
            assert all(at >= allowed for at in later), (refusal, min(later))
        assert limit.accepted == 40
        assert len(recording.sent) == limit.accepted + limit.rejected

    async def test_503_with_retry_after_gates_and_shrinks(
        self, server: ScriptedServer, recording: RecordingHttp
    ) -> None:
        """A 503 that says when to come back is a congestion signal like a 429."""
        limit = WindowLimit(quota=4, window=0.1, status=503)
        server.respond(handler=limit)
        endpoint = endpoint_on(recording, server.url, concurrency=8)
        responses = await predict_all(endpoint, 16)
        assert all(r.output == "yes" for r in responses)
        assert min(s.limit for s in recording.sent) < 8
        for refusal in recording.refused:
            assert refusal.retry_after is not None
            later = [s.at for s in recording.sent if s.at > refusal.at]
            assert all(at >= refusal.at + refusal.retry_after - TOLERANCE_S for at in later)

    async def test_503_without_retry_after_is_not_congestion(
        self, server: ScriptedServer, make_endpoint: MakeEndpoint
    ) -> None:
        """A plain 503 is retried with backoff but does not shrink the limit: an erroring
        server is not a rate limit."""
        server.respond(status=503, body=b"busy")
        server.respond(status=503, body=b"busy")
        server.respond(json=ANSWER)
        endpoint = make_endpoint(concurrency=8)
        assert isinstance(endpoint, JsonEndpoint)
        response = await endpoint.predict(bench(1).items[0])
        assert response.output == "yes"
        assert response.attempts == 3
        assert endpoint.limits.limiter.control.limit == 8
        assert endpoint.limits.gate.until == 0.0

    async def test_429_without_retry_after_shrinks_but_does_not_gate(
        self, server: ScriptedServer, make_endpoint: MakeEndpoint
    ) -> None:
        server.respond(status=429, json={"error": "slow down"})
        server.respond(json=ANSWER)
        endpoint = make_endpoint(concurrency=8)
        assert isinstance(endpoint, JsonEndpoint)
        response = await endpoint.predict(bench(1).items[0])
        assert response.output == "yes"
        assert endpoint.limits.limiter.control.limit == 4
        assert endpoint.limits.gate.until == 0.0
        assert endpoint.concurrency() == (4, 0)  # what monitor_endpoint_concurrency_limit shows


class TestAdaptiveConcurrency:
    async def test_concurrency_shrinks_on_429_and_grows_back(
        self, server: ScriptedServer, recording: RecordingHttp
    ) -> None:
        """A storm of 429s halves the limit (once per burst sent at one limit); the
        successes after it raise the limit back to `concurrency`."""
        limit = WindowLimit(quota=10_000, window=0.05, storm=24)
        server.respond(handler=limit)
        endpoint = endpoint_on(recording, server.url, concurrency=8)
        responses = await predict_all(endpoint, 300)
        assert all(r.output == "yes" for r in responses)
        limits = [s.limit for s in recording.sent]
        assert limits[0] == 8
        lowest = min(limits)
        assert lowest <= 4
        after_lowest = limits[limits.index(lowest) :]
        assert after_lowest[-1] == 8
        assert endpoint.limits.limiter.control.limit == 8
        assert all(s.in_use <= 8 for s in recording.sent)
        assert server.max_in_flight <= 8

    async def test_a_429_storm_finishes_with_every_item(self, server: ScriptedServer) -> None:
        """A run through the runner under a rate limit that keeps refusing: every item is
        answered and stored once, the run succeeds, retries show in the attempts."""
        limit = WindowLimit(quota=8, window=0.1)
        server.respond(handler=limit)
        async with RecordingHttp() as http:
            endpoint = endpoint_on(http, server.url, concurrency=8)
            store = MemoryRunStore()
            outcome = await Runner(store, batch_size=16).run(
                RunRequest(monitor="m", benchmark=bench(60), endpoint=endpoint, concurrency=8)
            )
        assert outcome.run.status is RunStatus.SUCCEEDED
        results = [r for batch in store.batches for r in batch]
        assert sorted(r.item_key for r in results) == sorted(f"i{k}" for k in range(60))
        assert all(r.output == "yes" and r.error is None for r in results)
        assert limit.rejected > 0
        assert sum(r.attempts for r in results) == limit.accepted + limit.rejected
        assert outcome.run.n_errors == 0

    async def test_a_storm_that_never_ends_loses_no_item(self, server: ScriptedServer) -> None:
        """When the retries run out, each item is stored as an http_4xx error and the run
        is degraded, not lost or stuck."""
        server.respond(status=429, json={"error": "slow down"}, headers={"Retry-After": "0.01"})
        async with RecordingHttp() as http:
            endpoint = endpoint_on(http, server.url, concurrency=4, retries=2)
            store = MemoryRunStore()
            outcome = await Runner(store, batch_size=16).run(
                RunRequest(monitor="m", benchmark=bench(12), endpoint=endpoint, concurrency=4)
            )
        results = [r for batch in store.batches for r in batch]
        assert len(results) == 12
        assert all(r.error is ErrorKind.HTTP_4XX and r.attempts == 3 for r in results)
        assert outcome.run.status is RunStatus.DEGRADED
        assert endpoint.limits.limiter.control.limit == 1
        assert len(server.requests) == 12 * 3


class TestTokens:
    async def test_estimate_is_settled_with_the_usage(
        self, server: ScriptedServer, recording: RecordingHttp
    ) -> None:
        """With a tokens-per-minute limit, each request reserves the mean usage seen so
        far and the answer's usage replaces the estimate."""
        server.respond(json=ANSWER)
        endpoint = endpoint_on(
            recording,
            server.url,
            concurrency=2,
            rate_limit={"tokens_per_minute": 600_000},
        )
        assert endpoint.limits.tokens is not None
        assert endpoint.limits.token_estimate() == 1.0  # nothing seen yet
        await predict_all(endpoint, 6)
        assert endpoint.limits.seen_tokens == [6, 6 * 21]
        assert endpoint.limits.token_estimate() == 21.0

    async def test_refused_attempts_give_their_tokens_back(self) -> None:
        limits = SendLimits(4, tokens_per_minute=60.0)  # 1 token per second, burst 1
        assert limits.tokens is not None
        await limits.tokens.acquire(1.0)
        limits.settle_tokens(1.0, None, None)
        await asyncio.wait_for(limits.tokens.acquire(1.0), timeout=30)  # did not wait 1 s
        assert limits.seen_tokens == [0, 0]


GOOD = """
endpoints:
  - name: chat
    type: openai-chat
    url: https://example.test/v1
    model: m
    rate_limit: {value}
"""


class TestSettings:
    @pytest.mark.parametrize(
        ("value", "per_s", "tokens"),
        [
            ("20/s", 20.0, None),
            ("600/m", 10.0, None),
            ("{requests_per_minute: 600, tokens_per_minute: 90000}", 10.0, 90000.0),
            ("{tokens_per_minute: 90000}", None, 90000.0),
            ("{requests_per_minute: 30}", 0.5, None),
        ],
    )
    def test_both_forms(self, value: str, per_s: float | None, tokens: float | None) -> None:
        (ep,) = parse_settings(GOOD.format(value=value), sections={"endpoints"}).endpoints
        assert ep.rate_limit == per_s
        assert ep.tokens_per_minute == tokens

    def test_old_form_keeps_its_fingerprint(self) -> None:
        """The per-second form hashes as before the per-minute form existed (a stored
        endpoint's configuration hash is not changed by an upgrade)."""
        (ep,) = parse_settings(GOOD.format(value="20/s"), sections={"endpoints"}).endpoints
        (plain,) = parse_settings(
            GOOD.replace("    rate_limit: {value}\n", ""), sections={"endpoints"}
        ).endpoints
        assert ep.fingerprint() != plain.fingerprint()
        data = plain.model_dump(mode="json", exclude={"headers", "pricing", "limits"})
        assert "limits" not in data
        assert "rate_limit" not in data
        assert plain.rate_limit is None
        assert plain.tokens_per_minute is None

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (
                "{tokens_per_minute: -5}",
                "monitor.yaml:7: endpoints[0].rate_limit.tokens_per_minute: "
                "Input should be greater than 0",
            ),
            ("{rpm: 5}", "monitor.yaml:7: endpoints[0].rate_limit.rpm: unknown key"),
            (
                "{}",
                "monitor.yaml:7: endpoints[0].rate_limit: give requests_per_minute, "
                "tokens_per_minute or both",
            ),
            (
                "\n      requests_per_minute: lots",
                "monitor.yaml:8: endpoints[0].rate_limit.requests_per_minute: "
                "Input should be a valid number",
            ),
        ],
    )
    def test_errors_name_file_line_and_field(self, value: str, message: str) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_settings(GOOD.format(value=value), source="monitor.yaml")
        assert str(caught.value).startswith(message), str(caught.value)

    def test_limits_reach_the_endpoint(self) -> None:
        settings = endpoint_settings(
            "http://127.0.0.1:1",
            concurrency=5,
            rate_limit={"requests_per_minute": 120, "tokens_per_minute": 6000},
        )
        endpoint = build_endpoint(settings, HttpClient(), retry=RetryPolicy())
        assert isinstance(endpoint, JsonEndpoint)
        limits = endpoint.limits
        assert limits.limiter.control.maximum == 5
        assert limits.requests is not None
        assert limits.requests.rate == 2.0
        assert limits.tokens is not None
        assert limits.tokens.rate == 100.0
