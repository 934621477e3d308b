"""Tests for monitor.core.stats.equivalence: paired difference, CI, TOST and the leaderboard."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.stats.equivalence import (
    binary_equivalence,
    continuous_equivalence,
    paired_equivalence,
    rank_endpoints,
)
from monitor.core.stats.paired import InsufficientDataError


def binary_pairs(n11: int, n10: int, n01: int, n00: int) -> tuple[list[float], list[float]]:
    """Paired pass/fail scores with the given 2x2 table (a first, b second)."""
    a = [1.0] * (n11 + n10) + [0.0] * (n01 + n00)
    b = [1.0] * n11 + [0.0] * n10 + [1.0] * n01 + [0.0] * n00
    return a, b


pair_tables = st.tuples(*(st.integers(0, 60) for _ in range(4))).filter(lambda t: sum(t) >= 2)


class TestBinaryHandComputation:
    """The binary TOST on a small table, computed by hand with SciPy's normal tail."""

    @staticmethod
    def tango(b: int, c: int, n: int, d0: float) -> float:
        """Tango's score z for H0: (b - c) / n = d0, written out from the paper's formula."""
        w = -(b + c) + (2 * n - b + c) * d0
        q = (-w + math.sqrt(w * w + 8 * n * c * d0 * (1 - d0))) / (4 * n)
        return (b - c - n * d0) / math.sqrt(n * (2 * q + d0 * (1 - d0)))

    def test_small_paired_example(self) -> None:
        """40 pairs, 2 A-only and 3 B-only passes, margin 0.1: every figure by hand."""
        a, b = binary_pairs(30, 2, 3, 5)
        res = binary_equivalence(a, b, margin=0.1, alpha=0.05)
        assert res.n == 40
        assert (res.a_only, res.b_only) == (2, 3)
        assert res.difference == pytest.approx(1 / 40)
        assert res.mean_a == pytest.approx(32 / 40)
        assert res.mean_b == pytest.approx(33 / 40)
        # d0 = +0.1: W = -5 + 79 * 0.1 = 2.9, q = (-2.9 + sqrt(2.9^2 + 57.6)) / 160
        q = (-2.9 + math.sqrt(2.9**2 + 8 * 40 * 2 * 0.1 * 0.9)) / 160
        assert q == pytest.approx(0.032654, abs=1e-6)
        z_upper = (3 - 2 - 4) / math.sqrt(40 * (2 * q + 0.09))
        assert z_upper == pytest.approx(-1.2036, abs=1e-4)
        assert res.p_upper == pytest.approx(scipy.stats.norm.cdf(z_upper))
        assert res.p_upper == pytest.approx(0.1144, abs=1e-4)
        # d0 = -0.1: z = 1.8967, p- = 0.0289
        assert res.p_lower == pytest.approx(scipy.stats.norm.sf(self.tango(3, 2, 40, -0.1)))
        assert res.p_lower == pytest.approx(0.0289, abs=1e-4)
        assert not res.equivalent
        assert res.p_value == pytest.approx(scipy.stats.binomtest(2, 5, 0.5).pvalue)
        assert res.outcome == "inconclusive"

    def test_the_same_table_is_equivalent_with_a_wider_margin(self) -> None:
        """At margin 0.15 the same 40 pairs are within the margin (p+ = 0.0325, by hand)."""
        a, b = binary_pairs(30, 2, 3, 5)
        res = binary_equivalence(a, b, margin=0.15)
        assert res.p_upper == pytest.approx(scipy.stats.norm.cdf(self.tango(3, 2, 40, 0.15)))
        assert res.p_equivalence == pytest.approx(0.0325, abs=1e-4)
        assert res.equivalent
        assert res.outcome == "equivalent"

    def test_intervals_invert_the_test(self) -> None:
        """At each end of the 90% interval the score z is exactly the 95% quantile."""
        a, b = binary_pairs(30, 2, 3, 5)
        lo, hi = binary_equivalence(a, b, margin=0.1).equivalence_ci
        z = scipy.stats.norm.ppf(0.95)
        assert self.tango(3, 2, 40, lo) == pytest.approx(z, abs=1e-6)
        assert self.tango(3, 2, 40, hi) == pytest.approx(-z, abs=1e-6)
        assert lo < 1 / 40 < hi

    def test_no_discordant_pair_is_mcnemar_at_zero(self) -> None:
        """At d0 = 0 the score z is McNemar's (b - c) / sqrt(b + c)."""
        assert self.tango(9, 4, 100, 0.0) == pytest.approx(5 / math.sqrt(13))

    def test_no_flips_on_few_items_is_not_equivalent_by_accident(self) -> None:
        """Ten identical pairs do not prove a 1-point margin: the adjusted interval has a width."""
        res = binary_equivalence([1.0] * 10, [1.0] * 10, margin=0.01)
        assert res.ci[0] < 0 < res.ci[1]
        assert not res.equivalent

    def test_many_identical_items_are_equivalent(self) -> None:
        """2000 pairs with 10 flips each way are within a 2-point margin."""
        a, b = binary_pairs(1500, 10, 10, 480)
        res = binary_equivalence(a, b, margin=0.02)
        assert res.equivalent
        assert res.difference == 0.0

    def test_a_clear_drop_is_worse(self) -> None:
        """40 A-only against 2 B-only passes on 500 items: B is worse, not equivalent."""
        a, b = binary_pairs(400, 40, 2, 58)
        res = binary_equivalence(a, b, margin=0.01)
        assert res.outcome == "b_worse"
        assert res.ci[1] < 0


