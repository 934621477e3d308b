"""Tests for monitor.core.stats.drift: KS, Anderson-Darling, chi-square, PSI, JS, Wasserstein."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import distance

from monitor.core.stats.drift import (
    OTHER,
    PSI_FLOOR,
    compare_categories,
    compare_distributions,
    js_distance,
    psi,
)
from monitor.core.stats.paired import InsufficientDataError


def latencies(seed: int, n: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(mean=-1.0 + shift, sigma=0.5, size=n)


class TestPsiAndJs:
    """The binned effect sizes."""

    def test_psi_hand_computed(self) -> None:
        """PSI of (0.5, 0.5) -> (0.25, 0.75) is 0.25 ln 2 + 0.25 ln 1.5."""
        assert psi([50, 50], [25, 75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))

    def test_psi_zero_and_floor(self) -> None:
        """Equal shares give 0; an empty bin stays finite thanks to the floor."""
        assert psi([3, 7], [30, 70]) == pytest.approx(0.0)
        value = psi([10, 0], [5, 5])
        expected = (0.5 - 1.0) * math.log(0.5) + (0.5 - PSI_FLOOR) * math.log(0.5 / PSI_FLOOR)
        assert value == pytest.approx(expected)

    def test_js_matches_scipy(self) -> None:
        """JS distance equals scipy's jensenshannon in base 2."""
        b, c = [10, 20, 30, 40], [25, 25, 25, 25]
        assert js_distance(b, c) == pytest.approx(distance.jensenshannon(b, c, base=2))

    def test_js_bounds(self) -> None:
        """JS distance is 0 for equal shares and 1 for disjoint supports."""
        assert js_distance([1, 2], [2, 4]) == pytest.approx(0.0, abs=1e-7)
        assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)

    def test_no_observations(self) -> None:
        """An empty side raises InsufficientDataError."""
        with pytest.raises(InsufficientDataError):
            psi([0, 0], [1, 1])


