"""Tests for monitor.core.alerts: the alert state machine, fingerprints and alert content."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.alerts import (
    DEGRADED_ALERT,
    REGRESSION_ALERT,
    Action,
    Alert,
    AlertState,
    DesiredAlert,
    advance,
    alerts_from_verdicts,
    fingerprint,
    undelivered,
)
from monitor.core.model import ChangedItems, Run, RunStatus, ScoreSummary, Verdict, VerdictKind

T0 = datetime(2026, 1, 10, 8, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
RI = timedelta(hours=4)
FP = "f00dfeedf00dfeed"


def desired(active: bool, summary: str = "s") -> DesiredAlert:
    return DesiredAlert(
        fingerprint=FP,
        name=REGRESSION_ALERT,
        labels={"alertname": REGRESSION_ALERT, "monitor": "m"},
        annotations={"summary": summary},
        active=active,
    )


def alert(
    state: AlertState,
    *,
    since: datetime = T0,
    last_notified: datetime | None = None,
    resolved_at: datetime | None = None,
    streak: int = 0,
) -> Alert:
    return Alert(
        fingerprint=FP,
        name=REGRESSION_ALERT,
        labels={"alertname": REGRESSION_ALERT, "monitor": "m"},
        annotations={"summary": "old"},
        state=state,
        since=since,
        last_notified=last_notified,
        resolved_at=resolved_at,
        streak=streak,
    )


def run(**fields: Any) -> Run:
    values: dict[str, Any] = {
        "id": 17,
        "monitor": "intents-prod",
        "endpoint": "chat-prod",
        "benchmark": "support-intents",
        "benchmark_version": "v1",
        "trigger": "schedule",
        "status": RunStatus.SUCCEEDED,
        "started_at": T0,
        "n_items": 200,
        "n_errors": 2,
    }
    values.update(fields)
    return Run(**values)


def verdict(kind: VerdictKind = VerdictKind.REGRESSED, **fields: Any) -> Verdict:
    values: dict[str, Any] = {
        "scorer": "exact_match",
        "verdict": kind,
        "test": "poisson_binomial",
        "baseline": "rolling:5 (runs 12-16)",
        "p_value": 0.0003,
        "p_adjusted": 0.0012,
        "effect": -0.042,
        "effect_ci": (-0.059, -0.025),
        "baseline_score": 0.912,
        "changed": ChangedItems(
            pass_to_fail=tuple(f"item-{i}" for i in range(8)), fail_to_pass=("item-x",)
        ),
    }
    values.update(fields)
    return Verdict(**values)


# ---------------------------------------------------------------- state machine

NOW = T0 + 10 * HOUR

# (name, previous, active, pending_runs, expected state, action, since, last_notified,
#  resolved_at, streak); None as expected state means "no alert".
TABLE: list[tuple[Any, ...]] = [
    ("new active fires", None, True, 1, AlertState.FIRING, Action.NOTIFY_FIRING, NOW, NOW, None, 0),
    ("new inactive stays absent", None, False, 1, None, Action.NONE, None, None, None, 0),
    ("new active pends", None, True, 3, AlertState.PENDING, Action.NONE, NOW, None, None, 1),
    (
        "pending counts up",
        alert(AlertState.PENDING, streak=1),
        True,
        3,
        AlertState.PENDING,
        Action.NONE,
        T0,
        None,
        None,
        2,
    ),
    (
        "pending fires at pending_runs, keeping since",
        alert(AlertState.PENDING, streak=2),
        True,
        3,
        AlertState.FIRING,
        Action.NOTIFY_FIRING,
        T0,
        NOW,
        None,
        0,
    ),
    (
        "pending that clears resolves silently",
        alert(AlertState.PENDING, streak=2),
        False,
        3,
        AlertState.RESOLVED,
        Action.NONE,
        T0,
        None,
        NOW,
        0,
    ),
    (
        "firing within repeat_interval stays quiet",
        alert(AlertState.FIRING, last_notified=NOW - RI + HOUR),
        True,
        1,
        AlertState.FIRING,
        Action.NONE,
        T0,
        NOW - RI + HOUR,
        None,
        0,
    ),
    (
        "firing repeats once repeat_interval has passed",
        alert(AlertState.FIRING, last_notified=NOW - RI),
        True,
        1,
        AlertState.FIRING,
        Action.NOTIFY_REPEAT,
        T0,
        NOW,
        None,
        0,
    ),
    (
        "firing that clears resolves and notifies",
        alert(AlertState.FIRING, last_notified=T0),
        False,
        1,
        AlertState.RESOLVED,
        Action.NOTIFY_RESOLVED,
        T0,
        NOW,
        NOW,
        0,
    ),
    (
        "firing never notified retries the firing notification",
        alert(AlertState.FIRING),
        True,
        1,
        AlertState.FIRING,
        Action.NOTIFY_FIRING,
        T0,
        NOW,
        None,
        0,
    ),
    (
        "firing never notified resolves silently",
        alert(AlertState.FIRING),
        False,
        1,
        AlertState.RESOLVED,
        Action.NONE,
        T0,
        None,
        NOW,
        0,
    ),
    (
        "resolved stays resolved",
        alert(AlertState.RESOLVED, last_notified=T0 + HOUR, resolved_at=T0 + HOUR),
        False,
        1,
        AlertState.RESOLVED,
        Action.NONE,
        T0,
        T0 + HOUR,
        T0 + HOUR,
        0,
    ),
    (
        "resolved fires again as a new episode",
        alert(AlertState.RESOLVED, last_notified=T0 + HOUR, resolved_at=T0 + HOUR),
        True,
        1,
        AlertState.FIRING,
        Action.NOTIFY_FIRING,
        NOW,
        NOW,
        None,
        0,
    ),
    (
        "resolved pends again when pending_runs > 1",
        alert(AlertState.RESOLVED, last_notified=T0 + HOUR, resolved_at=T0 + HOUR),
        True,
        2,
        AlertState.PENDING,
        Action.NONE,
        NOW,
        None,
        None,
        1,
    ),
    (
        "an undelivered resolution is sent again",
        alert(AlertState.RESOLVED, last_notified=T0, resolved_at=T0 + HOUR),
        False,
        1,
        AlertState.RESOLVED,
        Action.NOTIFY_RESOLVED,
        T0,
        NOW,
        T0 + HOUR,
        0,
    ),
    (
        "an undelivered resolution then active continues firing quietly",
        alert(AlertState.RESOLVED, last_notified=NOW - HOUR, resolved_at=NOW - HOUR / 2),
        True,
        1,
        AlertState.FIRING,
        Action.NONE,
        T0,
        NOW - HOUR,
        None,
        0,
    ),
    (
        "an undelivered resolution then active repeats when due",
        alert(AlertState.RESOLVED, last_notified=T0, resolved_at=T0 + HOUR),
        True,
        3,
        AlertState.FIRING,
        Action.NOTIFY_REPEAT,
        T0,
        NOW,
        None,
        0,
    ),
]


class TestAdvanceTable:
    """Every transition of the state machine, one row each."""

    @pytest.mark.parametrize("row", [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
    def test_transition(self, row: tuple[Any, ...]) -> None:
        """The row's previous state and condition give the row's next state and action."""
        previous, active, pending_runs, state, action, *expected = row
        after, got = advance(
            previous, desired(active), NOW, repeat_interval=RI, pending_runs=pending_runs
        )
        assert got is action
        if state is None:
            assert after is None
            return
        assert after is not None
        assert after.state is state
        assert [after.since, after.last_notified, after.resolved_at, after.streak] == expected


class TestAdvanceDetails:
    """Annotations, validation and edge cases of `advance`."""

    def test_active_annotations_are_fresh_and_stamped_with_since(self) -> None:
        """A firing alert takes the latest run's annotations and ends its summary with since."""
        previous = alert(AlertState.FIRING, last_notified=NOW - HOUR)
        after, _ = advance(previous, desired(True, "new figures"), NOW, repeat_interval=RI)
        assert after is not None
        assert after.annotations["summary"] == "new figures, since 2026-01-10 08:30 UTC"
        assert after.annotations["since"] == "2026-01-10T08:30:00+00:00"

    def test_resolution_annotations_name_both_times(self) -> None:
        """A resolved alert carries the resolving run's summary, its since and resolved_at."""
        previous = alert(AlertState.FIRING, last_notified=T0)
        after, _ = advance(previous, desired(False, "back to normal"), NOW, repeat_interval=RI)
        assert after is not None
        assert after.annotations["summary"] == "back to normal (alert since 2026-01-10 08:30 UTC)"
        assert after.annotations["resolved_at"] == NOW.isoformat()

    def test_settled_resolution_is_returned_unchanged(self) -> None:
        """Inactive runs after a delivered resolution change nothing (no save needed)."""
        previous = alert(AlertState.RESOLVED, last_notified=T0, resolved_at=T0)
        after, action = advance(previous, desired(False), NOW, repeat_interval=RI)
        assert after is previous
        assert action is Action.NONE

    def test_zero_repeat_interval_repeats_every_active_run(self) -> None:
        """With repeat_interval 0 every active run re-notifies."""
        previous = alert(AlertState.FIRING, last_notified=NOW - timedelta(seconds=1))
        _, action = advance(previous, desired(True), NOW, repeat_interval=timedelta(0))
        assert action is Action.NOTIFY_REPEAT

    def test_pending_runs_below_one_is_rejected(self) -> None:
        """pending_runs must be at least 1."""
        with pytest.raises(ValueError, match="pending_runs"):
            advance(None, desired(True), NOW, repeat_interval=RI, pending_runs=0)

    def test_negative_repeat_interval_is_rejected(self) -> None:
        """A negative repeat interval is a programming error."""
        with pytest.raises(ValueError, match="repeat_interval"):
            advance(None, desired(True), NOW, repeat_interval=-RI)

    def test_mismatched_fingerprints_are_rejected(self) -> None:
        """Advancing one alert with another alert's condition is a programming error."""
        other = replace(alert(AlertState.FIRING), fingerprint="0" * 16)
        with pytest.raises(ValueError, match="fingerprints"):
            advance(other, desired(True), NOW, repeat_interval=RI)


