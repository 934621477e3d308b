"""Run-level noise: the observed-spread null, the stable-items count and the detectable effect.

Runs of a real endpoint share noise (a serving change moves every flaky item of a run
together), which an independent-items model cannot see. These tests check the null of
the run total's standardized statistic under such noise, the CUSUM fed with it, the
stable-items count's power when only flaky items are noisy, and the minimum
detectable effect against a hand computation (docs/decisions/0005-run-level-noise.md).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
import scipy.stats

from monitor.core.policy import DriftSettings, decide, evaluate_arrays
from monitor.core.stats import cusum_step, cusum_threshold, paired_binary_test, standardize
from monitor.core.stats.paired import TOTAL_WEIGHT, Spread, _spread, detectable_drop

FloatArray = npt.NDArray[np.float64]

#: Item groups of the simulated benchmark: (items, pass rate); the last group is flaky.
GROUPS = ((600, 0.99), (250, 0.01), (150, 0.5))
NOMINAL = float(scipy.stats.norm.sf(3.0))  # P(z > 3) of a calibrated statistic


def binomial_var() -> float:
    """Variance of one run total when every item is an independent coin."""
    return sum(size * rate * (1 - rate) for size, rate in GROUPS)


def totals(rng: np.random.Generator, runs: int, reps: int, ratio: float) -> FloatArray:
    """Run totals (reps, runs) whose SD is `ratio` x binomial: a normal run effect added.

    Items of a group share a rate, so each group's total is exactly binomial; the run
    effect (rounded to whole items) is the Student-t null's own assumption, normal.
    """
    out = np.zeros((reps, runs))
    for size, rate in GROUPS:
        out += rng.binomial(size, rate, (reps, runs))
    tau = math.sqrt(max(ratio**2 - 1.0, 0.0) * binomial_var())
    return out + np.round(rng.normal(0.0, tau, (reps, runs)))


def shifted_totals(rng: np.random.Generator, runs: int, reps: int, shift_sd: float) -> FloatArray:
    """Run totals whose flaky items share one logit shift N(0, shift_sd) per run (bounded)."""
    out = np.zeros((reps, runs))
    for size, rate in GROUPS[:-1]:
        out += rng.binomial(size, rate, (reps, runs))
    size, rate = GROUPS[-1]
    flaky = 1.0 / (1.0 + np.exp(-rng.normal(math.log(rate / (1 - rate)), shift_sd, (reps, runs))))
    return out + rng.binomial(size, flaky)


def run_p(runs: FloatArray) -> float:
    """The engine's p-value for a drop of the run total: the larger of the two nulls.

    `runs` holds the reference totals, then the current one, as `_total_component`
    computes them: the model's normal null (with the continuity correction) and the
    reference runs' observed spread (`_spread`: Student t, R - 1 degrees of freedom).
    """
    ref, now = runs[:-1], runs[-1]
    diff = float(now - ref.mean()) + 0.5
    spread = _spread(ref, 1.0)
    sd_model = math.sqrt(binomial_var() * (1.0 + 1.0 / ref.size))
    p_model = float(scipy.stats.norm.cdf(diff / sd_model))
    return p_model if spread is None else max(p_model, spread.p_below(diff))


def run_p_all(sims: FloatArray) -> FloatArray:
    """`run_p` for every row at once (the same formula, vectorized); spot-checked below."""
    ref, now = sims[:, :-1], sims[:, -1]
    window = ref.shape[1]
    diff = now - ref.mean(axis=1) + 0.5
    sd_model = math.sqrt(binomial_var() * (1.0 + 1.0 / window))
    sd_obs = ref.std(axis=1, ddof=1) * math.sqrt(1.0 + 1.0 / window)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_obs = np.where(
            sd_obs > 0, scipy.stats.t.cdf(diff / sd_obs, window - 1), (diff < 0).astype(float)
        )
    p = np.maximum(scipy.stats.norm.cdf(diff / sd_model), p_obs)
    for row in range(0, sims.shape[0], sims.shape[0] // 50):  # the engine's own code agrees
        assert p[row] == pytest.approx(run_p(sims[row]), rel=1e-9, abs=1e-300)
    return np.asarray(p, dtype=float)


def tail(p: FloatArray) -> float:
    """P(z > 3) for z = Phi^-1(1 - p), the standardized statistic the CUSUM adds up."""
    z = -scipy.stats.norm.ppf(p)
    return float((z > 3.0).mean())


class TestObservedSpreadNull:
    """The null of the run total's standardized statistic when runs share noise."""

    @pytest.mark.parametrize("window", [5, 10, 20])
    @pytest.mark.parametrize("ratio", [3.0, 4.0])
    def test_tail_holds_under_run_level_noise(self, window: int, ratio: float) -> None:
        """P(z > 3) is within a factor of 1.5 of nominal with 5, 10 and 20 reference runs.

        The run total varies 3x and 4x its binomial SD; the model's variance alone would
        put P(z > 3) far above nominal (checked too).
        """
        rng = np.random.default_rng(window * 10 + int(ratio))
        sims = totals(rng, window + 1, 100_000, ratio)
        measured = tail(run_p_all(sims))
        assert NOMINAL / 1.5 <= measured <= 1.5 * NOMINAL, measured
        diff = sims[:, -1] - sims[:, :-1].mean(axis=1) + 0.5
        naive = scipy.stats.norm.cdf(diff / math.sqrt(binomial_var() * (1 + 1 / window)))
        assert tail(naive) > 10 * NOMINAL

    @pytest.mark.parametrize("window", [5, 10, 20])
    @pytest.mark.parametrize("shift_sd", [0.0, 0.3, 0.8, 2.0])
    def test_tail_never_above_nominal_otherwise(self, window: int, shift_sd: float) -> None:
        """Independent items, 2x noise, or a bounded shared shift: P(z > 3) <= 1.5x nominal.

        The larger of two p-values errs low without run-level noise, and a bounded
        shift (flaky items all passing or all failing at most) has lighter tails than
        the Student t assumes: both conservative.
        """
        rng = np.random.default_rng(window + int(shift_sd * 10))
        sims = shifted_totals(rng, window + 1, 100_000, shift_sd)
        assert tail(run_p_all(sims)) <= 1.5 * NOMINAL
        assert tail(run_p_all(totals(rng, window + 1, 100_000, 2.0))) <= 1.5 * NOMINAL

    def test_cusum_in_control_run_length_under_noise(self) -> None:
        """A CUSUM fed the run's z under 4x noise, with a rolling window, keeps its ARL0.

        The threshold is set for an in-control average run length of 30 runs (small, so
        the test is fast); consecutive runs share most of their 10-run reference window,
        which couples their z. The measured ARL must be at least 2/3 of the target.
        """
        rng = np.random.default_rng(5)
        h = cusum_threshold(30.0, 1.0)
        lengths = []
        for _ in range(400):
            seq = totals(rng, 400, 1, 4.0)[0]
            state, t = 0.0, 10
            while t < seq.size:
                step = cusum_step(state, standardize(run_p(seq[t - 10 : t + 1])), k=1.0, h=h)
                if step.alarm:
                    break
                state, t = step.state, t + 1
            lengths.append(t - 9)
        assert float(np.mean(lengths)) >= 20.0


