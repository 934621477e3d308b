"""Tests for monitor.core.policy: evaluations, BH across a cycle, verdicts and CUSUM state."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.model import VerdictKind
from monitor.core.policy import (
    DriftSettings,
    Evaluation,
    ScorerHistory,
    decide,
    evaluate_arrays,
    evaluate_categories,
    evaluate_distribution,
    evaluate_scorer,
)
from monitor.core.stats.multiple import adjust_p_values

FloatArray = npt.NDArray[np.float64]
SETTINGS = DriftSettings()


def keyed(values: FloatArray) -> dict[str, float]:
    return {f"i{i:04d}": float(v) for i, v in enumerate(values) if not math.isnan(v)}


def history(
    base: FloatArray, cur: FloatArray, *, binary: bool = True, state: float = 0.0
) -> ScorerHistory:
    return ScorerHistory(
        scorer="exact_match",
        binary=binary,
        current=keyed(cur),
        baseline=[keyed(row) for row in base],
        baseline_description=f"rolling:{len(base)}",
        required_runs=len(base),
        cusum_state=state,
    )


def typical_runs(seed: int, n: int = 400, k: int = 5) -> FloatArray:
    """k + 1 runs of a benchmark with stable and flaky items (last row = current)."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    p = np.where(u < 0.6, 0.995, np.where(u < 0.85, 0.005, rng.uniform(0.2, 0.8, n)))
    return np.asarray(rng.random((k + 1, n)) < p, dtype=float)


def broken(runs: FloatArray, count: int) -> FloatArray:
    """The current run with `count` items that passed every baseline run now failing."""
    cur: FloatArray = runs[-1].copy()
    idx = np.flatnonzero(runs[:-1].all(axis=0) & (cur == 1))[:count]
    cur[idx] = 0.0
    return cur


def make_eval(p: float, effect: float, **kw: object) -> Evaluation:
    fields: dict[str, object] = {
        "name": "s",
        "kind": "quality",
        "status": "tested",
        "test": "t",
        "baseline": "rolling:5",
        "p_value": p,
        "p_improve": 1.0 - p,
        "effect": effect,
        "effect_ci": (effect - 0.01, effect + 0.01),
        "statistic": 1.0,
        "baseline_score": 0.8,
    }
    fields.update(kw)
    return Evaluation(**fields)  # type: ignore[arg-type]


def continuous_p(base: npt.NDArray[np.float64], cur: npt.NDArray[np.float64]) -> float:
    """The continuous test's p-value by hand: Bonferroni of Wilcoxon and the mean test.

    The mean test's p-value is the larger of the normal one (SE of the paired mean) and
    Student's t on the reference runs' mean scores (as tests/core/test_stats_paired.py).
    """
    d = cur - base.mean(axis=0)
    k = base.shape[0]
    wil = scipy.stats.wilcoxon(d, alternative="less").pvalue
    p_norm = scipy.stats.norm.cdf(d.mean() / (d.std(ddof=1) / np.sqrt(d.size)))
    means = base.mean(axis=1)
    scale = means.std(ddof=1) * np.sqrt(1 + 1 / k)
    p_t = scipy.stats.t.cdf((cur.mean() - means.mean()) / scale, k - 1)
    return float(min(1.0, 2 * min(wil, max(p_norm, p_t))))


class TestDriftSettings:
    """Settings validation and the derived CUSUM threshold."""

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"alpha": 0.0},
            {"alpha": 0.1, "warn_alpha": 0.05},
            {"min_effect": 2.0},
            {"arl0": 1.0},
            {"horizon_runs": 0},
            {"cusum_k": 0.0},
            {"confidence": 1.0},
            {"bootstrap_resamples": 10},
            {"sequential": "ewma"},
        ],
    )
    def test_invalid(self, kwargs: dict[str, object]) -> None:
        """Out-of-range settings raise ValueError."""
        with pytest.raises(ValueError, match="must"):
            DriftSettings(**kwargs)  # type: ignore[arg-type]

    def test_threshold_grows_with_arl0(self) -> None:
        """A longer target ARL0 gives a higher CUSUM threshold."""
        assert DriftSettings(arl0=20000).cusum_threshold > DriftSettings().cusum_threshold > 0


