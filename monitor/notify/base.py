"""Delivering notifications over HTTP: one aiohttp session, retries, failure classes.

Every receiver format (webhook, Slack, Alertmanager) is an `HttpChannel`: it says where to
post and builds the JSON body (`HttpChannel.payload`); `HttpChannel.send` hands both to
`Notifier.post_json`, which owns the process's one notification ``aiohttp.ClientSession``
and the retry loop. Per attempt::

    2xx                                          delivered
    connect refused, reset, DNS, body cut off    transient   retried with backoff
    no answer within `timeout`                   transient   retried with backoff
    429, 5xx                                     transient   retried, Retry-After honoured
    3xx (redirects are not followed), other 4xx  permanent   NotifyError(permanent=True) at once
    TLS failure, invalid URL                     permanent   NotifyError(permanent=True) at once

When the retries are used up the last transient failure is raised as
``NotifyError(permanent=False)``. Error messages never contain the URL: a Slack webhook
URL is itself a secret.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp

from monitor import __version__
from monitor.aio_session import SessionOwner
from monitor.core.alerts import Action, Alert
from monitor.core.retry import RetryPolicy, parse_retry_after
from monitor.errors import NotifyError

__all__ = [
    "USER_AGENT",
    "Channel",
    "HttpChannel",
    "Message",
    "Notifier",
    "RetryPolicy",
    "annotation_int",
    "annotation_items",
    "annotation_number",
    "parse_retry_after",
]

USER_AGENT = f"monitor/{__version__}"
_SNIPPET_BYTES = 200  # how much of an error body is quoted in the error message

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Message:
    """One notification to send: the alert as it is now, why it is sent, and when."""

    alert: Alert
    action: Action
    now: datetime

    @property
    def status(self) -> str:
        """``resolved`` for a resolution, ``firing`` for a first or repeated notification."""
        return "resolved" if self.action is Action.NOTIFY_RESOLVED else "firing"

    @property
    def notification(self) -> str:
        """``firing``, ``repeat`` or ``resolved``."""
        return {
            Action.NOTIFY_FIRING: "firing",
            Action.NOTIFY_REPEAT: "repeat",
            Action.NOTIFY_RESOLVED: "resolved",
        }.get(self.action, "none")


class Channel(Protocol):
    """One destination of a receiver (its webhook, Slack URL or Alertmanager)."""

    receiver: str
    kind: str

    async def send(self, notifier: Notifier, message: Message) -> None:
        """Deliver `message`; raise NotifyError when it could not be delivered."""
        ...


class Notifier(SessionOwner):
    """Owns the aiohttp session used for notifications and the retry loop.

    Use it as an async context manager (or call `aclose`). `sleep` and `rng` are
    injectable so tests make retry waits instant and repeatable.
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.retry = retry if retry is not None else RetryPolicy(base_delay=1.0, max_delay=60.0)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.sleep = sleep
        self.rng = rng if rng is not None else random.Random()

    def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            raise_for_status=False,
            headers={"User-Agent": USER_AGENT},
        )

    async def post_json(
        self,
        *,
        receiver: str,
        channel: str,
        url: str,
        payload: Any,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """POST `payload` as JSON with retries; return the number of attempts it took.

        Raises ``NotifyError`` naming `receiver` and `channel`, never the URL.
        """
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        attempts = self.retry.retries + 1
        for attempt in range(1, attempts + 1):
            problem, retry_after = await self._attempt(receiver, channel, url, body, all_headers)
            if problem is None:
                return attempt
            if attempt == attempts:
                tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
                raise NotifyError(
                    receiver, f"{channel}: {problem} (gave up after {tries})", permanent=False
                )
            await self.sleep(self.retry.delay(attempt, retry_after, self.rng))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        receiver: str,
        channel: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> tuple[str | None, float | None]:
        """One POST: (None, None) when delivered, else (transient problem, Retry-After).

        Raises NotifyError(permanent=True) for failures that retrying cannot fix.
        """
        session = self.session()
        try:
            async with session.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            ) as resp:
                status = resp.status
                if 200 <= status < 300:
                    return None, None
                snippet = await _snippet(resp)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), datetime.now(UTC))
        except aiohttp.InvalidURL as exc:
            raise NotifyError(
                receiver, f"{channel}: invalid URL ({type(exc).__name__})", permanent=True
            ) from exc
        except aiohttp.ClientSSLError as exc:
            raise NotifyError(receiver, f"{channel}: TLS: {exc}", permanent=True) from exc
        except TimeoutError:
            return f"no answer within {self.timeout.total:g}s", None
        except aiohttp.ClientConnectorError as exc:
            return f"cannot connect: {exc.os_error or exc}", None
        except aiohttp.ClientError as exc:
            return f"connection failed: {type(exc).__name__}", None
        answer = f"HTTP {status}{': ' + snippet if snippet else ''}"
        if status == 429 or status >= 500:
            return answer, retry_after
        raise NotifyError(receiver, f"{channel}: {answer}", permanent=True)


class HttpChannel(ABC):
    """A `Channel` that POSTs one JSON body per message to one URL, through the `Notifier`.

    A receiver format is a subclass that sets `kind`, passes its URL (and headers) to
    ``__init__`` and builds the body in `payload`; delivery, retries and the error's wording
    are the same for all of them.
    """

    kind: str

    def __init__(self, receiver: str, url: str, headers: Mapping[str, str] | None = None) -> None:
        self.receiver = receiver
        self.url = url
        self.headers: Mapping[str, str] = dict(headers or {})

    @abstractmethod
    def payload(self, message: Message) -> Any:
        """The JSON-serialisable body posted for `message`."""

    async def send(self, notifier: Notifier, message: Message) -> None:
        """Deliver one notification (NotifyError on failure, naming receiver and kind)."""
        await notifier.post_json(
            receiver=self.receiver,
            channel=self.kind,
            url=self.url,
            payload=self.payload(message),
            headers=self.headers,
        )


async def _snippet(resp: aiohttp.ClientResponse) -> str:
    try:
        raw = await resp.content.read(_SNIPPET_BYTES)
    except (aiohttp.ClientError, TimeoutError):
        return ""
    return " ".join(raw.decode("utf-8", "replace").split())


# ---------------------------------------------------------------- reading annotations


def annotation_number(annotations: Mapping[str, str], key: str) -> float | None:
    """A numeric annotation as a float; None when absent, unparseable or not finite."""
    try:
        value = float(annotations[key])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


def annotation_int(annotations: Mapping[str, str], key: str) -> int | None:
    """An integer annotation (a run id, a count); None when absent or unparseable."""
    try:
        return int(annotations[key])
    except (KeyError, ValueError):
        return None


def annotation_items(annotations: Mapping[str, str], key: str) -> list[str]:
    """A JSON-array annotation (changed item keys) as a list of strings; [] when absent."""
    try:
        value = json.loads(annotations[key])
    except (KeyError, ValueError):
        return []
    return [str(v) for v in value] if isinstance(value, list) else []
