"""Prometheus metrics on an injected registry (the README's metrics table).

Run-derived series come from the store, not from process memory: `StoreCollector`
serves a snapshot built by `build_snapshot` after each run and at start, so after a
restart every gauge shows the last stored values on the first scrape, and a scrape never
queries the database. `monitor_runs_total` and `monitor_items_total` are counted in the
store too and so survive restarts. Per-request series (`monitor_endpoint_*`) and the
histograms are process counters: they restart at zero, which `rate()` handles.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.core.cost import RunUsage, TokenTotals
from monitor.core.fingerprint import Fingerprint
from monitor.core.judging import JudgeCheck
from monitor.core.model import Response, Run, RunStatus, ScoreSummary, Verdict, VerdictKind
from monitor.core.slices import parse_slice_name

SCORE_LABELS = ("monitor", "benchmark", "endpoint", "scorer")
SLICE_LABELS = (*SCORE_LABELS, "slice")
_RUN_STATUSES = tuple(s.value for s in RunStatus if s is not RunStatus.RUNNING)
_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))
_REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, float("inf"))


@dataclass(frozen=True, slots=True)
class MonitorTarget:
    """One configured (monitor, endpoint) pair, with what the rules need to know of it."""

    monitor: str
    benchmark: str
    endpoint: str
    interval_s: float | None
    score_floor: float | None
    scorers: tuple[str, ...]
    slice_floors: Mapping[str, float] = field(default_factory=dict)  # slice label -> floor


@dataclass(slots=True)
class Snapshot:
    """Everything the collector serves, computed in one pass over the store."""

    scores: list[tuple[tuple[str, ...], ScoreSummary]] = field(default_factory=list)
    verdicts: list[tuple[tuple[str, ...], Verdict]] = field(default_factory=list)
    # drift checks of operational signals (latency, output length, labels): p-values only
    drift: list[tuple[tuple[str, ...], Verdict]] = field(default_factory=list)
    last_run: dict[tuple[str, str, str], float] = field(default_factory=dict)
    run_counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    item_totals: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    targets: list[MonitorTarget] = field(default_factory=list)
    # endpoint -> (served model, system fingerprint) of its newest answered run
    served: dict[str, tuple[str, str]] = field(default_factory=dict)
    # (monitor, endpoint) -> 1 when its newest answered run was served otherwise than
    # its baseline (monitor/core/fingerprint.py, served_change)
    served_changed: dict[tuple[str, str], int] = field(default_factory=dict)
    # (monitor, endpoint) -> the newest answered run's tokens and cost, and the totals
    last_usage: dict[tuple[str, str], RunUsage] = field(default_factory=dict)
    usage_totals: dict[tuple[str, str], tuple[TokenTotals, float]] = field(default_factory=dict)
    # (monitor, endpoint, scorer) -> the newest judge-drift sentinel check of a judge scorer
    judge_checks: dict[tuple[str, str, str], JudgeCheck] = field(default_factory=dict)
    # slices (`scorer[field=value]`): labels (monitor, benchmark, endpoint, scorer, slice)
    slice_scores: list[tuple[tuple[str, ...], ScoreSummary]] = field(default_factory=list)
    slice_verdicts: list[tuple[tuple[str, ...], Verdict]] = field(default_factory=list)
    # (monitor, benchmark, endpoint) -> (version, comparison) of the latest succeeded run
    versions: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)


def build_snapshot(
    *,
    latest_runs: Sequence[Run],
    scores: Mapping[int, Sequence[ScoreSummary]],
    verdicts: Mapping[int, Sequence[Verdict]],
    run_counts: Mapping[tuple[str, str, str], int],
    item_totals: Mapping[tuple[str, str, str], tuple[int, int]],
    targets: Sequence[MonitorTarget],
    usage_totals: Mapping[tuple[str, str], tuple[TokenTotals, float]] | None = None,
    judge_checks: Sequence[JudgeCheck] = (),
) -> Snapshot:
    """Assemble the snapshot from store reads (the caller does the I/O, in a thread)."""
    configured = {(t.monitor, t.endpoint) for t in targets}
    snap = Snapshot(targets=list(targets), run_counts=dict(run_counts))
    for check in sorted(judge_checks, key=lambda c: c.run_id):
        # a changed judge starts another sentinel history: the newest check wins
        if (check.monitor, check.endpoint) in configured:
            snap.judge_checks[check.monitor, check.endpoint, check.scorer] = check
    _served(snap, latest_runs, configured)
    snap.usage_totals = {k: v for k, v in (usage_totals or {}).items() if k in configured}
    for run in latest_runs:
        if (run.monitor, run.endpoint) not in configured or run.status is RunStatus.RUNNING:
            continue  # removed from the config (history kept), or not finished yet
        when = run.finished_at or run.started_at
        snap.last_run[(run.monitor, run.endpoint, run.status.value)] = when.timestamp()
        if run.status is RunStatus.SUCCEEDED:
            compared = any(e.get("kind") == "benchmark_versions_compared" for e in run.events)
            snap.versions[run.monitor, run.benchmark, run.endpoint] = (
                run.benchmark_version,
                "item_by_item" if compared else "own_version",
            )
            scored = {s.scorer for s in scores.get(run.id, ())}
            for s in scores.get(run.id, ()):
                if (cut := parse_slice_name(s.scorer)) is not None:
                    snap.slice_scores.append(((run.monitor, run.benchmark, run.endpoint, *cut), s))
                    continue
                snap.scores.append(((run.monitor, run.benchmark, run.endpoint, s.scorer), s))
            for v in verdicts.get(run.id, ()):
                if (cut := parse_slice_name(v.scorer)) is not None:
                    snap.slice_verdicts.append(
                        ((run.monitor, run.benchmark, run.endpoint, *cut), v)
                    )
                    continue
                labels = (run.monitor, run.benchmark, run.endpoint, v.scorer)
                (snap.verdicts if v.scorer in scored else snap.drift).append((labels, v))
    for (mon, bench, ep), (ok, errors) in item_totals.items():
        snap.item_totals[(mon, bench, ep, "ok")] = ok
        snap.item_totals[(mon, bench, ep, "error")] = errors
    return snap


_ANSWERED = (RunStatus.SUCCEEDED, RunStatus.DEGRADED)


def _served(snap: Snapshot, latest_runs: Sequence[Run], configured: set[tuple[str, str]]) -> None:
    """What each endpoint served in its newest answered run, and which pairs changed."""
    newest: dict[tuple[str, str], Run] = {}
    for run in latest_runs:  # ordered by id within a pair
        if run.status in _ANSWERED and (run.monitor, run.endpoint) in configured:
            newest[run.monitor, run.endpoint] = run
    by_endpoint: dict[str, tuple[int, Fingerprint]] = {}
    for (monitor, endpoint), run in newest.items():
        fp = run.fingerprint
        if fp is not None and run.id > by_endpoint.get(endpoint, (-1, fp))[0]:
            by_endpoint[endpoint] = (run.id, fp)
        changed = any(e.get("kind") == "served_model_changed" for e in run.events)
        snap.served_changed[monitor, endpoint] = int(changed)
        if run.usage is not None and run.usage.tokens.answers:
            snap.last_usage[monitor, endpoint] = run.usage
    for endpoint, (_, fp) in by_endpoint.items():
        snap.served[endpoint] = (fp.served_model or "", fp.system_fingerprint or "")
    for target in snap.targets:
        snap.served_changed.setdefault((target.monitor, target.endpoint), 0)


class StoreCollector(Collector):
    """Serves the latest snapshot; `update` swaps it atomically."""

    def __init__(self) -> None:
        self._snapshot = Snapshot()
        self._lock = threading.Lock()

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        # An empty description keeps registration cheap and avoids a collect() at start.
        return ()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snap = self._snapshot
        yield from _score_families(snap)
        yield from _verdict_families(snap)
        yield from _run_families(snap)
        yield from _target_families(snap)
        yield from _served_families(snap)
        yield from _usage_families(snap)
        yield from _judge_families(snap)
        yield from _slice_families(snap)
        yield from _version_families(snap)


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _score_families(snap: Snapshot) -> Iterator[Metric]:
    value = GaugeMetricFamily(
        "monitor_benchmark_score",
        "Score of the latest succeeded run (mean of per-item scores, 0..1).",
        labels=SCORE_LABELS,
    )
    lower = GaugeMetricFamily(
        "monitor_benchmark_score_ci_lower",
        "Lower bound of the 95% confidence interval of monitor_benchmark_score.",
        labels=SCORE_LABELS,
    )
    upper = GaugeMetricFamily(
        "monitor_benchmark_score_ci_upper",
        "Upper bound of the 95% confidence interval of monitor_benchmark_score.",
        labels=SCORE_LABELS,
    )
    for labels, s in snap.scores:
        if _finite(s.value):
            value.add_metric(labels, s.value)
        if _finite(s.ci_lower):
            lower.add_metric(labels, s.ci_lower)
        if _finite(s.ci_upper):
            upper.add_metric(labels, s.ci_upper)
    yield from (value, lower, upper)


def _verdict_families(snap: Snapshot) -> Iterator[Metric]:
    baseline = GaugeMetricFamily(
        "monitor_baseline_score",
        "Baseline score the latest succeeded run was compared with.",
        labels=SCORE_LABELS,
    )
    effect = GaugeMetricFamily(
        "monitor_regression_effect",
        "Current minus baseline score of the latest succeeded run.",
        labels=SCORE_LABELS,
    )
    detected = GaugeMetricFamily(
        "monitor_regression_detected",
        "1 when the latest succeeded run was judged a regression against its baseline.",
        labels=SCORE_LABELS,
    )
    p_value = GaugeMetricFamily(
        "monitor_drift_p_value",
        "Adjusted p-value of the latest regression test of a scorer, or drift test of a "
        "signal (scorer=latency_seconds, output_length_chars, predicted_label).",
        labels=(*SCORE_LABELS, "test"),
    )
    for labels, v in snap.drift:
        p = v.p_adjusted if _finite(v.p_adjusted) else v.p_value
        if _finite(p):
            p_value.add_metric((*labels, v.test), p)  # type: ignore[arg-type]
    detectable = GaugeMetricFamily(
        "monitor_detectable_effect",
        "Smallest drop of the score (0..1) the latest succeeded run's test could flag with "
        "80% power (the configured detectable_power) at its baseline's run-to-run noise.",
        labels=SCORE_LABELS,
    )
    for labels, v in snap.verdicts:
        if _finite(v.baseline_score):
            baseline.add_metric(labels, v.baseline_score)  # type: ignore[arg-type]
        if _finite(v.detectable_effect):
            detectable.add_metric(labels, v.detectable_effect)  # type: ignore[arg-type]
        if _finite(v.effect):
            effect.add_metric(labels, v.effect)  # type: ignore[arg-type]
        detected.add_metric(labels, 1.0 if v.verdict is VerdictKind.REGRESSED else 0.0)
        p = v.p_adjusted if _finite(v.p_adjusted) else v.p_value
        if _finite(p):
            p_value.add_metric((*labels, v.test), p)  # type: ignore[arg-type]
    yield from (baseline, effect, detected, p_value, detectable)


def _run_families(snap: Snapshot) -> Iterator[Metric]:
    last = GaugeMetricFamily(
        "monitor_last_run_timestamp_seconds",
        "Unix time the latest run of each status finished.",
        labels=("monitor", "endpoint", "status"),
    )
    for key, ts in sorted(snap.last_run.items()):
        last.add_metric(key, ts)
    runs = CounterMetricFamily(
        "monitor_runs",
        "Runs finished, by final status (counted in the store: survives restarts).",
        labels=("monitor", "endpoint", "status"),
    )
    for t in snap.targets:
        for status in _RUN_STATUSES:
            runs.add_metric(
                (t.monitor, t.endpoint, status),
                snap.run_counts.get((t.monitor, t.endpoint, status), 0),
            )
    items = CounterMetricFamily(
        "monitor_items",
        "Items evaluated, by outcome (ok or error), counted in the store.",
        labels=("monitor", "benchmark", "endpoint", "outcome"),
    )
    for item_key, count in sorted(snap.item_totals.items()):
        items.add_metric(item_key, count)
    yield from (last, runs, items)


def _target_families(snap: Snapshot) -> Iterator[Metric]:
    interval = GaugeMetricFamily(
        "monitor_schedule_interval_seconds",
        "Seconds between scheduled runs of a monitor on an endpoint.",
        labels=("monitor", "endpoint"),
    )
    floor = GaugeMetricFamily(
        "monitor_score_floor",
        "Configured minimum acceptable score of a monitor.",
        labels=("monitor", "benchmark", "scorer"),
    )
    floors: set[tuple[str, str, str]] = set()
    for t in snap.targets:
        if t.interval_s:
            interval.add_metric((t.monitor, t.endpoint), t.interval_s)
        if t.score_floor is not None:
            floors.update((t.monitor, t.benchmark, s) for s in t.scorers)
    for key in sorted(floors):
        target = next(t for t in snap.targets if t.monitor == key[0])
        floor.add_metric(key, target.score_floor)  # type: ignore[arg-type]
    yield from (interval, floor)


def _version_families(snap: Snapshot) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "monitor_benchmark_version_info",
        "Always 1: the benchmark version of a pair's latest succeeded run, and what it was "
        "compared with (comparison=item_by_item: unchanged items of earlier versions too; "
        "own_version: runs of this version only, a new history after a change).",
        labels=("monitor", "benchmark", "endpoint", "version", "comparison"),
    )
    for (monitor, benchmark, endpoint), (version, comparison) in sorted(snap.versions.items()):
        info.add_metric((monitor, benchmark, endpoint, version, comparison), 1.0)
    yield info


def _slice_families(snap: Snapshot) -> Iterator[Metric]:
    """A benchmark's slices (`slices:`), with a bounded `slice` label (field=value; at most
    monitor.core.slices.MAX_SLICE_VALUES per benchmark)."""
    score = GaugeMetricFamily(
        "monitor_slice_score",
        "Score of one slice of the latest succeeded run (mean of its items' scores, 0..1).",
        labels=SLICE_LABELS,
    )
    effect = GaugeMetricFamily(
        "monitor_slice_regression_effect",
        "Current minus baseline score of one slice's items in the latest succeeded run.",
        labels=SLICE_LABELS,
    )
    detected = GaugeMetricFamily(
        "monitor_slice_regression_detected",
        "1 when the latest succeeded run's paired test of one slice was a regression.",
        labels=SLICE_LABELS,
    )
    floor = GaugeMetricFamily(
        "monitor_slice_score_floor",
        "Configured minimum acceptable score of one slice (a monitor's slice_floors).",
        labels=("monitor", "benchmark", "scorer", "slice"),
    )
    for labels, s in snap.slice_scores:
        if _finite(s.value):
            score.add_metric(labels, s.value)
    for labels, v in snap.slice_verdicts:
        if _finite(v.effect):
            effect.add_metric(labels, v.effect)  # type: ignore[arg-type]
        detected.add_metric(labels, 1.0 if v.verdict is VerdictKind.REGRESSED else 0.0)
    floors = {
        (t.monitor, t.benchmark, scorer, label): value
        for t in snap.targets
        for label, value in t.slice_floors.items()
        for scorer in t.scorers
    }
    for key, value in sorted(floors.items()):
        floor.add_metric(key, value)
    yield from (score, effect, detected, floor)


def _served_families(snap: Snapshot) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "monitor_endpoint_model_info",
        "Always 1: the model and system fingerprint most answers of the endpoint's newest "
        "answered run carried (empty when the API returns none).",
        labels=("endpoint", "model", "fingerprint"),
    )
    for endpoint, (model, fingerprint) in sorted(snap.served.items()):
        info.add_metric((endpoint, model, fingerprint), 1)
    changed = GaugeMetricFamily(
        "monitor_served_model_changed",
        "1 when the newest answered run was served another model or system fingerprint "
        "than its baseline runs, for the same configured model.",
        labels=("monitor", "endpoint"),
    )
    for key, value in sorted(snap.served_changed.items()):
        changed.add_metric(key, value)
    yield from (info, changed)


_TOKEN_KINDS = ("prompt", "completion", "cached", "reasoning")


def _usage_families(snap: Snapshot) -> Iterator[Metric]:
    cost = GaugeMetricFamily(
        "monitor_run_cost_dollars",
        "Dollars the newest answered run cost (absent while its price is unknown).",
        labels=("monitor", "endpoint"),
    )
    tokens = GaugeMetricFamily(
        "monitor_run_tokens",
        "Tokens of the newest answered run, by kind (cached and reasoning are parts of "
        "prompt and completion).",
        labels=("monitor", "endpoint", "kind"),
    )
    for (monitor, endpoint), usage in sorted(snap.last_usage.items()):
        if usage.dollars is not None:
            cost.add_metric((monitor, endpoint), usage.dollars)
        for kind in _TOKEN_KINDS:
            tokens.add_metric((monitor, endpoint, kind), getattr(usage.tokens, kind))
    tokens_total = CounterMetricFamily(
        "monitor_tokens",
        "Tokens over all runs, by kind (counted in the store: survives restarts).",
        labels=("monitor", "endpoint", "kind"),
    )
    dollars_total = CounterMetricFamily(
        "monitor_cost_dollars",
        "Dollars over all runs whose cost is known (counted in the store).",
        labels=("monitor", "endpoint"),
    )
    for (monitor, endpoint), (totals, dollars) in sorted(snap.usage_totals.items()):
        for kind in _TOKEN_KINDS:
            tokens_total.add_metric((monitor, endpoint, kind), getattr(totals, kind))
        dollars_total.add_metric((monitor, endpoint), dollars)
    yield from (cost, tokens, tokens_total, dollars_total)


def _judge_families(snap: Snapshot) -> Iterator[Metric]:
    labels = ("monitor", "endpoint", "scorer")
    agreement = GaugeMetricFamily(
        "monitor_judge_agreement",
        "Agreement of a judge scorer's newest calibration re-score with the human labels "
        "(measure=accuracy or kappa, Cohen's).",
        labels=(*labels, "measure"),
    )
    drift = GaugeMetricFamily(
        "monitor_judge_drift",
        "1 when the newest calibration re-score says the judge moved against its own "
        "earlier verdicts on the same frozen outputs (the scorer's verdict is judge_drift).",
        labels=labels,
    )
    p_value = GaugeMetricFamily(
        "monitor_judge_drift_p_value",
        "p-value of the newest judge-drift test (monitor/core/stats/sentinel.py).",
        labels=labels,
    )
    items = GaugeMetricFamily(
        "monitor_judge_calibration_items",
        "Calibration items of the newest re-score, by outcome (graded or error).",
        labels=(*labels, "outcome"),
    )
    for key, check in sorted(snap.judge_checks.items()):
        for measure in ("accuracy", "kappa"):
            value = getattr(check, measure)
            if _finite(value):
                agreement.add_metric((*key, measure), value)
        drift.add_metric(key, 1.0 if check.moved else 0.0)
        if _finite(check.p_value):
            p_value.add_metric(key, check.p_value)  # type: ignore[arg-type]
        items.add_metric((*key, "graded"), check.n)
        items.add_metric((*key, "error"), check.errors)
    yield from (agreement, drift, p_value, items)


class _ConcurrencyCollector(Collector):
    """The endpoints' adaptive concurrency, read live at each scrape (a few series)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        limit = GaugeMetricFamily(
            "monitor_endpoint_concurrency_limit",
            "Requests the endpoint's client may have in flight now: its `concurrency`, lowered "
            "after 429/503 answers and grown back (docs/configuration.md, rate limits).",
            labels=("endpoint",),
        )
        in_flight = GaugeMetricFamily(
            "monitor_endpoint_in_flight",
            "Requests to the endpoint in flight now (model and judge calls).",
            labels=("endpoint",),
        )
        for endpoint, (cap, busy) in sorted(self._metrics.concurrency().items()):
            limit.add_metric((endpoint,), float(cap))
            in_flight.add_metric((endpoint,), float(busy))
        yield from (limit, in_flight)