class TestUndelivered:
    """What is saved when a notification was not delivered."""

    def test_failed_first_notification_stays_owed(self) -> None:
        """A firing notification that failed leaves last_notified None, so it is retried."""
        after, action = advance(None, desired(True), NOW, repeat_interval=RI)
        assert after is not None
        saved = undelivered(None, after, action)
        assert saved.state is AlertState.FIRING
        assert saved.last_notified is None
        retry, again = advance(saved, desired(True), NOW + HOUR, repeat_interval=RI)
        assert again is Action.NOTIFY_FIRING
        assert retry is not None
        assert retry.since == NOW

    def test_failed_repeat_stays_due(self) -> None:
        """A repeat that failed keeps the old last_notified, so the next run repeats."""
        previous = alert(AlertState.FIRING, last_notified=NOW - RI)
        after, action = advance(previous, desired(True), NOW, repeat_interval=RI)
        assert after is not None
        saved = undelivered(previous, after, action)
        assert saved.last_notified == NOW - RI
        _, again = advance(saved, desired(True), NOW + HOUR, repeat_interval=RI)
        assert again is Action.NOTIFY_REPEAT

    def test_failed_resolution_stays_owed(self) -> None:
        """A resolution that failed is resolved but still owed, and is sent next time."""
        previous = alert(AlertState.FIRING, last_notified=T0)
        after, action = advance(previous, desired(False), NOW, repeat_interval=RI)
        assert after is not None
        saved = undelivered(previous, after, action)
        assert saved.state is AlertState.RESOLVED
        assert saved.owes_resolution
        assert saved.notified_firing
        retry, again = advance(saved, desired(False), NOW + HOUR, repeat_interval=RI)
        assert again is Action.NOTIFY_RESOLVED
        assert retry is not None
        assert retry.resolved_at == NOW
        assert not retry.owes_resolution

    def test_nothing_to_send_saves_the_advanced_state(self) -> None:
        """With Action.NONE the advanced alert is saved as it is."""
        after, action = advance(None, desired(True), NOW, repeat_interval=RI, pending_runs=2)
        assert after is not None
        assert undelivered(None, after, action) is after


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, int, list[tuple[bool, bool, int]]]:
    """(pending_runs, repeat minutes, [(active, delivered, minutes since previous run)])."""
    pending_runs = draw(st.integers(1, 3))
    repeat = draw(st.integers(0, 600))
    steps = draw(
        st.lists(
            st.tuples(st.booleans(), st.booleans(), st.integers(1, 400)), min_size=1, max_size=40
        )
    )
    return pending_runs, repeat, steps


