"""Adaptive limits for one endpoint: how many requests in flight, and how fast to send.

Pure state machines: no I/O and no clock; the caller passes the time (any monotonic
seconds, the event loop's clock in monitor/endpoints/limits.py). The design and its
figures are in docs/decisions/0009-adaptive-concurrency.md.

`AimdLimit` is the concurrency limit, additive increase and multiplicative decrease as in
TCP congestion avoidance:

- it starts at ``maximum`` (the configured ``concurrency``), so an endpoint that never
  pushes back runs exactly as with a fixed limit;
- a congestion signal (429, or 503 with Retry-After) multiplies it by ``decrease``, at
  most once per *epoch*: the answers to requests sent before the last decrease describe
  the old limit, and counting each of them would drive the limit to 1 after one burst;
- after a decrease, growth is held until the server's Retry-After has passed (answers
  arriving meanwhile were admitted before the limit was hit and prove nothing), then each
  success adds ``increase / limit``: one more slot per limit's worth of successes.

`LearnedRate` is the sending rate a provider's requests-per-period limit allows, learned
from its Retry-After answers when it was not configured: concurrency alone cannot keep a
fast endpoint under a rate limit (one request in flight at 20 ms already makes 50/s).
From one congestion signal to the next, the requests it accepted over the time between
the two moments it allowed sending again is the rate it grants; the client then paces at
that rate and probes upward by ``probe`` (a fraction per second), so a limit that rises
is found again.
"""

from __future__ import annotations

import math

__all__ = ["AimdLimit", "LearnedRate"]


class AimdLimit:
    """The number of requests one endpoint may have in flight: an integer in [1, maximum].

    ``ticket()`` is taken when a request is sent and handed back with its outcome.
    """

    __slots__ = ("_hold_until", "_value", "decrease", "epoch", "increase", "limit", "maximum")

    def __init__(self, maximum: int, *, increase: float = 1.0, decrease: float = 0.5) -> None:
        if maximum < 1:
            raise ValueError(f"maximum must be at least 1, got {maximum}")
        if not increase > 0:
            raise ValueError(f"increase must be positive, got {increase}")
        if not 0 < decrease < 1:
            raise ValueError(f"decrease must be a fraction in (0, 1), got {decrease}")
        self.maximum = maximum
        self.increase = increase
        self.decrease = decrease
        self._value = float(maximum)
        self.limit = maximum
        self.epoch = 0
        self._hold_until = -math.inf

    def ticket(self) -> int:
        """The epoch a request is sent in; pass it to `on_success` / `on_congestion`."""
        return self.epoch

    def on_success(self, ticket: int, now: float) -> bool:
        """One answer that was not a congestion signal; True if the limit grew."""
        if self.limit >= self.maximum or ticket != self.epoch or now < self._hold_until:
            return False
        self._value = min(float(self.maximum), self._value + self.increase / self._value)
        grown = int(self._value)
        if grown == self.limit:
            return False
        self.limit = grown
        return True

    def on_congestion(self, ticket: int, now: float, retry_after: float | None = None) -> bool:
        """The server said "too many" to a request sent with ``ticket``; True if the limit
        shrank (once per epoch). Growth is held for ``retry_after`` seconds from ``now``."""
        if retry_after is not None and retry_after > 0:
            self._hold_until = max(self._hold_until, now + retry_after)
        if ticket != self.epoch:
            return False
        self.epoch += 1
        self._value = max(1.0, self._value * self.decrease)
        self.limit = int(self._value)
        return True


class LearnedRate:
    """The requests per second a provider grants, learned from its congestion signals.

    ``rate`` is None until two signals with Retry-After have been seen (nothing is known
    before); then it is the accepted requests between the two "send again" moments over
    the time between them, raised by ``probe`` (a fraction) per second without a signal.
    """

    __slots__ = ("_accepted", "_base", "_base_at", "_open_at", "probe", "rate")

    def __init__(self, *, probe: float = 0.01) -> None:
        if not probe >= 0:
            raise ValueError(f"probe must not be negative, got {probe}")
        self.probe = probe
        self.rate: float | None = None
        self._base = 0.0
        self._base_at = 0.0
        self._open_at: float | None = None
        self._accepted = 0

    def on_success(self, now: float) -> None:
        """One accepted request; moves ``rate`` up along the probe."""
        self._accepted += 1
        if self.rate is not None and now > self._base_at:
            self.rate = self._base * (1.0 + self.probe * (now - self._base_at))

    def on_congestion(self, now: float, retry_after: float) -> float | None:
        """A signal (the first of an epoch) saying "send again in ``retry_after`` s";
        returns the new rate, or None while nothing is known yet."""
        opens = now + max(retry_after, 0.0)
        previous = self._open_at
        if previous is not None and opens <= previous:
            return self.rate  # the same period as the last signal: nothing new learned
        self._open_at = opens
        accepted, self._accepted = self._accepted, 0
        if previous is None or accepted == 0:
            return self.rate
        self._base = accepted / (opens - previous)
        self._base_at = opens
        self.rate = self._base
        return self.rate
