"""Simulated endpoints for benchmarks/detection.py: populations, run-level noise, changes.

A setting is a benchmark population (size, share of flaky items, binary or continuous
scores) plus a run-level noise mechanism at a strength: the SD of the run total as a
multiple of its binomial SD, sqrt(sum_i p_i (1 - p_i)) at the items' own rates.

* `independent`: every item an independent coin at its rate (strength 1).
* `shift`: the flaky items of a run share one random shift of their logits,
  u_r ~ N(0, s^2) (a serving change, a quantized replica, a drifting judge); s is
  solved so the run total's SD is `strength` x binomial (Gauss-Hermite quadrature
  over u). Stable items are not moved.
* `block`: on a share `BLOCK_RATE` of runs, a random block of B items fails together
  (a contiguous stretch in a hidden order: a topic, a shard, a tool that is down),
  stable items included; B is solved for the strength.

Changes (from monitoring run `change` on): variant a breaks stable items
(p -> 1 - p for round(d% x N) items with p >= 0.98), variant b takes the same pass
probability from every flaky item so the expected score drops by d points. For
continuous scores, variant a drops round(2 d% x N) high-scoring items by 0.5 and
variant b lowers every mid-range item's mean so the mean drops by d points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Share of runs in which a block fails together (`block` mechanism).
BLOCK_RATE = 0.5
#: Gauss-Hermite nodes for the variance of the run total under a shared shift.
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(40)
_GH_W = _GH_W / _GH_W.sum()


@dataclass(frozen=True)
class Setting:
    """One simulated endpoint: population and run-level noise."""

    name: str
    n_items: int = 1000
    flaky_share: float = 0.15
    continuous: bool = False
    mechanism: str = "independent"  # independent, shift or block
    strength: float = 1.0


@dataclass(frozen=True)
class Change:
    variant: str  # "none", "a" or "b"
    size: float  # points

    @property
    def label(self) -> str:
        return "no change" if self.variant == "none" else f"{self.variant} {self.size:g} pt"


def population(rng: np.random.Generator, st: Setting) -> tuple[FloatArray, IntArray]:
    """Per-item rates (pass probabilities or mean scores) and classes (0 high, 1 low, 2 flaky)."""
    n = st.n_items
    n_flaky = round(st.flaky_share * n)
    rest = n - n_flaky
    n_high = round(rest * 0.6 / 0.85)
    cls = np.array([0] * n_high + [1] * (rest - n_high) + [2] * n_flaky)
    if st.continuous:
        lo = {0: (0.85, 1.0), 1: (0.0, 0.15), 2: (0.3, 0.7)}
    else:
        lo = {0: (0.98, 1.0), 1: (0.0, 0.02), 2: (0.2, 0.8)}
    p = np.empty(n)
    for c, (a, b) in lo.items():
        m = cls == c
        p[m] = rng.uniform(a, b, int(m.sum()))
    order = rng.permutation(n)  # item order carries no information
    return p[order], cls[order]


def changed_rates(
    p: FloatArray, cls: IntArray, st: Setting, ch: Change, rng: np.random.Generator
) -> FloatArray:
    """Rates after the change."""
    after = p.copy()
    n = st.n_items
    if ch.variant == "a":
        count = round(ch.size / 100 * n * (2 if st.continuous else 1))
        pick = rng.choice(np.flatnonzero(cls == 0), size=count, replace=False)
        after[pick] = p[pick] - 0.5 if st.continuous else 1.0 - p[pick]
    elif ch.variant == "b":
        flaky = np.flatnonzero(cls == 2)
        target = ch.size / 100 * n
        lo, hi = 0.0, 1.0  # common loss, floored at 0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if np.minimum(p[flaky], mid).sum() < target else (lo, mid)
        after[flaky] = np.maximum(p[flaky] - hi, 0.0)
    return after


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-9, 1 - 1e-9)
    return np.asarray(np.log(q / (1 - q)), dtype=float)


def shift_sd(p: FloatArray, flaky: npt.NDArray[np.bool_], strength: float) -> float:
    """SD of the shared logit shift of flaky items giving the run total `strength` x binomial SD."""
    binom = float((p * (1 - p)).sum())
    target = strength**2 * binom
    lg = _logit(p[flaky])
    fixed = float((p[~flaky] * (1 - p[~flaky])).sum())

    def var_total(s: float) -> float:
        q = 1.0 / (1.0 + np.exp(-(lg[None, :] + s * _GH_X[:, None])))
        within = fixed + float(_GH_W @ (q * (1 - q)).sum(axis=1))
        means = q.sum(axis=1)
        return within + float(_GH_W @ (means - _GH_W @ means) ** 2)

    if strength <= 1.0:
        return 0.0
    lo, hi = 0.0, 30.0
    if var_total(hi) < target:
        raise ValueError(f"a shared shift cannot reach {strength}x on this population")
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if var_total(mid) < target else (lo, mid)
    return hi


def block_size(p: FloatArray, strength: float) -> int:
    """Items per failing block giving the run total `strength` x binomial SD."""
    n = p.size
    v = p * (1 - p)
    binom = float(v.sum())
    target = strength**2 * binom
    q = BLOCK_RATE
    for b in range(n + 1):
        # within-run variance lost in the block, plus the block's loss L = sum of its rates
        var = binom - q * b * float(v.mean()) + q * (1 - q) * (b * float(p.mean())) ** 2
        var += q * b * float(p.var())
        if var >= target:
            return b
    raise ValueError(f"a failing block cannot reach {strength}x on this population")


@dataclass
class Endpoint:
    """One repetition's endpoint: rates before/after the change and its noise parameters."""

    st: Setting
    p: FloatArray
    after: FloatArray
    cls: IntArray
    shift: float
    block: int

    def runs(self, rng: np.random.Generator, count: int, changed_from: int) -> FloatArray:
        """`count` runs of per-item scores (runs >= `changed_from` use the changed rates)."""
        st = self.st
        rates = np.where(np.arange(count)[:, None] < changed_from, self.p, self.after)
        if st.mechanism == "shift" and self.shift > 0:
            flaky = self.cls == 2
            u = rng.normal(0.0, self.shift, (count, 1))
            rates = rates.copy()
            rates[:, flaky] = 1.0 / (1.0 + np.exp(-(_logit(rates[:, flaky]) + u)))
        if st.continuous:
            sd = np.where(self.cls == 2, 0.15, 0.05)
            scores = np.clip(rates + rng.normal(0.0, 1.0, rates.shape) * sd, 0.0, 1.0)
        else:
            scores = (rng.random(rates.shape) < rates).astype(float)
        if st.mechanism == "block" and self.block > 0:
            hit = rng.random(count) < BLOCK_RATE
            start = rng.integers(0, st.n_items, count)
            idx = (start[:, None] + np.arange(self.block)[None, :]) % st.n_items
            for r in np.flatnonzero(hit):
                scores[r, idx[r]] = 0.0
        return scores


def endpoint(st: Setting, ch: Change, rng: np.random.Generator) -> Endpoint:
    """Draw one repetition's endpoint."""
    p, cls = population(rng, st)
    after = changed_rates(p, cls, st, ch, rng)
    shift = shift_sd(p, cls == 2, st.strength) if st.mechanism == "shift" else 0.0
    block = block_size(p, st.strength) if st.mechanism == "block" else 0
    return Endpoint(st, p, after, cls, shift, block)


def realized_strength(st: Setting, rng: np.random.Generator, runs: int = 400) -> float:
    """Measured SD of the run total over its binomial SD, from `runs` simulated runs."""
    ep = endpoint(st, Change("none", 0.0), rng)
    totals = ep.runs(rng, runs, runs).sum(axis=1)
    return float(totals.std(ddof=1) / math.sqrt(float((ep.p * (1 - ep.p)).sum())))