class TestContinuousHandComputation:
    """The paired t TOST against SciPy's one-sample t test on the differences."""

    A = (0.61, 0.72, 0.55, 0.80, 0.67, 0.59, 0.74, 0.70)
    B = (0.63, 0.70, 0.58, 0.81, 0.66, 0.62, 0.75, 0.71)

    def test_matches_scipy_one_sided_t_tests(self) -> None:
        """p- and p+ equal ttest_1samp of the differences against -m and +m."""
        d = np.subtract(self.B, self.A)
        res = continuous_equivalence(self.A, self.B, margin=0.03)
        lower = scipy.stats.ttest_1samp(d, -0.03, alternative="greater").pvalue
        upper = scipy.stats.ttest_1samp(d, 0.03, alternative="less").pvalue
        assert res.p_lower == pytest.approx(lower)
        assert res.p_upper == pytest.approx(upper)
        assert res.difference == pytest.approx(d.mean())
        assert res.p_value == pytest.approx(scipy.stats.wilcoxon(d).pvalue)
        assert res.test == "wilcoxon"

    def test_hand_values(self) -> None:
        """Mean 0.01, sd 0.017728 over 8 pairs: t for +0.03 is -3.191, p+ = 0.00763."""
        res = continuous_equivalence(self.A, self.B, margin=0.03)
        se = 0.017728 / math.sqrt(8)
        assert res.difference == pytest.approx(0.01)
        assert (0.01 - 0.03) / se == pytest.approx(-3.191, abs=1e-3)
        assert res.p_upper == pytest.approx(scipy.stats.t.cdf(-3.191, 7), abs=1e-5)
        assert res.p_upper == pytest.approx(0.00763, abs=1e-5)
        assert res.equivalent
        t975 = scipy.stats.t.ppf(0.975, 7)
        assert res.ci == pytest.approx((0.01 - t975 * se, 0.01 + t975 * se), abs=1e-6)

    def test_constant_differences_inside_the_margin(self) -> None:
        """Every pair differing by exactly 0.01 is certainly within a 0.02 margin."""
        a = [0.1, 0.5, 0.9]
        res = continuous_equivalence(a, [x + 0.01 for x in a], margin=0.02)
        assert res.equivalent
        assert res.p_equivalence < 1e-12

    def test_identical_scores_have_p_one_for_a_difference(self) -> None:
        """No differences at all: the difference test has nothing to reject."""
        res = continuous_equivalence([0.3, 0.4, 0.5], [0.3, 0.4, 0.5], margin=0.1)
        assert res.p_value == 1.0
        assert res.outcome == "equivalent"


class TestInputs:
    """Validation and dispatch."""

    def test_dispatch_by_values(self) -> None:
        """0/1 scores use the binary method, anything else the continuous one."""
        assert paired_equivalence([0, 1, 1], [1, 1, 0], margin=0.1).kind == "binary"
        assert paired_equivalence([0, 0.5, 1], [1, 1, 0], margin=0.1).kind == "continuous"

    def test_nan_pairs_are_dropped(self) -> None:
        """A pair with a missing score on either side is left out."""
        res = binary_equivalence([1, math.nan, 0, 1], [1, 1, math.nan, 0], margin=0.1)
        assert res.n == 2

    @pytest.mark.parametrize("margin", [0.0, -0.1, math.nan, math.inf])
    def test_margin_must_be_positive(self, margin: float) -> None:
        """A margin that is not a positive number is a programming error."""
        with pytest.raises(ValueError, match="margin"):
            binary_equivalence([1, 0], [1, 0], margin=margin)

    def test_too_few_pairs(self) -> None:
        """One pair cannot be compared."""
        with pytest.raises(InsufficientDataError):
            continuous_equivalence([0.5], [0.6], margin=0.1)

    def test_lengths_must_match(self) -> None:
        """Pairs need one score on each side."""
        with pytest.raises(ValueError, match="one score per pair"):
            binary_equivalence([1, 0, 1], [1, 0], margin=0.1)