class TestStableItemsUnderFlakyNoise:
    """Always-right items that break are caught even when flaky items move together."""

    @staticmethod
    def runs(rng: np.random.Generator, p: FloatArray, k: int, shift_sd: float) -> FloatArray:
        flaky = (p > 0.1) & (p < 0.9)
        logit = np.log(p / (1 - p))
        shift = rng.normal(0.0, shift_sd, (k, 1)) * flaky[None, :]
        return (rng.random((k, p.size)) < 1 / (1 + np.exp(-(logit + shift)))).astype(float)

    def test_power_kept_under_shared_shift(self) -> None:
        """Ten broken stable items of 1,000 against 15 runs: flagged as often with ~4x noise."""
        rng = np.random.default_rng(21)
        hits = {0.0: 0, 1.0: 0}
        reps = 25
        for _ in range(reps):
            u = rng.random(1000)
            p = np.where(
                u < 0.6,
                rng.uniform(0.98, 0.9999, 1000),
                np.where(u < 0.85, rng.uniform(1e-4, 0.02, 1000), rng.uniform(0.2, 0.8, 1000)),
            )
            for shift_sd in hits:
                runs = self.runs(rng, p, 16, shift_sd)
                broken = np.flatnonzero(runs[:15].all(axis=0) & (runs[15] == 1))[:10]
                runs[15, broken] = 0.0
                res = paired_binary_test(runs[:15], runs[15], set_aside_alpha=0.0)
                stable = next(c for c in res.components if c.component == "stable_items")
                hits[shift_sd] += stable.p_value <= 1e-3
        assert hits[0.0] >= 0.5 * reps
        assert hits[1.0] >= hits[0.0] - 3