class TestEvaluateScorer:
    """One scorer's evaluation from keyed per-item scores."""

    def test_no_baseline(self) -> None:
        """Fewer baseline runs than required give no_baseline, and the CUSUM restarts."""
        runs = typical_runs(0)
        h = dataclasses.replace(history(runs[:2], runs[-1], state=2.0), required_runs=5)
        ev = evaluate_scorer(h, SETTINGS)
        assert ev.status == "no_baseline"
        (v,) = decide([ev], SETTINGS, degraded=False)
        assert v.verdict is VerdictKind.NO_BASELINE
        assert v.cusum_state == 0.0

    def test_single_run_mcnemar(self) -> None:
        """Against one baseline run the test is exact McNemar and lists flipped items."""
        base = np.array([[1, 1, 1, 1, 0, 0, 1, 1, 1, 1.0]])
        cur = np.array([0, 0, 0, 1, 1, 0, 1, 1, 1, 1.0])
        ev = evaluate_scorer(history(base, cur), SETTINGS)
        assert ev.test == "mcnemar_exact"
        assert ev.p_value == pytest.approx(scipy.stats.binomtest(3, 4, 0.5, "greater").pvalue)
        assert ev.changed.pass_to_fail == ("i0000", "i0001", "i0002")
        assert ev.changed.fail_to_pass == ("i0004",)
        assert ev.effect == pytest.approx(-0.2)

    def test_k_run_regression(self) -> None:
        """Sixteen broken stable items out of 400 are regressed, with the items listed."""
        runs = typical_runs(1)
        cur = broken(runs, 16)
        ev = evaluate_scorer(history(runs[:-1], cur), SETTINGS)
        assert ev.test == "poisson_binomial+stable_items"
        assert ev.p_value is not None
        assert ev.p_value < 1e-4
        gone = {f"i{i:04d}" for i in np.flatnonzero(runs[-1] != cur)}
        assert gone <= set(ev.changed.pass_to_fail)
        assert list(ev.changed.pass_to_fail) == sorted(ev.changed.pass_to_fail)
        (v,) = decide([ev], SETTINGS, degraded=False)
        assert v.verdict is VerdictKind.REGRESSED
        assert v.effect is not None
        assert v.effect <= -SETTINGS.min_effect

    def test_steady_model_is_ok(self) -> None:
        """A run like its baseline is ok, with every explanatory field filled in."""
        runs = typical_runs(2)
        ev = evaluate_scorer(history(runs[:-1], runs[-1]), SETTINGS)
        (v,) = decide([ev], SETTINGS, degraded=False)
        assert v.verdict in (VerdictKind.OK, VerdictKind.WARN)
        assert v.test
        assert v.baseline == "rolling:5"
        assert v.statistic is not None
        assert v.p_value is not None
        assert v.p_adjusted is not None
        assert v.effect_ci is not None
        assert v.effect_ci[0] <= v.effect_ci[1]
        assert v.baseline_score is not None
        assert v.cusum_state is not None

    def test_continuous_scores(self) -> None:
        """Continuous scores use Wilcoxon and the mean test with a reproducible bootstrap CI."""
        rng = np.random.default_rng(3)
        base = rng.uniform(size=(3, 80))
        cur = base.mean(axis=0) - 0.05 + rng.normal(0, 0.05, 80)
        h = history(base, cur, binary=False)
        a, b = evaluate_scorer(h, SETTINGS), evaluate_scorer(h, SETTINGS)
        assert a.test == "wilcoxon_signed_rank"
        assert a.effect_ci == b.effect_ci
        assert a.p_value == pytest.approx(continuous_p(base, cur))

    def test_new_and_missing_items(self) -> None:
        """Items new to the benchmark and items missing from the run are left out and noted."""
        runs = typical_runs(4, n=200)
        base, cur = runs[:-1].copy(), runs[-1].copy()
        cur[:5] = np.nan  # errored in this run
        base[:, 5:8] = np.nan  # not in the benchmark before
        ev = evaluate_scorer(history(base, cur), SETTINGS)
        assert ev.n_items == 192
        assert "3 new item(s)" in ev.detail
        assert "5 baseline item(s) missing" in ev.detail

    def test_key_order_irrelevant(self) -> None:
        """Reordering the mappings' keys gives an identical evaluation."""
        runs = typical_runs(5)
        h = history(runs[:-1], broken(runs, 4))
        rev = dataclasses.replace(
            h,
            current=dict(reversed(list(h.current.items()))),
            baseline=[dict(reversed(list(r.items()))) for r in h.baseline],
        )
        assert evaluate_scorer(h, SETTINGS) == evaluate_scorer(rev, SETTINGS)

    @pytest.mark.parametrize(
        ("base", "cur"),
        [
            ([{}, {}], {}),  # empty
            ([{"a": 1.0, "b": 1.0}] * 2, {"a": 1.0, "b": 1.0}),  # all equal
            ([{"a": 1.0}, {"a": 0.0}], {"a": 1.0}),  # single item
            ([{"a": 1.0, "b": 0.0}] * 2, {"a": math.nan, "b": math.nan}),  # NaN
        ],
    )
    def test_degenerate_input(self, base: list[dict[str, float]], cur: dict[str, float]) -> None:
        """Empty, all-equal, single-item and NaN input give insufficient_data, state kept."""
        h = ScorerHistory("s", True, cur, base, "rolling:2", 2, cusum_state=1.5)
        ev = evaluate_scorer(h, SETTINGS)
        assert ev.status == "insufficient_data"
        (v,) = decide([ev], SETTINGS, degraded=False)
        assert v.verdict is VerdictKind.INSUFFICIENT_DATA
        assert v.cusum_state == 1.5

    @settings(max_examples=40, deadline=None)
    @given(
        st.integers(1, 4),
        st.lists(st.sampled_from([0.0, 1.0, math.nan, 0.5]), min_size=0, max_size=20),
        st.data(),
        st.booleans(),
    )
    def test_properties(self, k: int, cur: list[float], data: st.DataObject, binary: bool) -> None:
        """Any input gives a valid evaluation and verdict: p in [0, 1], no crash."""
        base = [
            data.draw(
                st.lists(
                    st.sampled_from([0.0, 1.0, math.nan]), min_size=len(cur), max_size=len(cur)
                )
            )
            for _ in range(k)
        ]
        h = ScorerHistory(
            "s",
            binary,
            keyed(np.array(cur)),
            [keyed(np.array(row)) for row in base],
            "rolling",
            k,
        )
        ev = evaluate_scorer(h, dataclasses.replace(SETTINGS, bootstrap_resamples=200))
        (v,) = decide([ev], SETTINGS, degraded=False)
        if ev.status == "tested":
            assert ev.p_value is not None
            assert 0.0 <= ev.p_value <= 1.0
            assert v.p_adjusted is not None
            assert 0.0 <= v.p_adjusted <= 1.0
        else:
            assert v.verdict in (VerdictKind.INSUFFICIENT_DATA, VerdictKind.NO_BASELINE)


