"""Per-endpoint send limits on the event loop: rate buckets, the adaptive in-flight limit
and the shared "not before" gate of a server's Retry-After.

The decisions (how far the limit shrinks, when it grows, what rate a provider grants) are
the pure state machines of monitor/core/concurrency.py; this module only waits. Times are
the event loop's clock. docs/decisions/0009-adaptive-concurrency.md has the design.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from monitor.core.concurrency import AimdLimit, LearnedRate

__all__ = ["AdaptiveLimiter", "NotBefore", "SendLimits", "TokenBucket"]


class TokenBucket:
    """Async token bucket: ``rate`` units per second with bursts of ``burst``.

    Each caller reserves its ``cost``, possibly driving the balance negative, and sleeps
    exactly until its units are due: FIFO, no polling, one clock read per call. Time is
    the event loop's clock. `settle` corrects a reservation once the real cost is known
    (tokens per minute: the estimate before a request, the usage after it).
    """

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self._rate = rate
        self._burst = max(1.0, rate) if burst is None else burst
        self._tokens = self._burst
        self._stamp: float | None = None

    @property
    def rate(self) -> float:
        return self._rate

    def _refill(self, now: float) -> None:
        if self._stamp is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait until ``cost`` units may be spent."""
        self._refill(asyncio.get_running_loop().time())
        self._tokens -= cost
        if self._tokens < 0.0:
            try:
                await asyncio.sleep(-self._tokens / self._rate)
            except asyncio.CancelledError:
                self._tokens += cost  # give the unused reservation back
                raise

    def settle(self, delta: float) -> None:
        """Charge ``delta`` more units (or give them back if negative) for a past acquire."""
        self._tokens = min(self._burst, self._tokens - delta)

    def pause_until(self, when: float, now: float) -> None:
        """Nothing accrues before ``when`` and nothing is left over: after a server's
        Retry-After, sending resumes at the rate from then on, not with a burst that
        the wait would otherwise have saved up."""
        self._refill(now)
        # the balance at `when` is at most 0; idempotent, as every 429 of a burst calls it
        self._tokens = min(self._tokens, -max(when - now, 0.0) * self._rate)

    def set_rate(self, rate: float, now: float) -> None:
        """Change the rate from ``now`` on (what was accrued so far stays)."""
        self._refill(now)
        self._rate = rate
        self._burst = max(1.0, rate)
        self._tokens = min(self._tokens, self._burst)


class AdaptiveLimiter:
    """A semaphore whose size is an `AimdLimit` that changes while requests wait.

    FIFO and without barging: a released slot is handed to the oldest waiter. When the
    limit shrinks below the requests in flight, no one is admitted until enough finish.
    """

    __slots__ = ("_in_use", "_waiters", "control")

    def __init__(self, control: AimdLimit) -> None:
        self.control = control
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_use(self) -> int:
        return self._in_use

    async def acquire(self) -> None:
        if not self._waiters and self._in_use < self.control.limit:
            self._in_use += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as it was cancelled: pass the slot on
            else:
                self._waiters.remove(future)
            raise

    def release(self) -> None:
        self._in_use -= 1
        self.wake()

    def wake(self) -> None:
        """Admit waiters while the limit has room (after a release or a growth)."""
        waiters, limit = self._waiters, self.control.limit
        while waiters and self._in_use < limit:
            future = waiters.popleft()
            if not future.done():
                self._in_use += 1
                future.set_result(None)


class NotBefore:
    """The loop time before which no request of one endpoint may be sent (Retry-After)."""

    __slots__ = ("until",)

    def __init__(self) -> None:
        self.until = 0.0

    def push(self, when: float) -> None:
        self.until = max(self.until, when)


class SendLimits:
    """Everything one endpoint waits on before a send, shared by all its requests."""

    __slots__ = (
        "congested",
        "gate",
        "learned",
        "limiter",
        "pace",
        "requests",
        "seen_tokens",
        "tokens",
    )

    def __init__(
        self,
        concurrency: int,
        *,
        requests_per_s: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> None:
        self.limiter = AdaptiveLimiter(AimdLimit(concurrency))
        self.gate = NotBefore()
        self.requests = TokenBucket(requests_per_s) if requests_per_s else None
        tokens_per_s = tokens_per_minute / 60.0 if tokens_per_minute else None
        self.tokens = TokenBucket(tokens_per_s) if tokens_per_s else None
        self.learned = LearnedRate()
        self.pace: TokenBucket | None = None  # the learned rate, once there is one
        self.seen_tokens = [0, 0]  # answers with usage, their prompt+completion tokens
        # False until the first congestion signal: until then nothing adapts, and a
        # success costs the hot path one attribute test (benchmarks/runner_throughput.py)
        self.congested = False

    def token_estimate(self) -> float:
        """A request's tokens before it is sent: the mean of the answers so far (1 before
        the first: `settle` charges the real count as soon as it is known)."""
        answers, total = self.seen_tokens
        return total / answers if answers else 1.0

    def settle_tokens(self, reserved: float, prompt: int | None, completion: int | None) -> None:
        """Correct the ``reserved`` estimate of an attempt by the tokens its answer used
        (none for a refused attempt, both None), and learn from them."""
        tokens = self.tokens
        if tokens is None:
            return
        if prompt is None and completion is None:
            tokens.settle(-reserved)
            return
        used = (prompt or 0) + (completion or 0)
        self.seen_tokens[0] += 1
        self.seen_tokens[1] += used
        tokens.settle(used - reserved)

    async def wait_gate(
        self, sleep: Callable[[float], Awaitable[None]], delay: float, now: float
    ) -> None:
        """Sleep ``delay`` seconds from ``now``, longer if the gate is further, following a
        gate that others push further meanwhile. Exactly one ``sleep(delay)`` call when
        the gate is not further (tests pass an instant sleep, under which the loop clock
        does not advance)."""
        gate = self.gate
        target = now + delay
        wait = delay
        if gate.until > target:
            target = gate.until
            wait = target - now
        while wait > 0:
            await sleep(wait)
            if gate.until <= target:
                return
            target = gate.until
            wait = target - asyncio.get_running_loop().time()

    def on_congestion(self, ticket: int, now: float, retry_after: float | None) -> None:
        """A 429 (or 503 with Retry-After) answered a request sent with ``ticket``."""
        control = self.limiter.control
        self.congested = True
        if retry_after is None:
            control.on_congestion(ticket, now)
            return
        opens = now + retry_after
        self.gate.push(opens)
        if control.on_congestion(ticket, now, retry_after):
            rate = self.learned.on_congestion(now, retry_after)
            if rate is not None:
                if self.pace is None:
                    self.pace = TokenBucket(rate)
                else:
                    self.pace.set_rate(rate, now)
        for bucket in (self.requests, self.tokens, self.pace):
            if bucket is not None:
                bucket.pause_until(self.gate.until, now)

    def on_success(self, ticket: int, now: float) -> None:
        if self.limiter.control.on_success(ticket, now):
            self.limiter.wake()
        learned = self.learned
        learned.on_success(now)
        if self.pace is not None and learned.rate is not None:
            self.pace.set_rate(learned.rate, now)