def simulate(
    pending_runs: int, repeat_minutes: int, steps: list[tuple[bool, bool, int]]
) -> tuple[list[tuple[datetime, Action]], list[bool], Alert | None]:
    """Run the service's loop: advance, deliver (or not), save. Returns the delivered
    notifications, the condition per step, and the final state."""
    now = T0
    state: Alert | None = None
    sent: list[tuple[datetime, Action]] = []
    for active, delivered, gap in steps:
        now += timedelta(minutes=gap)
        after, action = advance(
            state,
            desired(active),
            now,
            repeat_interval=timedelta(minutes=repeat_minutes),
            pending_runs=pending_runs,
        )
        if after is None:
            assert action is Action.NONE
            continue
        if action is not Action.NONE and not delivered:
            after = undelivered(state, after, action)
        elif action is not Action.NONE:
            sent.append((now, action))
        state = after
    return sent, [active for active, _, _ in steps], state


class TestStateMachineProperties:
    """Hypothesis: arbitrary condition histories with arbitrary delivery failures."""

    @settings(max_examples=400, deadline=None)
    @given(histories())
    def test_notifications_alternate_firing_and_resolved(
        self, history: tuple[int, int, list[tuple[bool, bool, int]]]
    ) -> None:
        """Delivered notifications read (firing repeat* resolved)*: never two firings or two
        resolutions in a row, never a resolution without a firing."""
        sent, _, _ = simulate(*history)
        firing = False
        for _, action in sent:
            if action is Action.NOTIFY_FIRING:
                assert not firing
                firing = True
            elif action is Action.NOTIFY_REPEAT:
                assert firing
            else:
                assert firing
                firing = False

    @settings(max_examples=400, deadline=None)
    @given(histories())
    def test_no_notification_twice_within_repeat_interval(
        self, history: tuple[int, int, list[tuple[bool, bool, int]]]
    ) -> None:
        """Within one firing episode, delivered firing/repeat notifications are at least
        repeat_interval apart."""
        _, repeat_minutes, _ = history
        sent, _, _ = simulate(*history)
        last: datetime | None = None
        for moment, action in sent:
            if action is Action.NOTIFY_RESOLVED:
                last = None
                continue
            if last is not None:
                assert moment - last >= timedelta(minutes=repeat_minutes)
            last = moment

    @settings(max_examples=400, deadline=None)
    @given(histories(), st.integers(1, 5))
    def test_every_firing_gets_exactly_one_resolution_once_clear(
        self, history: tuple[int, int, list[tuple[bool, bool, int]]], clear_runs: int
    ) -> None:
        """When the condition clears and delivery works again, every delivered firing
        episode ends with exactly one delivered resolution, and nothing more is sent."""
        pending_runs, repeat_minutes, steps = history
        tail = [(False, True, 30)] * clear_runs
        sent, _, final = simulate(pending_runs, repeat_minutes, steps + tail)
        firings = sum(1 for _, a in sent if a is Action.NOTIFY_FIRING)
        resolutions = sum(1 for _, a in sent if a is Action.NOTIFY_RESOLVED)
        assert firings == resolutions
        if sent:
            assert sent[-1][1] is Action.NOTIFY_RESOLVED
        assert final is None or (final.state is AlertState.RESOLVED and not final.notified_firing)
        # once clear and delivered, more clear runs send nothing
        _, _, longer = simulate(pending_runs, repeat_minutes, [*steps, *tail, (False, True, 30)])
        assert longer == final

    @settings(max_examples=400, deadline=None)
    @given(histories())
    def test_firing_needs_pending_runs_consecutive_active_runs(
        self, history: tuple[int, int, list[tuple[bool, bool, int]]]
    ) -> None:
        """A firing notification is only delivered after pending_runs active runs in a row."""
        pending_runs, repeat_minutes, steps = history
        for end in range(1, len(steps) + 1):
            before, _, _ = simulate(pending_runs, repeat_minutes, steps[: end - 1])
            after, actives, _ = simulate(pending_runs, repeat_minutes, steps[:end])
            new = after[len(before) :]
            if any(action is Action.NOTIFY_FIRING for _, action in new):
                assert end >= pending_runs
                assert all(actives[end - pending_runs : end])
            if any(action is Action.NOTIFY_RESOLVED for _, action in new):
                assert not actives[end - 1]


