"""Tests for monitor.core.stats.sequential: the one-sided CUSUM and its threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.stats.sequential import (
    Z_CLIP,
    cusum_step,
    cusum_threshold,
    markov_chain_arl,
    siegmund_arl,
    standardize,
)


def simulated_arl(h: float, k: float, shift: float, *, runs: int, seed: int) -> float:
    """Monte Carlo average run length of the CUSUM from a fresh start (vectorized)."""
    rng = np.random.default_rng(seed)
    c = np.zeros(runs)
    length = np.zeros(runs)
    alive = np.ones(runs, dtype=bool)
    t = 0
    while alive.any():
        t += 1
        c[alive] = np.maximum(0.0, c[alive] + rng.normal(shift, 1.0, alive.sum()) - k)
        hit = alive & (c >= h)
        length[hit] = t
        alive &= ~hit
    return float(length.mean())


class TestStandardize:
    """standardize maps one-sided p-values to z-scores."""

    @pytest.mark.parametrize(
        ("p", "z"), [(0.5, 0.0), (0.025, 1.959964), (0.975, -1.959964), (0.001, 3.090232)]
    )
    def test_textbook_quantiles(self, p: float, z: float) -> None:
        """Known normal quantiles come back."""
        assert standardize(p) == pytest.approx(z, abs=1e-6)

    def test_extremes_are_clipped(self) -> None:
        """p = 0 and p = 1 give finite clipped values."""
        assert standardize(0.0) == Z_CLIP
        assert standardize(1.0) == -Z_CLIP

    def test_nan_rejected(self) -> None:
        """A NaN p-value raises ValueError."""
        with pytest.raises(ValueError, match="NaN"):
            standardize(float("nan"))

    @settings(max_examples=50, deadline=None)
    @given(st.floats(0.0, 1.0), st.floats(0.0, 1.0))
    def test_monotone(self, a: float, b: float) -> None:
        """A smaller p-value never gives a smaller z."""
        if a <= b:
            assert standardize(a) >= standardize(b)


class TestAverageRunLength:
    """Siegmund's approximation and the Markov-chain ARL against textbook values."""

    @pytest.mark.parametrize(
        ("h", "shift", "expected"), [(4.0, 0.0, 336.0), (5.0, 0.0, 930.0), (4.0, 1.0, 8.38)]
    )
    def test_markov_chain_textbook(self, h: float, shift: float, expected: float) -> None:
        """k = 0.5 reproduces the tabulated one-sided ARLs (Montgomery, Hawkins & Olwell)."""
        assert markov_chain_arl(h, 0.5, shift) == pytest.approx(expected, rel=0.01)

    def test_siegmund_close_to_markov(self) -> None:
        """Siegmund's closed form is within 2% of the Markov chain for k = 0.5."""
        for h in (3.0, 4.0, 5.0):
            assert siegmund_arl(h, 0.5) == pytest.approx(markov_chain_arl(h, 0.5), rel=0.02)

    def test_siegmund_zero_drift(self) -> None:
        """With shift equal to k the formula's limit (h + 1.166)^2 is used."""
        assert siegmund_arl(2.0, 0.5, shift=0.5) == pytest.approx(3.166**2)

    def test_markov_matches_simulation(self) -> None:
        """The Markov-chain ARL agrees with a Monte Carlo run-length average."""
        h, k = 2.0, 0.5
        mc = simulated_arl(h, k, 0.0, runs=4000, seed=1)
        assert mc == pytest.approx(markov_chain_arl(h, k), rel=0.06)

    def test_shift_shortens_run_length(self) -> None:
        """A larger mean shift is detected sooner."""
        arls = [markov_chain_arl(3.0, 1.0, shift) for shift in (0.0, 0.5, 1.0, 2.0, 3.0)]
        assert arls == sorted(arls, reverse=True)


class TestThreshold:
    """cusum_threshold inverts the in-control ARL."""

    @pytest.mark.parametrize("k", [0.25, 0.5, 1.0, 1.5])
    @pytest.mark.parametrize("arl0", [200.0, 1000.0, 4000.0])
    def test_hits_target(self, k: float, arl0: float) -> None:
        """The Markov-chain ARL at the returned threshold equals the target."""
        h = cusum_threshold(arl0, k)
        assert markov_chain_arl(h, k) == pytest.approx(arl0, rel=1e-3)

    def test_siegmund_method(self) -> None:
        """method='siegmund' inverts the closed form exactly."""
        h = cusum_threshold(1000.0, 0.5, method="siegmund")
        assert siegmund_arl(h, 0.5) == pytest.approx(1000.0, rel=1e-9)
        assert h == pytest.approx(5.06, abs=0.01)

    def test_longer_arl_needs_higher_threshold(self) -> None:
        """Thresholds grow with the target ARL0."""
        hs = [cusum_threshold(a, 1.0) for a in (100.0, 1000.0, 10000.0)]
        assert hs == sorted(hs)

    def test_verified_by_simulation(self) -> None:
        """A simulated in-control CUSUM at the threshold for ARL0 = 50 runs ~50 runs."""
        h = cusum_threshold(50.0, 1.0)
        assert simulated_arl(h, 1.0, 0.0, runs=6000, seed=2) == pytest.approx(50.0, rel=0.06)

    @pytest.mark.parametrize(("arl0", "k"), [(1.0, 0.5), (100.0, 0.0), (100.0, -1.0)])
    def test_validated(self, arl0: float, k: float) -> None:
        """ARL0 <= 1 or a non-positive k raise ValueError."""
        with pytest.raises(ValueError, match="must"):
            cusum_threshold(arl0, k)


class TestCusumStep:
    """cusum_step accumulates, alarms and restarts."""

    def test_accumulates_above_reference(self) -> None:
        """Evidence above k adds up; below k it drains to 0, never below."""
        s1 = cusum_step(0.0, 2.0, k=1.0, h=5.0)
        s2 = cusum_step(s1.state, 2.5, k=1.0, h=5.0)
        s3 = cusum_step(s2.state, -4.0, k=1.0, h=5.0)
        assert (s1.statistic, s2.statistic, s3.statistic) == pytest.approx((1.0, 2.5, 0.0))
        assert not (s1.alarm)
        assert not (s2.alarm)
        assert not (s3.alarm)

    def test_alarm_restarts(self) -> None:
        """Crossing h raises the alarm and the state to store restarts at 0."""
        step = cusum_step(4.5, 2.0, k=1.0, h=5.0)
        assert step.alarm
        assert step.statistic == pytest.approx(5.5)
        assert step.state == 0.0
        assert step.previous == 4.5

    @pytest.mark.parametrize("bad", [-3.0, float("nan")])
    def test_bad_state_treated_as_fresh(self, bad: float) -> None:
        """A negative or NaN stored state counts as a fresh start."""
        assert cusum_step(bad, 1.5, k=1.0, h=5.0).statistic == pytest.approx(0.5)

    def test_nan_z_rejected(self) -> None:
        """A NaN statistic raises ValueError."""
        with pytest.raises(ValueError, match="NaN"):
            cusum_step(0.0, math.nan, k=1.0, h=5.0)
