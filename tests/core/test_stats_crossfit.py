"""Tests for monitor.core.stats.crossfit: the grid prior and the weighted run total."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special, stats

from monitor.core.stats import crossfit
from monitor.core.stats.crossfit import GRID, fit_grid_prior, weighted_total
from monitor.core.stats.paired import paired_binary_test

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def population(rng: np.random.Generator, n: int, flaky: tuple[float, float]) -> FloatArray:
    """60% stable pass, 25% stable fail, 15% flaky with p uniform in `flaky`."""
    u = rng.random(n)
    return np.where(
        u < 0.60,
        rng.uniform(0.98, 1.0, n),
        np.where(u < 0.85, rng.uniform(0.0, 0.02, n), rng.uniform(*flaky, n)),
    )


def draw(rng: np.random.Generator, p: FloatArray, runs: int) -> BoolArray:
    return np.asarray(rng.random((runs, p.size)) < p)


class TestGridPrior:
    def test_recovers_a_two_point_mixture(self) -> None:
        """70% of items at p = 0.95, 30% at p = 0.3, 20 runs each: the NPMLE puts the mass there."""
        rng = np.random.default_rng(1)
        p = np.where(rng.random(3000) < 0.7, 0.95, 0.3)
        k = rng.binomial(20, p)
        prior = fit_grid_prior(k, np.full(k.size, 20))
        assert prior.mass.sum() == pytest.approx(1.0)
        assert prior.mass[(GRID > 0.88) & (GRID < 0.99)].sum() == pytest.approx(0.7, abs=0.03)
        assert prior.mass[(GRID > 0.2) & (GRID < 0.4)].sum() == pytest.approx(0.3, abs=0.03)

    def test_posterior_is_bayes_rule(self) -> None:
        """Posterior rows are prior x binomial likelihood, normalized (checked for one record)."""
        prior = fit_grid_prior([0, 3, 5, 5, 2], [5, 5, 5, 5, 5])
        post = prior.posterior(5)[3]
        expected = prior.mass * stats.binom.pmf(3, 5, GRID)
        np.testing.assert_allclose(post, expected / expected.sum(), atol=1e-12)

    def test_no_trials_gives_a_uniform_prior(self) -> None:
        prior = fit_grid_prior([], [])
        np.testing.assert_allclose(prior.mass, np.full(GRID.size, 1.0 / GRID.size))

    def test_rejects_impossible_records(self) -> None:
        with pytest.raises(ValueError, match="between 0 and trials"):
            fit_grid_prior([4], [3])


class TestTerms:
    def test_match_leave_one_run_out_by_brute_force(self) -> None:
        """term[k, x] = 1/R sum_r w(other runs) (x - x_r), for every arrangement of R = 4 runs."""
        prior = fit_grid_prior([0, 1, 2, 3, 4, 4, 0, 2], [4] * 8)
        terms = crossfit._terms(prior, 4)
        w = crossfit._weights(prior, 3)
        for record in itertools.product((0, 1), repeat=4):
            k = sum(record)
            for x in (0, 1):
                brute = sum(w[k - xr] * (x - xr) for xr in record) / 4
                assert terms[k, x] == pytest.approx(brute)

    @pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 0.5, 0.9, 1.0])
    def test_null_mean_is_zero_for_any_rate(self, p: float) -> None:
        """Cross-fitting: E[term] = 0 whatever the item's rate (the weights never see their run)."""
        prior = fit_grid_prior([0, 1, 5, 6, 6, 3], [6] * 6)
        terms = crossfit._terms(prior, 6)
        pk = stats.binom.pmf(np.arange(7), 6, p)
        mean = (pk * ((1 - p) * terms[:, 0] + p * terms[:, 1])).sum()
        assert mean == pytest.approx(0.0, abs=1e-12)

    def test_weights_fade_for_stable_items(self) -> None:
        """Full weight for a mid-range record, almost none for a record that never varied."""
        rng = np.random.default_rng(2)
        p = population(rng, 2000, (0.2, 0.8))
        runs = draw(rng, p, 10)
        prior = fit_grid_prior(runs.sum(axis=0), np.full(p.size, 10))
        w = crossfit._weights(prior, 9)
        assert w[4] == pytest.approx(1.0)
        assert w[0] < 0.1
        assert w[9] < 0.1