# ---------------------------------------------------------------- fingerprints


class TestFingerprint:
    """The stable identity hash of a label set."""

    def test_order_does_not_matter(self) -> None:
        """The same labels in another order give the same fingerprint."""
        assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})

    def test_values_matter(self) -> None:
        """Different values give different fingerprints."""
        assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})
        assert fingerprint({"a": "1", "b": ""}) != fingerprint({"a": "1"})

    def test_is_stable_across_releases(self) -> None:
        """The hash is pinned: stored alerts must keep matching after an upgrade."""
        assert fingerprint({"alertname": "X", "monitor": "m"}) == "1145101a9dc1cb4a"

    @given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=6))
    def test_is_sixteen_hex_digits(self, labels: dict[str, str]) -> None:
        """Every fingerprint is 16 lowercase hex digits."""
        value = fingerprint(labels)
        assert len(value) == 16
        int(value, 16)


# ---------------------------------------------------------------- content


class TestRegressionContent:
    """Labels and annotations of MonitorRegression alerts."""

    def test_labels(self) -> None:
        """A regression alert is labelled by monitor, endpoint, scorer, benchmark, severity."""
        (wanted, _) = alerts_from_verdicts(run(), [verdict()])
        assert wanted.name == REGRESSION_ALERT
        assert wanted.active
        assert dict(wanted.labels) == {
            "alertname": "MonitorRegression",
            "monitor": "intents-prod",
            "endpoint": "chat-prod",
            "scorer": "exact_match",
            "benchmark": "support-intents",
            "severity": "critical",
        }

    def test_fingerprint_ignores_descriptive_labels(self) -> None:
        """Changing the monitor's benchmark keeps the alert's identity."""
        a = alerts_from_verdicts(run(), [verdict()])[0]
        b = alerts_from_verdicts(run(benchmark="other"), [verdict()])[0]
        assert a.fingerprint == b.fingerprint
        assert a.fingerprint == fingerprint(
            {
                "alertname": "MonitorRegression",
                "monitor": "intents-prod",
                "endpoint": "chat-prod",
                "scorer": "exact_match",
            }
        )

    def test_summary_reads_like_the_design(self) -> None:
        """The summary names what dropped, by how much with CI, the p-value and baseline."""
        (wanted, _) = alerts_from_verdicts(run(), [verdict()])
        assert wanted.annotations["summary"] == (
            "intents-prod on chat-prod: exact_match dropped 4.2 points (0.912 → 0.870, "
            "95% CI of the change [-5.9, -2.5]), p=0.0003 against rolling:5 (runs 12-16)"
        )

    def test_description_has_scores_test_and_items(self) -> None:
        """The description gives the current CI, the adjusted p-value and the first items."""
        scores = [ScoreSummary("exact_match", 0.87, 0.851, 0.889, 200)]
        (wanted, _) = alerts_from_verdicts(run(), [verdict()], scores=scores, max_items=3)
        text = wanted.annotations["description"]
        assert "Current score 0.870 (95% CI 0.851 to 0.889) against a baseline of 0.912" in text
        assert "adjusted for multiple testing 0.0012" in text
        assert "8 items went from pass to fail: item-0, item-1, item-2 and 5 more." in text
        assert "1 item went from fail to pass: item-x." in text

    def test_machine_annotations(self) -> None:
        """Figures, changed items and links are separate annotations for receivers."""
        (wanted, _) = alerts_from_verdicts(
            run(),
            [verdict()],
            api_base="http://monitor:9464/",
            dashboard_url="https://grafana.example/",
        )
        notes = wanted.annotations
        assert float(notes["effect"]) == -0.042
        assert float(notes["current_score"]) == pytest.approx(0.87)
        assert (notes["effect_ci_lower"], notes["effect_ci_upper"]) == ("-0.059", "-0.025")
        assert (notes["p_value"], notes["p_adjusted"]) == ("0.0003", "0.0012")
        assert json.loads(notes["pass_to_fail"]) == [f"item-{i}" for i in range(5)]
        assert notes["pass_to_fail_count"] == "8"
        assert notes["run_url"] == "http://monitor:9464/api/v1/runs/17"
        assert notes["items_url"] == "http://monitor:9464/api/v1/runs/17/items?changed=true"
        assert notes["run_page_url"] == "http://monitor:9464/ui/runs/17"
        assert notes["items_page_url"] == "http://monitor:9464/ui/runs/17#flipped"
        assert notes["trend_url"] == "http://monitor:9464/ui/monitors/intents-prod/chat-prod"
        assert notes["dashboard_url"] == (
            "https://grafana.example/d/monitor-detail/monitor-detail"
            "?var-monitor=intents-prod&var-endpoint=chat-prod&var-scorer=exact_match"
        )
        assert all(isinstance(v, str) for v in notes.values())

    def test_dashboard_url_with_a_dashboard_path_is_kept(self) -> None:
        """A dashboard_url that already names a dashboard gets only the variables."""
        (wanted, _) = alerts_from_verdicts(
            run(), [verdict()], dashboard_url="https://g.example/d/abc/mine?orgId=2"
        )
        assert wanted.annotations["dashboard_url"].startswith(
            "https://g.example/d/abc/mine?orgId=2&var-monitor=intents-prod"
        )

    def test_no_links_without_urls(self) -> None:
        """Without api_base and dashboard_url the alert has no link annotations."""
        (wanted, _) = alerts_from_verdicts(run(), [verdict()])
        assert not {"run_url", "items_url", "run_page_url", "trend_url", "dashboard_url"} & set(
            wanted.annotations
        )

    def test_scores_outside_unit_interval_are_not_points(self) -> None:
        """A score on another scale is described in its own units."""
        v = verdict(baseline_score=31.0, effect=-4.2, effect_ci=(-5.9, -2.5))
        (wanted, _) = alerts_from_verdicts(run(), [v])
        assert (
            "exact_match dropped 4.2 (31.000 → 26.800, 95% CI of the change [-5.9, -2.5])"
            in (wanted.annotations["summary"])
        )

    def test_missing_and_non_finite_figures_are_left_out(self) -> None:
        """NaN and missing numbers never reach the text or the annotations."""
        v = verdict(effect=math.nan, effect_ci=None, p_value=None, baseline_score=None)
        (wanted, _) = alerts_from_verdicts(run(), [v])
        assert wanted.annotations["summary"] == (
            "intents-prod on chat-prod: exact_match regressed against rolling:5 (runs 12-16)"
        )
        assert not {"effect", "p_value", "baseline_score"} & set(wanted.annotations)
        assert "nan" not in json.dumps(dict(wanted.annotations)).lower()

    def test_ci_level_is_named(self) -> None:
        """The confidence level given is the one the text names."""
        (wanted, _) = alerts_from_verdicts(run(), [verdict()], ci_level=0.99)
        assert "99% CI of the change" in wanted.annotations["summary"]

    @pytest.mark.parametrize(
        ("kind", "active"),
        [
            (VerdictKind.REGRESSED, True),
            (VerdictKind.OK, False),
            (VerdictKind.WARN, False),
            (VerdictKind.IMPROVED, False),
        ],
    )
    def test_judged_verdicts_raise_or_clear(self, kind: VerdictKind, active: bool) -> None:
        """Only a regressed verdict is active; other judged verdicts clear the alert."""
        alerts = [
            a for a in alerts_from_verdicts(run(), [verdict(kind)]) if a.name == REGRESSION_ALERT
        ]
        assert [a.active for a in alerts] == [active]

    def test_recovery_summary(self) -> None:
        """A clearing verdict says the scorer is no longer regressed, with its figures."""
        v = verdict(VerdictKind.OK, effect=-0.002, p_value=0.41)
        (wanted, _) = alerts_from_verdicts(run(id=20), [v])
        assert wanted.annotations["summary"] == (
            "intents-prod on chat-prod: exact_match is no longer regressed (ok, 0.910 against "
            "0.912, p=0.41) against rolling:5 (runs 12-16), run 20"
        )

    @pytest.mark.parametrize(
        "kind", [VerdictKind.NO_BASELINE, VerdictKind.INSUFFICIENT_DATA, VerdictKind.DEGRADED]
    )
    def test_unjudged_verdicts_leave_regressions_alone(self, kind: VerdictKind) -> None:
        """Verdicts without evidence produce no regression alert at all."""
        alerts = alerts_from_verdicts(run(), [verdict(kind)])
        assert [a.name for a in alerts if a.name == REGRESSION_ALERT] == []