class TestDecide:
    """Verdicts from a cycle's evaluations."""

    def test_bh_across_cycle_with_time_correction(self) -> None:
        """p_adjusted is Benjamini-Hochberg of min(1, horizon x p) over the cycle's checks."""
        evs = [
            make_eval(1e-5, -0.05, name="a"),
            make_eval(5e-4, -0.05, name="b"),
            make_eval(0.3, 0.0, name="c"),
        ]
        verdicts = decide(evs, SETTINGS, degraded=False)
        expected = adjust_p_values([min(1.0, 30 * e.p_value) for e in evs])  # type: ignore[operator]
        assert [v.p_adjusted for v in verdicts] == pytest.approx(expected)
        assert [v.p_value for v in verdicts] == [1e-5, 5e-4, 0.3]
        assert [v.verdict for v in verdicts] == [
            VerdictKind.REGRESSED,
            VerdictKind.WARN,
            VerdictKind.OK,
        ]

    def test_horizon_one_is_classical(self) -> None:
        """With horizon_runs = 1 the adjustment is plain BH."""
        s = DriftSettings(alpha=0.01, horizon_runs=1)
        (v,) = decide([make_eval(0.004, -0.05)], s, degraded=False)
        assert v.p_adjusted == pytest.approx(0.004)
        assert v.verdict is VerdictKind.REGRESSED

    def test_needs_both_significance_and_size(self) -> None:
        """A significant but small drop warns; a large but insignificant drop does not regress."""
        small = decide([make_eval(1e-6, -0.004)], SETTINGS, degraded=False)[0]
        noisy = decide([make_eval(0.2, -0.05)], SETTINGS, degraded=False)[0]
        assert small.verdict is VerdictKind.WARN
        assert noisy.verdict is VerdictKind.OK

    def test_cusum_alarm_regresses_and_restarts(self) -> None:
        """A CUSUM crossing is regressed even below min_effect; the stored state restarts."""
        ev = make_eval(
            0.2, -0.003, cusum=4.2, cusum_threshold=3.0, cusum_alarm=True, cusum_next=0.0
        )
        (v,) = decide([ev], SETTINGS, degraded=False)
        assert v.verdict is VerdictKind.REGRESSED
        assert v.cusum_state == 0.0
        assert "CUSUM" in v.detail

    def test_cusum_half_way_warns(self) -> None:
        """A CUSUM past half its threshold warns and keeps its state."""
        ev = make_eval(0.3, -0.001, cusum=1.8, cusum_threshold=3.0, cusum_next=1.8)
        (v,) = decide([ev], SETTINGS, degraded=False)
        assert v.verdict is VerdictKind.WARN
        assert v.cusum_state == 1.8

    def test_improved(self) -> None:
        """A significant rise of at least min_effect is improved."""
        (v,) = decide([make_eval(0.999, 0.04, p_improve=1e-6)], SETTINGS, degraded=False)
        assert v.verdict is VerdictKind.IMPROVED

    def test_degraded_run(self) -> None:
        """A degraded run marks every check degraded and leaves the CUSUM untouched."""
        ev = make_eval(1e-9, -0.5, cusum_previous=1.25, cusum_next=0.0, cusum_alarm=True)
        (v,) = decide([ev], SETTINGS, degraded=True)
        assert v.verdict is VerdictKind.DEGRADED
        assert v.cusum_state == 1.25

    def test_drift_checks_only_warn(self) -> None:
        """Drift checks warn when significant and past an effect threshold, never regress."""
        big = make_eval(1e-9, 0.3, kind="drift", effect_exceeds=True, p_improve=None)
        small = make_eval(1e-9, 0.01, kind="drift", effect_exceeds=False, p_improve=None)
        v_big, v_small = decide([big, small], SETTINGS, degraded=False)
        assert v_big.verdict is VerdictKind.WARN
        assert v_big.cusum_state is None
        assert v_small.verdict is VerdictKind.OK

    def test_empty_cycle(self) -> None:
        """No evaluations give no verdicts."""
        assert decide([], SETTINGS, degraded=False) == []


