"""Tests for monitor.core.stats.paired: McNemar, the K-run binary test, Wilcoxon, bootstrap."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from monitor.core.stats.paired import (
    BetaPrior,
    InsufficientDataError,
    fit_beta_prior,
    mcnemar_exact,
    paired_binary_test,
    paired_bootstrap_ci,
    paired_continuous_test,
    poisson_binomial_pmf,
    wilcoxon_signed_rank,
)

FloatArray = npt.NDArray[np.float64]


def benchmark_probs(rng: np.random.Generator, n: int) -> FloatArray:
    """Pass probabilities of a typical benchmark: 60% stable pass, 25% stable fail, 15% flaky."""
    u = rng.random(n)
    return np.where(
        u < 0.60,
        rng.uniform(0.98, 1.0, n),
        np.where(u < 0.85, rng.uniform(0.0, 0.02, n), rng.uniform(0.2, 0.8, n)),
    )


def runs_from(rng: np.random.Generator, p: FloatArray, k: int) -> FloatArray:
    return (rng.random((k, p.size)) < p).astype(float)


class TestMcNemar:
    """The exact McNemar test against a single baseline run."""

    @pytest.mark.parametrize(("b", "c"), [(5, 1), (12, 3), (0, 4), (7, 7), (30, 12), (1, 0)])
    def test_matches_binomtest(self, b: int, c: int) -> None:
        """One- and two-sided p-values equal scipy.stats.binomtest on the discordant pairs."""
        res = mcnemar_exact(b, c, 200)
        m = b + c
        assert res.p_less == pytest.approx(scipy.stats.binomtest(b, m, 0.5, "greater").pvalue)
        assert res.p_greater == pytest.approx(scipy.stats.binomtest(c, m, 0.5, "greater").pvalue)
        assert res.p_two_sided == pytest.approx(scipy.stats.binomtest(b, m, 0.5).pvalue)

    def test_textbook_value(self) -> None:
        """Ten pass->fail against none the other way: one-sided p = 2^-10."""
        assert mcnemar_exact(10, 0, 100).p_less == pytest.approx(2.0**-10)

    def test_no_discordant_pairs(self) -> None:
        """Without flips every p-value is 1 and the effect is 0."""
        res = mcnemar_exact(0, 0, 50)
        assert (res.p_less, res.p_greater, res.p_two_sided, res.effect) == (1.0, 1.0, 1.0, 0.0)

    def test_effect_and_ci(self) -> None:
        """The effect is (c - b) / n and its CI brackets it."""
        res = mcnemar_exact(12, 3, 300)
        assert res.effect == pytest.approx(-9 / 300)
        assert res.effect_ci[0] < res.effect < res.effect_ci[1]

    def test_bigger_effect_smaller_p(self) -> None:
        """More pass->fail flips against the same fail->pass flips lower the p-value."""
        ps = [mcnemar_exact(b, 2, 500).p_less for b in (2, 4, 8, 16)]
        assert ps == sorted(ps, reverse=True)

    def test_wider_ci_at_higher_level(self) -> None:
        """A 99% CI contains the 95% CI, which contains the 80% one."""
        cis = [mcnemar_exact(9, 4, 400, confidence=c).effect_ci for c in (0.8, 0.95, 0.99)]
        for inner, outer in itertools.pairwise(cis):
            assert outer[0] < inner[0]
            assert inner[1] < outer[1]

    @pytest.mark.parametrize(("b", "c", "n"), [(-1, 0, 5), (3, 3, 5), (0, 0, 0)])
    def test_invalid(self, b: int, c: int, n: int) -> None:
        """Negative counts or more flips than items raise ValueError."""
        with pytest.raises(ValueError, match="need"):
            mcnemar_exact(b, c, n)


class TestPoissonBinomial:
    """The exact Poisson-binomial pmf."""

    def test_equal_probabilities_are_binomial(self) -> None:
        """All p_i equal gives the binomial pmf."""
        pmf = poisson_binomial_pmf([0.3] * 40)
        assert np.allclose(pmf, scipy.stats.binom.pmf(np.arange(41), 40, 0.3), atol=1e-14)

    def test_matches_convolution(self) -> None:
        """Unequal p_i give the same pmf as convolving the Bernoulli pmfs one by one."""
        probs = np.random.default_rng(0).uniform(size=25)
        direct = np.array([1.0])
        for p in probs:
            direct = np.convolve(direct, [1 - p, p])
        assert np.allclose(poisson_binomial_pmf(probs), direct, atol=1e-14)

    def test_grouped_counts(self) -> None:
        """Grouped probabilities with counts equal the expanded list."""
        grouped = poisson_binomial_pmf([0.1, 0.9, 1.0], [3, 2, 1])
        expanded = poisson_binomial_pmf([0.1, 0.1, 0.1, 0.9, 0.9, 1.0])
        assert np.allclose(grouped, expanded, atol=1e-14)
        assert grouped.sum() == pytest.approx(1.0)

    def test_empty_sum(self) -> None:
        """No items: the sum is 0 with certainty."""
        assert poisson_binomial_pmf([]).tolist() == [1.0]

    def test_invalid(self) -> None:
        """Probabilities outside [0, 1] raise ValueError."""
        with pytest.raises(ValueError, match="probabilities"):
            poisson_binomial_pmf([0.5, 1.2])


class TestFitBetaPrior:
    """Empirical-Bayes Beta prior across items."""

    def test_recovers_known_prior(self) -> None:
        """Beta-binomial data from Beta(2, 5) give back roughly (2, 5)."""
        rng = np.random.default_rng(3)
        p = rng.beta(2.0, 5.0, 20000)
        k = rng.binomial(10, p)
        prior = fit_beta_prior(k, np.full(k.size, 10))
        assert prior.a == pytest.approx(2.0, rel=0.15)
        assert prior.b == pytest.approx(5.0, rel=0.15)

    def test_u_shape_on_typical_benchmark(self) -> None:
        """Mostly-deterministic items give a U-shaped prior: a 5-of-5 item is nearly safe."""
        rng = np.random.default_rng(4)
        runs = runs_from(rng, benchmark_probs(rng, 1000), 5)
        prior = fit_beta_prior(runs.sum(axis=0), np.full(1000, 5))
        assert prior.a < 1.0
        assert prior.b < 1.0
        fail_after_5 = float(prior.fail_streak_probability(np.array([5.0]), 1)[0])
        assert 0.005 < fail_after_5 < 0.03

    def test_fixed_jeffreys_prior_inflates_variance(self) -> None:
        """A fixed Beta(0.5, 0.5) overstates the null variance about 2.4x (the design pitfall)."""
        rng = np.random.default_rng(5)
        p = benchmark_probs(rng, 1000)
        k, n = runs_from(rng, p, 5).sum(axis=0), np.full(1000, 5)
        fixed = BetaPrior(0.5, 0.5).pass_probability(k, n)
        eb = fit_beta_prior(k, n).item_variance(k, n).sum()
        ratio = float((fixed * (1 - fixed)).sum() / eb)
        true_var = float((p * (1 - p)).sum())
        assert 1.8 < ratio < 3.2
        assert eb == pytest.approx(true_var, rel=0.25)

    def test_no_items(self) -> None:
        """Without data the prior falls back to Jeffreys' Beta(0.5, 0.5)."""
        assert fit_beta_prior([], []) == BetaPrior(0.5, 0.5)

    def test_invalid(self) -> None:
        """More passes than trials raise ValueError."""
        with pytest.raises(ValueError, match="passes"):
            fit_beta_prior([3], [2])


