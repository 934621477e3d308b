"""Paired tests: the same items re-run, compared with the same items' baseline.

Binary scores (pass/fail per item)
----------------------------------
* One baseline run: exact McNemar test on the discordant pairs
  (`mcnemar_exact`). Assumes items are independent; under "no change" every
  discordant item is equally likely to have flipped either way.

* K >= 2 baseline runs (`paired_binary_test`). Each item i has an unknown pass
  probability p_i and runs are independent draws given the p_i ("exchangeable
  runs"); items are independent. Per-item pass rates are smoothed with an
  empirical-Bayes Beta prior fitted across items (`fit_beta_prior`), not a
  fixed one: a fixed Beta(0.5, 0.5) treats every item that passed 5 of 5 as
  having a 1 in 12 chance of failing and inflates the null variance ~2.4x,
  whereas the fitted prior learns that most 5-of-5 items are truly stable.
  Up to three components, combined by a weighted Bonferroni minimum (valid
  under any dependence between them):

  - weighted total (`crossfit`): the run total with items weighted by how
    much they vary in the reference runs, cross-fitted so the weights never
    see the run they multiply. It replaces the plain total below whenever
    enough items vary for a normal approximation: a decline spread over
    flaky items shows ~12% more clearly in it, because stable items' chance
    failures no longer add noise.
  - total: current run total vs the reference runs' mean. Its null is the
    Poisson-binomial with variance sum p_i (1 - p_i) (item variances from
    the prior), widened by the reference mean's own noise (1 + 1/n_i): normal
    approximation with continuity correction when the variance is at least
    `EXACT_BELOW_VARIANCE`, otherwise the exact posterior-predictive
    Poisson-binomial. Real runs share noise an independent-items model cannot
    see (a serving change moving every flaky item of a run), so the reference
    run totals' own spread is a second null, a Student-t predictive with
    R - 1 degrees of freedom (`Spread`); the larger p-value decides, valid
    when either the items are independent or the runs are exchangeable with
    normal totals (docs/decisions/0005-run-level-noise.md).
  - stable items: how many items that passed every baseline run fail now.
    Its null (each such item fails with its posterior chance after n straight
    passes, about 1-2% on typical benchmarks) is small and tight, so a handful
    of broken items stands out even when flaky items move the total by more:
    a test on totals cannot tell "stable items broke" from "flaky items
    wobbled", this component can. The prior's tail is checked against the
    baseline itself (how often an item that passed K - 1 runs failed the
    other one) and the null is scaled up when the data say the prior is too
    optimistic.
  - recent failures (only when baseline runs were set aside): items that
    passed every reference run, failed every set-aside run and fail again.

  Setting runs aside: a rolling baseline absorbs a regression that was not
  flagged at once, and the next run then looks normal against it. So when
  the newest one or two baseline runs (they arrive oldest first) already
  look lower than the older ones (a screening test at `set_aside_alpha`),
  they are set aside: the current run is compared with the older runs only,
  and the items that started failing in the set-aside runs form the
  recent-failures component. Every choice depends on past runs only, so each
  run's p-value stays a test of that run given what came before, and a
  sequential detector can sum the evidence without counting a run twice.

Continuous scores
-----------------
`paired_continuous_test`: Wilcoxon signed-rank test on the per-item
differences to the item's baseline mean (assumes independent items and
differences symmetric about their median under the null), and a paired
bootstrap percentile CI of the mean difference (resamples items; the caller
passes a seeded generator, so results are reproducible).

All effects are current minus baseline: negative means the score dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from monitor.core.stats.bootstrap import bootstrap_replicates, percentile_interval
from monitor.core.stats.crossfit import weighted_total

__all__ = [
    "BetaPrior",
    "ComponentTest",
    "InsufficientDataError",
    "McNemarResult",
    "PairedBinaryResult",
    "PairedContinuousResult",
    "Spread",
    "detectable_drop",
    "fit_beta_prior",
    "mcnemar_exact",
    "paired_binary_test",
    "paired_bootstrap_ci",
    "paired_continuous_test",
    "poisson_binomial_pmf",
    "wilcoxon_signed_rank",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Alternative = Literal["less", "greater", "two-sided"]

#: Fewer common items than this and a paired test is not attempted.
MIN_ITEMS = 2
#: Below this null variance (in items^2) the run total uses the exact Poisson-binomial.
EXACT_BELOW_VARIANCE = 16.0
#: Empirical-Bayes search box for the Beta prior's parameters.
PRIOR_BOUNDS = (1e-3, 1e4)
#: Weak log-normal hyperprior on (a, b), centred on Jeffreys' Beta(0.5, 0.5); it only
#: matters with a handful of items or no variation, where the likelihood is flat.
HYPERPRIOR_SD = 3.0
#: Share of the run's test level given to the total (the rest goes to the item counts).
TOTAL_WEIGHT = 0.75
#: Share of the item counts' level kept by the stable-items count when runs are set
#: aside; the rest goes to the recent-failures count, where a regression that slipped
#: into the baseline shows.
STABLE_SHARE_SET_ASIDE = 0.1
#: One-sided level of the upper bound on the observed single-failure count (tail check).
TAIL_CHECK_LEVEL = 0.75
#: Fewest reference runs for the observed-spread check (a t with 1 degree of freedom, or
#: none, says nothing useful).
MIN_SPREAD_RUNS = 3
#: Confidence of the lower bound on the stable-items count's dispersion over the model's.
DISPERSION_LEVEL = 0.95
#: How much smaller the screening p-value must get to set aside one more baseline run.
SET_ASIDE_PREFERENCE = 10.0


class InsufficientDataError(ValueError):
    """The input cannot support the test (too few items, no variation, nothing in common)."""


# --------------------------------------------------------------------------- helpers


def _z_quantile(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie in (0, 1)")
    return float(special.ndtri(0.5 + confidence / 2.0))


def _clip_p(p: float) -> float:
    return min(max(float(p), 0.0), 1.0)


def poisson_binomial_pmf(probs: npt.ArrayLike, counts: npt.ArrayLike | None = None) -> FloatArray:
    """Exact pmf of a sum of independent Bernoulli(p_i) variables.

    `counts[g]` repeats `probs[g]` (items sharing a probability), which keeps
    the cost at O(groups x n). Computed by inverting the characteristic
    function with one FFT (Hong 2013); absolute error ~1e-15.
    """
    p = np.asarray(probs, dtype=float).ravel()
    c = np.ones_like(p) if counts is None else np.asarray(counts, dtype=float).ravel()
    if p.shape != c.shape:
        raise ValueError("probs and counts must have the same length")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any() or (c < 0).any():
        raise ValueError("probabilities must lie in [0, 1] and counts be >= 0")
    n = round(float(c.sum()))
    if n == 0:
        return np.ones(1)
    omega = 2.0 * np.pi * np.arange(n + 1) / (n + 1)
    unit = np.exp(1j * omega)
    # log of each group's factor, summed: exp(sum c_g log(1 - p_g + p_g e^{iw}))
    log_phi = np.zeros(n + 1, dtype=complex)
    for pg, cg in zip(p, c, strict=True):
        if cg == 0 or pg == 0.0:
            continue
        if pg == 1.0:
            log_phi += cg * 1j * omega
            continue
        log_phi += cg * np.log((1.0 - pg) + pg * unit)
    pmf = np.fft.fft(np.exp(log_phi)).real / (n + 1)
    pmf = np.clip(pmf, 0.0, 1.0)
    total = pmf.sum()
    return pmf / total if total > 0 else pmf


# --------------------------------------------------------------------------- McNemar


@dataclass(frozen=True, slots=True)
class McNemarResult:
    """Exact McNemar test of one run against a single baseline run."""

    n: int  # items in both runs
    pass_to_fail: int  # b: passed in the baseline, fail now
    fail_to_pass: int  # c: failed in the baseline, pass now
    p_less: float  # one-sided: the score dropped
    p_greater: float  # one-sided: the score rose
    p_two_sided: float
    effect: float  # (c - b) / n: current minus baseline pass rate
    effect_ci: tuple[float, float]


def mcnemar_exact(
    pass_to_fail: int, fail_to_pass: int, n: int, *, confidence: float = 0.95
) -> McNemarResult:
    """Exact McNemar test: conditional binomial test on the discordant items.

    Given b + c discordant items, b ~ Binomial(b + c, 1/2) under "no change".
    The CI of the paired difference is Agresti-Min's (Wald after adding 1/2 to
    each cell of the 2x2 table), which keeps coverage near nominal for the few
    discordant pairs typical here.
    """
    b, c = int(pass_to_fail), int(fail_to_pass)
    if b < 0 or c < 0 or n < b + c or n < 1:
        raise ValueError("need 0 <= b, c and b + c <= n, n >= 1")
    m = b + c
    if m == 0:
        p_less = p_greater = p_two = 1.0
    else:
        p_less = float(stats.binom.sf(b - 1, m, 0.5))  # P(B >= b)
        p_greater = float(stats.binom.sf(c - 1, m, 0.5))  # P(C >= c)
        p_two = min(1.0, 2.0 * min(p_less, p_greater))
    z = _z_quantile(confidence)
    n2 = n + 2.0
    b2, c2 = b + 0.5, c + 0.5
    d2 = (c2 - b2) / n2
    se = math.sqrt(max((b2 + c2) / n2 - d2 * d2, 0.0) / n2)
    ci = (max(-1.0, d2 - z * se), min(1.0, d2 + z * se))
    return McNemarResult(
        n=n,
        pass_to_fail=b,
        fail_to_pass=c,
        p_less=_clip_p(p_less),
        p_greater=_clip_p(p_greater),
        p_two_sided=_clip_p(p_two),
        effect=(c - b) / n,
        effect_ci=ci,
    )


# --------------------------------------------------------------------------- EB prior


@dataclass(frozen=True, slots=True)
class BetaPrior:
    """Beta(a, b) distribution of per-item pass probabilities across a benchmark."""

    a: float
    b: float

    def pass_probability(self, passes: npt.ArrayLike, trials: npt.ArrayLike) -> FloatArray:
        """Posterior predictive chance that each item passes its next run."""
        k = np.asarray(passes, dtype=float)
        n = np.asarray(trials, dtype=float)
        return np.asarray((self.a + k) / (self.a + self.b + n), dtype=float)

    def item_variance(self, passes: npt.ArrayLike, trials: npt.ArrayLike) -> FloatArray:
        """Posterior mean of p_i (1 - p_i), the item's Bernoulli variance."""
        k = np.asarray(passes, dtype=float)
        n = np.asarray(trials, dtype=float)
        al = self.a + k
        be = self.b + n - k
        s = al + be
        return np.asarray(al * be / (s * (s + 1.0)), dtype=float)

    def fail_streak_probability(self, passes: npt.ArrayLike, streak: int) -> FloatArray:
        """Posterior chance that an item which passed `passes` runs out of `passes` fails the
        next `streak` runs in a row: E[(1 - p)^streak | passes]."""
        n = np.asarray(passes, dtype=float)
        out = np.ones_like(n)
        for j in range(streak):
            out = out * (self.b + j) / (n + self.a + self.b + j)
        return out


