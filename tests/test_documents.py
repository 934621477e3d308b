"""The run and verdict documents shared by the API, `monitor run --format json` and the demo."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from monitor.core.model import ChangedItems, Run, RunStatus, ScoreSummary, Verdict, VerdictKind
from monitor.documents import run_document, verdict_document

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class TestVerdictDocument:
    def test_carries_the_minimum_detectable_effect(self) -> None:
        """A verdict's detectable drop reaches every reader; NaN becomes null."""
        v = Verdict(
            "exact_match",
            VerdictKind.OK,
            "poisson_binomial",
            "rolling:20",
            effect=-0.004,
            detectable_effect=0.043,
            changed=ChangedItems(("a",), ()),
        )
        assert verdict_document(v)["detectable_effect"] == 0.043
        blank = Verdict("x", VerdictKind.NO_BASELINE, "t", "b", detectable_effect=math.nan)
        assert verdict_document(blank)["detectable_effect"] is None


class TestRunDocument:
    def test_scores_and_verdicts_are_keyed_by_scorer(self) -> None:
        """Scores keep their n; timestamps carry their offset; NaN scores are null."""
        run = Run(
            id=7,
            monitor="m",
            endpoint="e",
            benchmark="b",
            benchmark_version="v1",
            trigger="manual",
            status=RunStatus.SUCCEEDED,
            started_at=T0,
            finished_at=T0,
        )
        doc = run_document(
            run,
            [
                ScoreSummary("exact_match[public]", 0.5, 0.4, 0.6, 40),
                ScoreSummary("f", math.nan, math.nan, math.nan, 0),
            ],
            [Verdict("exact_match", VerdictKind.OK, "t", "b")],
        )
        assert doc["scores"]["exact_match[public]"]["n"] == 40
        assert doc["scores"]["f"]["value"] is None
        assert doc["started_at"].endswith("+00:00")
        assert doc["duration_s"] == 0.0
        assert doc["verdicts"]["exact_match"]["detectable_effect"] is None
