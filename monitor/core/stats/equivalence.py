"""Paired comparison of two endpoints on the same items: difference, CI, and equivalence.

"Is B worse than A, better, or practically the same?" One item key gives one pair
(a_i, b_i); every effect is **B minus A** in score units.

Binary scores (pass/fail per item)
----------------------------------
Only discordant pairs carry information: n10 items A passed and B failed, n01 the other
way, d = (n01 - n10) / n.

* Difference test: the exact McNemar test (`monitor.core.stats.paired.mcnemar_exact`).
* Equivalence and CIs: Tango's score test for a paired difference (Tango 1998, Stat Med
  17:891): for a hypothesised difference d0,

      Z(d0) = (n01 - n10 - n d0) / sqrt(n (2 q + d0 (1 - d0))),

  where q is the maximum-likelihood probability of an "A only" pair under d = d0 (the
  root of 2n q^2 + W q - n10 d0 (1 - d0) = 0, W = -(n01 + n10) + (2n - n01 + n10) d0).
  At d0 = 0 it is McNemar's z. TOST against the margin m: H0- : d <= -m is rejected when
  Z(-m) is large, H0+ : d >= m when Z(+m) is small; p = max(p-, p+). The intervals are
  the d0 the test does not reject (Z is decreasing in d0; roots by Brent's method), so
  "equivalent at level alpha" is exactly "the 1 - 2 alpha interval lies inside (-m, m)",
  which is what the compare page draws.

  Why the score test: with the true difference exactly at the margin, it declared
  equivalence in 0-5.0% of simulated runs (n = 100-2,000, 2-10% discordant pairs;
  tests/core/test_stats_equivalence.py), at the 5% it promises. The Wald interval with
  1/2 added to each cell (Agresti-Min, the interval of `mcnemar_exact`) was measured first
  and gave 6.5-10% when the discordant pairs run mostly one way, the usual case when one
  model is a point better. McNemar's conditional binomial cannot test a margin on the
  unconditional difference, and exact unconditional tests maximize over a nuisance
  parameter (slow for 10^4 items).

Continuous scores
-----------------
* Difference test: Wilcoxon signed-rank on the differences (robust to outliers; SciPy
  via `monitor.core.stats.paired.wilcoxon_signed_rank`).
* CI and equivalence: the paired t interval of the mean difference and the paired-t
  TOST, because the margin is a statement about the mean score (the number a
  leaderboard shows); with the benchmark sizes here the mean is close to normal.

Assumptions (both kinds): items are independent, and the two runs saw the same benchmark
version; the caller pairs the items by key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from monitor.core.stats.paired import InsufficientDataError, mcnemar_exact, wilcoxon_signed_rank

__all__ = [
    "EquivalenceResult",
    "LeaderboardEntry",
    "Outcome",
    "binary_equivalence",
    "continuous_equivalence",
    "paired_equivalence",
    "rank_endpoints",
]

Outcome = Literal["equivalent", "b_better", "b_worse", "inconclusive"]
#: Fewer pairs than this and no comparison is attempted.
MIN_PAIRS = 2


@dataclass(frozen=True, slots=True)
class EquivalenceResult:
    """A paired comparison of B against A: difference, its test, and the TOST verdict."""

    kind: Literal["binary", "continuous"]
    n: int  # pairs
    mean_a: float
    mean_b: float
    difference: float  # mean of b - a
    ci: tuple[float, float]  # two-sided, at `confidence`
    confidence: float
    test: str  # the difference test: "mcnemar_exact" or "wilcoxon"
    p_value: float  # two-sided, of the difference test
    margin: float
    alpha: float  # level of each one-sided test of the TOST
    p_lower: float  # H0: difference <= -margin
    p_upper: float  # H0: difference >= +margin
    equivalence_ci: tuple[float, float]  # the 1 - 2 alpha interval the TOST checks
    a_only: int = 0  # binary: pairs A passed and B failed (n10)
    b_only: int = 0  # binary: pairs B passed and A failed (n01)

    @property
    def p_equivalence(self) -> float:
        """The TOST p-value: the larger of the two one-sided p-values."""
        return max(self.p_lower, self.p_upper)

    @property
    def equivalent(self) -> bool:
        """Whether B is within the margin of A at level `alpha`."""
        return self.p_equivalence < self.alpha

    @property
    def different(self) -> bool:
        """Whether the difference test rejects "no difference" at 1 - `confidence`."""
        return self.p_value < 1.0 - self.confidence

    @property
    def outcome(self) -> Outcome:
        """Equivalence first (a significant but tiny difference is still "the same")."""
        if self.equivalent:
            return "equivalent"
        if self.different:
            return "b_better" if self.difference > 0 else "b_worse"
        return "inconclusive"


def _check_levels(margin: float, alpha: float, confidence: float) -> None:
    if not (math.isfinite(margin) and margin > 0.0):
        raise ValueError("margin must be a positive number")
    if not 0.0 < alpha < 0.5:
        raise ValueError("alpha must lie in (0, 0.5)")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie in (0, 1)")


def _pairs(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], ...]:
    x = np.asarray(a, dtype=float).ravel()
    y = np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError("a and b must have one score per pair")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size < MIN_PAIRS:
        raise InsufficientDataError(f"only {x.size} complete pair(s)")
    return x, y


def _one_sided(
    estimate: float, se: float, margin: float, sf: Callable[[float], float]
) -> tuple[float, float]:
    """(p-, p+) of the two one-sided tests; with no spread the answer is certain."""
    if se > 0.0:
        return float(sf((estimate + margin) / se)), float(sf((margin - estimate) / se))
    return (0.0 if estimate > -margin else 1.0), (0.0 if estimate < margin else 1.0)


def _tango_z(plus: int, minus: int, n: int, d0: float) -> float:
    """Tango's score statistic for H0: (plus - minus) / n = d0, with -1 < d0 < 1."""
    w = -(plus + minus) + (2 * n - plus + minus) * d0
    # the discriminant is >= 0 in exact arithmetic; at d0 -> -1 with every discordant
    # pair one way it rounds to a tiny negative number (found by Hypothesis)
    q = (-w + math.sqrt(max(0.0, w * w + 8 * n * minus * d0 * (1 - d0)))) / (4 * n)
    var = n * (2 * q + d0 * (1 - d0))
    diff = plus - minus - n * d0
    if var <= 0.0:  # only at d0 = 0 with no discordant pair: no evidence either way
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def _tango_interval(plus: int, minus: int, n: int, level: float) -> tuple[float, float]:
    """The d0 with -z < Z(d0) < z, z the `level` quantile: Z falls from +inf at d0 -> -1
    to -inf at d0 -> 1, so each end is one root."""
    z = float(stats.norm.ppf(level))
    edge = 1.0 - 1e-12

    def end(target: float) -> float:
        def f(d: float) -> float:
            return _tango_z(plus, minus, n, d) - target

        if f(-edge) <= 0.0:
            return -1.0
        if f(edge) >= 0.0:
            return 1.0
        return float(optimize.brentq(f, -edge, edge, xtol=1e-12))

    return end(z), end(-z)