def _log_rising(x: FloatArray, upto: int) -> FloatArray:
    """log of the rising factorials x (x+1) ... (x+j-1) for j = 0..upto (last axis)."""
    steps = np.log(x[..., None] + np.arange(upto, dtype=float))
    zero = np.zeros((*x.shape, 1))
    return np.concatenate([zero, np.cumsum(steps, axis=-1)], axis=-1)


def _beta_binomial_loglik(
    k: IntArray, n: IntArray, w: FloatArray, log_a: FloatArray, log_b: FloatArray
) -> FloatArray:
    """Penalized beta-binomial log-likelihood on a grid of (log a, log b) (constants dropped)."""
    a = np.exp(log_a)
    b = np.exp(log_b)
    n_max = int(n.max())
    if n_max <= 64:
        # B(k+a, n-k+b) / B(a, b) = a^(k) b^(n-k) / (a+b)^(n) with rising factorials
        ra = _log_rising(a, n_max)
        rb = _log_rising(b, n_max)
        rab = _log_rising(a + b, n_max)
        ll = ra[..., k] + rb[..., n - k] - rab[..., n]
    else:
        a3, b3 = a[..., None], b[..., None]
        ll = special.betaln(k + a3, n - k + b3) - special.betaln(a3, b3)
    penalty = ((log_a - math.log(0.5)) ** 2 + (log_b - math.log(0.5)) ** 2) / (
        2.0 * HYPERPRIOR_SD**2
    )
    return np.asarray((ll * w).sum(axis=-1) - penalty, dtype=float)


