"""Decision policy: a new run, its baseline and the settings -> verdicts.

Two pure steps per evaluation cycle (one run of a monitor against one endpoint):

1. `evaluate_scorer` (and `evaluate_distribution` / `evaluate_categories` for
   operational signals) runs the statistics for one check and returns an
   `Evaluation`: the raw one-sided p-value, effect with CI, changed items and
   the updated CUSUM statistic. Nothing is decided yet.
2. `decide` takes every evaluation of the cycle, corrects their p-values
   together and turns each into a `Verdict`.

How a quality check (one scorer) is decided:

* `no_baseline` with fewer baseline runs than required (the storage layer
  selects them: `rolling:K` or pinned; a new benchmark version starts over);
  `insufficient_data` when the test cannot run (too few common items, no
  variation, all NaN); `degraded` for every check when the run had too many
  endpoint errors (the run is excluded from the tests).
* False alarms are budgeted per monitoring period: `alpha` is the tolerated
  chance of a false `regressed` from the per-run test over `horizon_runs`
  consecutive runs. Each raw p-value is multiplied by `horizon_runs`
  (Bonferroni over time), then Benjamini-Hochberg runs across all checks of
  the cycle; `p_adjusted` is the result, compared with `alpha`. With
  `horizon_runs=1` this is the classical per-run test (e.g. a one-off CI gate).
* `regressed` when the adjusted p-value is <= alpha AND the estimated drop is
  >= `min_effect`, or when the CUSUM crosses its threshold (derived from
  `arl0`; accumulates evidence across runs, catches drops too small or too
  slow for a single run and is not gated by min_effect). Runs judged
  regressed are kept out of rolling baselines by the storage layer.
* `improved` when the rise is significant the same way and >= min_effect.
* `warn` when the drop is significant but smaller than min_effect, when the
  adjusted p-value is <= `warn_alpha` with a negative effect, or when the
  CUSUM is past half its threshold; `ok` otherwise.

Drift checks (latency, output length, predicted labels) join the same
Benjamini-Hochberg family but are only ever `ok` or `warn`: `warn` when the
adjusted p-value is <= alpha and an effect size passes its threshold.

The CUSUM state travels in `Verdict.cusum_state`: store it, pass it back in
`ScorerHistory.cusum_state` with the next run, and pass 0 after re-baselining.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from monitor.core.model import ChangedItems, Verdict, VerdictKind
from monitor.core.stats import (
    InsufficientDataError,
    adjust_p_values,
    compare_categories,
    compare_distributions,
    cusum_step,
    cusum_threshold,
    mcnemar_exact,
    paired_binary_test,
    paired_continuous_test,
    standardize,
)
from monitor.core.stats.bootstrap import median_replicates, percentile_interval
from monitor.core.stats.drift import js_distance
from monitor.core.stats.paired import (
    MIN_ITEMS,
    MIN_SPREAD_RUNS,
    TOTAL_WEIGHT,
    Spread,
    detectable_drop,
)

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "DriftSettings",
    "Evaluation",
    "ScorerHistory",
    "decide",
    "evaluate_arrays",
    "evaluate_categories",
    "evaluate_distribution",
    "evaluate_scorer",
]

#: Screening level for setting the newest baseline runs aside while the CUSUM is
#: accumulating evidence (state > 0), and while it is idle (state == 0).
SET_ASIDE_ALPHA_ACTIVE = 0.2
SET_ASIDE_ALPHA_IDLE = 0.01
#: Observed SD of the run total over the model's above which the verdict detail says the
#: endpoint's run-to-run noise limits what one run can detect.
NOISY_RATIO = 1.25
#: Bootstrap resamples for the CIs of drift effects.
DRIFT_BOOTSTRAP = 1000

TEST_MCNEMAR = "mcnemar_exact"
TEST_PAIRED_BINARY = "poisson_binomial+stable_items"
TEST_WILCOXON = "wilcoxon_signed_rank"
TEST_DISTRIBUTION = "ks+anderson_darling"


@dataclass(frozen=True, slots=True)
class DriftSettings:
    """Thresholds of the decision policy (one monitor's `drift:` block plus expert knobs)."""

    alpha: float = 0.005  # false-alarm budget per `horizon_runs` runs (BH level of a cycle)
    min_effect: float = 0.01  # smallest drop (score units) worth `regressed` from one run
    sequential: Literal["cusum", "none"] = "cusum"
    arl0: float = 10000.0  # CUSUM in-control average run length, in runs
    warn_alpha: float = 0.05
    horizon_runs: int = 30  # runs over which `alpha` bounds false alarms of the per-run test
    cusum_k: float = 1.0  # CUSUM reference value, in standard deviations
    confidence: float = 0.95  # level of every effect CI
    bootstrap_resamples: int = 2000
    seed: int = 0  # of the bootstrap generator: same input, same CI
    psi_threshold: float = 0.2
    js_threshold: float = 0.1
    wasserstein_threshold: float = 0.2  # in baseline robust standard deviations
    # power at which the verdict reports the minimum detectable effect (`detectable_effect`)
    detectable_power: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError("alpha must lie in (0, 1)")
        if not self.alpha <= self.warn_alpha < 1.0:
            raise ValueError("warn_alpha must lie in [alpha, 1)")
        if not 0.0 <= self.min_effect <= 1.0:
            raise ValueError("min_effect must lie in [0, 1]")
        if self.sequential not in ("cusum", "none"):
            raise ValueError("sequential must be 'cusum' or 'none'")
        if not self.arl0 > 1.0:
            raise ValueError("arl0 must exceed 1 run")
        if self.horizon_runs < 1:
            raise ValueError("horizon_runs must be >= 1")
        if not self.cusum_k > 0.0:
            raise ValueError("cusum_k must be positive")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError("confidence must lie in (0, 1)")
        if self.bootstrap_resamples < 100:
            raise ValueError("bootstrap_resamples must be >= 100")
        if not 0.0 < self.detectable_power < 1.0:
            raise ValueError("detectable_power must lie in (0, 1)")

    @property
    def run_level(self) -> float:
        """The per-run level of one check: `alpha` spent over `horizon_runs` runs."""
        return self.alpha / self.horizon_runs

    @property
    def cusum_threshold(self) -> float:
        """The CUSUM decision threshold h for `arl0` and `cusum_k`."""
        return cusum_threshold(self.arl0, self.cusum_k)


@dataclass(frozen=True, slots=True)
class ScorerHistory:
    """The input for one scorer of one run: per-item scores of the run and of its baseline."""

    scorer: str
    binary: bool
    current: Mapping[str, float]  # item key -> score of the new run (errored items absent)
    baseline: Sequence[Mapping[str, float]]  # one mapping per baseline run, oldest first
    baseline_description: str  # e.g. "rolling:5 (runs 12,13,14,15,16)"
    required_runs: int  # K; fewer baseline runs -> no_baseline
    cusum_state: float = 0.0
    # when the baseline spans benchmark versions: which, and the items left out as changed,
    # e.g. "with runs of versions a1b2, c3d4; 1 changed item(s) left out" (monitor/judge.py)
    coverage: str | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The raw result of one check of a cycle, before multiple-testing correction."""

    name: str  # scorer, or signal for drift checks
    kind: Literal["quality", "drift"]
    status: Literal["tested", "no_baseline", "insufficient_data"]
    test: str
    baseline: str  # description of the baseline
    statistic: float | None = None
    p_value: float | None = None  # raw, one-sided for a drop (quality) or drift p-value
    p_improve: float | None = None  # raw, one-sided for a rise (quality only)
    effect: float | None = None  # current minus baseline
    effect_ci: tuple[float, float] | None = None
    baseline_score: float | None = None
    current_score: float | None = None
    effect_exceeds: bool = False  # drift: an effect size is past its threshold
    lower_is_better: bool = False  # drift: a fall of the signal is good news (latency)
    changed: ChangedItems = field(default_factory=ChangedItems)
    n_items: int = 0
    cusum_previous: float = 0.0  # state passed in
    cusum: float | None = None  # CUSUM after this run (None when not updated)
    cusum_threshold: float | None = None
    cusum_alarm: bool = False
    cusum_next: float = 0.0  # state to store if the run counts (0 after an alarm)
    detectable_effect: float | None = None  # minimum detectable drop (score units), see Verdict
    detail: str = ""


# --------------------------------------------------------------------------- quality


def _align(
    current: Mapping[str, float], baseline: Sequence[Mapping[str, float]]
) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64], int, int]:
    """Put the runs on one sorted item axis (NaN = missing); count new and missing items."""
    known: set[str] = set()
    for run in baseline:
        known.update(run)
    keys = sorted(known | set(current))
    index = {k: i for i, k in enumerate(keys)}
    base = np.full((len(baseline), len(keys)), np.nan)
    for r, run in enumerate(baseline):
        for key, value in run.items():
            base[r, index[key]] = float(value)
    cur = np.full(len(keys), np.nan)
    for key, value in current.items():
        cur[index[key]] = float(value)
    n_new = sum(1 for k in current if k not in known)
    n_missing = sum(1 for k in keys if k in known and math.isnan(cur[index[k]]))
    return keys, base, cur, n_new, n_missing


def _keys(indices: Sequence[int], keys: Sequence[str] | None) -> tuple[str, ...]:
    if keys is None:
        return tuple(str(i) for i in indices)
    return tuple(sorted(keys[i] for i in indices))


def _no_baseline(name: str, test: str, description: str, have: int, need: int) -> Evaluation:
    return Evaluation(
        name=name,
        kind="quality",
        status="no_baseline",
        test=test,
        baseline=description,
        detail=f"{have} baseline run(s), {need} required",
    )


def _points(x: float) -> str:
    return f"{100.0 * x:+.2f} points"


@dataclass(frozen=True, slots=True)
class _Tested:
    """What every paired test hands to `evaluate_arrays`."""

    statistic: float
    p_value: float
    p_improve: float
    effect: float
    effect_ci: tuple[float, float]
    n_items: int
    baseline_score: float
    current_score: float
    changed: ChangedItems
    lines: tuple[str, ...]
    detectable_effect: float | None = None


def _single_run(
    base: FloatArray, cur: FloatArray, keys: Sequence[str] | None, settings: DriftSettings
) -> _Tested:
    both = ~np.isnan(base[0]) & ~np.isnan(cur)
    n = int(both.sum())
    if n < MIN_ITEMS:
        raise InsufficientDataError(f"only {n} item(s) in common with the baseline")
    was = base[0, both] >= 0.5
    now = cur[both] >= 0.5
    if (was == was[0]).all() and (now == was[0]).all():
        raise InsufficientDataError("no variation: every item has the same score")
    idx = np.flatnonzero(both)
    mc = mcnemar_exact(
        int((was & ~now).sum()), int((~was & now).sum()), n, confidence=settings.confidence
    )
    return _Tested(
        statistic=float(mc.pass_to_fail),
        p_value=mc.p_less,
        p_improve=mc.p_greater,
        effect=mc.effect,
        effect_ci=mc.effect_ci,
        n_items=n,
        baseline_score=float(was.mean()),
        current_score=float(now.mean()),
        changed=ChangedItems(
            pass_to_fail=_keys(idx[was & ~now].tolist(), keys),
            fail_to_pass=_keys(idx[~was & now].tolist(), keys),
        ),
        lines=(
            f"{n} items: {mc.pass_to_fail} pass->fail, {mc.fail_to_pass} fail->pass "
            f"(exact McNemar, two-sided p={mc.p_two_sided:.3g})",
        ),
    )


def _multi_run(
    base: FloatArray,
    cur: FloatArray,
    keys: Sequence[str] | None,
    settings: DriftSettings,
    cusum_state: float,
) -> _Tested:
    res = paired_binary_test(
        base,
        cur,
        set_aside_alpha=SET_ASIDE_ALPHA_ACTIVE if cusum_state > 0.0 else SET_ASIDE_ALPHA_IDLE,
        confidence=settings.confidence,
    )
    lines = [
        f"{res.n_items} items vs {res.reference_runs} of {res.baseline_runs} baseline runs; "
        f"prior Beta({res.prior.a:.3g}, {res.prior.b:.3g}); "
        f"total decided by the {res.variance_source} null"
    ]
    if res.set_aside:
        lines.append(
            f"the newest {res.set_aside} baseline run(s) already looked lower "
            f"(p={res.set_aside_p:.3g}) and were set aside"
        )
    lines.extend(c.describe() for c in res.components)
    # the run total's share of the run's level: what a drop of the score has to pass
    mde = res.detectable_effect(
        level=settings.run_level * TOTAL_WEIGHT, power=settings.detectable_power
    )
    spread = res.total_spread
    ratio = spread.sd / res.total_sd_model if spread and res.total_sd_model > 0 else None
    lines.append(_detectable_line(mde, settings, ratio))
    return _Tested(
        statistic=res.driver.statistic,
        p_value=res.p_value,
        p_improve=res.p_improve,
        effect=res.effect,
        effect_ci=res.effect_ci,
        n_items=res.n_items,
        baseline_score=res.baseline_score,
        current_score=res.current_score,
        changed=ChangedItems(
            pass_to_fail=_keys(res.broken, keys), fail_to_pass=_keys(res.fixed, keys)
        ),
        lines=tuple(lines),
        detectable_effect=mde,
    )


def _detectable_line(mde: float, settings: DriftSettings, ratio: float | None) -> str:
    """The detail text for the minimum detectable effect.

    `ratio` is the reference runs' observed SD of the run total over the item-level
    model's (None when not measured); when the runs vary clearly more than independent
    items would, the line says what that costs.
    """
    line = f"detectable drop at {settings.detectable_power:.0%} power: {100.0 * mde:.2f} points"
    if ratio is not None and ratio > NOISY_RATIO:
        line += (
            f"; the reference runs vary {ratio:.1f}x more than independent items would, so "
            f"this benchmark can only detect drops of ~{100.0 * mde:.1f} points from one run "
            f"on this endpoint"
        )
    return line


def _continuous_detectable(base: FloatArray, cur: FloatArray, settings: DriftSettings) -> float:
    """Minimum detectable drop of the mean score: the paired mean's SE and the reference
    runs' spread of mean scores (Student t), as `detectable_drop` for binary totals."""
    seen = ~np.isnan(base)
    items = ~np.isnan(cur) & seen.all(axis=0)
    k_runs = base.shape[0]
    if int(items.sum()) < MIN_ITEMS:
        return math.nan
    mean = base[:, items].mean(axis=0)
    d = cur[items] - mean
    sd_model = float(d.std(ddof=1)) / math.sqrt(d.size)
    spread = None
    if k_runs >= MIN_SPREAD_RUNS:
        run_means = base[:, items].mean(axis=1)
        spread = Spread(float(run_means.std(ddof=1)) * math.sqrt(1.0 + 1.0 / k_runs), k_runs - 1)
    return detectable_drop(
        sd_model, spread, level=settings.run_level, power=settings.detectable_power
    )


def _continuous(base: FloatArray, cur: FloatArray, settings: DriftSettings) -> _Tested:
    res = paired_continuous_test(
        base,
        cur,
        rng=np.random.default_rng(settings.seed),
        confidence=settings.confidence,
        resamples=settings.bootstrap_resamples,
    )
    mde = _continuous_detectable(base, cur, settings)
    return _Tested(
        statistic=res.statistic,
        p_value=res.p_value,
        p_improve=res.p_improve,
        effect=res.effect,
        effect_ci=res.effect_ci,
        n_items=res.n_items,
        baseline_score=res.baseline_score,
        current_score=res.current_score,
        changed=ChangedItems(),
        lines=(
            f"{res.n_items} items vs the mean of {res.baseline_runs} baseline run(s): "
            f"Wilcoxon W+={res.statistic:.1f}, bootstrap CI of the mean difference",
            *([] if math.isnan(mde) else [_detectable_line(mde, settings, None)]),
        ),
        detectable_effect=None if math.isnan(mde) else mde,
    )


def evaluate_arrays(
    name: str,
    baseline: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    binary: bool,
    settings: DriftSettings,
    baseline_description: str = "",
    required_runs: int = 1,
    cusum_state: float = 0.0,
    keys: Sequence[str] | None = None,
    notes: Sequence[str] = (),
) -> Evaluation:
    """Evaluate one scorer from arrays: `baseline` is (K, N), oldest run first; NaN = missing.

    The array form of `evaluate_scorer` (which aligns mappings and calls this);
    `keys` names the N items for the changed-items lists (indices otherwise).
    """
    base = np.asarray(baseline, dtype=float)
    if base.ndim == 1:
        base = base[None, :] if base.size else np.empty((0, 0))
    cur = np.asarray(current, dtype=float).ravel()
    k_runs = base.shape[0]
    test = TEST_WILCOXON if not binary else TEST_MCNEMAR if k_runs == 1 else TEST_PAIRED_BINARY
    if k_runs < max(1, required_runs):
        return _no_baseline(name, test, baseline_description, k_runs, max(1, required_runs))
    if base.shape[1] != cur.size:
        raise ValueError("baseline and current must have the same number of items")
    state = 0.0 if math.isnan(cusum_state) or cusum_state < 0.0 else float(cusum_state)
    try:
        if not binary:
            res = _continuous(base, cur, settings)
        elif k_runs == 1:
            res = _single_run(base, cur, keys, settings)
        else:
            res = _multi_run(base, cur, keys, settings, state)
    except InsufficientDataError as exc:
        return Evaluation(
            name=name,
            kind="quality",
            status="insufficient_data",
            test=test,
            baseline=baseline_description,
            cusum_previous=state,
            cusum_next=state,
            detail="; ".join([*notes, str(exc)]),
        )
    lines = [*notes, *res.lines]
    cusum = threshold = None
    alarm = False
    next_state = state
    if settings.sequential == "cusum":
        step = cusum_step(
            state, standardize(res.p_value), k=settings.cusum_k, h=settings.cusum_threshold
        )
        cusum, threshold, alarm, next_state = step.statistic, step.threshold, step.alarm, step.state
        lines.append(
            f"CUSUM {step.previous:.2f} -> {step.statistic:.2f} (threshold {threshold:.2f})"
        )
    return Evaluation(
        name=name,
        kind="quality",
        status="tested",
        test=test,
        baseline=baseline_description,
        statistic=res.statistic,
        p_value=res.p_value,
        p_improve=res.p_improve,
        effect=res.effect,
        effect_ci=res.effect_ci,
        baseline_score=res.baseline_score,
        current_score=res.current_score,
        changed=res.changed,
        n_items=res.n_items,
        cusum_previous=state,
        cusum=cusum,
        cusum_threshold=threshold,
        cusum_alarm=alarm,
        cusum_next=next_state,
        detectable_effect=res.detectable_effect,
        detail="; ".join(lines),
    )


def evaluate_scorer(h: ScorerHistory, settings: DriftSettings) -> Evaluation:
    """Run the paired test of one scorer of a new run against its baseline runs.

    Binary scorers: exact McNemar against one baseline run, the K-run
    Poisson-binomial + stable-items test otherwise; continuous scorers:
    Wilcoxon signed-rank with a paired bootstrap CI. Items new to the
    benchmark (absent from every baseline run) and items missing from the run
    (errored, or NaN) are left out of the paired comparison and counted in
    `detail`. Item order never matters: items are keyed and sorted.
    """
    need = max(1, h.required_runs)
    test = TEST_WILCOXON if not h.binary else TEST_MCNEMAR if need == 1 else TEST_PAIRED_BINARY
    if len(h.baseline) < need:
        return _no_baseline(h.scorer, test, h.baseline_description, len(h.baseline), need)
    keys, base, cur, n_new, n_missing = _align(h.current, h.baseline)
    notes = []
    if h.coverage is not None:  # the judge counted the new and changed items
        notes.append(f"{len(h.current) - n_new} item(s) compared {h.coverage}")
    elif n_new:
        notes.append(f"{n_new} new item(s) without a baseline left out")
    if n_missing:
        notes.append(f"{n_missing} baseline item(s) missing from this run left out")
    return evaluate_arrays(
        h.scorer,
        base if keys else np.empty((len(h.baseline), 0)),
        cur,
        binary=h.binary,
        settings=settings,
        baseline_description=h.baseline_description,
        required_runs=need,
        cusum_state=h.cusum_state,
        keys=keys,
        notes=notes,
    )


# --------------------------------------------------------------------------- drift


def _bootstrap_median_shift(
    b: npt.NDArray[np.float64], c: npt.NDArray[np.float64], settings: DriftSettings
) -> tuple[float, float]:
    rng = np.random.default_rng(settings.seed)
    # both samples from one generator, the baseline's replicates first
    nb = median_replicates(b, rng=rng, resamples=DRIFT_BOOTSTRAP)
    nc = median_replicates(c, rng=rng, resamples=DRIFT_BOOTSTRAP)
    return percentile_interval(nc - nb, settings.confidence)


def evaluate_distribution(
    name: str,
    baseline: Sequence[float],
    current: Sequence[float],
    settings: DriftSettings,
    *,
    baseline_description: str = "",
    lower_is_better: bool = False,
) -> Evaluation:
    """Drift check of a numeric signal (latency, output length): KS + Anderson-Darling.

    With `lower_is_better` (latency), a significant fall is `improved`, not `warn`.

    The effect is the shift of the median (current minus baseline) with a
    bootstrap CI; PSI, JS distance and the scaled Wasserstein distance are
    compared with their thresholds.
    """
    try:
        d = compare_distributions(baseline, current)
    except InsufficientDataError as exc:
        return Evaluation(
            name=name,
            kind="drift",
            status="insufficient_data",
            test=TEST_DISTRIBUTION,
            baseline=baseline_description,
            detail=str(exc),
        )
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    b, c = b[np.isfinite(b)], c[np.isfinite(c)]
    exceeds = (
        d.psi >= settings.psi_threshold
        or d.js_distance >= settings.js_threshold
        or d.wasserstein_scaled >= settings.wasserstein_threshold
    )
    return Evaluation(
        name=name,
        kind="drift",
        status="tested",
        test=TEST_DISTRIBUTION,
        baseline=baseline_description,
        statistic=d.ks_statistic,
        p_value=d.p_value,
        effect=d.current_median - d.baseline_median,
        effect_ci=_bootstrap_median_shift(b, c, settings),
        baseline_score=d.baseline_median,
        current_score=d.current_median,
        effect_exceeds=exceeds,
        lower_is_better=lower_is_better,
        n_items=d.n_current,
        detail=(
            f"KS D={d.ks_statistic:.3f} (p={d.ks_p:.3g}), AD={d.ad_statistic:.2f} "
            f"(p{'~' if d.ad_p_capped else '='}{d.ad_p:.3g}); PSI={d.psi:.3f}, "
            f"JS={d.js_distance:.3f}, Wasserstein={d.wasserstein:.4g} "
            f"({d.wasserstein_scaled:.2f} robust SD); n={d.n_baseline}/{d.n_current}"
        ),
    )


def evaluate_categories(
    name: str,
    baseline_counts: Mapping[str, int],
    current_counts: Mapping[str, int],
    settings: DriftSettings,
    *,
    baseline_description: str = "",
) -> Evaluation:
    """Drift check of a categorical signal (predicted labels): chi-square with sparse cells merged.

    The effect is the Jensen-Shannon distance, with a parametric-bootstrap CI
    (both sides resampled from their observed shares).
    """
    try:
        d = compare_categories(baseline_counts, current_counts)
    except InsufficientDataError as exc:
        return Evaluation(
            name=name,
            kind="drift",
            status="insufficient_data",
            test="chi2",
            baseline=baseline_description,
            detail=str(exc),
        )
    cats = d.categories
    b = np.array([max(int(baseline_counts.get(k, 0)), 0) for k in cats], dtype=float)
    c = np.array([max(int(current_counts.get(k, 0)), 0) for k in cats], dtype=float)
    rng = np.random.default_rng(settings.seed)
    bs = rng.multinomial(int(b.sum()), b / b.sum(), size=DRIFT_BOOTSTRAP)
    cs = rng.multinomial(int(c.sum()), c / c.sum(), size=DRIFT_BOOTSTRAP)
    js = np.array([js_distance(x, y) for x, y in zip(bs, cs, strict=True)])
    tail = (1.0 - settings.confidence) / 2.0
    lo, hi = np.quantile(js, [tail, 1.0 - tail])
    exceeds = d.psi >= settings.psi_threshold or d.js_distance >= settings.js_threshold
    merged = f"; merged sparse: {', '.join(d.merged)}" if d.merged else ""
    return Evaluation(
        name=name,
        kind="drift",
        status="tested",
        test=d.test,
        baseline=baseline_description,
        statistic=d.statistic,
        p_value=d.p_value,
        effect=d.js_distance,
        effect_ci=(float(lo), float(hi)),
        effect_exceeds=exceeds,
        n_items=d.n_current,
        detail=(
            f"{d.test} statistic={d.statistic:.3g} (dof {d.dof}, p={d.p_value:.3g}); "
            f"PSI={d.psi:.3f}, JS={d.js_distance:.3f}; n={d.n_baseline}/{d.n_current}{merged}"
        ),
    )


# --------------------------------------------------------------------------- decide


def _adjusted(values: Sequence[float | None], horizon: int) -> list[float | None]:
    """Time-Bonferroni (x horizon) then Benjamini-Hochberg over the non-None entries."""
    present = [i for i, v in enumerate(values) if v is not None]
    raw = [min(1.0, horizon * float(v)) for v in values if v is not None]
    out: list[float | None] = [None] * len(values)
    for i, adj in zip(present, adjust_p_values(raw), strict=True):
        out[i] = adj
    return out


def _verdict(
    e: Evaluation,
    kind: VerdictKind,
    reason: str,
    *,
    p_adjusted: float | None,
    cusum_state: float | None,
) -> Verdict:
    detail = f"{reason}; {e.detail}" if e.detail else reason
    return Verdict(
        scorer=e.name,
        verdict=kind,
        test=e.test,
        baseline=e.baseline,
        statistic=e.statistic,
        p_value=e.p_value,
        p_adjusted=p_adjusted,
        effect=e.effect,
        effect_ci=e.effect_ci,
        baseline_score=e.baseline_score,
        changed=e.changed,
        detail=detail,
        cusum_state=cusum_state,
        detectable_effect=e.detectable_effect,
    )


def decide(
    evaluations: Sequence[Evaluation], settings: DriftSettings, *, degraded: bool
) -> list[Verdict]:
    """Turn one cycle's evaluations into verdicts (same order), correcting p-values together."""
    if degraded:
        return [
            Verdict(
                scorer=e.name,
                verdict=VerdictKind.DEGRADED,
                test=e.test,
                baseline=e.baseline,
                detail="run degraded by endpoint errors: excluded from the drift tests",
                cusum_state=e.cusum_previous if e.kind == "quality" else None,
            )
            for e in evaluations
        ]
    tested = [e.status == "tested" for e in evaluations]
    p_adj = _adjusted(
        [e.p_value if ok else None for e, ok in zip(evaluations, tested, strict=True)],
        settings.horizon_runs,
    )
    p_imp = _adjusted(
        [
            e.p_improve if ok and e.kind == "quality" else None
            for e, ok in zip(evaluations, tested, strict=True)
        ],
        settings.horizon_runs,
    )
    verdicts: list[Verdict] = []
    for e, pa, pi in zip(evaluations, p_adj, p_imp, strict=True):
        state = e.cusum_next if e.kind == "quality" else None
        if e.status == "no_baseline":
            verdicts.append(
                _verdict(
                    e, VerdictKind.NO_BASELINE, "no baseline", p_adjusted=None, cusum_state=0.0
                )
            )
            continue
        if e.status == "insufficient_data" or pa is None or e.effect is None:
            verdicts.append(
                _verdict(
                    e,
                    VerdictKind.INSUFFICIENT_DATA,
                    "insufficient data",
                    p_adjusted=None,
                    cusum_state=state,
                )
            )
            continue
        if e.kind == "drift":
            if pa <= settings.alpha and e.effect_exceeds and e.lower_is_better and e.effect < 0:
                kind, why = VerdictKind.IMPROVED, f"improved: p_adj={pa:.3g}, lower than baseline"
            elif pa <= settings.alpha and e.effect_exceeds:
                kind, why = VerdictKind.WARN, f"drift: p_adj={pa:.3g} and effect past threshold"
            else:
                kind, why = VerdictKind.OK, "no material drift"
            verdicts.append(_verdict(e, kind, why, p_adjusted=pa, cusum_state=None))
            continue
        significant = pa <= settings.alpha
        big_drop = e.effect <= -settings.min_effect
        if significant and big_drop:
            kind = VerdictKind.REGRESSED
            why = f"regressed: p_adj={pa:.3g} <= {settings.alpha} and effect {_points(e.effect)}"
        elif e.cusum_alarm:
            kind = VerdictKind.REGRESSED
            why = f"regressed: CUSUM {e.cusum or 0.0:.2f} >= {e.cusum_threshold or 0.0:.2f}"
        elif pi is not None and pi <= settings.alpha and e.effect >= settings.min_effect:
            kind = VerdictKind.IMPROVED
            why = f"improved: p_adj={pi:.3g} and effect {_points(e.effect)}"
        elif significant:
            kind = VerdictKind.WARN
            why = f"warn: significant drop (p_adj={pa:.3g}) below min_effect"
        elif pa <= settings.warn_alpha and e.effect < 0.0:
            kind = VerdictKind.WARN
            why = f"warn: p_adj={pa:.3g} <= warn_alpha {settings.warn_alpha}"
        elif e.cusum is not None and e.cusum_threshold and e.cusum >= e.cusum_threshold / 2:
            kind = VerdictKind.WARN
            why = f"warn: CUSUM {e.cusum:.2f} past half its threshold"
        else:
            kind, why = VerdictKind.OK, "ok"
        verdicts.append(_verdict(e, kind, why, p_adjusted=pa, cusum_state=state))
    return verdicts
