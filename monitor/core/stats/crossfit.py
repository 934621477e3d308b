"""The run total with items weighted by how much they vary, cross-fitted.

Why: when flaky items lose a little pass probability each, only the run total
sees it, and most of the total's noise comes from items that carry no signal
(stable items failing by chance). Weighting each item by its Bernoulli
variance p_i (1 - p_i) (relative to a coin flip's 1/4) keeps the flaky items,
where such a decline lives, and mutes the rest: on the detection benchmark's
population the per-run z of a 2-point flaky decline rises from ~2.85 to
~3.25. Stable items that break are the stable-items count's job.

Choosing weights from the same runs that give the reference mean would bias
the statistic (an item picked for having looked flaky in the reference has
a reference mean pulled away from its true rate), so it is cross-fitted,
leaving one reference run out at a time:

    S = sum_i 1/R sum_r w_(-r),i (x_i - x_r,i)

where x_i is the current run's score, x_r,i the item's score in reference
run r and w_(-r),i = min(1, 8 E[p_i (1 - p_i) | the other R - 1 runs]).
Each weight is independent of the run it multiplies, so E[S] = 0 exactly
when nothing changed, whatever the rates; and the weights see R - 1 runs
(two folds of R / 2 lost 2-6% of z to noisier weights, 15 and 5 runs). Given
an item's pass count k, the k runs it passed carry w(k - 1) and the others
w(k), so each item's term is a function of (k, x_i) only.

S is a sum of independent per-item terms whose distribution depends only on
the item's p_i. Its variance and third cumulant are computed exactly for each
p on a grid, then averaged over the item's posterior under a nonparametric
prior fitted across items (Kiefer-Wolfowitz NPMLE by EM on the grid). A
single Beta prior cannot be used here: its U shape pulls mid-range rates
towards 0 and 1 and under-states the flaky items' variance by ~5%, which is
the difference between a calibrated and an anti-conservative test at 1e-5.
The one-sided p-value has a first-order Cornish-Fisher correction for the
skewness that mostly-passing flaky items give the sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import special, stats

__all__ = ["GridPrior", "WeightedTotal", "fit_grid_prior", "weighted_total"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Support of the nonparametric prior of pass rates (0 and 1 included: most items sit there).
GRID = np.linspace(0.0, 1.0, 101)
#: EM iterations for the prior. Mass keeps drifting between neighbouring grid points after
#: that, but the summed posterior variances change by < 0.2% from 200 to 2,000 iterations.
EM_ITERATIONS = 200
#: Weight = min(1, this x the item's posterior Bernoulli variance): full weight from p(1-p) = 1/8.
FULL_WEIGHT_FACTOR = 8.0
#: Below this null variance (weighted items^2) nothing varies enough to test.
MIN_VARIANCE = 1e-6
#: The skewness correction is capped here: beyond it the sum is too lopsided for it.
MAX_SKEW = 0.5


@lru_cache(maxsize=256)
def _binomial_table(trials: int) -> FloatArray:
    """P(k passes of `trials` | p) for k = 0..trials (rows) and every grid rate (columns)."""
    k = np.arange(trials + 1)
    table = stats.binom.pmf(k[:, None], trials, GRID[None, :])
    table.setflags(write=False)  # shared through the cache
    return np.asarray(table, dtype=float)


@dataclass(frozen=True, slots=True)
class GridPrior:
    """A discrete prior of per-item pass rates: `mass[j]` at `GRID[j]`."""

    mass: FloatArray

    def posterior(self, trials: int) -> FloatArray:
        """Posterior masses on the grid after k passes of `trials` runs (row k = 0..trials)."""
        like = _binomial_table(trials) * self.mass[None, :]
        return np.asarray(like / np.maximum(like.sum(axis=1, keepdims=True), 1e-300), dtype=float)

    def item_variance(self, trials: int) -> FloatArray:
        """Posterior mean of p (1 - p) after k = 0..trials passes of `trials`."""
        return np.asarray(self.posterior(trials) @ (GRID * (1.0 - GRID)), dtype=float)


def fit_grid_prior(passes: npt.ArrayLike, trials: npt.ArrayLike) -> GridPrior:
    """Nonparametric maximum-likelihood prior of pass rates on `GRID` (EM).

    Items are grouped by their (passes, trials) record, so the cost depends on
    the number of distinct records (at most ~K^2 / 2), not on the item count.
    Items with 0 trials are ignored; with none left the prior is uniform.
    """
    k = np.rint(np.asarray(passes, dtype=float).ravel()).astype(np.int64)
    n = np.rint(np.asarray(trials, dtype=float).ravel()).astype(np.int64)
    keep = n > 0
    mass = np.full(GRID.size, 1.0 / GRID.size)
    if not keep.any():
        return GridPrior(mass)
    k, n = k[keep], n[keep]
    if (k < 0).any() or (k > n).any():
        raise ValueError("passes must lie between 0 and trials")
    base = int(n.max()) + 1
    records, counts = np.unique(n * base + k, return_counts=True)
    like = np.stack([_binomial_table(int(r // base))[int(r % base)] for r in records])
    share = counts / counts.sum()
    for _ in range(EM_ITERATIONS):
        joint = like * mass
        joint /= np.maximum(joint.sum(axis=1, keepdims=True), 1e-300)
        mass = share @ joint
    return GridPrior(np.asarray(mass, dtype=float))


@dataclass(frozen=True, slots=True)
class WeightedTotal:
    """The cross-fitted weighted total of one run against its reference runs."""

    statistic: float  # S, in weighted items; negative = the run scored lower
    variance: float  # null variance of S (model)
    skewness: float  # null standardized third cumulant of S (capped at +-MAX_SKEW)
    z: float  # S / sd, before the skewness correction
    p_drop: float  # one-sided p-value for a drop, skewness-corrected
    p_rise: float  # one-sided p-value for a rise, skewness-corrected
    weights: FloatArray  # per item (0 when unusable): how much a pass now adds to S


def _weights(prior: GridPrior, runs: int) -> FloatArray:
    """w(j) for j = 0..runs passes out of `runs` runs: min(1, 8 E[p (1 - p) | record]).

    Items whose rate is likely between ~0.15 and ~0.85 count fully; nearly
    stable items fade out with their variance.
    """
    return np.minimum(FULL_WEIGHT_FACTOR * prior.item_variance(runs), 1.0)


def _terms(prior: GridPrior, runs: int) -> FloatArray:
    """term[k, x]: one item's term after k passes in `runs` reference runs and x now.

    Leave-one-run-out: the term is 1/R sum_r w_(-r) (x - x_r), where w_(-r) is
    the weight from the other R - 1 runs. Given k, the k runs it passed have
    w(k - 1), the others w(k), so the term depends on (k, x) only.
    """
    w = _weights(prior, runs - 1)
    k = np.arange(runs + 1)
    w_passed = np.where(k >= 1, w[np.maximum(k - 1, 0)], 0.0)  # runs the item passed
    w_failed = np.where(k <= runs - 1, w[np.minimum(k, runs - 1)], 0.0)
    on_pass = (runs - k) * w_failed / runs  # x = 1: only failed runs differ
    on_fail = -k * w_passed / runs  # x = 0: only passed runs differ
    return np.stack([on_fail, on_pass], axis=1)


def _moments(runs: int, terms: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Null variance and third central moment of one item's term, per grid rate."""
    pk = _binomial_table(runs).T  # (grid, runs + 1)
    prob = np.stack([pk * (1.0 - GRID[:, None]), pk * GRID[:, None]], axis=2)
    m1 = (prob * terms).sum(axis=(1, 2))
    m2 = (prob * terms**2).sum(axis=(1, 2))
    m3 = (prob * terms**3).sum(axis=(1, 2))
    return m2 - m1**2, m3 - 3.0 * m1 * m2 + 2.0 * m1**3