def fit_beta_prior(passes: npt.ArrayLike, trials: npt.ArrayLike) -> BetaPrior:
    """Fit the Beta prior of item pass rates across items (empirical Bayes).

    Maximizes the beta-binomial marginal likelihood of each item's passes out
    of its trials (with a weak hyperprior that only matters when the
    likelihood is flat) by a coarse-to-fine grid search in (log a, log b):
    deterministic and free of optimizer convergence failures. Items with 0
    trials are ignored. On typical benchmarks the fit is U-shaped (a, b < 1):
    most items are nearly always right or always wrong, which is exactly
    what lets an item that passed 5 of 5 count as stable.
    """
    k_all = np.rint(np.asarray(passes, dtype=float).ravel()).astype(np.int64)
    n_all = np.rint(np.asarray(trials, dtype=float).ravel()).astype(np.int64)
    keep = n_all > 0
    if not keep.any():
        return BetaPrior(0.5, 0.5)
    k_all, n_all = k_all[keep], n_all[keep]
    if (k_all < 0).any() or (k_all > n_all).any():
        raise ValueError("passes must lie between 0 and trials")
    base = int(n_all.max()) + 1
    uniq, counts = np.unique(n_all * base + k_all, return_counts=True)
    un, uk = uniq // base, uniq % base
    w = counts.astype(float)
    lo, hi = math.log(PRIOR_BOUNDS[0]), math.log(PRIOR_BOUNDS[1])
    best = (math.log(0.5), math.log(0.5))
    span = (hi - lo) / 2.0
    grid = np.linspace(-1.0, 1.0, 11)
    for _ in range(4):
        la = np.clip(best[0] + span * grid, lo, hi)
        lb = np.clip(best[1] + span * grid, lo, hi)
        la2, lb2 = np.meshgrid(la, lb, indexing="ij")
        ll = _beta_binomial_loglik(uk, un, w, la2, lb2)
        i, j = np.unravel_index(int(np.argmax(ll)), ll.shape)
        best = (float(la[i]), float(lb[j]))
        span *= 0.25
    return BetaPrior(math.exp(best[0]), math.exp(best[1]))


# --------------------------------------------------------------------------- K-run test


@dataclass(frozen=True, slots=True)
class ComponentTest:
    """One component of the K-run paired test."""

    component: Literal["total", "weighted_total", "stable_items", "recent_failures"]
    n_items: int  # items the component looks at
    statistic: float  # z of the total; count of failing items for the other two
    expected: float  # null mean of the count (0 for the total's z)
    p_value: float  # one-sided, for a drop
    method: Literal["normal", "exact", "poisson_binomial", "skew_corrected"]
    weight: float  # share of the run's test level (weighted Bonferroni)

    def describe(self) -> str:
        """A short human-readable account of this component's evidence."""
        if self.component == "total":
            return f"run total: z={self.statistic:.2f}, p={self.p_value:.3g} ({self.method})"
        if self.component == "weighted_total":
            return (
                f"run total, {self.n_items} items weighted by how much they vary: "
                f"z={self.statistic:.2f}, p={self.p_value:.3g}"
            )
        what = (
            "items that passed every baseline run and fail now"
            if self.component == "stable_items"
            else "items failing since the set-aside runs that fail again"
        )
        return (
            f"{what}: {self.statistic:.0f} of {self.n_items} vs {self.expected:.2f} expected, "
            f"p={self.p_value:.3g}"
        )


@dataclass(frozen=True, slots=True)
class PairedBinaryResult:
    """The K-run paired test of one run's binary scores."""

    n_items: int  # items compared (in the current run and in the reference runs)
    baseline_runs: int  # K
    reference_runs: int  # baseline runs the current run is compared with (K - set_aside)
    set_aside: int  # newest baseline runs set aside as suspect (an unflagged drop)
    set_aside_p: float  # p-value of the check that set them aside (1 when none)
    prior: BetaPrior
    components: tuple[ComponentTest, ...]
    p_value: float  # combined, one-sided for a drop (Bonferroni over `components`)
    p_improve: float  # one-sided for a rise of the run total
    driver: ComponentTest  # the component with the smallest p-value
    effect: float  # current minus reference mean score
    effect_ci: tuple[float, float]
    baseline_score: float  # reference mean score on the compared items
    current_score: float
    variance_source: Literal["model", "observed"]  # whose null decided the total's p-value
    broken: tuple[int, ...]  # item indices: passed every reference run, fail now
    fixed: tuple[int, ...]  # item indices: failed every reference run, pass now
    # the plain run total's noise, for the minimum detectable effect: the model's SD of
    # (current total - reference mean), in items, and the reference runs' observed spread
    total_sd_model: float = 0.0
    total_spread: Spread | None = None

    def detectable_effect(self, *, level: float, power: float) -> float:
        """Smallest drop of the run's score (score units) the run total flags at `level`
        with probability `power`, at the reference window's noise (`detectable_drop`)."""
        drop = detectable_drop(self.total_sd_model, self.total_spread, level=level, power=power)
        return drop / self.n_items