class TestSkewCorrection:
    def test_no_skew_is_the_normal_tail(self) -> None:
        assert crossfit._skew_corrected(-2.5, 0.0)[0] == pytest.approx(special.ndtr(-2.5))

    def test_left_skew_fattens_the_drop_tail(self) -> None:
        """Left-skewed sums (mostly-passing flaky items) fall far below their mean more often."""
        assert crossfit._skew_corrected(-3.0, -0.2)[0] > special.ndtr(-3.0)
        assert crossfit._skew_corrected(3.0, -0.2)[1] < special.ndtr(-3.0)


def null_z(rng: np.random.Generator, p: FloatArray, reps: int, runs: int) -> FloatArray:
    out = []
    for _ in range(reps):
        ref = draw(rng, p, runs)
        res = weighted_total(ref, np.ones_like(ref), draw(rng, p, 1)[0])
        assert res is not None
        out.append(special.ndtri(res.p_drop))
    return np.array(out)


class TestCalibration:
    @pytest.mark.parametrize("flaky", [(0.2, 0.8), (0.75, 0.95), (0.05, 0.3)])
    @pytest.mark.parametrize("runs", [5, 15])
    def test_null_p_values_are_uniform(self, flaky: tuple[float, float], runs: int) -> None:
        """No change: the p-value's normal score has mean 0 and SD 1, across populations and
        window lengths (a Beta prior under-states the variance of mid-range items; this must not).
        Each draw is a fresh reference and run of a fixed 1,000-item benchmark."""
        rng = np.random.default_rng(hash((flaky, runs)) % 2**32)
        z = null_z(rng, population(rng, 1000, flaky), 600, runs)
        assert abs(z.mean()) < 0.1
        assert z.std() == pytest.approx(1.0, abs=0.08)
        # the level holds in the tail: p < 0.01 about 1% of the time (binomial 99.9% bounds)
        hits = int((special.ndtr(z) < 0.01).sum())
        assert hits <= stats.binom.ppf(0.999, z.size, 0.01)

    def test_stronger_than_the_plain_total_on_a_flaky_decline(self) -> None:
        """Flaky items lose 0.13 of pass probability each (~2 points): the weighted z is larger
        than the plain total's on the same runs on average, even when
        the plain total is given the true item variances."""
        rng = np.random.default_rng(3)
        p = population(rng, 1000, (0.2, 0.8))
        after = np.where((p > 0.1) & (p < 0.9), p - 0.13, p)
        gaps = []
        for _ in range(60):
            ref = draw(rng, p, 15)
            now = draw(rng, after, 1)[0]
            weighted = weighted_total(ref, np.ones_like(ref), now)
            assert weighted is not None
            sd = np.sqrt((p * (1 - p)).sum() * (1 + 1 / 15))
            plain_z = (now.sum() - ref.mean(axis=0).sum()) / sd
            gaps.append(plain_z - weighted.z)
        g = np.array(gaps)
        assert g.mean() > 0.2
        assert g.mean() - 3 * g.std(ddof=1) / np.sqrt(g.size) > 0  # not a fluke of 60 draws