class TestProperties:
    """Metamorphic tests and Hypothesis properties."""

    @given(pair_tables, st.floats(0.005, 0.3), st.floats(0.0, 0.3))
    @settings(max_examples=200, deadline=None)
    def test_wider_margin_never_loses_equivalence(
        self, table: tuple[int, int, int, int], margin: float, extra: float
    ) -> None:
        """The TOST p-value does not grow with the margin, so "equivalent" is kept."""
        a, b = binary_pairs(*table)
        narrow = binary_equivalence(a, b, margin=margin)
        wide = binary_equivalence(a, b, margin=margin + extra)
        assert wide.p_equivalence <= narrow.p_equivalence + 1e-12
        assert wide.equivalent or not narrow.equivalent

    @given(pair_tables, st.floats(0.005, 0.3))
    @settings(max_examples=200, deadline=None)
    def test_tost_is_the_interval_inside_the_margin(
        self, table: tuple[int, int, int, int], margin: float
    ) -> None:
        """Equivalent at alpha exactly when the 1 - 2 alpha interval lies inside the margin."""
        a, b = binary_pairs(*table)
        res = binary_equivalence(a, b, margin=margin)
        lo, hi = res.equivalence_ci
        inside = -margin < lo and hi < margin
        if abs(abs(lo) - margin) > 1e-9 and abs(abs(hi) - margin) > 1e-9:
            assert res.equivalent == inside
        assert 0.0 <= res.p_lower <= 1.0
        assert 0.0 <= res.p_upper <= 1.0
        assert 0.0 <= res.p_value <= 1.0
        assert res.ci[0] <= res.equivalence_ci[0] <= res.equivalence_ci[1] <= res.ci[1]

    @given(pair_tables, st.floats(0.005, 0.3))
    @settings(max_examples=100, deadline=None)
    def test_swapping_the_sides_mirrors_the_result(
        self, table: tuple[int, int, int, int], margin: float
    ) -> None:
        """B against A is A against B negated: the two one-sided tests trade places."""
        a, b = binary_pairs(*table)
        ab, ba = binary_equivalence(a, b, margin=margin), binary_equivalence(b, a, margin=margin)
        assert ab.difference == pytest.approx(-ba.difference)
        assert ab.p_lower == pytest.approx(ba.p_upper)
        assert ab.p_upper == pytest.approx(ba.p_lower)
        assert ab.equivalent == ba.equivalent

    @given(
        st.lists(st.floats(0.0, 1.0), min_size=3, max_size=40),
        st.floats(-0.2, 0.2),
        st.floats(0.01, 0.3),
    )
    @settings(max_examples=100, deadline=None)
    def test_continuous_order_of_pairs_does_not_matter(
        self, a: list[float], shift: float, margin: float
    ) -> None:
        """Shuffling the pairs together changes nothing; p-values lie in [0, 1]."""
        rng = np.random.default_rng(len(a))
        b = [x + shift + 0.05 * rng.standard_normal() for x in a]
        perm = rng.permutation(len(a))
        res = continuous_equivalence(a, b, margin=margin)
        shuffled = continuous_equivalence([a[i] for i in perm], [b[i] for i in perm], margin=margin)
        assert shuffled.p_equivalence == pytest.approx(res.p_equivalence, abs=1e-9)
        assert shuffled.difference == pytest.approx(res.difference, abs=1e-12)
        assert 0.0 <= res.p_equivalence <= 1.0

    def test_higher_confidence_gives_a_wider_ci(self) -> None:
        """A 99% interval contains the 95% one, which contains the 80% one."""
        a, b = binary_pairs(100, 9, 4, 30)
        cis = [binary_equivalence(a, b, margin=0.05, confidence=c).ci for c in (0.8, 0.95, 0.99)]
        assert cis[2][0] < cis[1][0] < cis[0][0] < cis[0][1] < cis[1][1] < cis[2][1]