class Metrics:
    """The process's metrics: store-derived series plus process-level instruments.

    The store-derived part can hold tens of thousands of series (5,000 score series
    make ~40,000 samples), too many to render on every scrape; it is rendered once
    per snapshot (after each run) and served as cached bytes. The process registry is
    small and rendered live.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=False)
        self.store_registry = CollectorRegistry(auto_describe=False)
        self.store_collector = StoreCollector()
        self.store_registry.register(self.store_collector)
        self._store_text = b""
        r = self.registry
        self.run_duration = Histogram(
            "monitor_run_duration_seconds",
            "Wall time of runs (process counter).",
            ("monitor", "endpoint"),
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.request_duration = Histogram(
            "monitor_endpoint_request_duration_seconds",
            "Latency of endpoint requests including retries (process counter).",
            ("endpoint",),
            buckets=_REQUEST_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "monitor_endpoint_requests",
            "Items sent to an endpoint (process counter).",
            ("endpoint",),
            registry=r,
        )
        self.errors = Counter(
            "monitor_endpoint_errors",
            "Items that got no usable answer, by error kind (process counter).",
            ("endpoint", "kind"),
            registry=r,
        )
        self.in_progress = Gauge(
            "monitor_run_in_progress",
            "1 while a run of this monitor on this endpoint is executing.",
            ("monitor", "endpoint"),
            registry=r,
        )
        self.alerts_firing = Gauge(
            "monitor_alerts_firing", "Alerts firing in the built-in notifier.", registry=r
        )
        self.reload_ok = Gauge(
            "monitor_config_last_reload_successful",
            "1 if the last configuration (re)load succeeded.",
            registry=r,
        )
        self.reload_ok.set(1)
        self.leader = Gauge(
            "monitor_leader",
            "1 on the replica that runs scheduled jobs (always 1 with SQLite).",
            registry=r,
        )
        self.build_info = Gauge(
            "monitor_build_info", "Version of the running monitor.", ("version",), registry=r
        )
        self.build_info.labels(__version__).set(1)
        # alert rules and dashboards read the pages' address from here
        # (deploy/prometheus/rules/monitor.rules.yml), so it is set in one place: the config
        self.ui_info = Gauge(
            "monitor_ui_info",
            "Where this daemon's web pages and API are reached (server.public_url).",
            ("url",),
            registry=r,
        )

        self.registry.register(_ConcurrencyCollector(self))
        self.concurrency: Callable[[], Mapping[str, tuple[int, int]]] = dict

    def watch_concurrency(self, source: Callable[[], Mapping[str, tuple[int, int]]]) -> None:
        """Read endpoint -> (limit, in flight) from `source` at every scrape."""
        self.concurrency = source

    def update(self, snapshot: Snapshot) -> None:
        """Swap in a new store snapshot and render it (call off the event loop)."""
        self.store_collector.update(snapshot)
        self._store_text = generate_latest(self.store_registry)

    def render(self) -> bytes:
        """The full exposition: live process metrics plus the cached store text."""
        return generate_latest(self.registry) + self._store_text

    def observe_response(self, endpoint: str, response: Response) -> None:
        """Per-item hook for the runner; cheap: two or three counter updates."""
        self.requests.labels(endpoint).inc()
        self.request_duration.labels(endpoint).observe(response.latency_s)
        if response.error is not None:
            self.errors.labels(endpoint, response.error.value).inc()

    def observe_run(self, monitor: str, endpoint: str, duration_s: float) -> None:
        self.run_duration.labels(monitor, endpoint).observe(duration_s)

    def set_ui_url(self, url: str) -> None:
        """Export `url` as the one `monitor_ui_info` series (a reload may change it)."""
        self.ui_info.clear()
        self.ui_info.labels(url).set(1)

    def set_alerts_firing(self, count: int) -> None:
        self.alerts_firing.set(count)

    def initialize_targets(self, targets: Sequence[MonitorTarget]) -> None:
        """Create zero-valued series so rate() and absent() behave before the first run."""
        for t in targets:
            self.in_progress.labels(t.monitor, t.endpoint).set(0)
            self.requests.labels(t.endpoint)