def _normal_p(x: float, sd: float) -> float:
    return float(special.ndtr(x / sd))


def _count_tail(q: FloatArray, observed: int) -> float:
    """P(#failures >= observed) for independent items failing with chances q."""
    if observed <= 0:
        return 1.0
    if q.size == 0 or observed > q.size:
        return 0.0
    uniq, inverse = np.unique(np.round(q, 12), return_inverse=True)
    counts = np.bincount(inverse, minlength=uniq.size)
    if observed > 256:
        pmf = poisson_binomial_pmf(uniq, counts)
        return _clip_p(float(pmf[observed:].sum()))
    # P(S <= observed - 1) by convolving each group's binomial pmf truncated to that support;
    # the complement is exact to ~1e-15 absolute, plenty for decisions at alpha / horizon
    support = np.arange(observed, dtype=float)
    below = np.zeros(observed)
    below[0] = 1.0
    for qg, ng in zip(uniq, counts, strict=True):
        if qg <= 0.0:
            continue
        if qg >= 1.0:
            below = np.concatenate([np.zeros(min(int(ng), observed)), below])[:observed]
            continue
        log_pmf = (
            special.gammaln(ng + 1.0)
            - special.gammaln(support + 1.0)
            - special.gammaln(np.maximum(ng - support, 0.0) + 1.0)
            + support * math.log(qg)
            + (ng - support) * math.log1p(-qg)
        )
        pmf_g = np.where(support <= ng, np.exp(log_pmf), 0.0)
        below = np.convolve(below, pmf_g)[:observed]
    return _clip_p(1.0 - float(below.sum()))


def _tail_check_factor(prior: BetaPrior, base_passes: IntArray, k_runs: int) -> float:
    """Calibrate the prior's tail on the baseline: observed / model failure rate after K - 1 passes.

    How often an item that passed K - 1 baseline runs failed the remaining one
    is observable in the baseline itself (items seen in all K runs). The
    stable-items null, a failure after K passes, is the prior's prediction
    scaled by observed / predicted at K - 1. The observed rate enters through
    an upper confidence bound (`TAIL_CHECK_LEVEL`) of its count, so noise
    errs on the conservative side. Above 1 the prior was too optimistic (day-
    level shocks, a thin tail); below 1 too pessimistic (a single Beta fitted
    to stable items plus a flaky bulk has too thick a tail near 1).
    """
    if base_passes.size == 0 or k_runs < 2:
        return 1.0
    hist = np.bincount(base_passes, minlength=k_runs + 1).astype(float)
    single = float(hist[k_runs - 1])  # items with exactly one failure
    single_ub = float(special.gammaincinv(single + 1.0, TAIL_CHECK_LEVEL))  # Poisson upper bound
    # items passing a given set of K - 1 runs: all K passes, or one failure in the remaining run
    pass_set = float(hist[k_runs]) + single_ub / k_runs
    model = float(prior.fail_streak_probability(np.array([k_runs - 1.0]), 1)[0])
    if pass_set <= 0.0 or model <= 0.0:
        return 1.0
    observed = (single_ub / k_runs) / pass_set
    return float(np.clip(observed / model, 0.05, 20.0))


def _recent_drop_p(prior: BetaPrior, passed: BoolArray, seen: BoolArray, j: int) -> float:
    """One-sided p-value that the newest j baseline runs score lower than the older ones.

    The same two components as the main test (total with the prior's item
    variances; count of items that passed every older run and failed all j
    newest ones), Bonferroni-combined. It only decides which baseline runs
    serve as the reference, so it is a screening check, not a verdict.
    """
    k_runs = passed.shape[0]
    split = k_runs - j
    o_n = seen[:split].sum(axis=0).astype(float)
    o_k = passed[:split].sum(axis=0).astype(float)
    r_n = seen[split:].sum(axis=0).astype(float)
    r_k = passed[split:].sum(axis=0).astype(float)
    sel = (o_n >= 1) & (r_n >= 1)
    if sel.sum() < MIN_ITEMS:
        return 1.0
    var = prior.item_variance(o_k[sel] + r_k[sel], o_n[sel] + r_n[sel])
    var_total = float((var * (1.0 / r_n[sel] + 1.0 / o_n[sel])).sum())
    diff = float((r_k[sel] / r_n[sel] - o_k[sel] / o_n[sel]).sum())
    p_total = _normal_p(diff + 0.5 / j, math.sqrt(max(var_total, 1e-12)))
    complete = seen.all(axis=0)
    if split >= MIN_SPREAD_RUNS and int(complete.sum()) >= MIN_ITEMS:
        # runs sharing noise: the older runs' own spread, as in the main test (t, split - 1 df)
        totals = passed[:, complete].sum(axis=1).astype(float)
        scale = float(totals[:split].std(ddof=1)) * math.sqrt(1.0 / j + 1.0 / split)
        gap = float(totals[split:].mean() - totals[:split].mean()) + 0.5 / j
        p_total = max(p_total, Spread(scale, split - 1).p_below(gap))
    stable = sel & (o_k == o_n) & (o_n >= 2) & (r_n == j)
    failed = int((stable & (r_k == 0)).sum())
    q = prior.fail_streak_probability(o_n[stable], j)
    p_stable = _count_tail(q, failed)
    return min(1.0, 2.0 * min(p_total, p_stable))