def _skew_corrected(z: float, skew: float) -> tuple[float, float]:
    """One-sided p-values (drop, rise) with a first-order Cornish-Fisher correction.

    The sum's q-quantile is ~ z_q + skew / 6 (z_q^2 - 1), so an observed
    standardized value z sits at z_q ~ z - skew / 6 (z^2 - 1).
    """
    shift = skew / 6.0 * (z * z - 1.0)
    z_q = z - shift
    return float(special.ndtr(z_q)), float(special.ndtr(-z_q))


def weighted_total(passed: BoolArray, seen: BoolArray, current: BoolArray) -> WeightedTotal | None:
    """The leave-one-run-out weighted total of `current` against reference runs `passed`/`seen`.

    `passed` and `seen` are (R, N) masks of the reference runs, `current` the
    N items' passes in the new run (every item seen). Items seen in fewer than
    2 reference runs get weight 0. Returns None when nothing varies (null
    variance below `MIN_VARIANCE`).
    """
    n = seen.sum(axis=0)
    k = (passed & seen).sum(axis=0)
    usable = n >= 2
    if not usable.any():
        return None
    prior = fit_grid_prior(k, n)
    x = current.astype(np.int64)
    stat = var = third = 0.0
    weights = np.zeros(passed.shape[1])
    # items missing from some runs have shorter records: one table per record length
    for runs in np.unique(n[usable]):
        group = usable & (n == runs)
        terms = _terms(prior, int(runs))
        stat += float(terms[k[group], x[group]].sum())
        weights[group] = (terms[:, 1] - terms[:, 0])[k[group]]  # what a pass now adds
        var_p, third_p = _moments(int(runs), terms)
        # posterior-mean moments per record, then summed over the group's items
        counts = np.bincount(k[group], minlength=int(runs) + 1)
        post = prior.posterior(int(runs))
        var += float(counts @ (post @ var_p))
        third += float(counts @ (post @ third_p))
    if var < MIN_VARIANCE:
        return None
    sd = math.sqrt(var)
    skew = float(np.clip(third / var**1.5, -MAX_SKEW, MAX_SKEW))
    z = stat / sd
    p_drop, p_rise = _skew_corrected(z, skew)
    return WeightedTotal(stat, var, skew, z, p_drop, p_rise, weights)
