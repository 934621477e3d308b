"""Model selection: two endpoints (or two runs) compared on paired items, and the leaderboard.

`GET /api/v1/compare` (two endpoints), `GET /api/v1/compare/runs` (two runs) and
`GET /api/v1/leaderboard`; `monitor compare --endpoints` and
`monitor leaderboard` print the same documents, and the compare page renders them.

Pairs: the latest succeeded run of each endpoint on the same benchmark version (the
newest version every endpoint asked for has a succeeded run on), items paired by key. The
statistics are `monitor.core.stats.equivalence` (docs/ui.md, "Compare and leaderboard").
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from monitor.api.deps import MAX_ID, NAME, Store, problems
from monitor.core.fingerprint import BENCHMARK_FIELDS, CONFIGURED, differences, served_change
from monitor.core.model import Run, RunStatus
from monitor.core.stats.equivalence import EquivalenceResult, paired_equivalence, rank_endpoints
from monitor.core.stats.paired import InsufficientDataError
from monitor.documents import json_float
from monitor.errors import MonitorError
from monitor.storage import SqlStore

__all__ = [
    "DEFAULT_MARGIN",
    "ComparisonError",
    "compare_endpoints",
    "compare_runs",
    "leaderboard",
    "router",
]

#: One point of score: "B is within 1 point of A".
DEFAULT_MARGIN = 0.01
#: Discordant item keys listed per side in a document (the counts are always exact).
MAX_LISTED = 1000

router = APIRouter(prefix="/api/v1")


class ComparisonError(MonitorError):
    """The comparison cannot be made: no such run, no common benchmark version, ..."""


def _result_document(res: EquivalenceResult) -> dict[str, Any]:
    return {
        "kind": res.kind,
        "n": res.n,
        "mean_a": json_float(res.mean_a),
        "mean_b": json_float(res.mean_b),
        "difference": json_float(res.difference),
        "ci": [json_float(res.ci[0]), json_float(res.ci[1])],
        "confidence": res.confidence,
        "test": res.test,
        "p_value": json_float(res.p_value),
        "margin": res.margin,
        "alpha": res.alpha,
        "p_lower": json_float(res.p_lower),
        "p_upper": json_float(res.p_upper),
        "p_equivalence": json_float(res.p_equivalence),
        "equivalence_ci": [json_float(res.equivalence_ci[0]), json_float(res.equivalence_ci[1])],
        "equivalent": res.equivalent,
        "outcome": res.outcome,
    }


def _run_ref(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "monitor": run.monitor,
        "endpoint": run.endpoint,
        "started_at": run.started_at.isoformat(),
        "model_id": run.model_id,
        "fingerprint": None if run.fingerprint is None else run.fingerprint.to_json(),
    }


def comparability(run_a: Run, run_b: Run) -> dict[str, Any]:
    """Whether two runs measured the same thing, and if not, which fields differ.

    `comparable` is None when a run has no fingerprint (stored before they existed).
    Two runs of one endpoint must agree on every configured field; runs of two
    endpoints (model selection) only on the benchmark version and the scorers, and
    `configuration` lists what else differs between them, which is what is being
    chosen. A served-model change (same configuration, another model behind it)
    leaves the runs comparable, and is reported beside: it may be the very change being
    compared.
    """
    fa, fb = run_a.fingerprint, run_b.fingerprint
    if fa is None or fb is None:
        missing = run_a.id if fa is None else run_b.id
        return {
            "comparable": None,
            "differences": [],
            "configuration": [],
            "served_change": None,
            "reason": f"run {missing} has no fingerprint (stored before fingerprints existed)",
        }
    same_endpoint = run_a.endpoint == run_b.endpoint
    found = differences(fa, fb, CONFIGURED if same_endpoint else BENCHMARK_FIELDS)
    change = served_change(fb, [fa])
    return {
        "comparable": not found,
        "differences": [d.to_json() for d in found],
        "configuration": [d.to_json() for d in differences(fa, fb)],
        "served_change": None if change is None else change.to_json(),
        "reason": "; ".join(str(d) for d in found) or None,
    }


def compare_runs(
    store: SqlStore,
    run_a: Run,
    run_b: Run,
    *,
    margin: float = DEFAULT_MARGIN,
    scorer: str | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """The paired comparison of run B against run A, per scorer they share (or `scorer`)."""
    scores = store.run_scores([run_a.id, run_b.id])
    common = {s.scorer for s in scores[run_a.id]} & {s.scorer for s in scores[run_b.id]}
    if scorer is not None:
        if scorer not in common:
            raise ComparisonError(f"runs {run_a.id} and {run_b.id} do not both have {scorer!r}")
        common = {scorer}
    report: dict[str, Any] = {
        "benchmark": run_a.benchmark,
        "benchmark_version": run_a.benchmark_version,
        "same_version": run_a.benchmark_version == run_b.benchmark_version,
        "margin": margin,
        "alpha": alpha,
        "a": _run_ref(run_a),
        "b": _run_ref(run_b),
        **comparability(run_a, run_b),
        "scorers": {},
    }
    for name in sorted(common):
        per_item = store.item_scores([run_a.id, run_b.id], name)
        a_items, b_items = per_item[run_a.id], per_item[run_b.id]
        if not a_items and not b_items:
            continue  # a run-level figure only (a split's subset score): nothing to pair
        keys = sorted(a_items.keys() & b_items.keys())
        a_vals = [a_items[k] for k in keys]
        b_vals = [b_items[k] for k in keys]
        try:
            result: dict[str, Any] | None = _result_document(
                paired_equivalence(a_vals, b_vals, margin=margin, alpha=alpha)
            )
        except InsufficientDataError as exc:
            result, reason = None, str(exc)
        else:
            reason = ""
        a_only = [k for k, x, y in zip(keys, a_vals, b_vals, strict=True) if x >= 0.5 > y]
        b_only = [k for k, x, y in zip(keys, a_vals, b_vals, strict=True) if x < 0.5 <= y]
        report["scorers"][name] = {
            "comparison": result,
            "insufficient": reason or None,
            # discordant items: A passed and B failed, and the other way round
            "a_only": {"count": len(a_only), "keys": a_only[:MAX_LISTED]},
            "b_only": {"count": len(b_only), "keys": b_only[:MAX_LISTED]},
            "only_in_a": len(a_items.keys() - b_items.keys()),
            "only_in_b": len(b_items.keys() - a_items.keys()),
        }
    return report


def _version_runs(store: SqlStore, benchmark: str, endpoints: Sequence[str] | None) -> list[Run]:
    """The latest succeeded run per endpoint on the newest version they all share.

    With `endpoints` None: every endpoint with a succeeded run on the newest version.
    """
    runs = store.latest_succeeded_runs(benchmark)  # newest first
    if not runs:
        raise ComparisonError(f"no succeeded runs of benchmark {benchmark!r}")
    by_version: dict[str, dict[str, Run]] = {}
    for r in runs:
        by_version.setdefault(r.benchmark_version, {}).setdefault(r.endpoint, r)
    if endpoints is None:
        newest = by_version[runs[0].benchmark_version]
        return [newest[e] for e in sorted(newest)]
    for r in runs:  # newest first, so the first version that has them all is the newest
        found = by_version[r.benchmark_version]
        if all(e in found for e in endpoints):
            return [found[e] for e in endpoints]
    have = sorted({r.endpoint for r in runs})
    missing = [e for e in endpoints if e not in have]
    if missing:
        raise ComparisonError(
            f"endpoint {missing[0]!r} has no succeeded run of benchmark {benchmark!r}"
        )
    raise ComparisonError(
        f"endpoints {', '.join(endpoints)} have no succeeded runs on one version of {benchmark!r}"
    )


def compare_endpoints(
    store: SqlStore,
    *,
    benchmark: str,
    a: str,
    b: str,
    margin: float = DEFAULT_MARGIN,
    scorer: str | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Endpoint B against endpoint A on their latest succeeded runs of one version."""
    if a == b:
        raise ComparisonError("compare two different endpoints")
    run_a, run_b = _version_runs(store, benchmark, [a, b])
    return compare_runs(store, run_a, run_b, margin=margin, scorer=scorer, alpha=alpha)