def _prepare(
    baseline: npt.ArrayLike, current: npt.ArrayLike
) -> tuple[BoolArray, BoolArray, BoolArray]:
    """Stack the runs (current last) into pass and seen masks; pick the comparable items."""
    base = np.atleast_2d(np.asarray(baseline, dtype=float))
    cur = np.asarray(current, dtype=float).ravel()
    k_runs = base.shape[0]
    if k_runs < 2:
        raise ValueError("paired_binary_test needs at least 2 baseline runs (use mcnemar_exact)")
    if cur.size != base.shape[1]:
        raise ValueError("current and baseline must have the same number of items")
    runs = np.vstack([base, cur[None, :]])
    seen = ~np.isnan(runs)
    passed = (np.nan_to_num(runs, nan=0.0) >= 0.5) & seen
    items = seen[k_runs] & seen[:k_runs].any(axis=0)
    if int(items.sum()) < MIN_ITEMS:
        raise InsufficientDataError(f"only {int(items.sum())} item(s) in common with the baseline")
    sub_seen, sub_pass = seen[:, items], passed[:, items]
    if not (sub_pass[sub_seen].any() and (~sub_pass[sub_seen]).any()):
        raise InsufficientDataError("no variation: every item has the same score in every run")
    return passed, seen, items


def _choose_set_aside(
    prior: BetaPrior, passed: BoolArray, seen: BoolArray, max_set_aside: int, alpha: float
) -> tuple[int, float]:
    """How many of the newest baseline runs to set aside (0..max_set_aside), and the check's p.

    Prefers setting aside fewer runs: one more run is set aside only when that
    makes the screening p-value `SET_ASIDE_PREFERENCE` times smaller, so one
    broken run does not drag a merely unlucky run before it along.
    """
    k_runs = passed.shape[0]
    best, best_p = 0, 1.0
    for j in range(1, min(max_set_aside, k_runs - 2) + 1):
        p_j = _recent_drop_p(prior, passed, seen, j)
        if p_j < alpha and p_j * (SET_ASIDE_PREFERENCE if best else 1.0) < best_p:
            best, best_p = j, p_j
    return best, best_p


@dataclass(frozen=True, slots=True)
class Spread:
    """The reference runs' own spread of one statistic, as a Student-t predictive null.

    `values` were the statistic's reference-run values (R of them); the current run's
    deviation from their mean then has variance s^2 (1 + 1/R) x `share`, and under
    exchangeable runs with normal totals (deviation / sd) is Student t with R - 1
    degrees of freedom, whatever the run-to-run noise. This is the check that holds
    when runs share noise the independent-items model cannot see
    (docs/decisions/0005-run-level-noise.md).
    """

    sd: float  # SD of (current - reference mean) seen in the reference runs
    df: int  # R - 1

    def p_below(self, deviation: float) -> float:
        """P(T <= deviation / sd): one-sided p-value for a drop of that size or more."""
        if self.sd <= 0.0:
            return 1.0 if deviation >= 0.0 else 0.0
        return _clip_p(float(special.stdtr(self.df, deviation / self.sd)))


def _spread(values: FloatArray, share: float) -> Spread | None:
    """The observed spread of the reference runs' `values`, scaled by `share`, or None.

    `share` scales the variance from the items seen in every reference run to all
    compared items. None with fewer than `MIN_SPREAD_RUNS` runs.
    """
    ref = values.size
    if ref < MIN_SPREAD_RUNS:
        return None
    var = float(values.var(ddof=1)) * share * (1.0 + 1.0 / ref)
    return Spread(math.sqrt(max(var, 0.0)), ref - 1)


def detectable_drop(
    sd_model: float,
    spread: Spread | None,
    *,
    level: float,
    power: float,
) -> float:
    """Smallest drop of a total (in its units) the test flags with probability `power`.

    The run's p-value is the larger of the model's (normal, SD `sd_model`) and the
    observed spread's (Student t); a drop is flagged at `level` once it passes both
    critical values, and it passes them with probability `power` when it exceeds the
    larger by z_power noise SDs (the larger of the two SDs):

        MDE = max(z_(1-level) sd_model, t_(1-level, R-1) sd_obs) + z_power max(sd_model, sd_obs)
    """
    if not 0.0 < level < 1.0 or not 0.0 < power < 1.0:
        raise ValueError("level and power must lie in (0, 1)")
    critical = float(special.ndtri(1.0 - level)) * sd_model
    sd = sd_model
    if spread is not None:
        critical = max(critical, float(special.stdtrit(spread.df, 1.0 - level)) * spread.sd)
        sd = max(sd, spread.sd)
    return critical + float(special.ndtri(power)) * sd


@dataclass(frozen=True, slots=True)
class _Total:
    test: ComponentTest
    p_improve: float
    diff: float  # current total minus the reference mean total (items)
    sd: float  # the larger of the model's and the observed spread's SD
    source: Literal["model", "observed"]  # whose p-value was the larger (decided)
    sd_model: float = 0.0
    spread: Spread | None = None