class TestDetectableEffect:
    """The minimum detectable effect: by hand for one reference window, and in the verdict."""

    def test_formula_by_hand(self) -> None:
        """max(z_(1-a) sd_m, t_(1-a, R-1) sd_o) + z_power max(sd_m, sd_o), from SciPy."""
        spread = Spread(9.0, 14)
        level, power = 0.005 / 30 * 0.75, 0.8
        expected = (
            max(scipy.stats.norm.ppf(1 - level) * 6.0, scipy.stats.t.ppf(1 - level, 14) * 9.0)
            + scipy.stats.norm.ppf(power) * 9.0
        )
        assert detectable_drop(6.0, spread, level=level, power=power) == pytest.approx(expected)
        model_only = (scipy.stats.norm.ppf(1 - level) + scipy.stats.norm.ppf(power)) * 6.0
        assert detectable_drop(6.0, None, level=level, power=power) == pytest.approx(model_only)

    def test_verdict_matches_hand_computation(self) -> None:
        """A noisy 10-run window: the verdict's detectable effect, detail and formula agree."""
        rng = np.random.default_rng(4)
        p = np.where(rng.random(1000) < 0.7, 0.995, rng.uniform(0.2, 0.8, 1000))
        runs = TestStableItemsUnderFlakyNoise.runs(rng, p, 11, 1.0)
        settings = DriftSettings()
        ev = evaluate_arrays("s", runs[:10], runs[10], binary=True, settings=settings)
        (verdict,) = decide([ev], settings, degraded=False)
        res = paired_binary_test(runs[:10], runs[10], set_aside_alpha=0.01)
        # by hand: the reference totals' SD x sqrt(1 + 1/R), Student t with R - 1 = 9 df
        ref_totals = runs[:10].sum(axis=1)
        sd_obs = ref_totals.std(ddof=1) * math.sqrt(1 + 1 / 10)
        level = settings.alpha / settings.horizon_runs * TOTAL_WEIGHT
        sd_m = res.total_sd_model
        hand = max(
            scipy.stats.norm.ppf(1 - level) * sd_m, scipy.stats.t.ppf(1 - level, 9) * sd_obs
        ) + scipy.stats.norm.ppf(0.8) * max(sd_m, sd_obs)
        assert sd_obs > 1.25 * sd_m  # the runs are visibly noisier than the model
        assert verdict.detectable_effect == pytest.approx(hand / 1000, rel=1e-9)
        assert f"{100 * hand / 1000:.2f} points" in verdict.detail
        assert "can only detect drops of" in verdict.detail

    def test_quiet_window_says_nothing_more(self) -> None:
        """Independent runs: the detail gives the detectable drop without the noise warning."""
        rng = np.random.default_rng(7)
        p = np.where(rng.random(1000) < 0.7, 0.995, rng.uniform(0.2, 0.8, 1000))
        runs = TestStableItemsUnderFlakyNoise.runs(rng, p, 16, 0.0)
        settings = DriftSettings()
        ev = evaluate_arrays("s", runs[:15], runs[15], binary=True, settings=settings)
        (verdict,) = decide([ev], settings, degraded=False)
        assert verdict.detectable_effect is not None
        assert 0.01 < verdict.detectable_effect < 0.06
        assert "detectable drop at 80% power" in verdict.detail
        assert "can only detect" not in verdict.detail

    def test_continuous_scores_report_it(self) -> None:
        """Continuous scorers report a detectable effect too."""
        rng = np.random.default_rng(7)
        base = np.clip(rng.uniform(0.2, 0.9, (5, 300)) + rng.normal(0, 0.05, (5, 300)), 0, 1)
        cur = base.mean(axis=0) + rng.normal(0, 0.05, 300)
        settings = DriftSettings()
        ev = evaluate_arrays("s", base, cur, binary=False, settings=settings)
        assert ev.detectable_effect is not None
        assert ev.detectable_effect > 0
