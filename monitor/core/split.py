"""Public/private split: is the gap between public and private items widening?

A model tuned to a public test set gets better on public items than on held-out private
ones. Per run the gap is g = mean(public) - mean(private), with sampling variance
var(public)/n_public + var(private)/n_private (for binary scores p(1-p)/n). The baseline
gap is the mean of the baseline runs' gaps; the variance of that mean is the larger of the
observed variance of the K gaps (which includes run-to-run wobble) and the sampling
variance, divided by K. The one-sided z-test asks whether g exceeds the baseline gap; the effect
is the widening g - mean(baseline gaps) with a normal 95% interval. It joins the run's
other checks as a drift check (`warn`, never `regressed`: a widening gap is a sign to look
at, not a quality drop by itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist, fmean, variance

from monitor.core.policy import DriftSettings, Evaluation

TEST_SPLIT_GAP = "split_gap_z"
_NORMAL = NormalDist()


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = fmean(values)
    var = variance(values) if n > 1 else mean * (1 - mean)
    return mean, var / n


def split_gap_evaluation(
    name: str,
    public: Sequence[float],
    private: Sequence[float],
    baseline_gaps: Sequence[float],
    settings: DriftSettings,
    *,
    baseline_description: str = "",
) -> Evaluation:
    """Test whether this run's public-minus-private gap is wider than the baseline's."""
    if len(public) < 2 or len(private) < 2 or not baseline_gaps:
        return Evaluation(
            name=name,
            kind="drift",
            status="insufficient_data" if baseline_gaps else "no_baseline",
            test=TEST_SPLIT_GAP,
            baseline=baseline_description,
            detail=f"{len(public)} public / {len(private)} private items, "
            f"{len(baseline_gaps)} baseline gaps",
        )
    m_pub, v_pub = _mean_var(public)
    m_priv, v_priv = _mean_var(private)
    gap = m_pub - m_priv
    base = fmean(baseline_gaps)
    v_base = variance(baseline_gaps) / len(baseline_gaps) if len(baseline_gaps) > 1 else 0.0
    sd = math.sqrt(v_pub + v_priv + max(v_base, (v_pub + v_priv) / len(baseline_gaps)))
    widening = gap - base
    if sd == 0.0:
        z = 0.0 if widening == 0.0 else math.copysign(math.inf, widening)
    else:
        z = widening / sd
    p = 1.0 - _NORMAL.cdf(z) if math.isfinite(z) else (0.0 if z > 0 else 1.0)
    half = _NORMAL.inv_cdf(0.5 + settings.confidence / 2) * sd
    return Evaluation(
        name=name,
        kind="drift",
        status="tested",
        test=TEST_SPLIT_GAP,
        baseline=baseline_description,
        statistic=z,
        p_value=min(max(p, 0.0), 1.0),
        effect=widening,
        effect_ci=(widening - half, widening + half),
        baseline_score=base,
        current_score=gap,
        effect_exceeds=widening >= settings.min_effect,
        n_items=len(public) + len(private),
        detail=f"gap public-private {gap:+.4f} (public {m_pub:.4f}, private {m_priv:.4f}) "
        f"vs baseline gap {base:+.4f} over {len(baseline_gaps)} run(s)",
    )