def _total_component(
    prior: BetaPrior, passed: BoolArray, seen: BoolArray, sel: BoolArray, ref: int
) -> _Total:
    """Current run total vs the reference runs' mean, under the Poisson-binomial null."""
    k_runs = passed.shape[0] - 1
    now_pass = passed[k_runs, sel]
    ref_n = seen[:ref, sel].sum(axis=0).astype(float)
    ref_k = passed[:ref, sel].sum(axis=0).astype(float)
    n_sel = int(sel.sum())
    diff = float(now_pass.sum() - (ref_k / ref_n).sum())
    # Var(current total - reference mean) = sum v_i (1 + 1/n_i), v_i the item's Bernoulli variance
    item_var = prior.item_variance(ref_k, ref_n)
    # Items that passed (or failed) every reference run get the prior's tail, calibrated on
    # the reference as the stable-items null is: with few runs, flaky items hide among them.
    complete = seen[:ref, sel].all(axis=0)
    for ends, k_of, tail_prior in (
        (ref_k == ref_n, ref_k, prior),
        (ref_k == 0, ref_n - ref_k, BetaPrior(prior.b, prior.a)),
    ):
        if ref >= 2 and ends.any():
            factor = _tail_check_factor(tail_prior, k_of[complete].astype(np.int64), ref)
            item_var = np.where(ends & (ref_n >= 2), np.minimum(item_var * factor, 0.25), item_var)
    var_model = float((item_var * (1.0 + 1.0 / ref_n)).sum())
    spread = None
    n_complete = int(complete.sum())
    if n_complete >= MIN_ITEMS:
        totals = passed[:ref, sel][:, complete].sum(axis=1).astype(float)
        spread = _spread(totals, n_sel / n_complete)
    sd_model = math.sqrt(max(var_model, 1e-12))
    method: Literal["normal", "exact"]
    if var_model < EXACT_BELOW_VARIANCE:
        # small variance (mostly deterministic items): exact posterior-predictive Poisson-binomial
        pred = prior.pass_probability(ref_k, ref_n)
        total_now = int(now_pass.sum())
        uniq, inv = np.unique(np.round(pred, 12), return_inverse=True)
        pmf = poisson_binomial_pmf(uniq, np.bincount(inv, minlength=uniq.size))
        p_drop = _clip_p(float(pmf[: total_now + 1].sum()))
        p_improve = _clip_p(float(pmf[total_now:].sum()))
        method = "exact"
    else:
        p_drop = _normal_p(diff + 0.5, sd_model)  # continuity correction: totals are integers
        p_improve = _clip_p(1.0 - _normal_p(diff - 0.5, sd_model))
        method = "normal"
    # the run's p-value is the larger of the model's and the observed spread's: valid when
    # either the items are independent or the runs are exchangeable with normal totals
    source: Literal["model", "observed"] = "model"
    sd = sd_model
    if spread is not None:
        p_obs = spread.p_below(diff + 0.5)
        p_obs_rise = spread.p_below(-(diff - 0.5))
        if p_obs > p_drop:
            p_drop, source, method = p_obs, "observed", "normal"
        p_improve = max(p_improve, p_obs_rise)
        sd = max(sd, spread.sd)
    test = ComponentTest("total", n_sel, diff / sd, 0.0, p_drop, method, TOTAL_WEIGHT)
    return _Total(test, p_improve, diff, sd, source, sd_model, spread)


def _weighted_component(
    passed: BoolArray, seen: BoolArray, sel: BoolArray, ref: int
) -> _Total | None:
    """The run total with items weighted by how much they vary (`crossfit`), if it applies.

    It replaces the plain total when enough varying items carry weight for a
    normal approximation (null variance >= `EXACT_BELOW_VARIANCE`); below
    that the plain total's exact Poisson-binomial is the better test. The
    observed-spread null is the plain total's, on the weighted reference totals.
    """
    k_runs = passed.shape[0] - 1
    ref_pass, ref_seen = passed[:ref, sel], seen[:ref, sel]
    wt = weighted_total(ref_pass, ref_seen, passed[k_runs, sel])
    if wt is None or wt.variance < EXACT_BELOW_VARIANCE:
        return None
    spread = None
    complete = ref_seen.all(axis=0)
    w_complete = wt.weights[complete]
    if int(complete.sum()) >= MIN_ITEMS and (w_complete > 0).any():
        totals = ref_pass[:, complete].astype(float) @ w_complete
        spread = _spread(totals, float((wt.weights**2).sum() / (w_complete**2).sum()))
    sd_model = math.sqrt(wt.variance)
    sd, p_drop, p_rise = sd_model, wt.p_drop, wt.p_rise
    source: Literal["model", "observed"] = "model"
    if spread is not None:
        # the larger p-value of the two nulls, as for the plain total
        p_obs = spread.p_below(wt.statistic)
        if p_obs > p_drop:
            p_drop, source = p_obs, "observed"
        p_rise = max(p_rise, spread.p_below(-wt.statistic))
        sd = max(sd, spread.sd)
    n_weighted = int((wt.weights > 0).sum())
    test = ComponentTest(
        "weighted_total",
        n_weighted,
        wt.statistic / sd,
        0.0,
        _clip_p(p_drop),
        "skew_corrected" if source == "model" else "normal",
        TOTAL_WEIGHT,
    )
    return _Total(test, _clip_p(p_rise), wt.statistic, sd, source, sd_model, spread)


