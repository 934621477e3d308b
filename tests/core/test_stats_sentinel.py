"""The judge-drift sentinel's statistics (monitor/core/stats/sentinel.py)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitor.core.stats.sentinel import DEFAULT_ALPHA, agreement, judge_drift


class TestAgreement:
    def test_kappa_matches_a_hand_computed_table(self) -> None:
        # 50 items: labels pass/fail against verdicts pass/fail, counts 20 5 / 10 15
        # (the textbook example of Cohen's kappa: p_o = 0.7, p_e = 0.5, kappa = 0.4)
        labels, verdicts = {}, {}
        cells = [(1.0, 1.0, 20), (1.0, 0.0, 5), (0.0, 1.0, 10), (0.0, 0.0, 15)]
        k = 0
        for label, verdict, count in cells:
            for _ in range(count):
                labels[f"i{k}"], verdicts[f"i{k}"] = label, verdict
                k += 1
        got = agreement(verdicts, labels)
        assert got.n == 50
        assert got.accuracy == pytest.approx(0.7)
        assert got.kappa == pytest.approx(0.4)
        assert got.confusion == {"0->0": 15, "0->1": 10, "1->0": 5, "1->1": 20}

    def test_undefined_kappa_and_no_items(self) -> None:
        assert math.isnan(agreement({"a": 1.0}, {"a": 1.0}).kappa)
        empty = agreement({"a": 1.0}, {"b": 1.0})
        assert empty.n == 0
        assert empty.to_json()["accuracy"] is None


def rescores(
    rng: random.Random, n: int, k: int, flaky: float, flip: float
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """An unchanged judge: per item a pass probability, flaky items near 1/2."""
    probs = {}
    for i in range(n):
        flaky_item = rng.random() < flaky
        stable = rng.choice([0.002, 0.998])
        probs[f"c{i}"] = rng.uniform(0.5 - flip, 0.5 + flip) if flaky_item else stable

    def once() -> dict[str, float]:
        return {key: float(rng.random() < p) for key, p in probs.items()}

    history = [once() for _ in range(k)]
    return once(), history


class TestDrift:
    def test_no_history_no_test(self) -> None:
        got = judge_drift({"a": 1.0}, [])
        assert (got.moved, got.p_value) == (False, None)

    def test_one_earlier_rescore_is_exact_mcnemar(self) -> None:
        before = {f"i{k}": 1.0 for k in range(40)}
        now = dict(before)
        for k in range(9):
            now[f"i{k}"] = 0.0
        now["i39"], before["i39"] = 1.0, 0.0
        got = judge_drift(now, [before])
        assert (got.down, got.up) == (9, 1)
        assert got.p_value == pytest.approx(stats.binomtest(9, 10, 0.5).pvalue)

    def test_stable_items_that_move_are_caught(self) -> None:
        rng = random.Random(3)
        current, history = rescores(rng, 300, 10, 0.08, 0.3)
        passing = [k for k in current if all(h[k] == 1.0 for h in history)][:15]
        for key in passing:
            current[key] = 0.0
        got = judge_drift(current, history)
        assert got.moved
        assert got.direction == "stricter"
        mirrored = judge_drift({k: 1 - v for k, v in current.items()},
                               [{k: 1 - v for k, v in h.items()} for h in history])  # fmt: skip
        assert mirrored.direction == "lenient"
        assert mirrored.p_value == pytest.approx(got.p_value)

    @pytest.mark.parametrize(
        ("flaky", "flip", "k"), [(0.02, 0.1, 5), (0.15, 0.4, 20), (0.08, 0.25, 2)]
    )
    def test_false_alarms_stay_rare_on_an_unchanged_judge(
        self, flaky: float, flip: float, k: int
    ) -> None:
        rng = random.Random(int(flaky * 1000) + k)
        alarms = sum(judge_drift(*rescores(rng, 300, k, flaky, flip)).moved for _ in range(300))
        assert alarms <= 2  # per-test alpha 3e-4: 300 tests expect 0.09

    @settings(max_examples=30, deadline=None)
    @given(st.randoms(use_true_random=False))
    def test_key_order_and_extra_keys_change_nothing(self, rng: random.Random) -> None:
        current, history = rescores(rng, 60, 4, 0.1, 0.3)
        got = judge_drift(current, history)
        shuffled = dict(sorted(current.items(), reverse=True))
        shuffled["only-now"] = 0.0
        again = judge_drift(shuffled, history)
        assert (again.p_value, again.down, again.up) == (got.p_value, got.down, got.up)


def test_default_alpha_keeps_30_rescores_under_one_percent() -> None:
    assert 1 - (1 - DEFAULT_ALPHA) ** 30 < 0.01


def test_the_null_rate_comes_from_the_deeper_half_of_the_history() -> None:
    """Flips seen only while items were young in the history (ambiguous items that agreed
    with themselves once) do not count towards the null of items stable in all of it."""
    from monitor.core.stats.sentinel import _past_leaves  # noqa: PLC0415

    keys = [f"k{i}" for i in range(100)]
    first = dict.fromkeys(keys, 1.0)
    later = {k: 0.0 if i < 20 else 1.0 for i, k in enumerate(keys)}
    # j = 2 and 3: 80 items stable before each, none leaves; j = 1 (20 leaves) is left out
    assert _past_leaves([first, later, later, later], keys) == (0, 160)
    # with two re-scores the one transition is the whole evidence
    assert _past_leaves([first, later], keys) == (20, 100)