class TestDegradedContent:
    """MonitorDegraded alerts: one per (monitor, endpoint)."""

    def test_degraded_run_raises_it(self) -> None:
        """A degraded run is an active warning naming the error share."""
        alerts = alerts_from_verdicts(
            run(status=RunStatus.DEGRADED, n_errors=30), [verdict(VerdictKind.DEGRADED)]
        )
        assert len(alerts) == 1
        (wanted,) = alerts
        assert wanted.name == DEGRADED_ALERT
        assert wanted.active
        assert wanted.labels["severity"] == "warning"
        assert "scorer" not in wanted.labels
        assert wanted.annotations["summary"] == (
            "intents-prod on chat-prod: run 17 degraded, 30 of 200 items got no usable answer "
            "(15.0%); quality was not judged"
        )

    def test_succeeded_run_clears_it(self) -> None:
        """A succeeded run gives an inactive degraded alert alongside the regression alert."""
        names = {a.name: a.active for a in alerts_from_verdicts(run(), [verdict()])}
        assert names == {REGRESSION_ALERT: True, DEGRADED_ALERT: False}

    @pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.ABORTED])
    def test_failed_runs_say_nothing(self, status: RunStatus) -> None:
        """Failed and aborted runs neither raise nor clear anything."""
        assert alerts_from_verdicts(run(status=status), []) == []

    def test_dashboard_link_points_at_endpoint_health(self) -> None:
        """The degraded alert links the endpoint health dashboard."""
        (wanted,) = alerts_from_verdicts(
            run(status=RunStatus.DEGRADED), [], dashboard_url="https://g.example"
        )
        assert wanted.annotations["dashboard_url"] == (
            "https://g.example/d/monitor-endpoint-health?var-endpoint=chat-prod"
        )