def _stable_component(
    prior: BetaPrior, passed: BoolArray, seen: BoolArray, sel: BoolArray, weight: float
) -> ComponentTest:
    """Items that passed every baseline run (at least 2) and fail now."""
    k_runs = passed.shape[0] - 1
    base_n = seen[:k_runs].sum(axis=0)
    base_k = passed[:k_runs].sum(axis=0)
    complete_base = seen[:k_runs].all(axis=0)
    factor = _tail_check_factor(prior, base_k[complete_base].astype(np.int64), k_runs)
    stable = sel & (base_k == base_n) & (base_n >= 2)
    q = np.minimum(prior.fail_streak_probability(base_n[stable], 1) * factor, 1.0)
    broken = int((stable & ~passed[k_runs]).sum())
    p_value = _count_tail(q, broken)
    # The same count, seen in the baseline itself: for each baseline run, the items that
    # passed every other run and failed this one. Runs that fail many items together (an
    # outage of part of the benchmark) make these counts vary far more than the
    # Poisson-binomial allows. Their dispersion over the model's, phi (when above 1), then
    # shrinks the excess over the null mean by sqrt(phi) before the exact tail is read, as
    # a quasi-Poisson model does; a Student-t on a handful of small counts would cost the
    # count its power where it matters most, on quiet endpoints.
    if k_runs >= MIN_SPREAD_RUNS and complete_base.any():
        sub = passed[:k_runs][:, complete_base]
        loo = ((sub.sum(axis=0) == k_runs - 1)[None, :] & ~sub).sum(axis=1).astype(float)
        var_model = float((q * (1.0 - q)).sum())
        share = max(int(stable.sum()), 1) / max(int(sub.all(axis=0).sum()), 1)
        phi = float(loo.var(ddof=1)) * share / var_model if var_model > 0 else 1.0
        # its 95% lower bound: with K - 1 degrees of freedom the raw ratio exceeds 1 about
        # half the time on quiet endpoints, and each excess would cost power for nothing;
        # a block failing on some runs gives a ratio of 10-100, which the bound keeps
        phi *= (k_runs - 1) / float(stats.chi2.ppf(DISPERSION_LEVEL, k_runs - 1))
        if phi > 1.0:
            mean = float(q.sum())
            shrunk = mean + (broken - mean) / math.sqrt(phi)
            p_value = max(p_value, _count_tail(q, math.ceil(shrunk)))
    return ComponentTest(
        "stable_items",
        int(stable.sum()),
        float(broken),
        float(q.sum()),
        p_value,
        "poisson_binomial",
        weight,
    )


def _recent_component(
    prior: BetaPrior, passed: BoolArray, seen: BoolArray, sel: BoolArray, *, ref: int, weight: float
) -> ComponentTest:
    """Items that passed every reference run, failed every set-aside run, and fail now.

    The null chance of failing again is the item's posterior predictive given
    its whole baseline record (set-aside failures included), so the test is
    conditional on everything already seen.
    """
    k_runs = passed.shape[0] - 1
    ref_n = seen[:ref].sum(axis=0)
    ref_k = passed[:ref].sum(axis=0)
    new_n = seen[ref:k_runs].sum(axis=0)
    new_k = passed[ref:k_runs].sum(axis=0)
    recent = sel & (ref_k == ref_n) & (ref_n >= 2) & (new_n == k_runs - ref) & (new_k == 0)
    base_n = seen[:k_runs].sum(axis=0)[recent]
    base_k = passed[:k_runs].sum(axis=0)[recent]
    q = 1.0 - prior.pass_probability(base_k, base_n)
    again = int((recent & ~passed[k_runs]).sum())
    return ComponentTest(
        "recent_failures",
        int(recent.sum()),
        float(again),
        float(q.sum()),
        _count_tail(q, again),
        "poisson_binomial",
        weight,
    )


def paired_binary_test(
    baseline: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    max_set_aside: int = 2,
    set_aside_alpha: float = 0.05,
    confidence: float = 0.95,
) -> PairedBinaryResult:
    """Test whether the current run's binary scores dropped against K >= 2 baseline runs.

    `baseline` is a (K, N) array of 0/1 scores, oldest run first, NaN where an
    item is missing from a run; `current` holds the N items' scores in the new
    run (NaN for errored items). Scores >= 0.5 count as a pass. Items missing
    from the current run or from every reference run are left out. Up to
    `max_set_aside` newest baseline runs are set aside when the screening
    check says they are lower than the older ones at `set_aside_alpha` (0
    disables it). Raises `InsufficientDataError` with fewer than `MIN_ITEMS`
    common items or when no score varies anywhere. See the module docstring.
    """
    passed, seen, items = _prepare(baseline, current)
    k_runs = passed.shape[0] - 1
    base_n = seen[:k_runs].sum(axis=0).astype(float)
    base_k = passed[:k_runs].sum(axis=0).astype(float)
    prior = fit_beta_prior(base_k, base_n)
    set_aside, set_aside_p = _choose_set_aside(
        prior, passed[:k_runs][:, items], seen[:k_runs][:, items], max_set_aside, set_aside_alpha
    )
    ref = k_runs - set_aside
    ref_n = seen[:ref].sum(axis=0)
    ref_k = passed[:ref].sum(axis=0)
    sel = items & (ref_n >= 1)
    n_sel = int(sel.sum())
    if n_sel < MIN_ITEMS:
        raise InsufficientDataError(f"only {n_sel} item(s) in common with the reference runs")

    total = _total_component(prior, passed, seen, sel, ref)
    # the test of the total: weighted by how much items vary when it applies
    drop = _weighted_component(passed, seen, sel, ref) or total
    counts_weight = 1.0 - TOTAL_WEIGHT
    components: tuple[ComponentTest, ...]
    if set_aside:
        components = (
            drop.test,
            _stable_component(prior, passed, seen, sel, counts_weight * STABLE_SHARE_SET_ASIDE),
            _recent_component(
                prior,
                passed,
                seen,
                sel,
                ref=ref,
                weight=counts_weight * (1.0 - STABLE_SHARE_SET_ASIDE),
            ),
        )
    else:
        components = (drop.test, _stable_component(prior, passed, seen, sel, counts_weight))
    # weighted Bonferroni: component c rejects at level weight_c * alpha
    driver = min(components, key=lambda c: c.p_value / c.weight)
    effect = total.diff / n_sel
    half = _z_quantile(confidence) * total.sd / n_sel
    now_pass = passed[k_runs]
    always = sel & (ref_k == ref_n)
    never = sel & (ref_k == 0)
    return PairedBinaryResult(
        n_items=n_sel,
        baseline_runs=k_runs,
        reference_runs=ref,
        set_aside=set_aside,
        set_aside_p=set_aside_p,
        prior=prior,
        components=components,
        p_value=_clip_p(min(1.0, driver.p_value / driver.weight)),
        p_improve=drop.p_improve,
        driver=driver,
        effect=effect,
        effect_ci=(effect - half, effect + half),
        baseline_score=float((ref_k[sel] / ref_n[sel]).mean()),
        current_score=float(now_pass[sel].mean()),
        variance_source=drop.source,
        broken=tuple(int(i) for i in np.flatnonzero(always & ~now_pass)),
        fixed=tuple(int(i) for i in np.flatnonzero(never & now_pass)),
        total_sd_model=total.sd_model,
        total_spread=total.spread,
    )