class TestPairedBinaryTest:
    """The K-run Poisson-binomial + stable-items test."""

    def setup(self, seed: int = 0, n: int = 400, k: int = 5) -> tuple[FloatArray, FloatArray]:
        rng = np.random.default_rng(seed)
        p = benchmark_probs(rng, n)
        runs = runs_from(rng, p, k + 1)
        return runs[:k], runs[k]

    def flip_stable(self, base: FloatArray, cur: FloatArray, count: int) -> FloatArray:
        """The current run with `count` items that passed every baseline run failing."""
        out = cur.copy()
        stable = np.flatnonzero(base.all(axis=0) & (cur == 1))
        out[stable[:count]] = 0.0
        return out

    def test_null_is_calibrated(self) -> None:
        """Without a change, p <= 0.05 happens about 5% of the time or less."""
        rng = np.random.default_rng(10)
        ps = []
        for _ in range(150):
            runs = runs_from(rng, benchmark_probs(rng, 300), 6)
            ps.append(paired_binary_test(runs[:5], runs[5]).p_value)
        assert np.mean(np.array(ps) <= 0.05) < 0.1
        assert np.mean(np.array(ps) <= 0.5) > 0.15  # not absurdly conservative either

    @pytest.mark.parametrize("population", ["typical", "easy", "deterministic", "beta"])
    def test_stable_null_across_populations(self, population: str) -> None:
        """The stable-items null is never too optimistic on average, whatever the item mix."""
        rng = np.random.default_rng(11)
        expected, truth, small_p = [], [], 0
        for _ in range(80):
            u = rng.random(600)
            p = {
                "typical": benchmark_probs(rng, 600),
                "easy": np.where(u < 0.85, 0.999, rng.uniform(0.3, 0.7, 600)),
                "deterministic": np.where(u < 0.7, 0.999, 0.001),
                "beta": rng.beta(0.3, 0.1, 600),
            }[population]
            runs = runs_from(rng, p, 6)
            res = paired_binary_test(runs[:5], runs[5], set_aside_alpha=0.0)
            stable = next(c for c in res.components if c.component == "stable_items")
            expected.append(stable.expected)
            truth.append(float(((1 - p) * runs[:5].all(axis=0)).sum()))
            small_p += stable.p_value <= 0.05
        ratio = np.mean(expected) / np.mean(truth)
        assert 0.95 < ratio < 2.0
        assert small_p / 80 <= 0.1

    def test_detects_broken_stable_items(self) -> None:
        """Twelve stable items breaking is significant and listed, though the total barely moves."""
        base, cur = self.setup(1)
        broken = self.flip_stable(base, cur, 12)
        res = paired_binary_test(base, broken)
        assert res.p_value < 1e-3
        assert res.driver.component == "stable_items"
        assert set(np.flatnonzero(cur != broken)) <= set(res.broken)
        assert res.effect < 0

    def test_bigger_regression_smaller_p(self) -> None:
        """Breaking more stable items lowers the p-value."""
        base, cur = self.setup(2)
        ps = [
            paired_binary_test(base, self.flip_stable(base, cur, m)).p_value for m in (0, 3, 6, 12)
        ]
        assert ps == sorted(ps, reverse=True)
        assert ps[-1] < ps[0]

    def test_item_order_irrelevant(self) -> None:
        """Permuting the items permutes the lists and changes nothing else."""
        base, cur = self.setup(3)
        cur = self.flip_stable(base, cur, 5)
        perm = np.random.default_rng(0).permutation(cur.size)
        a = paired_binary_test(base, cur)
        b = paired_binary_test(base[:, perm], cur[perm])
        assert a.p_value == pytest.approx(b.p_value, rel=1e-9)
        assert a.effect_ci == pytest.approx(b.effect_ci)
        assert sorted(perm[list(b.broken)]) == sorted(a.broken)

    def test_wider_ci_at_higher_level(self) -> None:
        """The 99% CI of the effect contains the 90% CI."""
        base, cur = self.setup(4)
        lo = paired_binary_test(base, cur, confidence=0.9).effect_ci
        hi = paired_binary_test(base, cur, confidence=0.99).effect_ci
        assert hi[0] < lo[0] < lo[1] < hi[1]

    def test_missing_and_new_items_left_out(self) -> None:
        """Errored items (NaN now) and items with no baseline are not compared."""
        base, cur = self.setup(5, n=100)
        cur = cur.copy()
        cur[:3] = np.nan  # errored in this run
        base = base.copy()
        base[:, 3:5] = np.nan  # new to the benchmark
        assert paired_binary_test(base, cur).n_items == 95

    @pytest.mark.parametrize(("seed", "absorbed"), [(6, 1), (7, 2), (8, 2)])
    def test_set_aside_recovers_absorbed_regression(self, seed: int, absorbed: int) -> None:
        """Items that broke in the newest baseline runs stay visible: those runs are set aside."""
        rng = np.random.default_rng(seed)
        p = benchmark_probs(rng, 500)
        runs = runs_from(rng, p, 6)
        first = 5 - absorbed
        stable = np.flatnonzero((p > 0.98) & runs[:first].all(axis=0))[:12]
        runs[first:, stable] = 0.0  # broke in the newest baseline run(s), still broken now
        plain = paired_binary_test(runs[:5], runs[5], set_aside_alpha=0.0)
        aside = paired_binary_test(runs[:5], runs[5], set_aside_alpha=0.2)
        assert plain.set_aside == 0
        assert aside.set_aside == absorbed
        assert aside.p_value < 1e-3 < plain.p_value
        recent = next(c for c in aside.components if c.component == "recent_failures")
        assert recent.statistic >= 12

    @staticmethod
    def shocked_runs(rng: np.random.Generator, p: FloatArray, k: int, sd: float) -> FloatArray:
        """Runs whose items share a day-level shock: each run shifts every logit by N(0, sd)."""
        logit = np.log(p / (1 - p))
        shock = rng.normal(0.0, sd, (k, 1))
        return (rng.random((k, p.size)) < 1 / (1 + np.exp(-(logit + shock)))).astype(float)

    def test_day_level_shocks_widen_the_null(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Runs sharing shocks: the observed spread takes over and keeps the test calibrated.

        Shocks of 0.5 on the logit scale move the flaky items of a run together and
        multiply the run-to-run variance of totals several times. Without the spread
        check (switched off by requiring more runs than there are) the model's
        independent-items variance is too small and the test fires several times
        too often.
        """
        from monitor.core.stats import paired  # noqa: PLC0415 - monkeypatched below

        def false_alarms() -> tuple[float, float]:
            rng = np.random.default_rng(12)
            small, observed = 0, 0
            for _ in range(150):
                p = np.clip(benchmark_probs(rng, 600), 1e-4, 1 - 1e-4)
                runs = self.shocked_runs(rng, p, 11, sd=0.5)
                res = paired_binary_test(runs[:10], runs[10], set_aside_alpha=0.0)
                small += res.p_value <= 0.05
                observed += res.variance_source == "observed"
            return small / 150, observed / 150

        guarded, used = false_alarms()
        monkeypatch.setattr(paired, "MIN_SPREAD_RUNS", 10**6)
        unguarded, _ = false_alarms()
        assert guarded <= 0.08
        # the larger p-value decides: the observed spread's in most runs that scored lower
        # (about half of them), the model's in runs that scored higher
        assert used > 0.3
        assert unguarded > 2 * guarded

    def test_spread_check_quiet_without_shocks(self) -> None:
        """Independent runs: with the spread check the test keeps its level, not far below it."""
        rng = np.random.default_rng(13)
        ps = []
        for _ in range(150):
            runs = runs_from(rng, benchmark_probs(rng, 600), 11)
            ps.append(paired_binary_test(runs[:10], runs[10], set_aside_alpha=0.0).p_value)
        small = float(np.mean(np.array(ps) <= 0.1))
        assert 0.02 <= small <= 0.15

    def test_small_variance_uses_exact_null(self) -> None:
        """A nearly deterministic benchmark gets the exact Poisson-binomial, not the normal."""
        rng = np.random.default_rng(7)
        p = np.where(rng.random(200) < 0.7, 0.999, 0.001)
        runs = runs_from(rng, p, 6)
        runs[5, np.flatnonzero(runs[:5].all(axis=0))[:2]] = 0.0
        res = paired_binary_test(runs[:5], runs[5])
        total = next(c for c in res.components if c.component == "total")
        assert res.total_sd_model**2 < 16.0  # the model's variance is in the exact range
        # the exact Poisson-binomial, or the observed spread when that is the larger p-value
        assert total.method == ("exact" if res.variance_source == "model" else "normal")
        assert 0.0 <= res.p_value <= 1.0

    @pytest.mark.parametrize(
        ("base", "cur"),
        [
            (np.ones((3, 5)), np.ones(5)),  # all equal
            (np.zeros((3, 5)), np.zeros(5)),  # all equal
            (np.array([[1.0], [0.0]]), np.array([1.0])),  # single item
            (np.ones((3, 4)), np.full(4, np.nan)),  # all NaN now
            (np.empty((3, 0)), np.empty(0)),  # empty
        ],
    )
    def test_degenerate_input(self, base: FloatArray, cur: FloatArray) -> None:
        """Empty, all-equal, single-item and all-NaN input raise InsufficientDataError."""
        with pytest.raises(InsufficientDataError):
            paired_binary_test(base, cur)

    @settings(max_examples=40, deadline=None)
    @given(
        hnp.arrays(
            np.float64,
            st.tuples(st.integers(2, 5), st.integers(0, 25)),
            elements=st.sampled_from([0.0, 1.0, np.nan]),
        ),
        st.data(),
    )
    def test_properties(self, base: FloatArray, data: st.DataObject) -> None:
        """Any 0/1/NaN input either raises InsufficientDataError or gives valid numbers."""
        cur = data.draw(
            hnp.arrays(np.float64, base.shape[1], elements=st.sampled_from([0.0, 1.0, np.nan]))
        )
        try:
            res = paired_binary_test(base, cur)
        except InsufficientDataError:
            return
        assert 0.0 <= res.p_value <= 1.0
        assert 0.0 <= res.p_improve <= 1.0
        assert all(0.0 <= c.p_value <= 1.0 for c in res.components)
        assert res.effect_ci[0] <= res.effect <= res.effect_ci[1]
        assert -1.0 <= res.effect <= 1.0


class TestWilcoxon:
    """The signed-rank test against SciPy."""

    @pytest.mark.parametrize("alternative", ["less", "greater", "two-sided"])
    @pytest.mark.parametrize(("n", "seed"), [(12, 0), (40, 1), (300, 2)])
    def test_matches_scipy(self, alternative: str, n: int, seed: int) -> None:
        """Statistic and p-value equal scipy.stats.wilcoxon."""
        d = np.random.default_rng(seed).normal(-0.1, 1.0, n)
        stat, p = wilcoxon_signed_rank(d, alternative=alternative)  # type: ignore[arg-type]
        ref = scipy.stats.wilcoxon(d, alternative=alternative)
        assert stat == pytest.approx(ref.statistic)
        assert p == pytest.approx(ref.pvalue)

    def test_zeros_dropped(self) -> None:
        """Zero differences are dropped, as with SciPy's zero_method='wilcox'."""
        d = np.array([0.0, 0.0, -0.3, -0.1, 0.2, -0.5, -0.4, 0.05, -0.25])
        _, p = wilcoxon_signed_rank(d, alternative="less")
        assert p == pytest.approx(scipy.stats.wilcoxon(d, alternative="less").pvalue)

    @pytest.mark.parametrize("d", [[], [0.0, 0.0], [0.3], [np.nan, 0.2]])
    def test_too_few(self, d: list[float]) -> None:
        """Fewer than two non-zero differences raise InsufficientDataError."""
        with pytest.raises(InsufficientDataError):
            wilcoxon_signed_rank(d)


class TestBootstrap:
    """The paired bootstrap CI of the mean difference."""

    def test_deterministic(self) -> None:
        """The same seed gives the same interval."""
        d = np.random.default_rng(0).normal(size=200)
        a = paired_bootstrap_ci(d, rng=np.random.default_rng(42))
        b = paired_bootstrap_ci(d, rng=np.random.default_rng(42))
        assert a == b

    def test_order_irrelevant(self) -> None:
        """Shuffled differences give the same interval for the same seed."""
        d = np.random.default_rng(1).normal(size=150)
        a = paired_bootstrap_ci(d, rng=np.random.default_rng(3))
        b = paired_bootstrap_ci(d[::-1], rng=np.random.default_rng(3))
        assert a == pytest.approx(b)

    def test_wider_at_higher_level(self) -> None:
        """A 99% interval contains the 90% one."""
        d = np.random.default_rng(2).normal(size=100)
        lo = paired_bootstrap_ci(d, rng=np.random.default_rng(0), confidence=0.9)
        hi = paired_bootstrap_ci(d, rng=np.random.default_rng(0), confidence=0.99)
        assert hi[0] < lo[0] < lo[1] < hi[1]

    def test_translation_equivariant(self) -> None:
        """Adding a constant to every difference shifts the interval by it."""
        d = np.random.default_rng(3).normal(size=80)
        a = paired_bootstrap_ci(d, rng=np.random.default_rng(5))
        b = paired_bootstrap_ci(d + 2.0, rng=np.random.default_rng(5))
        assert b == pytest.approx((a[0] + 2.0, a[1] + 2.0))

    def test_covers_normal_mean(self) -> None:
        """The interval brackets the mean of well-behaved data."""
        d = np.random.default_rng(4).normal(0.5, 1.0, 400)
        lo, hi = paired_bootstrap_ci(d, rng=np.random.default_rng(0))
        assert lo < d.mean() < hi
        assert hi - lo == pytest.approx(2 * 1.96 * d.std() / 20, rel=0.2)


def continuous_p(base: FloatArray, cur: FloatArray) -> float:
    """The continuous test's one-sided p-value for a drop, by hand with SciPy.

    Bonferroni of the Wilcoxon signed-rank test and the mean difference, whose p-value is
    the larger of the normal one (SE of the paired mean) and Student's t on the reference
    runs' mean scores (K - 1 degrees of freedom, SD x sqrt(1 + 1/K)).
    """
    d = cur - base.mean(axis=0)
    k = base.shape[0]
    wil = scipy.stats.wilcoxon(d, alternative="less").pvalue
    p_norm = scipy.stats.norm.cdf(d.mean() / (d.std(ddof=1) / np.sqrt(d.size)))
    means = base.mean(axis=1)
    scale = means.std(ddof=1) * np.sqrt(1 + 1 / k)
    p_t = scipy.stats.t.cdf((cur.mean() - means.mean()) / scale, k - 1)
    return float(min(1.0, 2 * min(wil, max(p_norm, p_t))))


class TestPairedContinuousTest:
    """Wilcoxon + bootstrap on per-item continuous scores."""

    def test_matches_wilcoxon_on_differences(self) -> None:
        """p is Bonferroni of scipy's one-sided Wilcoxon and the mean test, computed by hand."""
        rng = np.random.default_rng(0)
        base = rng.uniform(size=(3, 60))
        cur = base.mean(axis=0) + rng.normal(-0.05, 0.1, 60)
        res = paired_continuous_test(base, cur, rng=np.random.default_rng(0))
        d = cur - base.mean(axis=0)
        assert res.p_value == pytest.approx(continuous_p(base, cur))
        assert res.p_value <= 2 * scipy.stats.wilcoxon(d, alternative="less").pvalue
        assert res.effect == pytest.approx(d.mean())
        assert res.effect_ci[0] < res.effect < res.effect_ci[1]

    def test_bigger_drop_smaller_p(self) -> None:
        """A larger drop gives a smaller p-value."""
        rng = np.random.default_rng(1)
        base = rng.uniform(size=(2, 80))
        noise = rng.normal(0, 0.1, 80)
        ps = [
            paired_continuous_test(
                base, base.mean(axis=0) + noise - s, rng=np.random.default_rng(0)
            ).p_value
            for s in (0.0, 0.02, 0.05, 0.1)
        ]
        assert ps == sorted(ps, reverse=True)

    def test_item_order_irrelevant(self) -> None:
        """Permuting items changes neither p, effect nor CI."""
        rng = np.random.default_rng(2)
        base = rng.uniform(size=(2, 50))
        cur = rng.uniform(size=50)
        perm = rng.permutation(50)
        a = paired_continuous_test(base, cur, rng=np.random.default_rng(9))
        b = paired_continuous_test(base[:, perm], cur[perm], rng=np.random.default_rng(9))
        assert (a.p_value, a.effect) == pytest.approx((b.p_value, b.effect))
        assert a.effect_ci == pytest.approx(b.effect_ci)

    @pytest.mark.parametrize(
        ("base", "cur"),
        [
            (np.full((2, 4), 0.5), np.full(4, 0.5)),  # all equal
            (np.array([[0.2]]), np.array([0.9])),  # single item
            (np.empty((2, 0)), np.empty(0)),  # empty
            (np.full((2, 3), 0.1), np.full(3, np.nan)),  # NaN
        ],
    )
    def test_degenerate_input(self, base: FloatArray, cur: FloatArray) -> None:
        """Empty, all-equal, single-item and NaN input raise InsufficientDataError."""
        with pytest.raises(InsufficientDataError):
            paired_continuous_test(base, cur, rng=np.random.default_rng(0))

    @settings(max_examples=30, deadline=None)
    @given(
        hnp.arrays(
            np.float64,
            st.tuples(st.integers(1, 3), st.integers(0, 15)),
            elements=st.one_of(st.floats(0.0, 1.0), st.just(np.nan)),
        ),
        st.data(),
    )
    def test_properties(self, base: FloatArray, data: st.DataObject) -> None:
        """Any input either raises InsufficientDataError or gives p in [0, 1]."""
        cur = data.draw(
            hnp.arrays(
                np.float64, base.shape[1], elements=st.one_of(st.floats(0.0, 1.0), st.just(np.nan))
            )
        )
        try:
            res = paired_continuous_test(base, cur, rng=np.random.default_rng(0), resamples=200)
        except InsufficientDataError:
            return
        assert 0.0 <= res.p_value <= 1.0
        assert 0.0 <= res.p_improve <= 1.0
        assert res.effect_ci[0] <= res.effect_ci[1]