def leaderboard(
    store: SqlStore,
    *,
    benchmark: str,
    margin: float = DEFAULT_MARGIN,
    scorer: str | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Endpoints in tiers on the newest version of `benchmark` (`rank_endpoints`).

    The scorer is `scorer`, or the first (by name) that every run has, whole scorers
    (``exact_match``) before split subsets (``exact_match[hard]``).
    """
    runs = _version_runs(store, benchmark, None)
    scores = store.run_scores([r.id for r in runs])
    shared = set.intersection(*({s.scorer for s in scores[r.id]} for r in runs))
    if scorer is None:
        if not shared:
            raise ComparisonError(f"the runs of {benchmark!r} share no scorer")
        scorer = min(shared, key=lambda s: ("[" in s, s))  # a whole scorer before a split
    elif scorer not in shared:
        raise ComparisonError(f"not every endpoint's run of {benchmark!r} has {scorer!r}")
    per_item = store.item_scores([r.id for r in runs], scorer)
    board = rank_endpoints({r.endpoint: per_item[r.id] for r in runs}, margin=margin, alpha=alpha)
    run_of = {r.endpoint: r for r in runs}
    return {
        "benchmark": benchmark,
        "benchmark_version": runs[0].benchmark_version,
        "scorer": scorer,
        "margin": margin,
        "alpha": alpha,
        "entries": [
            {
                "endpoint": e.name,
                "tier": e.tier,
                "leader": e.leader,
                "score": json_float(e.mean),
                "n": e.n,
                "run": _run_ref(run_of[e.name]),
                "versus_leader": None
                if e.versus_leader is None
                else _result_document(e.versus_leader),
            }
            for e in board
        ],
    }


Margin = Annotated[float, Query(gt=0.0, le=1.0)]
Alpha = Annotated[float, Query(gt=0.0, lt=0.5)]
Name = Annotated[str, Query(pattern=NAME)]
OptionalName = Annotated[str | None, Query(pattern=NAME)]


def runs_to_compare(store: SqlStore, run_a: int, run_b: int) -> tuple[Run, Run]:
    """Both runs, which must exist and have succeeded."""
    found = store.get_runs([run_a, run_b])
    for rid in (run_a, run_b):
        if rid not in found:
            raise ComparisonError(f"no run with id {rid}")
        if found[rid].status is not RunStatus.SUCCEEDED:
            raise ComparisonError(f"run {rid} is {found[rid].status.value}, not succeeded")
    return found[run_a], found[run_b]


@router.get("/compare", responses=problems(404, 422, 503))
async def compare(
    db: Store,
    *,
    benchmark: Name,
    a: Name,
    b: Name,
    margin: Margin = DEFAULT_MARGIN,
    alpha: Alpha = 0.05,
    scorer: OptionalName = None,
) -> dict[str, Any]:
    """Endpoint `b` against endpoint `a` on their latest succeeded runs of one version of
    `benchmark`: the paired difference with its CI, the difference test and the
    equivalence verdict."""

    def read() -> dict[str, Any]:
        return compare_endpoints(
            db, benchmark=benchmark, a=a, b=b, margin=margin, scorer=scorer, alpha=alpha
        )

    try:
        return await asyncio.to_thread(read)
    except ComparisonError as exc:
        raise HTTPException(404, str(exc)) from exc


RequiredRun = Annotated[int, Query(ge=1, le=MAX_ID)]


@router.get("/compare/runs", responses=problems(404, 422, 503))
async def compare_two_runs(
    db: Store,
    *,
    run_a: RequiredRun,
    run_b: RequiredRun,
    margin: Margin = DEFAULT_MARGIN,
    alpha: Alpha = 0.05,
    scorer: OptionalName = None,
) -> dict[str, Any]:
    """Run `run_b` against run `run_a` (both succeeded), paired by item key."""

    def read() -> dict[str, Any]:
        ra, rb = runs_to_compare(db, run_a, run_b)
        return compare_runs(db, ra, rb, margin=margin, scorer=scorer, alpha=alpha)

    try:
        return await asyncio.to_thread(read)
    except ComparisonError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/leaderboard", responses=problems(404, 422, 503))
async def leaderboard_route(
    db: Store,
    *,
    benchmark: Name,
    margin: Margin = DEFAULT_MARGIN,
    alpha: Alpha = 0.05,
    scorer: OptionalName = None,
) -> dict[str, Any]:
    """Endpoints in tiers on the newest version of `benchmark`; a new tier starts only
    where the paired difference to the tier's leader is outside the noise."""

    def read() -> dict[str, Any]:
        return leaderboard(db, benchmark=benchmark, margin=margin, scorer=scorer, alpha=alpha)

    try:
        return await asyncio.to_thread(read)
    except ComparisonError as exc:
        raise HTTPException(404, str(exc)) from exc