def items(passes: int, n: int = 400) -> dict[str, float]:
    """Item key -> pass/fail, the first `passes` items passing."""
    return {f"i{k}": 1.0 if k < passes else 0.0 for k in range(n)}


class TestLeaderboard:
    """Tiers change only when the difference is outside the noise."""

    def test_noise_does_not_rank(self) -> None:
        """Two endpoints two items apart on 400 share the first tier."""
        board = rank_endpoints({"a": items(300), "b": items(298)}, margin=0.05)
        assert [(e.name, e.tier) for e in board] == [("a", 1), ("b", 1)]
        assert board[1].versus_leader is not None
        assert board[1].versus_leader.outcome == "equivalent"

    def test_a_real_gap_starts_a_new_tier(self) -> None:
        """An endpoint 60 items worse on 400 sits in the second tier, with its own leader."""
        board = rank_endpoints(
            {"weak": items(240), "a": items(300), "b": items(299), "weaker": items(238)},
            margin=0.02,
        )
        assert [(e.name, e.tier, e.leader) for e in board] == [
            ("a", 1, "a"),
            ("b", 1, "a"),
            ("weak", 2, "weak"),
            ("weaker", 2, "weak"),
        ]
        assert board[2].versus_leader is None

    @given(st.lists(st.integers(200, 400), min_size=1, max_size=6), st.floats(0.005, 0.1))
    @settings(max_examples=50, deadline=None)
    def test_tiers_are_ordered_and_leaders_differ(self, passes: list[int], margin: float) -> None:
        """Tiers never decrease, and each new tier's leader is shown worse than the last."""
        scores = {f"e{k}": items(p) for k, p in enumerate(passes)}
        board = rank_endpoints(scores, margin=margin)
        assert [e.tier for e in board] == sorted(e.tier for e in board)
        assert board[0].tier == 1
        assert sorted(e.name for e in board) == sorted(scores)
        reversed_board = rank_endpoints(dict(reversed(list(scores.items()))), margin=margin)
        assert [(e.name, e.tier) for e in reversed_board] == [(e.name, e.tier) for e in board]


class TestErrorRates:
    """Seeded simulations: the TOST's chance of a false "equivalent" stays at alpha."""

    @pytest.mark.parametrize(
        ("n", "discordant"), [(100, 0.05), (200, 0.02), (500, 0.03), (1000, 0.1), (2000, 0.02)]
    )
    def test_binary_at_the_margin(self, n: int, discordant: float) -> None:
        """With the true difference exactly at the margin, "equivalent" at most ~5% of runs."""
        rng = np.random.default_rng(n)
        margin = 0.02
        p10 = (discordant - margin) / 2  # P(A passes, B fails); B - A = p01 - p10 = margin
        p01 = p10 + margin
        reps, hits = 2000, 0
        for _ in range(reps):
            cell = rng.choice(4, size=n, p=[p10, p01, 0.6, 1 - 0.6 - p10 - p01])
            a = np.isin(cell, (0, 2)).astype(float)
            b = np.isin(cell, (1, 2)).astype(float)
            hits += binary_equivalence(a, b, margin=margin).equivalent
        # 5% plus three binomial standard errors of the simulation
        assert hits / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)

    def test_binary_power_when_identical(self) -> None:
        """1,000 items with 2% discordant pairs each way: equivalence within 2 points is shown."""
        rng = np.random.default_rng(7)
        hits = 0
        for _ in range(500):
            cell = rng.choice(4, size=1000, p=[0.02, 0.02, 0.7, 0.26])
            a = np.isin(cell, (0, 2)).astype(float)
            b = np.isin(cell, (1, 2)).astype(float)
            hits += binary_equivalence(a, b, margin=0.02).equivalent
        assert hits / 500 > 0.8

    def test_continuous_at_the_margin(self) -> None:
        """Paired continuous scores shifted by exactly the margin: "equivalent" ~5% at most."""
        rng = np.random.default_rng(11)
        reps, hits = 2000, 0
        for _ in range(reps):
            a = rng.uniform(0.3, 0.9, 100)
            b = a + 0.05 + rng.normal(0, 0.1, 100)
            hits += continuous_equivalence(a, b, margin=0.05).equivalent
        assert hits / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)


class TestEdges:
    def test_every_discordant_pair_one_way_has_an_interval(self) -> None:
        """All 13 pairs going one way: the interval reaches the boundary without a
        math domain error (Hypothesis found the rounding at d0 -> -1)."""
        result = binary_equivalence([1] * 13, [0] * 13, margin=0.05)
        assert not result.equivalent
        assert result.ci[0] < -0.7
