"""The one shared async HTTP client and the predict loop every protocol adapter reuses.

Built on aiohttp (see docs/decisions/0001-http-client.md: it costs a fraction of httpx's
CPU per request). One ``aiohttp.ClientSession`` serves every endpoint of the process; each
endpoint adds its own concurrency limit, rate limit, timeout, TLS settings and retry policy.

Failure handling, per attempt::

    no complete response within `timeout`        -> TIMEOUT           retried
    refused, DNS, reset, body cut off            -> CONNECT           retried
    TLS handshake or certificate failure         -> CONNECT           not retried (config)
    429                                          -> HTTP_4XX          retried, Retry-After *
    5xx                                          -> HTTP_5XX          retried, Retry-After *
    other 4xx                                    -> HTTP_4XX          not retried
    3xx (redirects are never followed)           -> INVALID_RESPONSE  not retried
    not JSON, wrong shape, > max_response_bytes  -> INVALID_RESPONSE  not retried
    body that does not decompress (gzip, ...)    -> INVALID_RESPONSE  not retried
    JSON nested too deeply to parse              -> INVALID_RESPONSE  not retried

* 429, and 5xx with Retry-After, are congestion signals: the endpoint's in-flight limit
shrinks and a Retry-After holds back every request of the endpoint, not only the retry
(monitor/endpoints/limits.py, docs/decisions/0009-adaptive-concurrency.md).

`JsonEndpoint.predict` turns the final failure into a `Response` value; it raises only
`BenchmarkError`, when an item cannot be turned into a request at all (a data problem that
would fail the same way on every endpoint and every run).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import aiohttp
from aiohttp.http_exceptions import ContentEncodingError
from multidict import CIMultiDict
from yarl import URL

from monitor import __version__
from monitor.aio_session import SessionOwner
from monitor.core.model import ErrorKind, Item, Response, Usage
from monitor.core.retry import RetryPolicy, parse_retry_after
from monitor.endpoints.limits import SendLimits, TokenBucket
from monitor.errors import (
    BenchmarkError,
    EndpointError,
    PermanentEndpointError,
    TransientEndpointError,
)

if TYPE_CHECKING:
    from monitor.config import EndpointSettings

__all__ = [
    "USER_AGENT",
    "HttpClient",
    "JsonEndpoint",
    "JsonPath",
    "Prediction",
    "RetryPolicy",
    "TokenBucket",
    "invalid_response",
    "item_field",
    "parse_retry_after",
    "render_value",
]

USER_AGENT = f"monitor/{__version__}"
_DETAIL_CHARS = 300  # error_detail is stored per item: keep it short
# How much of an error body is read for error_detail. It is scrubbed of secrets first and
# cut to _DETAIL_CHARS afterwards, so a secret cannot survive as a prefix at the cut.
_SNIPPET_BYTES = 4096
# answers refusing the request (the server generated nothing): their tokens are given back
_REFUSED = frozenset({ErrorKind.HTTP_4XX, ErrorKind.HTTP_5XX})


# ---------------------------------------------------------------- response helpers


def invalid_response(detail: str) -> PermanentEndpointError:
    """The error for a response that arrived but cannot be used."""
    return PermanentEndpointError(ErrorKind.INVALID_RESPONSE, detail)


def render_value(value: Any, what: str = "prediction") -> str:
    """The text recorded as an item's output: strings as they are, numbers and booleans
    through ``str``, lists and objects as compact JSON; JSON null is an invalid response."""
    if isinstance(value, str):
        return value
    if value is None:
        raise invalid_response(f"{what} is null")
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def item_field(item: Item, name: str, endpoint: str) -> Any:
    """The item's field ``name``; BenchmarkError naming the item if it has none."""
    try:
        return item.fields[name]
    except KeyError:
        known = _shorten(", ".join(sorted(map(str, item.fields))) or "(none)")
        raise BenchmarkError(
            f"item {item.key!r}: endpoint {endpoint!r} needs field {name!r} (item has: {known})"
        ) from None


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_PATH_STEP = re.compile(r"""\.([^.\[\]\s'"]+)|\[(-?\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")


class JsonPath:
    """A compiled JSONPath subset naming one value: ``$``, ``.key``, ``[index]`` (negative
    counts from the end), ``['key']`` / ``["key"]`` for keys with dots or spaces.

    Examples: ``$.result.label``, ``$.predictions[0]``, ``$[0].x``, ``$['class name']``.
    """

    __slots__ = ("source", "steps")

    def __init__(self, source: str) -> None:
        text = source.strip()
        if not text.startswith("$"):
            raise ValueError(f"invalid response path {source!r}: must start with '$'")
        steps: list[str | int] = []
        pos = 1
        while pos < len(text):
            match = _PATH_STEP.match(text, pos)
            if match is None:
                raise ValueError(
                    f"invalid response path {source!r} at character {pos + 1}: expected "
                    ".key, [index] or ['key'] (example: $.predictions[0].label)"
                )
            key, index, single, double = match.groups()
            if index is not None:
                steps.append(int(index))
            else:
                steps.append(next(k for k in (key, single, double) if k is not None))
            pos = match.end()
        self.source = text
        self.steps = tuple(steps)

    def extract(self, document: Any) -> Any:
        """The value at this path; raises an invalid-response error naming the missing step."""
        value = document
        for depth, step in enumerate(self.steps):
            if isinstance(step, int):
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    raise invalid_response(f"{self._upto(depth)}: {self._describe(value)}")
                value = value[step]
            else:
                if not isinstance(value, dict) or step not in value:
                    raise invalid_response(f"{self._upto(depth)}: {self._describe(value)}")
                value = value[step]
        return value

    def _upto(self, depth: int) -> str:
        out = "$"
        for step in self.steps[: depth + 1]:
            out += f"[{step}]" if isinstance(step, int) else f".{step}"
        return f"response has no {out}"

    @staticmethod
    def _describe(value: Any) -> str:
        if isinstance(value, dict):
            return "keys " + _shorten(", ".join(map(str, value)) or "(none)")
        if isinstance(value, list):
            return f"list of {len(value)}"
        return f"found {type(value).__name__}"

    def __repr__(self) -> str:
        return f"JsonPath({self.source!r})"


# ---------------------------------------------------------------- the shared client


class HttpClient(SessionOwner):
    """Owns the process's one aiohttp session; use as ``async with HttpClient() as http``.

    ``sleep`` and ``rng`` drive retry waits, so tests can make them instant and repeatable.
    ``max_connections`` caps open connections across all endpoints; the default 0 means no
    cap beyond the endpoints' own ``concurrency`` limits, whose sum is the real bound. A cap
    below that sum would make requests queue for a connection inside aiohttp, and the queue
    time would count against each attempt's timeout.
    """

    def __init__(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_connections: int = 0,
    ) -> None:
        self.sleep = sleep
        self.rng = rng if rng is not None else random.Random()
        self._max_connections = max_connections

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, ttl_dns_cache=30
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # endpoints are APIs, not browsers
            auto_decompress=True,
            trust_env=False,
            raise_for_status=False,
        )

    async def post_json(
        self,
        url: URL,
        body: bytes,
        *,
        headers: Mapping[str, str],
        time_limit: aiohttp.ClientTimeout,
        tls: ssl.SSLContext | bool,
        max_bytes: int,
    ) -> Any:
        """One attempt: POST ``body`` and return the parsed JSON of a 2xx answer.

        ``tls`` is aiohttp's ``ssl`` argument: True verifies with the system CAs, an
        SSLContext verifies with its own CAs, False does not verify.
        Raises TransientEndpointError or PermanentEndpointError (see the module docstring).
        Reads at most ``max_bytes + 1`` bytes of the body; a larger body is abandoned
        (the connection is closed, not drained).
        """
        session = self._session if self._session is not None else self.session()
        try:
            async with session.post(
                url,
                data=body,
                headers=headers,
                timeout=time_limit,
                ssl=tls,
                allow_redirects=False,
            ) as resp:
                status = resp.status
                if not 200 <= status < 300:
                    raise await _status_error(resp)
                length = resp.content_length
                if (
                    length is not None
                    and length > max_bytes
                    and not resp.headers.get("Content-Encoding")
                ):
                    raise invalid_response(
                        f"response of {length} bytes exceeds max_response_bytes ({max_bytes})"
                    )
                raw = await _read_capped(resp.content, max_bytes)
        except EndpointError:
            raise
        except aiohttp.ClientSSLError as exc:
            raise PermanentEndpointError(ErrorKind.CONNECT, f"TLS: {exc}") from exc
        except TimeoutError as exc:
            raise TransientEndpointError(
                ErrorKind.TIMEOUT, f"no complete response within {time_limit.total:g}s"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransientEndpointError(ErrorKind.CONNECT, str(exc)) from exc
        except aiohttp.ClientConnectionError as exc:
            raise TransientEndpointError(
                ErrorKind.CONNECT, f"connection lost: {type(exc).__name__} {exc}".strip()
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            cause = exc.__cause__
            if isinstance(cause, ContentEncodingError):
                # the body arrived but does not decompress: the same bytes would come
                # again, so this is the server's answer, not a lost connection
                raise invalid_response(f"response body is undecodable: {cause.message}") from exc
            raise TransientEndpointError(
                ErrorKind.CONNECT, f"connection lost while reading the body: {exc}"
            ) from exc
        except aiohttp.ClientResponseError as exc:
            raise invalid_response(f"malformed HTTP response: {exc.message}") from exc
        except aiohttp.ClientError as exc:
            raise TransientEndpointError(ErrorKind.CONNECT, f"{type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            snippet = raw[:60].decode("utf-8", "replace")
            raise invalid_response(f"response is not JSON ({exc}): {snippet!r}") from None
        except RecursionError:
            # valid JSON such as 100 000 nested "[" fits in a small body but exhausts the
            # parser's stack; left uncaught it would fail the whole run, not the item
            raise invalid_response("response JSON is nested too deeply to parse") from None


async def _read_capped(content: aiohttp.StreamReader, max_bytes: int) -> bytes:
    first = await content.read(max_bytes + 1)
    if not first:
        return first
    chunks = [first]
    size = len(first)
    while size <= max_bytes:
        chunk = await content.read(max_bytes + 1 - size)
        if not chunk:
            return first if len(chunks) == 1 else b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise invalid_response(f"response exceeds max_response_bytes ({max_bytes})")


async def _status_error(resp: aiohttp.ClientResponse) -> EndpointError:
    status = resp.status
    if 300 <= status < 400:
        location = resp.headers.get("Location", "(no Location header)")
        return invalid_response(f"HTTP {status} redirect to {_shorten(location)} not followed")
    try:
        raw = await resp.content.read(_SNIPPET_BYTES)
    except (aiohttp.ClientError, TimeoutError):
        raw = b""
    snippet = " ".join(raw.decode("utf-8", "replace").split())
    detail = f"HTTP {status} {resp.reason or ''}".rstrip() + (f": {snippet}" if snippet else "")
    if status == 429:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"), datetime.now(UTC))
        return TransientEndpointError(ErrorKind.HTTP_4XX, detail, retry_after=retry_after)
    if 500 <= status < 600:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"), datetime.now(UTC))
        return TransientEndpointError(ErrorKind.HTTP_5XX, detail, retry_after=retry_after)
    if 400 <= status < 500:
        return PermanentEndpointError(ErrorKind.HTTP_4XX, detail)
    return invalid_response(f"unexpected {detail}")


# ---------------------------------------------------------------- endpoints


class Prediction(NamedTuple):
    """What a protocol adapter extracts from a successful response."""

    output: str
    model_id: str | None = None
    usage: Usage | None = None
    system_fingerprint: str | None = None


class JsonEndpoint:
    """The predict loop shared by every JSON-over-HTTP protocol.

    Subclasses set the URL and implement `encode` (item -> request body) and `decode`
    (parsed JSON -> Prediction, raising `invalid_response` for a wrong shape).

    Per endpoint (`SendLimits`, shared by every monitor using the endpoint): an adaptive
    limit of at most ``concurrency`` requests in flight (held across the retries of one
    item, so an overloaded endpoint that answers 429 is not hit by fresh items
    meanwhile), the "not before" time of the last Retry-After, token buckets of
    ``rate_limit`` requests (one per attempt) and tokens (an estimate per attempt, settled
    with the answer's usage), a rate learned from 429s, and a total timeout per attempt.
    ``latency_s`` is the wall time from the first attempt's start to the final answer,
    retries and back-off included; time spent queueing for a slot, the gate and the first
    rate-limit token is excluded because it depends on how many items the caller submits
    at once, not on the endpoint.
    """

    def __init__(
        self, settings: EndpointSettings, http: HttpClient, retry: RetryPolicy, url: str
    ) -> None:
        self.name = settings.name
        self.url = URL(url)
        self._http = http
        self._retry = retry
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._max_bytes = settings.max_response_bytes
        self.limits = SendLimits(
            settings.concurrency,
            requests_per_s=settings.rate_limit,
            tokens_per_minute=settings.tokens_per_minute,
        )
        self._ssl = _ssl_setting(settings)
        headers: CIMultiDict[str] = CIMultiDict(
            {
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
        )
        for key, value in settings.headers.items():
            headers[key] = value
        self._headers = headers
        self._secrets = _secrets_of(settings.headers, settings.url)

    def encode(self, item: Item) -> bytes:
        """The request body for one item; raises BenchmarkError if the item does not fit."""
        raise NotImplementedError

    def decode(self, payload: Any) -> Prediction:
        """The prediction in a parsed 2xx response; raises `invalid_response` otherwise."""
        raise NotImplementedError

    def concurrency(self) -> tuple[int, int]:
        """(the adaptive limit on requests in flight, the requests in flight now)."""
        limiter = self.limits.limiter
        return limiter.control.limit, limiter.in_use

    async def predict(self, item: Item) -> Response:
        """Send one item, retrying transient failures; never raises for endpoint failures."""
        body = self.encode(item)
        http, retry, limits = self._http, self._retry, self.limits
        limiter = limits.limiter
        control = limiter.control
        loop = asyncio.get_running_loop()
        await limiter.acquire()
        try:
            cost = await self._admit(limits)
            start = time.perf_counter()
            attempt = 1
            while True:
                ticket = control.epoch
                try:
                    payload = await http.post_json(
                        self.url,
                        body,
                        headers=self._headers,
                        time_limit=self._timeout,
                        tls=self._ssl,
                        max_bytes=self._max_bytes,
                    )
                    prediction = self._decode_checked(payload)
                except EndpointError as exc:
                    kind = exc.kind
                    if cost and kind in _REFUSED:
                        limits.settle_tokens(cost, None, None)  # refused: no tokens used
                    transient = isinstance(exc, TransientEndpointError)
                    retry_after = exc.retry_after if transient else None
                    # congestion: a 429 (the only transient 4xx) or a 5xx with Retry-After
                    if transient and (kind is ErrorKind.HTTP_4XX or retry_after is not None):
                        now = loop.time()
                        delay = retry.delay(attempt, retry_after, http.rng)
                        # the gate holds at most what this retry waits (max_delay caps it)
                        limits.on_congestion(
                            ticket, now, delay if retry_after is not None else None
                        )
                        if attempt <= retry.retries:
                            await limits.wait_gate(http.sleep, delay, now)
                            cost = await self._admit(limits, gated=True)
                            attempt += 1
                            continue
                    elif transient and attempt <= retry.retries:
                        await http.sleep(retry.delay(attempt, retry_after, http.rng))
                        cost = await self._admit(limits)
                        attempt += 1
                        continue
                    return Response(
                        output=None,
                        latency_s=time.perf_counter() - start,
                        error=exc.kind,
                        error_detail=self._redact(exc.detail),
                        attempts=attempt,
                    )
                if limits.congested:
                    limits.on_success(ticket, loop.time())
                usage = prediction.usage
                if limits.tokens is not None and usage is not None:
                    limits.settle_tokens(cost, usage.prompt_tokens, usage.completion_tokens)
                return Response(
                    output=prediction.output,
                    latency_s=time.perf_counter() - start,
                    model_id=prediction.model_id,
                    usage=usage,
                    attempts=attempt,
                    system_fingerprint=prediction.system_fingerprint,
                )
        finally:
            limiter.release()

    async def _admit(self, limits: SendLimits, *, gated: bool = False) -> float:
        """Wait for the rate buckets, then for the gate (a bucket's sleep may end before a
        Retry-After that arrived meanwhile); the tokens reserved for this attempt (0
        without a tokens-per-minute limit). ``gated``: the caller has just waited for
        the gate, so it is checked only if a bucket made the attempt wait."""
        waited = False
        if limits.requests is not None:
            await limits.requests.acquire()
            waited = True
        if limits.pace is not None:
            await limits.pace.acquire()
            waited = True
        cost = 0.0
        if limits.tokens is not None:
            cost = limits.token_estimate()
            await limits.tokens.acquire(cost)
            waited = True
        if limits.gate.until and (waited or not gated):  # 0.0 until the first Retry-After
            loop = asyncio.get_running_loop()
            await limits.wait_gate(self._http.sleep, 0.0, loop.time())
        return cost

    def _decode_checked(self, payload: Any) -> Prediction:
        try:
            return self.decode(payload)
        except EndpointError:
            raise
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise invalid_response(f"unexpected response shape: {exc!r}") from exc
        except RecursionError:  # re-serializing a deeply nested value (json.dumps)
            raise invalid_response("response JSON is nested too deeply") from None

    def _redact(self, detail: str) -> str:
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        return _shorten(detail, _DETAIL_CHARS)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url={str(self.url)!r})"


def _ssl_setting(settings: EndpointSettings) -> ssl.SSLContext | bool:
    if not settings.verify_tls:
        if settings.ca_bundle:
            raise ValueError(
                f"endpoint {settings.name!r}: ca_bundle has no effect when verify_tls is false"
            )
        return False
    if settings.ca_bundle:
        try:
            return ssl.create_default_context(cafile=settings.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"endpoint {settings.name!r}: cannot load ca_bundle {settings.ca_bundle!r}: {exc}"
            ) from None
    return True


def _secrets_of(headers: Mapping[str, str], url: str = "") -> tuple[str, ...]:
    """Header values (and the credential after a scheme such as ``Bearer``), and the URL's
    credentials and query values (aiohttp sends ``user:pass@`` as Basic auth, so its base64
    too), to scrub from error details, longest first. Values under 4 characters are kept."""
    found: set[str] = set()
    parsed = URL(url) if url else None
    if parsed is not None:
        found.update(v for v in parsed.query.values() if len(v) >= 4)
        if parsed.user or parsed.password:
            userinfo = f"{parsed.user or ''}:{parsed.password or ''}"
            found.update({userinfo, base64.b64encode(userinfo.encode()).decode()})
            found.update(x for x in (parsed.user, parsed.password) if x and len(x) >= 4)
    for value in headers.values():
        if len(value) >= 4:
            found.add(value)
        parts = value.split()
        if len(parts) > 1 and len(parts[-1]) >= 4:
            found.add(parts[-1])
    return tuple(sorted(found, key=len, reverse=True))
