"""Tests for monitor.core.stats.bootstrap: the exact-law median replicates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitor.core.stats.bootstrap import median_replicates, percentile_interval

DRAWS = 200_000


def exact_bootstrap_law(x: list[float]) -> dict[float, float]:
    """P(np.median(resample) = m) by enumerating all n**n resamples (small n only)."""
    n = len(x)
    law: dict[float, float] = {}
    for idx in itertools.product(range(n), repeat=n):
        m = float(np.median([x[i] for i in idx]))
        law[m] = law.get(m, 0.0) + n**-n
    return law


@pytest.mark.parametrize(
    "x",
    [
        [3.0],
        [1.0, 5.0],
        [2.0, 0.5, 9.0],
        [1.0, 2.0, 4.0, 8.0],
        [1.0, 1.0, 3.0, 7.0, 7.0],  # ties
        [0.1, 0.4, 0.2, 0.9, 0.3, 0.6],
    ],
)
def test_replicates_follow_the_exact_bootstrap_law(x: list[float]) -> None:
    """Each median value's frequency matches its probability over all n**n resamples."""
    law = exact_bootstrap_law(x)
    reps = median_replicates(x, rng=np.random.default_rng(7), resamples=DRAWS)
    values, counts = np.unique(reps, return_counts=True)
    seen = dict(zip(values.tolist(), (counts / DRAWS).tolist(), strict=True))
    assert set(seen) <= set(law)  # never a value the bootstrap cannot produce
    for value, p in law.items():
        se = np.sqrt(p * (1 - p) / DRAWS)
        assert abs(seen.get(value, 0.0) - p) <= 5 * se + 1e-12, (value, p, seen.get(value))


def test_odd_n_matches_the_binomial_formula() -> None:
    """P(median* <= x_(k)) = P(Bin(n, k/n) >= (n+1)/2): the textbook law, for n = 41."""
    rng = np.random.default_rng(11)
    x = np.sort(rng.normal(size=41))
    reps = median_replicates(x, rng=np.random.default_rng(3), resamples=DRAWS)
    n, j = x.size, (x.size + 1) // 2
    for k in (15, 18, 20, 21, 22, 24, 27):
        expected = stats.binom.sf(j - 1, n, k / n)
        observed = float(np.mean(reps <= x[k - 1]))
        assert abs(observed - expected) <= 5 * np.sqrt(expected * (1 - expected) / DRAWS)


def test_even_n_matches_brute_force_resampling() -> None:
    """On n = 40 the quantiles agree with np.median over explicit resamples."""
    rng = np.random.default_rng(5)
    x = rng.lognormal(size=40)
    exact = median_replicates(x, rng=np.random.default_rng(1), resamples=DRAWS)
    idx = np.random.default_rng(2).integers(0, x.size, size=(DRAWS // 4, x.size))
    brute = np.median(x[idx], axis=1)
    assert stats.ks_2samp(exact, brute).pvalue > 1e-3
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):
        assert np.quantile(exact, q) == pytest.approx(np.quantile(brute, q), rel=0.03)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60),
    st.floats(0.01, 100),
    st.floats(-1e3, 1e3),
    st.randoms(use_true_random=False),
)
def test_equivariant_and_order_free(
    x: list[float], scale: float, shift: float, order: object
) -> None:
    """Replicates of a*x+b are a*replicates+b; the input's order does not matter."""
    seed = 17
    base = median_replicates(x, rng=np.random.default_rng(seed), resamples=64)
    moved = median_replicates(
        [scale * v + shift for v in x], rng=np.random.default_rng(seed), resamples=64
    )
    np.testing.assert_allclose(moved, scale * base + shift, rtol=1e-9, atol=1e-6)
    shuffled = list(x)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    again = median_replicates(shuffled, rng=np.random.default_rng(seed), resamples=64)
    np.testing.assert_array_equal(again, base)
    assert min(x) <= base.min()
    assert base.max() <= max(x)


def test_refuses_empty_input_and_no_resamples() -> None:
    with pytest.raises(ValueError, match="at least one item"):
        median_replicates([], rng=np.random.default_rng(0), resamples=10)
    with pytest.raises(ValueError, match="resamples"):
        median_replicates([1.0], rng=np.random.default_rng(0), resamples=0)


def test_percentile_interval_is_equal_tailed() -> None:
    lo, hi = percentile_interval(np.arange(1001, dtype=float), 0.9)
    assert lo == pytest.approx(50.0)
    assert hi == pytest.approx(950.0)
