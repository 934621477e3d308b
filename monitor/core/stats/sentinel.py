"""The judge-drift sentinel's statistics: agreement with human labels, and judge movement.

A judge scorer's calibration set (frozen outputs with human labels) is re-scored by the
judge on every run. Two checks follow:

* `agreement`: accuracy, Cohen's kappa and the confusion counts of the judge's verdicts
  against the human labels;
* `judge_drift`: whether the judge moved since its earlier re-scores of the same outputs.

The movement test. An unchanged judge is still non-deterministic: a few items flip
between re-scores, both ways, and the same items flip again and again. A judge that
turns stricter (or more lenient) moves items that were *stable*. So the test looks at the
items whose score was the same in every earlier re-score (the reference), and counts those
that now went down and those that went up. Under an unchanged judge a stable item leaves
its value at some small rate; that rate is estimated from the deeper half of the
history (how often an item stable in the re-scores before one of them left its value in
it), and the count of each direction is compared with a beta-binomial predictive
distribution, so that an estimated rate from few re-scores widens the null instead of
being taken as known. With a single earlier re-score no rate can be estimated: the test
is then the exact McNemar test on the pairs that changed. The two directions are tested
one-sided and the smaller p is doubled (Bonferroni). Continuous or ordinal scores count
as "went down / up" by the sign of the change.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_ALPHA", "Agreement", "JudgeDrift", "agreement", "judge_drift"]

# Per re-score: 30 re-scores at 3e-4 each keep the false alarms of a month of daily
# checks, or a day of hourly ones, under 1% (docs/statistics.md, §12).
DEFAULT_ALPHA = 3e-4


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


@dataclass(frozen=True, slots=True)
class Agreement:
    """The judge's verdicts against the human labels on the calibration items."""

    n: int
    accuracy: float  # NaN when no item has both
    kappa: float  # Cohen's kappa; NaN when undefined (one category only, or no item)
    confusion: Mapping[str, int] = field(default_factory=dict)  # "label->verdict": count

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": _none_if_nan(self.accuracy),
            "kappa": _none_if_nan(self.kappa),
            "confusion": dict(self.confusion),
        }


def _label(value: float) -> str:
    return f"{value:g}"


def agreement(verdicts: Mapping[str, float], labels: Mapping[str, float]) -> Agreement:
    """Accuracy, Cohen's kappa and confusion counts over the keys in both mappings."""
    keys = [k for k in verdicts if k in labels]
    n = len(keys)
    if n == 0:
        return Agreement(0, math.nan, math.nan)
    pairs = [(_label(labels[k]), _label(verdicts[k])) for k in keys]
    observed = sum(a == b for a, b in pairs) / n
    by_label = Counter(a for a, _ in pairs)
    by_verdict = Counter(b for _, b in pairs)
    expected = sum(by_label[c] * by_verdict[c] for c in by_label) / (n * n)
    kappa = math.nan if expected >= 1.0 else (observed - expected) / (1.0 - expected)
    confusion = Counter(f"{a}->{b}" for a, b in pairs)
    return Agreement(n, observed, kappa, dict(sorted(confusion.items())))


