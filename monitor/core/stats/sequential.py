"""One-sided CUSUM on standardized per-run statistics.

Each run's paired test yields a one-sided p-value for "the score dropped";
`standardize` turns it into z = Phi^-1(1 - p), which is N(0, 1) when the
p-value is exact and stochastically smaller when it is conservative. The
lower-side CUSUM accumulates evidence across runs:

    C_t = max(0, C_{t-1} + z_t - k)           alarm when C_t >= h

`k` (the reference value) is half the standardized shift the chart is tuned
to catch fastest; `h` is derived from a target in-control average run length
ARL0 (mean number of runs between false alarms when nothing changed) with
Siegmund's approximation, whose accuracy `markov_chain_arl` (Brook and Evans'
Markov-chain method, near exact) verifies. The state is a single float that the
caller stores and passes back; it restarts at 0 after an alarm and whenever
the baseline is replaced (re-pinned, new benchmark version).

Assumptions: the z_t are independent N(0, 1) in control. A conservative
p-value only lengthens the real ARL0. Comparing every run with a rolling
baseline makes consecutive z_t slightly negatively correlated (each run
enters the next runs' baselines), which also lengthens it; the detection
benchmark measures the real false-alarm rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import optimize, special

__all__ = [
    "Z_CLIP",
    "CusumStep",
    "cusum_step",
    "cusum_threshold",
    "markov_chain_arl",
    "siegmund_arl",
    "standardize",
]

#: Siegmund's correction for the overshoot of normal increments over the boundary.
SIEGMUND_CORRECTION = 1.166
#: standardized statistics are clipped to +-Z_CLIP so that p = 0 or 1 stay finite.
Z_CLIP = 8.0


def standardize(p_value: float) -> float:
    """Map a one-sided p-value to z = Phi^-1(1 - p), clipped to [-Z_CLIP, Z_CLIP]."""
    if math.isnan(p_value):
        raise ValueError("p-value is NaN")
    p = min(max(p_value, 0.0), 1.0)
    z = -float(special.ndtri(p))
    return min(max(z, -Z_CLIP), Z_CLIP)


def siegmund_arl(h: float, k: float, shift: float = 0.0) -> float:
    """Siegmund's approximation of the CUSUM's average run length.

    For increments N(shift, 1), reference `k` and threshold `h`:
    ARL ~ (exp(-2 d b) + 2 d b - 1) / (2 d^2) with d = shift - k, b = h + 1.166
    (and b^2 when d = 0). Accurate to a few percent for h >= 1.
    """
    if h < 0.0:
        raise ValueError("h must be >= 0")
    d = shift - k
    b = h + SIEGMUND_CORRECTION
    if abs(d) < 1e-9:
        return b * b
    x = 2.0 * d * b
    if -x > 700.0:  # exp overflow: the ARL is astronomically long
        return math.inf
    return (math.exp(-x) + x - 1.0) / (2.0 * d * d)


def cusum_threshold(
    arl0: float, k: float, *, method: Literal["markov", "siegmund"] = "markov"
) -> float:
    """Return the threshold h whose in-control ARL equals `arl0`.

    `method="siegmund"` inverts Siegmund's closed form (a few percent short of
    the target for k >= 1, where h is small); the default refines that root
    with the Markov-chain ARL so the target holds to < 0.5%. Cached: both
    inputs come from settings, so this runs once per configuration.
    """
    if not arl0 > 1.0:
        raise ValueError("arl0 must exceed 1 run")
    if not k > 0.0:
        raise ValueError("the reference value k must be positive")
    return _threshold(float(arl0), float(k), method)


@lru_cache(maxsize=64)
def _threshold(arl0: float, k: float, method: str) -> float:
    if siegmund_arl(0.0, k) >= arl0:
        return 0.0
    hi = 1.0
    while siegmund_arl(hi, k) < arl0:
        hi *= 2.0
    h = float(optimize.brentq(lambda x: siegmund_arl(x, k) - arl0, 0.0, hi, xtol=1e-10))
    if method == "siegmund":
        return h

    def gap(x: float) -> float:
        return math.log(markov_chain_arl(x, k)) - math.log(arl0)

    lo, up = 0.5 * h, 1.5 * h + 1.0
    while gap(up) < 0.0:
        up *= 2.0
    if gap(lo) > 0.0:
        lo = 0.0
    return float(optimize.brentq(gap, lo, up, xtol=1e-6))


def markov_chain_arl(h: float, k: float, shift: float = 0.0, *, states: int = 300) -> float:
    """Average run length by Brook and Evans' Markov-chain approximation.

    The interval [0, h) is split into `states` cells (the first holds the
    atom at 0); the ARL from a fresh start is the first entry of
    (I - R)^-1 1, where R holds the cell-to-cell transition probabilities of
    C_t = max(0, C_{t-1} + X - k), X ~ N(shift, 1). Converges to the exact
    ARL as `states` grows (error O(states^-2)).
    """
    if h <= 0.0:
        return 1.0
    w = 2.0 * h / (2 * states - 1)
    mids = np.arange(states) * w
    upper = (np.arange(states) + 0.5) * w  # upper edges of the cells
    lower = np.concatenate(([-np.inf], upper[:-1]))
    # X must land C_next = c + X - k inside cell j: lower_j <= c + X - k < upper_j
    hi = upper[None, :] - mids[:, None] + k - shift
    lo = lower[None, :] - mids[:, None] + k - shift
    trans = special.ndtr(hi) - special.ndtr(lo)
    arl = np.linalg.solve(np.eye(states) - trans, np.ones(states))
    return float(arl[0])


@dataclass(frozen=True, slots=True)
class CusumStep:
    """One CUSUM update: the value after adding this run, the alarm, and the state to store."""

    previous: float
    z: float
    statistic: float
    threshold: float
    alarm: bool
    state: float  # what to pass in next time: 0 after an alarm (restart), else `statistic`


def cusum_step(state: float, z: float, *, k: float, h: float) -> CusumStep:
    """Add one standardized statistic to the one-sided CUSUM and check the threshold."""
    if math.isnan(state) or state < 0.0:
        state = 0.0
    if math.isnan(z):
        raise ValueError("z is NaN")
    statistic = max(0.0, state + z - k)
    alarm = statistic >= h
    return CusumStep(
        previous=state,
        z=z,
        statistic=statistic,
        threshold=h,
        alarm=alarm,
        state=0.0 if alarm else statistic,
    )
