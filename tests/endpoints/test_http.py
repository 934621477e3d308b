"""The shared HTTP client: retries, failure kinds, limits, TLS, and its small helpers.

The openai-chat adapter is the vehicle; what is tested here holds for every protocol.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from aiohttp import web

from monitor import __version__
from monitor.config import EndpointSettings
from monitor.core.model import ErrorKind, Item
from monitor.endpoints import HttpClient, RetryPolicy, build_endpoint
from monitor.endpoints.http import JsonPath, TokenBucket, parse_retry_after
from monitor.errors import PermanentEndpointError

CHAT_OK = {
    "model": "m1-2024",
    "choices": [{"message": {"role": "assistant", "content": "refund"}}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 1},
}
ITEM = Item(key="i1", fields={"text": "hi"}, prompt="Classify: hi")


class TestRetryPolicy:
    def test_backoff_doubles_from_base_delay(self) -> None:
        """Without jitter the waits are base, 2*base, 4*base."""
        policy = RetryPolicy(base_delay=0.5, jitter=0.0)
        rng = random.Random(1)
        assert [policy.delay(n, None, rng) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]

    def test_backoff_is_capped(self) -> None:
        """No computed wait exceeds max_delay, even after very many attempts."""
        policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.0)
        assert policy.delay(1000, None, random.Random(1)) == 5.0

    def test_jitter_shortens_by_at_most_its_fraction(self) -> None:
        """With jitter 0.5 every wait lies in [base/2, base]."""
        policy = RetryPolicy(base_delay=2.0, jitter=0.5)
        rng = random.Random(3)
        waits = [policy.delay(1, None, rng) for _ in range(200)]
        assert all(1.0 <= w <= 2.0 for w in waits)
        assert len(set(waits)) > 100

    def test_retry_after_replaces_backoff_and_is_capped(self) -> None:
        """A server's Retry-After is used as is, up to max_delay."""
        policy = RetryPolicy(base_delay=0.5, max_delay=10.0)
        rng = random.Random(1)
        assert policy.delay(1, 3.0, rng) == 3.0
        assert policy.delay(1, 3600.0, rng) == 10.0

    def test_rejects_jitter_outside_zero_one(self) -> None:
        """Jitter is a fraction of the wait."""
        with pytest.raises(ValueError, match="jitter"):
            RetryPolicy(jitter=1.5)


class TestParseRetryAfter:
    def test_delta_seconds(self) -> None:
        """A number of seconds is taken as is."""
        assert parse_retry_after("7", datetime.now(UTC)) == 7.0

    def test_http_date(self) -> None:
        """An HTTP-date gives the seconds from now until then."""
        now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
        assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0

    def test_past_date_means_now(self) -> None:
        """A date already past gives no wait."""
        now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
        assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0

    @pytest.mark.parametrize("value", [None, "", "soon", "nan", "Thu, 99 Foo"])
    def test_absent_or_garbage_is_none(self, value: str | None) -> None:
        """Anything unparseable falls back to the computed backoff."""
        assert parse_retry_after(value, datetime.now(UTC)) is None


class TestJsonPath:
    @pytest.mark.parametrize(
        ("path", "document", "expected"),
        [
            ("$.result.label", {"result": {"label": "spam"}}, "spam"),
            ("$.predictions[0]", {"predictions": [3, 4]}, 3),
            ("$[0].x", [{"x": 1.5}], 1.5),
            ("$.p[-1]", {"p": [1, 2, 9]}, 9),
            ("$['class name']", {"class name": "a"}, "a"),
            ('$["a.b"][1]', {"a.b": [0, "z"]}, "z"),
            ("$", [1], [1]),
        ],
    )
    def test_extracts_the_named_value(self, path: str, document: object, expected: object) -> None:
        """Keys, indexes, negative indexes and quoted keys all resolve."""
        assert JsonPath(path).extract(document) == expected

    @pytest.mark.parametrize("path", ["result.label", "$.a[x]", "$..a", "$.a[0", "$ .a"])
    def test_rejects_malformed_paths(self, path: str) -> None:
        """A path that does not compile is a ValueError naming it."""
        with pytest.raises(ValueError, match="invalid response path"):
            JsonPath(path)

    def test_missing_step_is_an_invalid_response_naming_it(self) -> None:
        """Extraction failures say which step was missing and what was there."""
        with pytest.raises(PermanentEndpointError) as info:
            JsonPath("$.result.label").extract({"result": {"score": 1}})
        assert info.value.kind is ErrorKind.INVALID_RESPONSE
        assert "$.result.label" in info.value.detail
        assert "score" in info.value.detail


