"""Distribution drift of operational and output signals, run vs baseline.

Unpaired by nature: latencies or output lengths of one run are compared with
those pooled over the baseline runs, as two samples.

Numeric signals (`compare_distributions`):

* Kolmogorov-Smirnov two-sample test: largest gap between the two empirical
  CDFs; sensitive to shifts near the median. Exact for small samples,
  asymptotic otherwise (SciPy's `method="auto"`).
* Anderson-Darling k-sample test (midrank variant, valid with ties): weights
  the tails more than KS, where latency regressions tend to show first.
  SciPy interpolates its p-value from a table and caps it to [0.001, 0.25];
  `ad_p_capped` says when the cap applied.
  Both assume independent observations within each sample; latencies of one
  run share load conditions, so treat their p-values as screening evidence and
  rely on the effect sizes for "how much".
* Effect sizes: PSI and Jensen-Shannon distance on baseline-quantile bins,
  and the Wasserstein (earth mover's) distance, also divided by the baseline's
  robust scale so one threshold fits seconds and token counts alike.

Categorical signals (`compare_categories`, e.g. predicted labels):

* Chi-square test of homogeneity on the 2 x C table. The test needs expected
  counts of about 5 or more per cell, so sparse categories are merged, rarest
  first, into one "(other)" cell; if only a sparse 2 x 2 table remains,
  Fisher's exact test is used instead.
* PSI and Jensen-Shannon distance on the unmerged category shares.

PSI = sum (c_i - b_i) ln(c_i / b_i) over bins, shares floored at `PSI_FLOOR`
so empty bins stay finite. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate,
> 0.25 large. JS distance is the square root of the JS divergence (base 2),
in [0, 1].
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.spatial import distance

from monitor.core.stats.paired import InsufficientDataError

__all__ = [
    "OTHER",
    "PSI_FLOOR",
    "CategoricalDrift",
    "DistributionDrift",
    "compare_categories",
    "compare_distributions",
    "js_distance",
    "psi",
]

#: Share floor that keeps PSI finite for empty bins.
PSI_FLOOR = 1e-4
#: Name of the cell that collects merged sparse categories.
OTHER = "(other)"


def _shares(counts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    if total <= 0:
        raise InsufficientDataError("no observations")
    return np.asarray(c / total, dtype=float)


def psi(baseline_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Population stability index of two binned distributions (shares floored at PSI_FLOOR)."""
    b = np.maximum(_shares(baseline_counts), PSI_FLOOR)
    c = np.maximum(_shares(current_counts), PSI_FLOOR)
    return float(np.sum((c - b) * np.log(c / b)))