def binary_equivalence(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    margin: float,
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> EquivalenceResult:
    """Compare paired pass/fail scores (scores >= 0.5 pass) of B against A.

    Raises `InsufficientDataError` with fewer than `MIN_PAIRS` complete pairs.
    """
    _check_levels(margin, alpha, confidence)
    x, y = _pairs(a, b)
    pa, pb = x >= 0.5, y >= 0.5
    n = int(x.size)
    n10 = int(np.sum(pa & ~pb))
    n01 = int(np.sum(~pa & pb))
    mc = mcnemar_exact(n10, n01, n, confidence=confidence)
    m = min(margin, 1.0 - 1e-9)  # a difference of proportions lies in [-1, 1]
    p_lower = float(stats.norm.sf(_tango_z(n01, n10, n, -m)))
    p_upper = float(stats.norm.cdf(_tango_z(n01, n10, n, m)))
    return EquivalenceResult(
        kind="binary",
        n=n,
        mean_a=float(pa.mean()),
        mean_b=float(pb.mean()),
        difference=(n01 - n10) / n,
        ci=_tango_interval(n01, n10, n, 0.5 + confidence / 2.0),
        confidence=confidence,
        test="mcnemar_exact",
        p_value=mc.p_two_sided,
        margin=margin,
        alpha=alpha,
        p_lower=p_lower,
        p_upper=p_upper,
        equivalence_ci=_tango_interval(n01, n10, n, 1.0 - alpha),
        a_only=n10,
        b_only=n01,
    )


def continuous_equivalence(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    margin: float,
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> EquivalenceResult:
    """Compare paired continuous scores of B against A (paired t TOST, Wilcoxon test).

    Raises `InsufficientDataError` with fewer than `MIN_PAIRS` complete pairs.
    """
    _check_levels(margin, alpha, confidence)
    x, y = _pairs(a, b)
    d = y - x
    n = int(d.size)
    mean = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(n)
    t = stats.t(df=n - 1)
    try:
        _, p_value = wilcoxon_signed_rank(d)
    except InsufficientDataError:
        p_value = 1.0  # (almost) every difference is zero: no evidence of a difference
    half = float(t.ppf(0.5 + confidence / 2.0)) * se
    tq = float(t.ppf(1.0 - alpha)) * se
    p_lower, p_upper = _one_sided(mean, se, margin, t.sf)
    return EquivalenceResult(
        kind="continuous",
        n=n,
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        difference=mean,
        ci=(mean - half, mean + half),
        confidence=confidence,
        test="wilcoxon",
        p_value=p_value,
        margin=margin,
        alpha=alpha,
        p_lower=p_lower,
        p_upper=p_upper,
        equivalence_ci=(mean - tq, mean + tq),
    )


def paired_equivalence(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    margin: float,
    binary: bool | None = None,
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> EquivalenceResult:
    """`binary_equivalence` or `continuous_equivalence`; by default binary when every
    score is 0 or 1."""
    if binary is None:
        values = np.concatenate(
            [np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()]
        )
        values = values[~np.isnan(values)]
        binary = bool(np.all((values == 0.0) | (values == 1.0)))
    compare = binary_equivalence if binary else continuous_equivalence
    return compare(a, b, margin=margin, alpha=alpha, confidence=confidence)


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    """One endpoint's place: its tier (1 is best) and how it compares with the tier's leader."""

    name: str
    tier: int
    leader: str  # the tier's leader (itself for the leader)
    mean: float
    n: int  # items scored
    # None for the leader, and for an endpoint with fewer than 2 items in common with it
    versus_leader: EquivalenceResult | None


def rank_endpoints(
    scores: Mapping[str, Mapping[str, float]],
    *,
    margin: float,
    binary: bool | None = None,
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> list[LeaderboardEntry]:
    """Tiers of endpoints, best first; `scores` is endpoint -> item key -> score.

    Endpoints are taken in order of their mean score. One joins the current tier unless
    the paired difference test (on the items both answered) says it is worse than the
    tier's leader; only then does a new tier start, with it as leader. So two endpoints
    sit in different tiers only when the difference between them is outside the noise;
    inside a tier there is no order, and each member says whether it is practically
    equivalent to the leader (TOST) or merely not shown different. Ties in the mean are
    broken by name, so the answer does not depend on the mapping's order.
    """
    _check_levels(margin, alpha, confidence)
    means = {
        name: (float(np.mean(list(items.values()))) if items else math.nan, len(items))
        for name, items in scores.items()
    }
    order = sorted(scores, key=lambda e: (math.isnan(means[e][0]), -np.nan_to_num(means[e][0]), e))
    entries: list[LeaderboardEntry] = []
    tier, leader = 0, ""
    for name in order:
        result: EquivalenceResult | None = None
        if tier:
            keys: Sequence[str] = sorted(scores[leader].keys() & scores[name].keys())
            try:
                result = paired_equivalence(
                    [scores[leader][k] for k in keys],
                    [scores[name][k] for k in keys],
                    margin=margin,
                    binary=binary,
                    alpha=alpha,
                    confidence=confidence,
                )
            except InsufficientDataError:
                result = None
        if not tier or (result is not None and result.outcome == "b_worse"):
            tier, leader, result = tier + 1, name, None
        entries.append(LeaderboardEntry(name, tier, leader, means[name][0], means[name][1], result))
    return entries
