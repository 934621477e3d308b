"""Multiple-testing correction across the checks of one evaluation cycle.

One cycle (one run of a monitor against one endpoint) produces several
checks: one paired test per scorer plus drift checks of operational signals.
Testing them all at `alpha` would raise the chance that *some* check fires on
noise with every check added, so their p-values are corrected together with
the Benjamini-Hochberg step-up procedure, which controls the false discovery
rate (the expected share of false alarms among the checks that fire).

Assumptions: BH controls the FDR at `alpha` for independent p-values and for
positively dependent ones (PRDS: one-sided tests of positively correlated
statistics, the usual case here, since a broken endpoint moves all checks in
the same direction). Under arbitrary dependence the Benjamini-Yekutieli
variant (`method="by"`) is valid at the price of power.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import stats

__all__ = ["adjust_p_values", "reject"]


def _validated(p_values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(p_values, dtype=float)
    if arr.ndim != 1:
        raise ValueError("p_values must be a flat sequence")
    if np.isnan(arr).any() or (arr < 0.0).any() or (arr > 1.0).any():
        raise ValueError("p-values must lie in [0, 1] (no NaN)")
    return arr


def adjust_p_values(
    p_values: Sequence[float], *, method: Literal["bh", "by"] = "bh"
) -> tuple[float, ...]:
    """Return Benjamini-Hochberg (or -Yekutieli) adjusted p-values, in input order.

    The adjusted p-value of a check is the smallest FDR level at which the
    step-up procedure would still reject it, so `adjusted <= alpha` is the
    rejection rule. SciPy's `false_discovery_control` computes it; this wrapper
    validates the input (NaN or out-of-range p-values raise instead of
    propagating) and returns plain floats in input order.
    """
    arr = _validated(p_values)
    if arr.size == 0:
        return ()
    adjusted = stats.false_discovery_control(arr, method=method)
    return tuple(float(x) for x in np.minimum(adjusted, 1.0))


def reject(
    p_values: Sequence[float], alpha: float, *, method: Literal["bh", "by"] = "bh"
) -> tuple[bool, ...]:
    """Return which checks the step-up procedure rejects at FDR level `alpha`."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError("alpha must lie in (0, 1]")
    return tuple(p <= alpha for p in adjust_p_values(p_values, method=method))