class TestSequential:
    """The CUSUM state carried from run to run."""

    def test_persistent_small_drop_accumulates(self) -> None:
        """A drop too small to flag from one run is flagged by the CUSUM within a few runs."""
        rng = np.random.default_rng(9)
        n = 1000
        p = np.where(rng.random(n) < 0.6, 0.998, np.where(rng.random(n) < 0.6, 0.002, 0.5))
        base = (rng.random((5, n)) < p).astype(float)
        stable = np.flatnonzero((p > 0.99) & base.all(axis=0))[:8]
        after = p.copy()
        after[stable] = 0.002  # eight stable items break for good: 0.8 points
        state, verdicts, single_run = 0.0, [], []
        for _ in range(6):
            cur = (rng.random(n) < after).astype(float)
            ev = evaluate_arrays(
                "s", base, cur, binary=True, settings=SETTINGS, required_runs=5, cusum_state=state
            )
            (v,) = decide([ev], SETTINGS, degraded=False)
            verdicts.append(v.verdict)
            single_run.append(v.p_adjusted is not None and v.p_adjusted <= SETTINGS.alpha)
            state = v.cusum_state or 0.0
        assert not any(single_run)  # no run alone is significant after the time correction
        assert VerdictKind.REGRESSED in verdicts

    def test_sequential_none_keeps_no_cusum(self) -> None:
        """With sequential = none no CUSUM is computed and the state stays put."""
        runs = typical_runs(9)
        s = DriftSettings(sequential="none")
        ev = evaluate_arrays(
            "s", runs[:-1], runs[-1], binary=True, settings=s, required_runs=5, cusum_state=0.7
        )
        assert ev.cusum is None
        assert ev.cusum_next == 0.7


