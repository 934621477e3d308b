"""The store-derived metrics: what a snapshot exports, on a fresh registry each time."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.core.model import (
    ErrorKind,
    Response,
    Run,
    RunStatus,
    ScoreSummary,
    Verdict,
    VerdictKind,
)
from monitor.metrics import Metrics, MonitorTarget, build_snapshot

T0 = datetime(2026, 11, 28, 12, tzinfo=UTC)
TARGET = MonitorTarget("mon", "bench", "ep", 1800.0, 0.8, ("exact_match",))


def run(run_id: int, status: RunStatus) -> Run:
    finished = None if status is RunStatus.RUNNING else T0
    return Run(run_id, "mon", "ep", "bench", "v1", "schedule", status, T0, finished, 10, 0)


def snapshot_metrics() -> Metrics:
    m = Metrics()
    m.update(
        build_snapshot(
            latest_runs=[run(1, RunStatus.SUCCEEDED), run(2, RunStatus.RUNNING)],
            scores={1: [ScoreSummary("exact_match", 0.9, 0.85, 0.94, 10)]},
            verdicts={
                1: [
                    Verdict(
                        "exact_match",
                        VerdictKind.REGRESSED,
                        "paired_binary",
                        "rolling:5",
                        p_value=0.001,
                        p_adjusted=0.004,
                        effect=-0.05,
                        baseline_score=0.95,
                    ),
                    Verdict("latency_seconds", VerdictKind.OK, "ks+ad", "rolling:5", p_value=0.3),
                ]
            },
            run_counts={("mon", "ep", "succeeded"): 7},
            item_totals={("mon", "bench", "ep"): (68, 2)},
            targets=[TARGET],
        )
    )
    return m


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.store_registry.get_sample_value(name, labels)


class TestConcurrency:
    def test_the_endpoints_limits_are_read_at_each_scrape(self) -> None:
        """The adaptive limit and the requests in flight come from the source at scrape
        time, not from the last snapshot."""
        m = Metrics()
        assert b"monitor_endpoint_in_flight{" not in m.render()
        state = {"chat": (8, 3)}
        m.watch_concurrency(lambda: state)
        chat = {"endpoint": "chat"}
        assert m.registry.get_sample_value("monitor_endpoint_concurrency_limit", chat) == 8
        assert m.registry.get_sample_value("monitor_endpoint_in_flight", chat) == 3
        state["chat"] = (4, 4)  # a 429 halved it
        assert m.registry.get_sample_value("monitor_endpoint_concurrency_limit", chat) == 4


class TestSnapshot:
    def test_scores_and_verdicts_of_latest_succeeded_run(self) -> None:
        """Score, CI, baseline, effect and the regression flag come from the latest run."""
        m = snapshot_metrics()
        labels = {"monitor": "mon", "benchmark": "bench", "endpoint": "ep", "scorer": "exact_match"}
        assert value(m, "monitor_benchmark_score", **labels) == 0.9
        assert value(m, "monitor_benchmark_score_ci_lower", **labels) == 0.85
        assert value(m, "monitor_baseline_score", **labels) == 0.95
        assert value(m, "monitor_regression_effect", **labels) == -0.05
        assert value(m, "monitor_regression_detected", **labels) == 1.0
        assert value(m, "monitor_drift_p_value", **labels, test="paired_binary") == 0.004

    def test_drift_signals_only_export_p_values(self) -> None:
        """A latency drift check is a p-value series, not a score-shaped series."""
        m = snapshot_metrics()
        labels = {"monitor": "mon", "benchmark": "bench", "endpoint": "ep"}
        assert value(m, "monitor_drift_p_value", **labels, scorer="latency_seconds", test="ks+ad")
        assert value(m, "monitor_regression_detected", **labels, scorer="latency_seconds") is None

    def test_running_runs_have_no_last_run_timestamp(self) -> None:
        """Only finished runs set monitor_last_run_timestamp_seconds."""
        m = snapshot_metrics()
        ts = value(
            m,
            "monitor_last_run_timestamp_seconds",
            monitor="mon",
            endpoint="ep",
            status="succeeded",
        )
        assert ts == T0.timestamp()
        assert (
            value(
                m,
                "monitor_last_run_timestamp_seconds",
                monitor="mon",
                endpoint="ep",
                status="running",
            )
            is None
        )

    def test_counters_start_at_zero_for_every_status(self) -> None:
        """monitor_runs_total exists at 0 for statuses never seen, so increase() works."""
        m = snapshot_metrics()
        assert value(m, "monitor_runs_total", monitor="mon", endpoint="ep", status="succeeded") == 7
        assert value(m, "monitor_runs_total", monitor="mon", endpoint="ep", status="failed") == 0
        assert (
            value(
                m,
                "monitor_items_total",
                monitor="mon",
                benchmark="bench",
                endpoint="ep",
                outcome="error",
            )
            == 2
        )

    def test_floor_and_interval_from_targets(self) -> None:
        """Configured floors and schedule intervals are exported for the alert rules."""
        m = snapshot_metrics()
        assert (
            value(m, "monitor_score_floor", monitor="mon", benchmark="bench", scorer="exact_match")
            == 0.8
        )
        assert value(m, "monitor_schedule_interval_seconds", monitor="mon", endpoint="ep") == 1800

    def test_render_concatenates_process_and_store_text(self) -> None:
        """The exposition has both live process metrics and the cached store series."""
        m = snapshot_metrics()
        m.observe_response("ep", Response(None, 0.2, error=ErrorKind.TIMEOUT))
        text = m.render().decode()
        assert 'monitor_endpoint_errors_total{endpoint="ep",kind="timeout"} 1.0' in text
        assert "monitor_benchmark_score{" in text
        assert text.count("# TYPE monitor_benchmark_score gauge") == 1
