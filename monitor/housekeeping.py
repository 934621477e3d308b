"""Housekeeping that also prunes: late run states, and item results past retention.

Every `every` seconds `RecordAndPrune.step` writes the final run states the database
refused while it was away (`RunService.record_pending`), and once an hour it deletes
item results older than `storage.retention_days` (docs/operations.md, "Retention").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from monitor.clock import utc_now
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.log import get_logger
from monitor.ports import Clock, PrunableStore

__all__ = ["RecordAndPrune"]

log = get_logger("housekeeping")


class RecordAndPrune:
    """Records pending run states and prunes old item results, forever."""

    def __init__(
        self,
        record_pending: Callable[[], Awaitable[int]],
        store: PrunableStore,
        settings: Callable[[], Settings],
        *,
        clock: Clock = utc_now,
        prune_every: float = 3600.0,
    ) -> None:
        self._record_pending = record_pending
        self._store = store
        self._settings = settings
        self._clock = clock
        self._prune_every = prune_every
        self._next_prune = 0.0

    async def step(self) -> int | None:
        """Record pending states; prune when due. Returns the rows pruned, if it pruned."""
        await self._record_pending()
        days = self._settings().storage.retention_days
        if not days or time.monotonic() < self._next_prune:
            return None
        self._next_prune = time.monotonic() + self._prune_every
        cutoff = self._clock() - timedelta(days=days)
        try:
            deleted = await asyncio.to_thread(self._store.prune_item_results, cutoff)
        except MonitorError:
            log.exception("prune_failed")
            return None
        log.info("item_results_pruned", rows=deleted, before=cutoff.isoformat())
        return deleted

    async def forever(self, every: float = 10.0) -> None:
        while True:
            await asyncio.sleep(every)
            await self.step()
