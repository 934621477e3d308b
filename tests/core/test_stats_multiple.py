"""Tests for monitor.core.stats.multiple: Benjamini-Hochberg adjusted p-values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.stats.multiple import adjust_p_values, reject

p_lists = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=0, max_size=30)


class TestAdjustPValues:
    """adjust_p_values against SciPy and textbook values."""

    @pytest.mark.parametrize("seed", range(5))
    @pytest.mark.parametrize("method", ["bh", "by"])
    def test_matches_scipy(self, seed: int, method: str) -> None:
        """Adjusted p-values equal scipy.stats.false_discovery_control."""
        rng = np.random.default_rng(seed)
        p = np.concatenate([rng.uniform(size=20), rng.uniform(0, 0.01, size=5)])
        expected = scipy.stats.false_discovery_control(p, method=method)
        assert np.allclose(adjust_p_values(p.tolist(), method=method), expected, rtol=1e-12)  # type: ignore[arg-type]

    def test_hand_computed(self) -> None:
        """Four p-values adjust as computed by hand: p_(i) * n / i, made monotone."""
        # sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.02, 0.04, 0.04
        assert adjust_p_values([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])

    def test_single_check_is_unchanged(self) -> None:
        """With one check in the cycle the adjusted p-value is the raw one."""
        assert adjust_p_values([0.0123]) == pytest.approx((0.0123,))

    def test_empty(self) -> None:
        """No checks give no adjusted p-values."""
        assert adjust_p_values([]) == ()

    @pytest.mark.parametrize("bad", [[float("nan")], [1.5], [-0.1], [[0.1, 0.2]]])
    def test_rejects_invalid(self, bad: list[float]) -> None:
        """NaN, out-of-range and nested input raise ValueError."""
        with pytest.raises(ValueError, match=r"p[-_]value"):
            adjust_p_values(bad)

    @settings(max_examples=60, deadline=None)
    @given(p_lists)
    def test_properties(self, p: list[float]) -> None:
        """Adjusted values lie in [p, 1] and keep the order of the raw p-values."""
        adj = adjust_p_values(p)
        assert len(adj) == len(p)
        for raw, a in zip(p, adj, strict=True):
            assert raw - 1e-12 <= a <= 1.0
        for i in range(len(p)):
            for j in range(len(p)):
                if p[i] < p[j]:
                    assert adj[i] <= adj[j] + 1e-12

    @settings(max_examples=40, deadline=None)
    @given(p_lists, st.randoms(use_true_random=False))
    def test_permutation_invariant(self, p: list[float], rnd: object) -> None:
        """Shuffling the checks shuffles the adjusted values the same way."""
        order = list(range(len(p)))
        rnd.shuffle(order)  # type: ignore[attr-defined]
        adj = adjust_p_values(p)
        shuffled = adjust_p_values([p[i] for i in order])
        assert shuffled == pytest.approx([adj[i] for i in order])


class TestReject:
    """reject applies the step-up rule at a level."""

    def test_rejects_by_adjusted_value(self) -> None:
        """A check is rejected exactly when its adjusted p-value is at most alpha."""
        p = [0.001, 0.008, 0.039, 0.041, 0.2]
        adj = adjust_p_values(p)
        assert reject(p, 0.05) == tuple(a <= 0.05 for a in adj)
        assert reject(p, 0.05) == (True, True, False, False, False)

    @pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5])
    def test_alpha_validated(self, alpha: float) -> None:
        """Levels outside (0, 1] raise ValueError."""
        with pytest.raises(ValueError, match="alpha"):
            reject([0.1], alpha)