class TestDriftEvaluations:
    """Latency, output length and label-mix checks."""

    def test_distribution_shift_warns(self) -> None:
        """A doubled latency is significant, past the thresholds, and warns."""
        rng = np.random.default_rng(0)
        base = rng.lognormal(-1.0, 0.3, 500).tolist()
        cur = (2 * rng.lognormal(-1.0, 0.3, 200)).tolist()
        ev = evaluate_distribution("latency_s", base, cur, SETTINGS, baseline_description="b")
        assert ev.kind == "drift"
        assert ev.effect_exceeds
        assert ev.effect_ci is not None
        assert ev.effect is not None
        assert ev.effect_ci[0] < ev.effect < ev.effect_ci[1]
        (v,) = decide([ev], SETTINGS, degraded=False)
        assert v.verdict is VerdictKind.WARN

    def test_faster_latency_is_an_improvement_not_a_warning(self) -> None:
        """Latency halved is `improved` when lower is better; doubled still warns."""
        rng = np.random.default_rng(0)
        base = rng.lognormal(-1.0, 0.3, 500).tolist()
        faster = (0.5 * rng.lognormal(-1.0, 0.3, 200)).tolist()
        slower = (2 * rng.lognormal(-1.0, 0.3, 200)).tolist()
        verdicts = [
            decide(
                [
                    evaluate_distribution(
                        "latency_seconds", base, cur, SETTINGS, lower_is_better=low
                    )
                ],
                SETTINGS,
                degraded=False,
            )[0].verdict
            for cur, low in ((faster, True), (slower, True), (faster, False))
        ]
        assert verdicts == [VerdictKind.IMPROVED, VerdictKind.WARN, VerdictKind.WARN]

    def test_same_distribution_ok(self) -> None:
        """An unchanged latency distribution is ok."""
        rng = np.random.default_rng(1)
        ev = evaluate_distribution(
            "latency_s",
            rng.lognormal(size=300).tolist(),
            rng.lognormal(size=300).tolist(),
            SETTINGS,
        )
        (v,) = decide([ev], SETTINGS, degraded=False)
        assert v.verdict is VerdictKind.OK

    def test_categories(self) -> None:
        """A changed label mix is tested with chi-square and its JS distance has a CI."""
        ev = evaluate_categories(
            "predicted_label",
            {"a": 400, "b": 400, "c": 200},
            {"a": 100, "b": 250, "c": 50},
            SETTINGS,
        )
        assert ev.test == "chi2"
        assert ev.p_value is not None
        assert ev.p_value < 1e-6
        assert ev.effect_ci is not None
        assert ev.effect is not None
        assert ev.effect_ci[0] <= ev.effect <= ev.effect_ci[1]

    def test_insufficient(self) -> None:
        """Too little data gives insufficient_data for both kinds."""
        a = evaluate_distribution("latency_s", [1.0], [1.0, 2.0], SETTINGS)
        b = evaluate_categories("predicted_label", {}, {"a": 1}, SETTINGS)
        assert a.status == b.status == "insufficient_data"
        verdicts = decide([a, b], SETTINGS, degraded=False)
        assert all(v.verdict is VerdictKind.INSUFFICIENT_DATA for v in verdicts)