def js_distance(baseline_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two binned distributions."""
    b = _shares(baseline_counts)
    c = _shares(current_counts)
    return float(min(max(distance.jensenshannon(b, c, base=2.0), 0.0), 1.0))


def _finite(values: Sequence[float] | npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=float).ravel()
    return np.asarray(arr[np.isfinite(arr)], dtype=float)


def _robust_scale(x: npt.NDArray[np.float64]) -> float:
    q75, q25 = np.percentile(x, [75, 25])
    for scale in ((q75 - q25) / 1.349, float(np.std(x, ddof=1)) if x.size > 1 else 0.0):
        if scale > 0.0:
            return float(scale)
    return 0.0


@dataclass(frozen=True, slots=True)
class DistributionDrift:
    """Two-sample comparison of a numeric signal (latency, output length, ...)."""

    n_baseline: int
    n_current: int
    ks_statistic: float
    ks_p: float
    ad_statistic: float
    ad_p: float
    ad_p_capped: bool  # SciPy's table capped the AD p-value (true value outside [0.001, 0.25])
    p_value: float  # Bonferroni of KS and AD: min(1, 2 min(ks_p, ad_p))
    wasserstein: float  # in the signal's units
    wasserstein_scaled: float  # divided by the baseline's robust scale (IQR / 1.349)
    psi: float
    js_distance: float
    bin_edges: tuple[float, ...]  # inner edges of the baseline-quantile bins
    baseline_median: float
    current_median: float


def compare_distributions(
    baseline: Sequence[float] | npt.ArrayLike,
    current: Sequence[float] | npt.ArrayLike,
    *,
    bins: int = 10,
) -> DistributionDrift:
    """Compare a numeric signal of the current run with its baseline sample.

    NaN and infinite values are dropped. Raises `InsufficientDataError` with
    fewer than 2 values on either side or when every value is identical.
    """
    b = _finite(baseline)
    c = _finite(current)
    if b.size < 2 or c.size < 2:
        raise InsufficientDataError("need at least 2 finite values on each side")
    if np.all(b == b[0]) and np.all(c == b[0]):
        raise InsufficientDataError("no variation: every value is identical")
    if bins < 2:
        raise ValueError("bins must be >= 2")
    with warnings.catch_warnings():
        # with ties the exact KS distribution can fail; SciPy then warns and uses the
        # asymptotic one, which is what we want
        warnings.filterwarnings("ignore", message="ks_2samp: Exact", category=RuntimeWarning)
        ks = stats.ks_2samp(b, c)
    with warnings.catch_warnings():
        # SciPy warns whenever its interpolation table caps or floors the
        # p-value; that is reported through `ad_p_capped` instead.
        warnings.filterwarnings("ignore", message="p-value (capped|floored)", category=UserWarning)
        ad = stats.anderson_ksamp([b, c], variant="midrank")
    ad_p = float(ad.pvalue)
    capped = ad_p <= 0.001 + 1e-12 or ad_p >= 0.25 - 1e-12
    inner = np.unique(np.quantile(b, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    b_counts = np.bincount(np.searchsorted(inner, b, side="right"), minlength=inner.size + 1)
    c_counts = np.bincount(np.searchsorted(inner, c, side="right"), minlength=inner.size + 1)
    w = float(stats.wasserstein_distance(b, c))
    scale = _robust_scale(b)
    w_scaled = w / scale if scale > 0.0 else (0.0 if w == 0.0 else math.inf)
    ks_p = min(max(float(ks.pvalue), 0.0), 1.0)
    return DistributionDrift(
        n_baseline=int(b.size),
        n_current=int(c.size),
        ks_statistic=float(ks.statistic),
        ks_p=ks_p,
        ad_statistic=float(ad.statistic),
        ad_p=min(max(ad_p, 0.0), 1.0),
        ad_p_capped=capped,
        p_value=min(1.0, 2.0 * min(ks_p, ad_p)),
        wasserstein=w,
        wasserstein_scaled=w_scaled,
        psi=psi(b_counts, c_counts),
        js_distance=js_distance(b_counts, c_counts),
        bin_edges=tuple(float(x) for x in inner),
        baseline_median=float(np.median(b)),
        current_median=float(np.median(c)),
    )


@dataclass(frozen=True, slots=True)
class CategoricalDrift:
    """Comparison of a categorical signal's counts (e.g. predicted labels)."""

    n_baseline: int
    n_current: int
    categories: tuple[str, ...]  # all categories seen, sorted
    test: Literal["chi2", "fisher_exact", "none"]
    statistic: float  # chi-square, Fisher's odds ratio, or 0 when untested
    dof: int
    p_value: float
    merged: tuple[str, ...]  # sparse categories pooled into OTHER for the test
    psi: float
    js_distance: float


def _merge_sparse(
    names: list[str], table: npt.NDArray[np.float64], min_expected: float
) -> tuple[npt.NDArray[np.float64], list[str]]:
    """Pool the rarest categories into one cell until every expected count >= min_expected.

    Returns the reduced table (the pooled cell last, if any) and the pooled names.
    """
    merged: list[str] = []
    cols = [table[:, x].copy() for x in range(table.shape[1])]
    labels = list(names)
    pooled: npt.NDArray[np.float64] | None = None
    while len(cols) + (pooled is not None) > 2:
        current = np.column_stack(cols + ([pooled] if pooled is not None else []))
        expected = current.sum(axis=1, keepdims=True) * current.sum(axis=0) / current.sum()
        if expected.min() >= min_expected:
            break
        rarest = min(range(len(cols)), key=lambda x: (float(cols[x].sum()), labels[x]))
        merged.append(labels.pop(rarest))
        column = cols.pop(rarest)
        pooled = column if pooled is None else pooled + column
    out = np.column_stack(cols + ([pooled] if pooled is not None else []))
    return out, merged


def compare_categories(
    baseline_counts: Mapping[str, int],
    current_counts: Mapping[str, int],
    *,
    min_expected: float = 5.0,
) -> CategoricalDrift:
    """Compare the category counts of the current run with the baseline's.

    Categories absent on one side count 0 there. Raises
    `InsufficientDataError` when either side has no observations.
    """
    cats = sorted(set(baseline_counts) | set(current_counts))
    b = np.array([max(int(baseline_counts.get(k, 0)), 0) for k in cats], dtype=float)
    c = np.array([max(int(current_counts.get(k, 0)), 0) for k in cats], dtype=float)
    if b.sum() <= 0 or c.sum() <= 0:
        raise InsufficientDataError("no observations on one side")
    present = (b + c) > 0
    names = [k for k, keep in zip(cats, present, strict=True) if keep]
    table = np.vstack([b[present], c[present]])
    test: Literal["chi2", "fisher_exact", "none"]
    merged: list[str] = []
    if table.shape[1] < 2:
        test, statistic, dof, p_value = "none", 0.0, 0, 1.0
    else:
        table, merged = _merge_sparse(names, table, min_expected)
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
        if table.shape[1] == 2 and expected.min() < min_expected:
            res = stats.fisher_exact(table.astype(np.int64))
            test, statistic, dof, p_value = "fisher_exact", float(res.statistic), 1, res.pvalue
        else:
            res = stats.chi2_contingency(table)
            test, statistic, dof, p_value = "chi2", float(res.statistic), int(res.dof), res.pvalue
    return CategoricalDrift(
        n_baseline=int(b.sum()),
        n_current=int(c.sum()),
        categories=tuple(cats),
        test=test,
        statistic=statistic,
        dof=dof,
        p_value=min(max(float(p_value), 0.0), 1.0),
        merged=tuple(merged),
        psi=psi(b, c),
        js_distance=js_distance(b, c),
    )