class TestVanishedScorers:
    """Regression alerts of scorers that a judged run no longer has are cleared."""

    def open_alert(self, scorer: str, endpoint: str = "chat-prod") -> Alert:
        identity = {
            "alertname": REGRESSION_ALERT,
            "monitor": "intents-prod",
            "endpoint": endpoint,
            "scorer": scorer,
        }
        return Alert(
            fingerprint=fingerprint(identity),
            name=REGRESSION_ALERT,
            labels=identity,
            annotations={},
            state=AlertState.FIRING,
            since=T0,
            last_notified=T0,
        )

    def test_vanished_scorer_is_cleared(self) -> None:
        """A firing alert of a removed scorer gets an inactive condition."""
        gone = self.open_alert("old_scorer")
        alerts = alerts_from_verdicts(run(), [verdict(VerdictKind.OK)], open_alerts=[gone])
        cleared = [a for a in alerts if a.fingerprint == gone.fingerprint]
        assert len(cleared) == 1
        assert not cleared[0].active
        assert "old_scorer is no longer evaluated" in cleared[0].annotations["summary"]

    def test_other_endpoints_and_present_scorers_are_untouched(self) -> None:
        """Alerts of another endpoint or of a scorer the run judged are not duplicated."""
        other = self.open_alert("old_scorer", endpoint="chat-canary")
        present = self.open_alert("exact_match")
        alerts = alerts_from_verdicts(run(), [verdict()], open_alerts=[other, present])
        fingerprints = [a.fingerprint for a in alerts]
        assert other.fingerprint not in fingerprints
        assert fingerprints.count(present.fingerprint) == 1

    def test_unjudged_run_clears_nothing(self) -> None:
        """A run without judged verdicts is no evidence that a scorer vanished."""
        gone = self.open_alert("old_scorer")
        alerts = alerts_from_verdicts(
            run(), [verdict(VerdictKind.INSUFFICIENT_DATA)], open_alerts=[gone]
        )
        assert gone.fingerprint not in [a.fingerprint for a in alerts]
