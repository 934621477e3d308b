"""Leadership among replicas sharing one PostgreSQL: only the lock holder runs schedules.

`Leadership.campaign_forever` tries to take the `LeaderLock`; once taken it waits a grace
period (so an old leader that lost its session has stopped), calls `on_acquired`, then
re-checks the lock every `check_every` seconds and wakes the scheduler every few checks
to see schedules edited by other replicas. When the lock is lost it calls `on_lost`:
by default the process exits with `EXIT_LOST_LEADERSHIP` so no job runs twice and the
supervisor restarts it as a follower (docs/operations.md, "Replicas").
"""

from __future__ import annotations

import asyncio
import os
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
        on_lost: Callable[[], None] = exit_process,
        on_check: Callable[[], None] = lambda: None,
        grace: float = 2.0,
        check_every: float = 1.0,
        wake_every: int = 5,
    ) -> None:
        self._lock = lock
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._on_check = on_check
        self._grace = grace
        self._check_every = check_every
        self._wake_every = wake_every
        self.leader = False

    async def step(self, ticks: int) -> None:
        """One campaign step: try to lead, or check the lock still holds."""
        if not self.leader:
            if await asyncio.to_thread(self._lock.try_acquire):
                log.info("leadership_acquired", grace_s=self._grace)
                await asyncio.sleep(self._grace)
                if await asyncio.to_thread(self._lock.still_held):
                    self.leader = True
                    await self._on_acquired()
        elif not await asyncio.to_thread(self._lock.still_held):
            self.leader = False
            self._on_lost()
        elif ticks % self._wake_every == 0:
            self._on_check()

    async def campaign_forever(self) -> None:
        ticks = 0
        try:
            while True:
                ticks += 1
                await self.step(ticks)
                await asyncio.sleep(self._check_every)
        finally:
            await asyncio.to_thread(self._lock.release)
