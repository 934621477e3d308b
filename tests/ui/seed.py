"""History written straight into a `SqlStore`: benchmarks, runs, item results and verdicts.

For the CLI tests and benchmarks/ui.py, which need many runs or big runs fast. The browser
tests in tests/ui/test_pages.py make their history through the real daemon instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from monitor.core.model import (
    Benchmark,
    ChangedItems,
    Item,
    ItemResult,
    Run,
    RunStatus,
    ScorerSpec,
    ScoreSummary,
    Verdict,
    VerdictKind,
)
from monitor.storage import SqlStore

SCORER = "exact_match"


def seed_benchmark(
    store: SqlStore,
    now: datetime,
    *,
    name: str = "qa",
    version: str = "v1",
    n: int = 200,
    splits: Sequence[str] = ("easy", "hard"),
) -> list[str]:
    """Store a benchmark version of `n` items (keys i0, i1, ...); return the keys."""
    items = tuple(
        Item(
            key=f"i{k}",
            fields={"question": f"What is item {k}?", "context": f"context {k}"},
            reference=f"answer {k}",
            split=splits[k % len(splits)] if splits else None,
        )
        for k in range(n)
    )
    store.save_benchmark(
        Benchmark(name=name, version=version, items=items, scorers=(ScorerSpec(SCORER, SCORER),)),
        now,
    )
    return [i.key for i in items]


def summary(passed: Sequence[bool]) -> ScoreSummary:
    """The run's mean with a normal-approximation 95% CI (good enough for seeded history)."""
    n = len(passed)
    p = sum(passed) / n if n else math.nan
    half = 1.96 * math.sqrt(p * (1 - p) / n) if n else math.nan
    return ScoreSummary(SCORER, p, max(0.0, p - half), min(1.0, p + half), n)


def seed_run(
    store: SqlStore,
    *,
    monitor: str,
    endpoint: str,
    started_at: datetime,
    passed: Mapping[str, bool],
    outputs: Mapping[str, str] | None = None,
    benchmark: str = "qa",
    version: str = "v1",
    verdict: Verdict | None = None,
    model_id: str = "m-1",
    status: RunStatus = RunStatus.SUCCEEDED,
) -> Run:
    """One finished run with its item results, score and (optionally) verdict."""
    run = store.start_run(
        monitor=monitor,
        benchmark=benchmark,
        benchmark_version=version,
        endpoint=endpoint,
        trigger="schedule",
        started_at=started_at,
    )
    outputs = outputs or {}
    results = [
        ItemResult(
            item_key=key,
            output=outputs.get(key, f"answer {key[1:]}" if ok else "no idea"),
            scores={SCORER: 1.0 if ok else 0.0},
            latency_s=0.05,
        )
        for key, ok in passed.items()
    ]
    for start in range(0, len(results), 1000):
        store.add_item_results(run.id, results[start : start + 1000])
    if verdict is not None:
        store.save_verdicts(run.id, [verdict])
    return store.finish_run(
        run.id,
        status=status,
        finished_at=started_at,
        n_items=len(results),
        n_errors=0,
        model_id=model_id,
        scores=[summary(list(passed.values()))],
    )


def flip_verdict(
    baseline_run: int, pass_to_fail: Sequence[str], fail_to_pass: Sequence[str] = ()
) -> Verdict:
    """A stored-looking verdict naming `baseline_run` and the flipped items."""
    return Verdict(
        scorer=SCORER,
        verdict=VerdictKind.REGRESSED if pass_to_fail else VerdictKind.OK,
        test="mcnemar_exact",
        baseline=f"rolling:1 (runs {baseline_run})",
        p_value=1e-6,
        p_adjusted=1e-6,
        effect=-len(pass_to_fail) / 1000,
        effect_ci=(-0.04, -0.02),
        baseline_score=0.9,
        changed=ChangedItems(tuple(pass_to_fail), tuple(fail_to_pass)),
    )