class TestInputs:
    def test_item_order_does_not_matter(self) -> None:
        rng = np.random.default_rng(4)
        p = population(rng, 400, (0.2, 0.8))
        ref, now = draw(rng, p, 8), draw(rng, p, 1)[0]
        order = rng.permutation(p.size)
        a = weighted_total(ref, np.ones_like(ref), now)
        b = weighted_total(ref[:, order], np.ones_like(ref), now[order])
        assert a is not None
        assert b is not None
        assert a.statistic == pytest.approx(b.statistic)
        assert a.variance == pytest.approx(b.variance)
        np.testing.assert_allclose(a.weights[order], b.weights)

    def test_items_missing_from_runs(self) -> None:
        """Items seen in fewer than 2 reference runs get no weight; shorter records still count."""
        rng = np.random.default_rng(5)
        p = population(rng, 300, (0.2, 0.8))
        ref = draw(rng, p, 6)
        seen = np.ones_like(ref)
        seen[:5, :10] = False  # items 0-9: seen in one run only
        seen[:2, 10:50] = False  # items 10-49: seen in 4 runs
        res = weighted_total(ref & seen, seen, draw(rng, p, 1)[0])
        assert res is not None
        assert (res.weights[:10] == 0).all()
        assert np.isfinite(res.variance)
        assert res.variance > 0
        assert 0.0 <= res.p_drop <= 1.0

    @settings(max_examples=60, deadline=None)
    @given(
        hnp.arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(0, 60))),
        st.data(),
    )
    def test_properties(self, passed: BoolArray, data: st.DataObject) -> None:
        """Any record, with any items missing from any runs: None, or valid numbers."""
        seen = data.draw(hnp.arrays(np.bool_, passed.shape))
        now = data.draw(hnp.arrays(np.bool_, passed.shape[1]))
        res = weighted_total(passed & seen, seen, now)
        if res is None:
            return
        assert res.variance >= crossfit.MIN_VARIANCE
        assert 0.0 <= res.p_drop <= 1.0
        assert 0.0 <= res.p_rise <= 1.0
        assert abs(res.skewness) <= crossfit.MAX_SKEW
        assert np.isfinite(res.statistic)
        assert ((res.weights >= 0) & (res.weights <= 1 + 1e-12)).all()

    def test_nothing_varies(self) -> None:
        """Every item always passes: no weight anywhere, no test."""
        ref = np.ones((5, 50), dtype=bool)
        assert weighted_total(ref, ref, np.ones(50, dtype=bool)) is None


class TestInPairedTest:
    def test_used_when_many_items_vary(self) -> None:
        rng = np.random.default_rng(6)
        p = population(rng, 1000, (0.2, 0.8))
        res = paired_binary_test(draw(rng, p, 10).astype(float), draw(rng, p, 1)[0].astype(float))
        assert res.components[0].component == "weighted_total"
        assert "weighted by how much they vary" in res.components[0].describe()

    def test_plain_total_when_few_items_vary(self) -> None:
        """Ten flaky items in 200: too few for a normal approximation; the exact total decides."""
        rng = np.random.default_rng(7)
        p = np.concatenate([np.full(190, 0.995), np.full(10, 0.5)])
        res = paired_binary_test(draw(rng, p, 10).astype(float), draw(rng, p, 1)[0].astype(float))
        assert res.components[0].component == "total"

    def test_day_level_shocks_widen_its_null(self) -> None:
        """Runs sharing shocks (every logit shifted by N(0, 0.5) per run): the weighted total
        takes the observed spread of the weighted reference totals and stays near its level."""
        rng = np.random.default_rng(8)
        small = observed = weighted = 0
        for _ in range(120):
            p = np.clip(population(rng, 1000, (0.2, 0.8)), 1e-4, 1 - 1e-4)
            logit = np.log(p / (1 - p)) + rng.normal(0.0, 0.5, (11, 1))
            runs = (rng.random((11, p.size)) < 1 / (1 + np.exp(-logit))).astype(float)
            res = paired_binary_test(runs[:10], runs[10], set_aside_alpha=0.0)
            weighted += res.components[0].component == "weighted_total"
            observed += res.variance_source == "observed"
            small += res.components[0].p_value <= 0.05
        assert weighted == 120
        assert observed / 120 > 0.5
        assert small / 120 <= 0.1
