"""The adaptive limits' state machines (monitor/core/concurrency.py): known steps and
Hypothesis properties over arbitrary sequences of outcomes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.concurrency import AimdLimit, LearnedRate

# one outcome: (congested?, seconds since the previous outcome, Retry-After or None)
outcomes = st.lists(
    st.tuples(
        st.booleans(),
        st.floats(min_value=0.0, max_value=5.0),
        st.none() | st.floats(min_value=0.0, max_value=10.0),
    ),
    max_size=300,
)


class TestAimdLimit:
    def test_starts_at_the_maximum(self) -> None:
        """An endpoint that never pushes back runs as with a fixed limit."""
        assert AimdLimit(16).limit == 16

    def test_halves_once_per_epoch(self) -> None:
        """The 429s of one burst, all sent at the old limit, shrink it once, not to 1."""
        control = AimdLimit(32)
        tickets = [control.ticket() for _ in range(32)]
        shrunk = [control.on_congestion(t, now=1.0) for t in tickets]
        assert shrunk == [True] + [False] * 31
        assert control.limit == 16
        assert control.on_congestion(control.ticket(), now=1.1)
        assert control.limit == 8

    def test_never_below_one(self) -> None:
        control = AimdLimit(4)
        for k in range(10):
            control.on_congestion(control.ticket(), now=float(k))
        assert control.limit == 1

    def test_grows_one_slot_per_limit_of_successes(self) -> None:
        """Additive increase of 1/limit per success: from 4, five successes make 5 (four
        add only 0.92), and five more make 6."""
        control = AimdLimit(8)
        control.on_congestion(control.ticket(), now=0.0)
        assert control.limit == 4
        grew = [control.on_success(control.ticket(), now=1.0) for _ in range(5)]
        assert grew == [False, False, False, False, True]
        assert control.limit == 5
        grew = [control.on_success(control.ticket(), now=1.0) for _ in range(5)]
        assert grew[-1]
        assert not any(grew[:-1])
        assert control.limit == 6

    def test_growth_waits_for_retry_after(self) -> None:
        """Answers arriving before the server's Retry-After has passed do not grow it."""
        control = AimdLimit(8)
        control.on_congestion(control.ticket(), now=10.0, retry_after=2.0)
        for _ in range(50):
            assert not control.on_success(control.ticket(), now=11.9)
        assert control.limit == 4
        for _ in range(50):
            control.on_success(control.ticket(), now=12.0)
        assert control.limit == 8

    def test_old_answers_do_not_grow_a_new_limit(self) -> None:
        """A success of a request sent before the decrease says nothing about the new limit."""
        control = AimdLimit(8)
        old = control.ticket()
        control.on_congestion(control.ticket(), now=0.0)
        assert not any(control.on_success(old, now=1.0) for _ in range(20))

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"maximum": 0}, "maximum"),
            ({"maximum": 4, "increase": 0.0}, "increase"),
            ({"maximum": 4, "decrease": 1.0}, "decrease"),
        ],
    )
    def test_rejects_bad_parameters(self, kwargs: dict[str, float], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            AimdLimit(**kwargs)  # type: ignore[arg-type]

    @given(maximum=st.integers(1, 64), steps=outcomes)
    def test_limit_stays_within_one_and_maximum(
        self, maximum: int, steps: list[tuple[bool, float, float | None]]
    ) -> None:
        control = AimdLimit(maximum)
        now = 0.0
        for congested, dt, retry_after in steps:
            now += dt
            ticket = control.ticket()
            if congested:
                control.on_congestion(ticket, now, retry_after)
            else:
                control.on_success(ticket, now)
            assert 1 <= control.limit <= maximum
            assert isinstance(control.limit, int)

    @given(maximum=st.integers(2, 64), steps=outcomes)
    def test_shrinks_on_congestion_and_grows_back(
        self, maximum: int, steps: list[tuple[bool, float, float | None]]
    ) -> None:
        """After any history, a fresh congestion signal lowers a limit above 1, and enough
        successes after its Retry-After bring it back to the maximum."""
        control = AimdLimit(maximum)
        now = 0.0
        for congested, dt, retry_after in steps:
            now += dt
            if congested:
                control.on_congestion(control.ticket(), now, retry_after)
            else:
                control.on_success(control.ticket(), now)
        before = control.limit
        control.on_congestion(control.ticket(), now, 1.0)
        assert control.limit < before or before == 1
        now += 10.0  # past every Retry-After of the history (at most 10 s)
        for _ in range(maximum * maximum):
            control.on_success(control.ticket(), now)
        assert control.limit == maximum


class TestLearnedRate:
    def test_nothing_known_before_two_signals(self) -> None:
        learned = LearnedRate()
        for _ in range(100):
            learned.on_success(0.5)
        assert learned.on_congestion(1.0, retry_after=5.0) is None
        assert learned.rate is None

    def test_accepted_over_the_time_between_openings(self) -> None:
        """A fixed window of 60 s granting 600: the rate learned is 10/s."""
        learned = LearnedRate(probe=0.0)
        learned.on_congestion(20.0, retry_after=40.0)  # opens at 60
        for k in range(600):
            learned.on_success(60.0 + k * 0.02)
        assert learned.on_congestion(72.0, retry_after=48.0) == pytest.approx(10.0)  # at 120

    def test_same_period_learns_nothing_new(self) -> None:
        """Further 429s pointing at the same reopening do not reset the count."""
        learned = LearnedRate(probe=0.0)
        learned.on_congestion(0.0, retry_after=10.0)
        for _ in range(50):
            learned.on_success(11.0)
        assert learned.on_congestion(12.0, retry_after=8.0) == pytest.approx(50 / 10)  # 20
        learned.on_success(12.5)
        assert learned.on_congestion(13.0, retry_after=7.0) == pytest.approx(50 / 10)  # 20
        for _ in range(19):
            learned.on_success(21.0)
        # the count went on: 1 + 19 accepted from the opening at 20 to the one at 24
        assert learned.on_congestion(22.0, retry_after=2.0) == pytest.approx(20 / 4)

    def test_probes_upward_without_signals(self) -> None:
        learned = LearnedRate(probe=0.01)
        learned.on_congestion(0.0, retry_after=10.0)
        for _ in range(100):
            learned.on_success(15.0)
        assert learned.on_congestion(15.0, retry_after=5.0) == pytest.approx(10.0)
        learned.on_success(30.0)  # 10 s after the reopening: +10 %
        assert learned.rate == pytest.approx(11.0)

    @given(steps=outcomes)
    def test_rate_is_none_or_positive_and_finite(
        self, steps: list[tuple[bool, float, float | None]]
    ) -> None:
        learned = LearnedRate()
        now = 0.0
        for congested, dt, retry_after in steps:
            now += dt
            if congested:
                learned.on_congestion(now, retry_after or 0.0)
            else:
                learned.on_success(now)
            assert learned.rate is None or 0.0 < learned.rate < float("inf")