class TestTokenBucket:
    async def test_burst_then_steady_rate(self) -> None:
        """The first `burst` tokens are immediate; the rest come at `rate` per second."""
        bucket = TokenBucket(rate=50.0, burst=5)
        loop = asyncio.get_running_loop()
        start = loop.time()
        stamps = []
        for _ in range(10):
            await bucket.acquire()
            stamps.append(loop.time() - start)
        assert stamps[4] < 0.05
        assert stamps[9] >= 5 / 50.0 * 0.9

    async def test_cancelled_waiter_returns_its_token(self) -> None:
        """Cancelling a waiting acquire does not consume capacity."""
        bucket = TokenBucket(rate=10.0, burst=1)
        await bucket.acquire()
        waiter = asyncio.create_task(bucket.acquire())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        loop = asyncio.get_running_loop()
        start = loop.time()
        await bucket.acquire()
        assert loop.time() - start < 0.15


class TestRetries:
    async def test_429_with_retry_after_seconds_then_success(
        self, server, make_endpoint, sleeps
    ) -> None:
        """A 429 is retried after exactly the Retry-After seconds."""
        server.respond(status=429, json={"error": "slow down"}, headers={"Retry-After": "2"})
        server.respond(json=CHAT_OK)
        response = await make_endpoint().predict(ITEM)
        assert response.error is None
        assert response.output == "refund"
        assert response.attempts == 2
        assert sleeps.calls == [2.0]
        assert len(server.requests) == 2

    async def test_429_with_retry_after_http_date(self, server, make_endpoint, sleeps) -> None:
        """An HTTP-date Retry-After is turned into the seconds until that time."""
        when = datetime.now(UTC) + timedelta(seconds=3)
        server.respond(status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
        server.respond(json=CHAT_OK)
        response = await make_endpoint().predict(ITEM)
        assert response.output == "refund"
        assert response.attempts == 2
        assert len(sleeps.calls) == 1
        assert 1.5 <= sleeps.calls[0] <= 3.5

    async def test_503_is_retried_with_backoff_then_succeeds(
        self, server, make_endpoint, sleeps
    ) -> None:
        """Server errors are retried with exponential backoff until an answer comes."""
        server.respond(status=503, body=b"busy")
        server.respond(status=503, body=b"busy")
        server.respond(json=CHAT_OK)
        response = await make_endpoint(backoff="1s").predict(ITEM)
        assert response.output == "refund"
        assert response.attempts == 3
        assert 0.5 <= sleeps.calls[0] <= 1.0
        assert 1.0 <= sleeps.calls[1] <= 2.0

    async def test_persistent_5xx_reports_the_final_status(
        self, server, make_endpoint, sleeps
    ) -> None:
        """After the last retry the item records http_5xx with the status and body."""
        server.respond(status=502, body=b"bad gateway from upstream")
        response = await make_endpoint(retries=2).predict(ITEM)
        assert response.output is None
        assert response.error is ErrorKind.HTTP_5XX
        assert response.attempts == 3
        assert len(sleeps.calls) == 2
        assert len(server.requests) == 3
        assert response.error_detail is not None
        assert "HTTP 502" in response.error_detail
        assert "bad gateway from upstream" in response.error_detail

    async def test_400_is_not_retried(self, server, make_endpoint, sleeps) -> None:
        """A client error other than 429 fails at once: retrying cannot fix the request."""
        server.respond(status=400, json={"error": {"message": "max_tokens too large"}})
        response = await make_endpoint().predict(ITEM)
        assert response.error is ErrorKind.HTTP_4XX
        assert response.attempts == 1
        assert sleeps.calls == []
        assert len(server.requests) == 1
        assert response.error_detail is not None
        assert "max_tokens too large" in response.error_detail

    async def test_retry_waits_really_sleep_by_default(self, server) -> None:
        """Without an injected sleep the client waits the policy's delay on the loop."""
        server.respond(status=503)
        server.respond(json=CHAT_OK)
        async with HttpClient() as http:
            endpoint = build_endpoint(
                _settings(server.url),
                http,
                retry=RetryPolicy(retries=1, base_delay=0.2, jitter=0.0),
            )
            response = await endpoint.predict(ITEM)
        assert response.attempts == 2
        assert response.latency_s >= 0.19
        assert server.requests[1].started - server.requests[0].started >= 0.19


class TestFailureKinds:
    async def test_timeout_is_retried_and_reported(self, server, make_endpoint, sleeps) -> None:
        """A server slower than `timeout` gives error kind timeout after every retry."""
        server.respond(delay=10.0, json=CHAT_OK)
        start = time.perf_counter()
        response = await make_endpoint(timeout="200ms", retries=1).predict(ITEM)
        assert response.error is ErrorKind.TIMEOUT
        assert response.attempts == 2
        assert len(server.requests) == 2
        assert response.error_detail == "no complete response within 0.2s"
        assert len(sleeps.calls) == 1
        assert time.perf_counter() - start < 2.0

    async def test_refused_connection_is_connect(self, make_endpoint, closed_port, sleeps) -> None:
        """Nothing listening on the port gives error kind connect, retried."""
        endpoint = make_endpoint(url=f"http://127.0.0.1:{closed_port}/v1", retries=2)
        response = await endpoint.predict(ITEM)
        assert response.error is ErrorKind.CONNECT
        assert response.attempts == 3
        assert len(sleeps.calls) == 2

    async def test_reset_before_response_is_connect(self, server, make_endpoint) -> None:
        """A server that drops the connection without answering gives connect."""

        async def hang_up(request: web.Request) -> web.StreamResponse:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()

        server.respond(handler=hang_up)
        response = await make_endpoint(retries=1).predict(ITEM)
        assert response.error is ErrorKind.CONNECT
        assert response.attempts == 2

    async def test_malformed_json_is_invalid_and_not_retried(
        self, server, make_endpoint, sleeps
    ) -> None:
        """A 200 whose body is not JSON is invalid_response after one attempt."""
        server.respond(body=b"<html>oops</html>")
        response = await make_endpoint().predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.attempts == 1
        assert len(server.requests) == 1
        assert sleeps.calls == []
        assert response.error_detail is not None
        assert "not JSON" in response.error_detail

    async def test_wrong_shape_is_invalid_response(self, server, make_endpoint) -> None:
        """Valid JSON without the expected fields is invalid_response."""
        server.respond(json={"data": []})
        response = await make_endpoint().predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.attempts == 1

    async def test_declared_oversized_body_is_refused_unread(self, server, make_endpoint) -> None:
        """A Content-Length above max_response_bytes fails without reading the body."""
        server.respond(body=b"[" + b"1," * 5000 + b"1]")
        response = await make_endpoint(max_response_bytes=4096).predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.error_detail is not None
        assert "max_response_bytes (4096)" in response.error_detail

    async def test_streamed_oversized_body_is_abandoned_quickly(
        self, server, make_endpoint
    ) -> None:
        """A 50 MB chunked body is cut off after the cap instead of being buffered."""
        total = 50 * 1024 * 1024
        server.respond(stream=total)
        start = time.perf_counter()
        response = await make_endpoint(max_response_bytes=4096).predict(ITEM)
        elapsed = time.perf_counter() - start
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.attempts == 1
        assert elapsed < 2.0
        await asyncio.wait_for(server.stream_done.wait(), 5.0)
        assert server.client_hung_up
        assert server.stream_sent < total

    async def test_compressed_body_is_capped_after_decompression(
        self, server, make_endpoint
    ) -> None:
        """A small gzip body that inflates past the cap is refused."""
        bomb = gzip.compress(b"[" + b"0," * 100_000 + b"0]")
        assert len(bomb) < 4096
        server.respond(body=bomb, headers={"Content-Encoding": "gzip"})
        response = await make_endpoint(max_response_bytes=4096).predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.error_detail is not None
        assert "max_response_bytes" in response.error_detail

    async def test_compressed_body_is_decoded(self, server, make_endpoint) -> None:
        """A gzip-encoded answer under the cap is decompressed and parsed."""
        server.respond(
            body=gzip.compress(json.dumps(CHAT_OK).encode()), headers={"Content-Encoding": "gzip"}
        )
        response = await make_endpoint().predict(ITEM)
        assert response.output == "refund"

    async def test_redirect_is_not_followed(self, server, make_endpoint) -> None:
        """A 3xx is invalid_response naming the Location, and nothing else is requested."""
        server.respond(status=302, body=b"", headers={"Location": "http://other.invalid/steal"})
        response = await make_endpoint().predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.attempts == 1
        assert response.error_detail is not None
        assert "http://other.invalid/steal" in response.error_detail
        assert len(server.requests) == 1

    async def test_error_detail_never_contains_header_values(self, server, make_endpoint) -> None:
        """A server echoing the API key in its error body does not leak it into the result."""

        async def echo(request: web.Request) -> web.StreamResponse:
            return web.Response(status=401, text=f"bad key {request.headers['Authorization']}")

        server.respond(handler=echo)
        endpoint = make_endpoint(headers={"Authorization": "Bearer sk-live-0123456789"})
        response = await endpoint.predict(ITEM)
        assert response.error is ErrorKind.HTTP_4XX
        assert response.error_detail is not None
        assert "HTTP 401" in response.error_detail
        assert "sk-live-0123456789" not in response.error_detail
        assert "***" in response.error_detail

    async def test_latency_covers_the_request(self, server, make_endpoint) -> None:
        """latency_s is the wall time of the attempts, here at least the server's delay."""
        server.respond(delay=0.1, json=CHAT_OK)
        response = await make_endpoint().predict(ITEM)
        assert 0.09 <= response.latency_s < 2.0


class TestLimits:
    async def test_concurrency_limit_is_respected(self, server, make_endpoint) -> None:
        """No more than `concurrency` requests are in flight at once."""
        server.respond(delay=0.05, json=CHAT_OK)
        endpoint = make_endpoint(concurrency=3)
        responses = await asyncio.gather(*(endpoint.predict(ITEM) for _ in range(12)))
        assert all(r.output == "refund" for r in responses)
        assert server.max_in_flight == 3

    async def test_rate_limit_is_respected(self, server, make_endpoint) -> None:
        """N requests at `rate`/s with burst `rate` span at least (N - burst) / rate."""
        server.respond(json=CHAT_OK)
        endpoint = make_endpoint(rate_limit="20/s", concurrency=64)
        # the server shares this event loop, so its stamps and `t0` are on one clock;
        # measuring from t0 (not from the first arrival) keeps a slow first connect on a
        # busy machine from shrinking the measured span
        t0 = asyncio.get_running_loop().time()
        responses = await asyncio.gather(*(endpoint.predict(ITEM) for _ in range(30)))
        assert all(r.error is None for r in responses)
        stamps = sorted(r.started for r in server.requests)
        assert stamps[-1] - t0 >= (30 - 20) / 20 * 0.95  # the 10 past the burst wait their turn
        assert stamps[-1] - t0 < 3.0

    async def test_endpoints_share_one_client_but_not_limits(self, server, http) -> None:
        """Two endpoints on one HttpClient each get their own concurrency limit."""
        server.respond(delay=0.05, json=CHAT_OK)
        one = build_endpoint(_settings(server.url, name="one", concurrency=2), http)
        two = build_endpoint(_settings(server.url, name="two", concurrency=2), http)
        await asyncio.gather(*(e.predict(ITEM) for e in (one, two) for _ in range(6)))
        assert server.max_in_flight == 4


class TestRequests:
    async def test_sends_user_agent_content_type_and_configured_headers(
        self, server, make_endpoint
    ) -> None:
        """Every request carries monitor's User-Agent, JSON content type and the headers."""
        server.respond(json=CHAT_OK)
        endpoint = make_endpoint(headers={"Authorization": "Bearer k", "X-Team": "ml"})
        await endpoint.predict(ITEM)
        await endpoint.predict(ITEM)
        for request in server.requests:
            assert request.headers["User-Agent"] == f"monitor/{__version__}"
            assert request.headers["Content-Type"] == "application/json"
            assert request.headers["Authorization"] == "Bearer k"
            assert request.headers["X-Team"] == "ml"

    async def test_configured_header_overrides_a_default(self, server, make_endpoint) -> None:
        """A configured header replaces the default of the same name, whatever its case."""
        server.respond(json=CHAT_OK)
        await make_endpoint(headers={"user-agent": "custom/1"}).predict(ITEM)
        assert server.requests[0].headers.getall("User-Agent") == ["custom/1"]

    async def test_closed_client_refuses_requests(self, server) -> None:
        """After aclose a client cannot silently open a new session."""
        http = HttpClient()
        await http.aclose()
        endpoint = build_endpoint(_settings(server.url), http)
        with pytest.raises(RuntimeError, match="closed"):
            await endpoint.predict(ITEM)

    async def test_client_opens_lazily_without_context_manager(self, server) -> None:
        """A client used without `async with` opens on first use and closes with aclose."""
        server.respond(json=CHAT_OK)
        http = HttpClient()
        try:
            response = await build_endpoint(_settings(server.url), http).predict(ITEM)
        finally:
            await http.aclose()
        assert response.output == "refund"


class TestTls:
    async def test_self_signed_certificate_is_refused_by_default(
        self, tls_server, make_endpoint, sleeps
    ) -> None:
        """Certificate verification is on by default and its failure is not retried."""
        tls_server.respond(json=CHAT_OK)
        response = await make_endpoint(url=tls_server.url).predict(ITEM)
        assert response.error is ErrorKind.CONNECT
        assert response.attempts == 1
        assert response.error_detail is not None
        assert "TLS" in response.error_detail
        assert sleeps.calls == []

    async def test_ca_bundle_trusts_the_server(
        self, tls_server, make_endpoint, self_signed: tuple[Path, Path]
    ) -> None:
        """A per-endpoint ca_bundle verifies the server's certificate."""
        tls_server.respond(json=CHAT_OK)
        endpoint = make_endpoint(url=tls_server.url, ca_bundle=str(self_signed[0]))
        response = await endpoint.predict(ITEM)
        assert response.output == "refund"

    async def test_verify_tls_false_skips_verification(self, tls_server, make_endpoint) -> None:
        """verify_tls: false accepts any certificate."""
        tls_server.respond(json=CHAT_OK)
        response = await make_endpoint(url=tls_server.url, verify_tls=False).predict(ITEM)
        assert response.output == "refund"

    def test_unreadable_ca_bundle_is_a_build_error(self, make_endpoint, tmp_path: Path) -> None:
        """A ca_bundle that cannot be loaded fails when the endpoint is built."""
        with pytest.raises(ValueError, match="cannot load ca_bundle"):
            make_endpoint(ca_bundle=str(tmp_path / "missing.pem"))

    def test_ca_bundle_without_verification_is_a_build_error(
        self, make_endpoint, self_signed: tuple[Path, Path]
    ) -> None:
        """Asking for a CA bundle while disabling verification is contradictory."""
        with pytest.raises(ValueError, match="no effect"):
            make_endpoint(ca_bundle=str(self_signed[0]), verify_tls=False)


def _settings(url: str, **fields: object) -> EndpointSettings:
    data = {"name": "ep", "type": "openai-chat", "url": url, "model": "m1", **fields}
    return EndpointSettings.model_validate(data)