@dataclass(frozen=True, slots=True)
class JudgeDrift:
    """Whether the judge moved between its earlier re-scores and this one."""

    moved: bool
    direction: str | None  # "stricter" (scores went down) or "lenient"; None if not moved
    p_value: float | None  # None: no test (no earlier re-score, or no item in common)
    n_compared: int
    down: int  # reference items whose score went down now
    up: int
    test: str
    detail: str
    effect: float | None = None  # mean change of the compared items' scores

    def to_json(self) -> dict[str, Any]:
        return {
            "moved": self.moved,
            "direction": self.direction,
            "p_value": self.p_value,
            "n_compared": self.n_compared,
            "down": self.down,
            "up": self.up,
            "test": self.test,
            "detail": self.detail,
            "effect": self.effect,
        }


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _betabinom_sf(k: int, n: int, a: float, b: float) -> float:
    """P(X >= k) for X ~ BetaBinomial(n, a, b), summed exactly in log space."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_norm = _log_beta(a, b)
    total = 0.0
    for x in range(k, n + 1):
        log_c = math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1)
        total += math.exp(log_c + _log_beta(x + a, n - x + b) - log_norm)
    return min(1.0, total)


def _binom_sf_half(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    if k <= 0:
        return 1.0
    return min(1.0, sum(math.comb(n, x) for x in range(k, n + 1)) / 2.0**n)


def _stable(history: Sequence[Mapping[str, float]], keys: Sequence[str]) -> dict[str, float]:
    """The keys whose score was the same in every re-score of `history`, with that score."""
    out: dict[str, float] = {}
    for key in keys:
        values = {h[key] for h in history}
        if len(values) == 1:
            out[key] = next(iter(values))
    return out


def _past_leaves(history: Sequence[Mapping[str, float]], keys: Sequence[str]) -> tuple[int, int]:
    """How often an item stable in the re-scores before re-score j left its value in j,
    pooled over the deeper half of the history, j = ceil(K/2)..K-1, as (leaves, chances).

    An item stable in few re-scores may be an ambiguous one that happened to agree with
    itself: shallow transitions would count those items' flips and inflate the null rate
    of the items stable in all K re-scores (benchmarks/judge_sentinel.py measured power
    0.64 at 300 items with the whole history pooled). The deeper half stays conservative
    (an item stable in j < K re-scores leaves at least as often as one stable in K)."""
    leaves = chances = 0
    for j in range(max(1, math.ceil(len(history) / 2)), len(history)):
        before = _stable(history[:j], keys)
        chances += len(before)
        leaves += sum(history[j][k] != v for k, v in before.items())
    return leaves, chances


def judge_drift(
    current: Mapping[str, float],
    history: Sequence[Mapping[str, float]],
    *,
    alpha: float = DEFAULT_ALPHA,
) -> JudgeDrift:
    """Test whether the judge moved between `history` (earlier re-scores, oldest first) and
    `current`, on the items present in all of them."""
    if not history:
        return JudgeDrift(False, None, None, 0, 0, 0, "none", "no earlier re-score yet")
    keys = sorted(k for k in current if all(k in h for h in history))
    if not keys:
        return JudgeDrift(False, None, None, 0, 0, 0, "none", "no item in common")
    effect = sum(current[k] - history[-1][k] for k in keys) / len(keys)
    if len(history) == 1:
        down = sum(current[k] < history[0][k] for k in keys)
        up = sum(current[k] > history[0][k] for k in keys)
        changed = down + up
        p = min(1.0, 2.0 * _binom_sf_half(max(down, up), changed)) if changed else 1.0
        test = "exact McNemar against the previous re-score"
        n_compared = len(keys)
    else:
        stable = _stable(history, keys)
        down = sum(current[k] < v for k, v in stable.items())
        up = sum(current[k] > v for k, v in stable.items())
        leaves, chances = _past_leaves(history, keys)
        # each direction half of the leaves under an unchanged judge, Jeffreys prior
        a, b = leaves / 2.0 + 0.5, chances - leaves / 2.0 + 0.5
        n_stable = len(stable)
        p_down = _betabinom_sf(down, n_stable, a, b)
        p_up = _betabinom_sf(up, n_stable, a, b)
        p = min(1.0, 2.0 * min(p_down, p_up))
        test = f"stable items against {len(history)} earlier re-scores (beta-binomial)"
        n_compared = n_stable
    moved = p < alpha and down != up
    direction = ("stricter" if down > up else "lenient") if moved else None
    state = f"moved ({direction})" if moved else "steady"
    detail = (
        f"Judge {state}: {down} down, {up} up of {n_compared} compared items, p={p:.2g} ({test})."
    )
    return JudgeDrift(moved, direction, p, n_compared, down, up, test, detail, effect)