# --------------------------------------------------------------------------- continuous


def wilcoxon_signed_rank(
    differences: npt.ArrayLike, *, alternative: Alternative = "two-sided"
) -> tuple[float, float]:
    """Wilcoxon signed-rank test of paired differences; returns (W+, p-value).

    Zero differences are dropped first (Wilcoxon's convention, SciPy's
    default); the exact null distribution is used for small samples without
    ties, the normal approximation otherwise (SciPy's `method="auto"`).
    Raises `InsufficientDataError` when fewer than `MIN_ITEMS` non-zero
    differences remain.
    """
    d = np.asarray(differences, dtype=float).ravel()
    d = d[~np.isnan(d)]
    d = d[d != 0.0]
    if d.size < MIN_ITEMS:
        raise InsufficientDataError("fewer than 2 non-zero paired differences")
    res = stats.wilcoxon(d, alternative=alternative)
    return float(res.statistic), _clip_p(float(res.pvalue))


def paired_bootstrap_ci(
    differences: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    resamples: int = 2000,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean paired difference (items resampled with replacement).

    Deterministic for a given generator state. Assumes items are independent
    and the benchmark is a sample from the population of items of interest.
    """
    d = np.asarray(differences, dtype=float).ravel()
    # sorted, so the CI depends on the differences, never on the order items came in
    d = np.sort(d[~np.isnan(d)])
    if d.size == 0:
        raise InsufficientDataError("no paired differences")
    if resamples < 1:
        raise ValueError("resamples must be >= 1")
    _z_quantile(confidence)  # validates the level
    means = bootstrap_replicates(
        d.size, lambda idx: d[idx].mean(axis=1), rng=rng, resamples=resamples
    )
    return percentile_interval(means, confidence)


@dataclass(frozen=True, slots=True)
class PairedContinuousResult:
    """Wilcoxon signed-rank test and bootstrap CI of one run's continuous scores."""

    n_items: int
    baseline_runs: int
    statistic: float  # W+: sum of ranks of positive differences
    p_value: float  # one-sided, for a drop
    p_improve: float  # one-sided, for a rise
    effect: float  # mean of current minus the item's baseline mean
    effect_ci: tuple[float, float]
    baseline_score: float
    current_score: float


def paired_continuous_test(
    baseline: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    resamples: int = 2000,
) -> PairedContinuousResult:
    """Compare continuous per-item scores with the items' baseline means.

    `baseline` is (K, N) with NaN for missing scores, `current` has N scores.
    Raises `InsufficientDataError` for fewer than `MIN_ITEMS` common items or
    when every difference is zero.
    """
    base = np.atleast_2d(np.asarray(baseline, dtype=float))
    cur = np.asarray(current, dtype=float).ravel()
    if base.shape[1] != cur.size:
        raise ValueError("current and baseline must have the same number of items")
    seen = ~np.isnan(base)
    items = ~np.isnan(cur) & seen.any(axis=0)
    n_items = int(items.sum())
    if n_items < MIN_ITEMS:
        raise InsufficientDataError(f"only {n_items} item(s) in common with the baseline")
    base_mean = np.where(seen, base, 0.0).sum(axis=0)[items] / seen.sum(axis=0)[items]
    d = cur[items] - base_mean
    if not np.any(d != 0.0):
        raise InsufficientDataError("every item scored exactly its baseline mean")
    stat, p_less = wilcoxon_signed_rank(d, alternative="less")
    _, p_greater = wilcoxon_signed_rank(d, alternative="greater")
    # The mean difference as well: a few items that drop a lot barely move the ranks.
    # Its null is the larger of two, as for binary totals: the items' own noise (the
    # paired mean's SE) and the reference runs' spread of mean scores (Student t), so runs
    # that share noise do not read as a drop. Bonferroni with the Wilcoxon test.
    mean_d = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(d.size)
    p_mean_less = _normal_p(mean_d, se) if se > 0 else float(mean_d >= 0.0)
    p_mean_greater = _normal_p(-mean_d, se) if se > 0 else float(mean_d <= 0.0)
    complete = items & seen.all(axis=0)
    if base.shape[0] >= MIN_SPREAD_RUNS and int(complete.sum()) >= MIN_ITEMS:
        run_means = base[:, complete].mean(axis=1)
        k_runs = base.shape[0]
        spread = Spread(float(run_means.std(ddof=1)) * math.sqrt(1.0 + 1.0 / k_runs), k_runs - 1)
        gap = float(cur[complete].mean() - run_means.mean())
        p_mean_less = max(p_mean_less, spread.p_below(gap))
        p_mean_greater = max(p_mean_greater, spread.p_below(-gap))
    p_less = min(1.0, 2.0 * min(p_less, p_mean_less))
    p_greater = min(1.0, 2.0 * min(p_greater, p_mean_greater))
    ci = paired_bootstrap_ci(d, rng=rng, confidence=confidence, resamples=resamples)
    return PairedContinuousResult(
        n_items=n_items,
        baseline_runs=base.shape[0],
        statistic=stat,
        p_value=p_less,
        p_improve=p_greater,
        effect=float(d.mean()),
        effect_ci=ci,
        baseline_score=float(base_mean.mean()),
        current_score=float(cur[items].mean()),
    )