class TestCompareDistributions:
    """Numeric signals: latency, output length."""

    def test_tests_match_scipy(self) -> None:
        """KS, Anderson-Darling and Wasserstein equal their SciPy counterparts."""
        b, c = latencies(0, 400), latencies(1, 150, shift=0.1)
        res = compare_distributions(b, c)
        ks = scipy.stats.ks_2samp(b, c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # SciPy's p-value cap warning
            ad = scipy.stats.anderson_ksamp([b, c], variant="midrank")
        assert (res.ks_statistic, res.ks_p) == pytest.approx((ks.statistic, ks.pvalue))
        assert (res.ad_statistic, res.ad_p) == pytest.approx((ad.statistic, ad.pvalue))
        assert res.wasserstein == pytest.approx(scipy.stats.wasserstein_distance(b, c))
        assert res.p_value == pytest.approx(min(1.0, 2 * min(res.ks_p, res.ad_p)))

    def test_same_sample_no_drift(self) -> None:
        """Comparing a sample with itself shows no drift at all."""
        b = latencies(2, 300)
        res = compare_distributions(b, b)
        assert res.ks_p == pytest.approx(1.0)
        assert (res.psi, res.js_distance, res.wasserstein) == pytest.approx((0.0, 0.0, 0.0))
        assert res.ad_p_capped  # p is above SciPy's table: reported as capped

    def test_bigger_shift_more_drift(self) -> None:
        """A larger latency shift gives smaller p-values and larger effect sizes."""
        b = latencies(3, 500)
        results = [compare_distributions(b, latencies(4, 200, shift=s)) for s in (0.0, 0.2, 0.5)]
        assert [r.ks_p for r in results] == sorted((r.ks_p for r in results), reverse=True)
        for attr in ("psi", "js_distance", "wasserstein", "wasserstein_scaled"):
            values = [getattr(r, attr) for r in results]
            assert values == sorted(values), attr

    def test_order_irrelevant(self) -> None:
        """Shuffling either sample changes nothing."""
        b, c = latencies(5, 200), latencies(6, 100, shift=0.2)
        a = compare_distributions(b, c)
        z = compare_distributions(b[::-1], np.random.default_rng(0).permutation(c))
        assert a == z

    def test_scaled_wasserstein_is_unit_free(self) -> None:
        """Measuring in milliseconds instead of seconds leaves the scaled distance alone."""
        b, c = latencies(7, 300), latencies(8, 300, shift=0.3)
        s = compare_distributions(b, c)
        ms = compare_distributions(b * 1000, c * 1000)
        assert ms.wasserstein == pytest.approx(1000 * s.wasserstein)
        assert ms.wasserstein_scaled == pytest.approx(s.wasserstein_scaled)

    def test_non_finite_values_dropped(self) -> None:
        """NaN and infinite values are ignored."""
        b, c = latencies(9, 50), latencies(10, 40)
        dirty = np.concatenate([c, [np.nan, np.inf]])
        assert compare_distributions(b, dirty) == compare_distributions(b, c)

    @pytest.mark.parametrize(
        ("b", "c"),
        [
            ([], [1.0, 2.0]),
            ([1.0], [1.0, 2.0]),
            ([2.0, 2.0, 2.0], [2.0, 2.0]),
            ([np.nan] * 3, [1.0, 2.0]),
        ],
    )
    def test_degenerate_input(self, b: list[float], c: list[float]) -> None:
        """Too few values or no variation raise InsufficientDataError."""
        with pytest.raises(InsufficientDataError):
            compare_distributions(b, c)

    @settings(max_examples=30, deadline=None)
    @given(
        st.lists(st.floats(0.0, 100.0), min_size=0, max_size=40),
        st.lists(st.floats(0.0, 100.0), min_size=0, max_size=40),
    )
    def test_properties(self, b: list[float], c: list[float]) -> None:
        """Any input raises InsufficientDataError or gives p-values in [0, 1], effects >= 0."""
        try:
            res = compare_distributions(b, c)
        except InsufficientDataError:
            return
        assert 0.0 <= res.p_value <= 1.0
        assert 0.0 <= res.ks_p <= 1.0
        assert 0.0 <= res.ad_p <= 1.0
        assert res.psi >= 0.0
        assert 0.0 <= res.js_distance <= 1.0
        assert res.wasserstein >= 0.0


class TestCompareCategories:
    """Categorical signals: predicted labels."""

    def test_dense_table_matches_scipy(self) -> None:
        """With every expected count >= 5 the test is chi2_contingency on the full table."""
        b = {"refund": 120, "billing": 80, "other": 50}
        c = {"refund": 30, "billing": 40, "other": 10}
        res = compare_categories(b, c)
        ref = scipy.stats.chi2_contingency([[80, 50, 120], [40, 10, 30]])
        assert res.test == "chi2"
        assert res.merged == ()
        assert (res.statistic, res.p_value, res.dof) == pytest.approx(
            (ref.statistic, ref.pvalue, ref.dof)
        )

    def test_sparse_cells_merged(self) -> None:
        """Rare labels are pooled until every expected count is at least 5."""
        b = {"a": 200, "b": 150, "c": 10, "d": 3, "e": 2}
        c = {"a": 120, "b": 90, "c": 8, "d": 1, "f": 2}
        res = compare_categories(b, c)
        # d, e, f pooled first; the pool (5 vs 3) is still sparse, so c joins it
        assert res.merged == ("e", "f", "d", "c")
        assert res.test == "chi2"
        pooled = [[200, 150, 15], [120, 90, 11]]
        ref = scipy.stats.chi2_contingency(pooled)
        assert (res.statistic, res.p_value) == pytest.approx((ref.statistic, ref.pvalue))
        assert OTHER == "(other)"

    def test_sparse_two_by_two_uses_fisher(self) -> None:
        """A sparse 2 x 2 table falls back to Fisher's exact test."""
        res = compare_categories({"yes": 8, "no": 2}, {"yes": 1, "no": 6})
        ref = scipy.stats.fisher_exact([[2, 8], [6, 1]])
        assert res.test == "fisher_exact"
        assert res.p_value == pytest.approx(ref.pvalue)

    def test_single_category(self) -> None:
        """One category on both sides cannot drift: untested, p = 1."""
        res = compare_categories({"x": 10}, {"x": 4})
        assert (res.test, res.p_value, res.psi, res.js_distance) == ("none", 1.0, 0.0, 0.0)

    def test_effects_on_unmerged_shares(self) -> None:
        """PSI and JS use the original categories, not the pooled table."""
        b, c = {"a": 50, "b": 50, "c": 1}, {"a": 20, "b": 70, "c": 4}
        res = compare_categories(b, c)
        assert res.js_distance == pytest.approx(js_distance([50, 50, 1], [20, 70, 4]))
        assert res.psi == pytest.approx(psi([50, 50, 1], [20, 70, 4]))

    def test_bigger_shift_smaller_p(self) -> None:
        """A larger change in the label mix gives a smaller p-value."""
        b = {"a": 300, "b": 300}
        ps = [compare_categories(b, {"a": 100 - s, "b": 100 + s}).p_value for s in (0, 10, 20, 40)]
        assert ps == sorted(ps, reverse=True)

    def test_empty_side(self) -> None:
        """No predictions on one side raise InsufficientDataError."""
        with pytest.raises(InsufficientDataError):
            compare_categories({}, {"a": 3})

    @settings(max_examples=40, deadline=None)
    @given(
        st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 60), max_size=6),
        st.dictionaries(st.sampled_from("abcdefg"), st.integers(0, 60), max_size=7),
    )
    def test_properties(self, b: dict[str, int], c: dict[str, int]) -> None:
        """Any counts raise InsufficientDataError or give p in [0, 1], PSI >= 0, JS in [0, 1]."""
        try:
            res = compare_categories(b, c)
        except InsufficientDataError:
            return
        assert 0.0 <= res.p_value <= 1.0
        assert res.psi >= 0.0
        assert 0.0 <= res.js_distance <= 1.0
