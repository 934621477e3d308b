"""Every interface the service layer depends on, each defined once.

The use cases (`monitor.service`, `monitor.runner`, `monitor.judge`, `monitor.daemon`)
talk to the outside world only through these Protocols. Adapters satisfy them
structurally, and the composition root (`monitor.app`) is where mypy checks that each
real adapter fits; tests hand in the doubles of `tests/fakes.py` instead. See
docs/architecture.md for which adapter implements which port.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from monitor.config import BenchmarkSettings, EndpointSettings, MonitorSettings
from monitor.core.alerts import Alert
from monitor.core.cost import RunUsage, TokenTotals
from monitor.core.evidence import BaselineSignals, RunEvidence
from monitor.core.fingerprint import Fingerprint
from monitor.core.judging import Graded, JudgeCheck, Rescored
from monitor.core.model import (
    Benchmark,
    Item,
    ItemResult,
    Rescore,
    Response,
    Run,
    RunStatus,
    ScoreSummary,
    Verdict,
)

__all__ = [
    "AlertSink",
    "AlertStore",
    "BenchmarkSource",
    "Clock",
    "EndpointClient",
    "EndpointFactory",
    "Grader",
    "Judge",
    "JudgeHook",
    "JudgeStore",
    "LeaderLock",
    "PrunableStore",
    "RescoreStore",
    "RunMetrics",
    "RunStore",
    "ScorerInfo",
    "Sentinel",
]


class Clock(Protocol):
    """The current time, aware and in UTC (`monitor.clock.utc_now`)."""

    def __call__(self) -> datetime: ...


# ---------------------------------------------------------------- endpoints


class EndpointClient(Protocol):
    """What the runner needs from an endpoint: a name and one prediction per item.

    ``predict`` never raises for endpoint failures: it returns ``Response(output=None,
    error=ErrorKind..., error_detail=..., attempts=n)``. It raises ``BenchmarkError`` only
    when the item cannot be turned into a request (a missing field, a body template that
    renders invalid JSON): that is the benchmark's fault, not the endpoint's.
    """

    name: str

    async def predict(self, item: Item) -> Response: ...


@runtime_checkable
class ReportsConcurrency(Protocol):
    """An endpoint client that adapts how many requests it has in flight (HTTP ones)."""

    def concurrency(self) -> tuple[int, int]:
        """(the current limit on requests in flight, the requests in flight now)."""
        ...


class EndpointFactory(Protocol):
    """Builds the client of one configured endpoint (`monitor.endpoints.build_endpoint`);
    raises ValueError naming the endpoint for settings that cannot work."""

    def __call__(self, settings: EndpointSettings) -> EndpointClient: ...


class BenchmarkSource(Protocol):
    """Loads a configured benchmark (`monitor.benchmarks.BenchmarkCache`); raises
    BenchmarkError naming the file and line for bad data."""

    def __call__(self, settings: BenchmarkSettings) -> Benchmark: ...


# ---------------------------------------------------------------- storage


class RunStore(Protocol):
    """The part of the store a run writes to (`monitor.storage.SqlStore`)."""

    def save_benchmark(self, bench: Benchmark, now: datetime) -> None: ...

    def save_endpoint(self, name: str, config_hash: str, now: datetime) -> None: ...

    def start_run(
        self,
        *,
        monitor: str,
        benchmark: str,
        benchmark_version: str,
        endpoint: str,
        trigger: str,
        started_at: datetime,
        repeats: int = 1,
    ) -> Run: ...

    def add_item_results(self, run_id: int, results: Sequence[ItemResult]) -> None: ...

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        finished_at: datetime,
        n_items: int,
        n_errors: int,
        model_id: str | None,
        scores: Sequence[ScoreSummary],
        fingerprint: Fingerprint | None = None,
        usage: RunUsage | None = None,
        reason: str | None = None,
    ) -> Run: ...

    def usage_since(self, monitor: str, since: datetime) -> tuple[TokenTotals, float]: ...


class RescoreStore(Protocol):
    """What re-scoring reads (a finished run's stored outputs and items) and writes
    (scores beside the run's own)."""

    def get_runs(self, run_ids: Sequence[int]) -> dict[int, Run]: ...

    def item_results(
        self, run_id: int, *, limit: int | None = None, offset: int = 0
    ) -> list[ItemResult]: ...

    def items_by_key(
        self, benchmark: str, version: str, keys: Iterable[str] | None = None
    ) -> dict[str, Item]: ...

    def save_rescore(self, rescore: Rescore, now: datetime) -> int: ...


class Pricer(Protocol):
    """A maintained price table (`monitor.pricing.TablePricer`)."""

    def table_price(
        self,
        tokens: TokenTotals,
        *,
        model: str,
        provider: str | None,
        api_url: str | None,
        when: datetime,
    ) -> tuple[float, str] | None: ...


class RunHistory(Protocol):
    """Past runs, newest first (`monitor.storage.SqlStore.list_runs`)."""

    def list_runs(
        self,
        *,
        monitor: str | None = None,
        endpoint: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]: ...


class JudgeStore(Protocol):
    """The reads and writes judging needs: baselines, their narrow signals, detector
    state and verdicts. Nothing here reads the judged run's own item results."""

    def get_runs(self, run_ids: Sequence[int]) -> dict[int, Run]: ...

    def baseline_run_ids(
        self,
        *,
        monitor: str,
        endpoint: str,
        benchmark_version: str | Sequence[str],
        k: int,
        before_run_id: int,
        repeats: int = 1,
    ) -> list[int]: ...

    def benchmark_lineage(self, benchmark: str, version: str) -> dict[str, str | None]: ...

    def item_digests(
        self, benchmark: str, versions: Sequence[str]
    ) -> dict[str, dict[str, str | None]]: ...

    def pinned_run_ids(self, *, monitor: str, endpoint: str) -> list[int]: ...

    def pin_baseline(
        self, *, monitor: str, endpoint: str, run_ids: Sequence[int], now: datetime
    ) -> None: ...

    def reset_sequential_state(self, *, monitor: str, endpoint: str) -> None: ...

    def item_scores(self, run_ids: Sequence[int], scorer: str) -> dict[int, dict[str, float]]: ...

    def run_scores(self, run_ids: Sequence[int]) -> dict[int, list[ScoreSummary]]: ...

    def baseline_signals(self, run_ids: Sequence[int], *, labels: bool) -> BaselineSignals: ...

    def get_sequential_state(
        self, monitor: str, endpoint: str, scorer: str, benchmark_version: str
    ) -> float: ...

    def set_sequential_state(  # noqa: PLR0917 - mirrors SqlStore's signature
        self,
        monitor: str,
        endpoint: str,
        scorer: str,
        benchmark_version: str,
        value: float,
        now: datetime,
    ) -> None: ...

    def save_verdicts(self, run_id: int, verdicts: Sequence[Verdict]) -> None: ...

    def set_run_events(self, run_id: int, events: Sequence[Mapping[str, Any]]) -> None: ...

    def save_judge_check(self, run_id: int, check: JudgeCheck, now: datetime) -> None: ...

    def judge_history(
        self,
        *,
        monitor: str,
        endpoint: str,
        scorer: str,
        sentinel: str,
        k: int,
        before_run_id: int,
        pinned: Sequence[int] = (),
    ) -> list[dict[str, float]]: ...


class AlertStore(Protocol):
    """Where alert state survives restarts (`monitor.storage.alerts.SqlAlertStore`)."""

    def load(self, fingerprints: Collection[str]) -> dict[str, Alert]: ...

    def save(self, alerts: Sequence[Alert], now: datetime) -> None: ...

    def firing(self) -> list[Alert]: ...


class PrunableStore(Protocol):
    """Retention: delete item results of old runs (`monitor.storage.SqlStore`)."""

    def prune_item_results(self, before: datetime) -> int: ...


class LeaderLock(Protocol):
    """A lock only one replica holds (`monitor.storage.leader.PostgresLeaderLock`)."""

    def try_acquire(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...


# ---------------------------------------------------------------- judging and signals


class ScorerInfo(Protocol):
    """What judging needs to know of a scorer, deterministic or judged."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def binary(self) -> bool: ...


class Grader(Protocol):
    """An LLM-judge scorer (`monitor.grading.JudgeScorer`): grades one answer through its
    judge endpoint; never raises for the judge, whose failures come back as `Graded.error`."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def binary(self) -> bool: ...

    async def grade(self, item: Item, output: str) -> Graded: ...


class Sentinel(Protocol):
    """A judge scorer's calibration set, re-scored by its judge during a run (the
    judge-drift sentinel, docs/judges.md)."""

    @property
    def name(self) -> str: ...

    async def rescore(self) -> Rescored: ...


class Judge(Protocol):
    """Turns a finished run's evidence into verdicts (statistics live behind it)."""

    def prepare(self) -> None:
        """Start loading what judging needs without waiting for it (a run is starting)."""

    async def judge(
        self,
        run: Run,
        evidence: RunEvidence,
        monitor: MonitorSettings,
        scorers: Sequence[ScorerInfo],
    ) -> list[Verdict]: ...


# What the runner calls once a run's items are in: the judge bound to the run's plan.
JudgeHook = Callable[[Run, RunEvidence], Awaitable[list[Verdict]]]


class RunMetrics(Protocol):
    """Process-level signals of runs (`monitor.metrics.Metrics`)."""

    def observe_response(self, endpoint: str, response: Response) -> None: ...

    def observe_run(self, monitor: str, endpoint: str, duration_s: float) -> None: ...

    def set_alerts_firing(self, count: int) -> None: ...


class AlertSink(Protocol):
    """Where judged runs go to raise and resolve alerts (`monitor.notify.AlertService`);
    never raises for delivery or storage problems."""

    async def handle_run(
        self, run: Run, verdicts: Sequence[Verdict], *, scores: Iterable[ScoreSummary] = ()
    ) -> Sequence[Any]: ...

    def firing_count(self) -> int: ...
