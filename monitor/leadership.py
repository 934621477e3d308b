"""Leadership among replicas sharing one PostgreSQL: only the lock holder runs schedules.

`Leadership.campaign_forever` tries to take the `LeaderLock`; once taken it waits a grace
period (so an old leader that lost its session has stopped), calls `on_acquired`, then
re-checks the lock every `check_every` seconds and wakes the scheduler every few checks
to see schedules edited by other replicas.

When the lock is lost (the database restarted, the session was cut, the lease ran out)
it calls `on_lost` and campaigns again, on a fresh session, with a jittered backoff from
`check_every` doubling to `max_backoff`. By default the daemon stays up: it stops its
schedule and cancels its runs (`monitor.daemon.Daemon.on_leadership_lost`). With
`server.on_leadership_lost: exit` the process leaves with `EXIT_LOST_LEADERSHIP` for its
supervisor to restart (`exit_process`; docs/operations.md, "Leadership and fencing").
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
from collections.abc import Awaitable, Callable

from monitor.log import get_logger
from monitor.ports import LeaderLock

__all__ = ["EXIT_LOST_LEADERSHIP", "Leadership", "exit_process"]

EXIT_LOST_LEADERSHIP = 75  # EX_TEMPFAIL: the supervisor restarts us as a follower

log = get_logger("leadership")


def exit_process() -> None:
    """Leave at once, without running cleanup that could still start or finish a run."""
    log.critical("leadership_lost", action="exiting so no job runs twice")
    os._exit(EXIT_LOST_LEADERSHIP)


class Leadership:
    """The campaign loop of one replica; `leader` says whether it leads now."""

    def __init__(
        self,
        lock: LeaderLock,
        *,
        on_acquired: Callable[[], Awaitable[None]],
        on_lost: Callable[[], Awaitable[None] | None] = exit_process,
        on_check: Callable[[], None] = lambda: None,
        grace: float = 2.0,
        check_every: float = 1.0,
        wake_every: int = 5,
        max_backoff: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._lock = lock
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._on_check = on_check
        self._grace = grace
        self._check_every = check_every
        self._wake_every = wake_every
        # 2 checks: a database that answers again is led within ~2 s + grace, with room
        # for one failed take-over inside the chaos suite's "schedule back within 10 s"
        # (one restart in ten measured 13.1 s with a cap of 4 checks; docs/operations.md)
        self._max_backoff = 2 * check_every if max_backoff is None else max_backoff
        self._rng = rng or random.Random()
        self._failures = 0
        self.leader = False
        self.terms = 0  # leaderships won by this process

    def _backoff(self) -> float:
        """The wait before the next attempt: doubling per failed attempt, jittered so
        replicas that lost the database together do not reconnect in lock step."""
        self._failures += 1
        delay = min(self._check_every * 2.0 ** (self._failures - 1), self._max_backoff)
        return float(delay * self._rng.uniform(0.75, 1.0))

    async def step(self, ticks: int) -> float:
        """One campaign step: try to lead, or check the lock still holds. Returns the
        seconds to wait before the next step."""
        if not self.leader:
            return await self._campaign()
        if not await asyncio.to_thread(self._lock.still_held):
            await self._lose()
            return self._backoff()
        if ticks % self._wake_every == 0:
            self._on_check()
        return self._check_every

    async def _campaign(self) -> float:
        if not await asyncio.to_thread(self._lock.try_acquire):
            return self._backoff()
        log.info("leadership_acquired", grace_s=self._grace)
        await asyncio.sleep(self._grace)
        if not await asyncio.to_thread(self._lock.still_held):
            return self._backoff()
        try:
            await self._on_acquired()
        except Exception:
            # the database went away again while taking over: give the lock back so
            # another replica can lead, and campaign again
            log.exception("leadership_takeover_failed")
            await asyncio.to_thread(self._lock.release)
            await self._lose()
            return self._backoff()
        self.leader = True
        self.terms += 1
        self._failures = 0
        return self._check_every

    async def _lose(self) -> None:
        self.leader = False
        result = self._on_lost()
        if inspect.isawaitable(result):
            await result

    async def campaign_forever(self) -> None:
        ticks = 0
        try:
            while True:
                ticks += 1
                try:
                    delay = await self.step(ticks)
                except Exception:  # the loop must outlive any one failure
                    log.exception("leadership_step_failed")
                    delay = self._backoff()
                await asyncio.sleep(delay)
        finally:
            await asyncio.to_thread(self._lock.release)
