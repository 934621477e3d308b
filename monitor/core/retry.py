"""Retry timing shared by every outbound HTTP adapter (endpoints, notifiers).

Pure: the current time is an argument, so tests need no clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before retrying a transient failure.

    ``retries`` is the number of retries after the first attempt. The wait before retry
    ``attempt`` (1 for the first retry) is ``base_delay * 2**(attempt-1)``, capped at
    ``max_delay``, then shortened by up to ``jitter`` (a fraction) at random so that many
    items failing together do not come back together. A server's ``Retry-After`` replaces
    the computed wait (capped at ``max_delay``, no jitter: the server asked for a time).
    """

    retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.retries < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retries, base_delay and max_delay must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be a fraction in [0, 1], got {self.jitter}")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        exponent = min(max(attempt - 1, 0), 62)  # 2**62 * base already exceeds any cap
        wait = min(self.base_delay * 2.0**exponent, self.max_delay)
        return wait * (1.0 - self.jitter * rng.random())


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date; None if absent
    or unparseable. A date in the past gives 0."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; obsolete forms may lack the zone
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
