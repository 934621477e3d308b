"""The built-in notifier's alert state machine and alert content (pure: no I/O, no clock).

Two alerts come out of a judged run:

* ``MonitorRegression`` (severity ``critical``), one per (monitor, endpoint, scorer):
  active while the latest *judged* verdict of that scorer is ``regressed``. Judged means
  ok, warn, improved or regressed; ``no_baseline``, ``insufficient_data`` and ``degraded``
  verdicts carry no evidence either way and leave the alert as it is.
* ``MonitorDegraded`` (severity ``warning``), one per (monitor, endpoint): active while
  the latest finished run is degraded (too many endpoint errors to judge quality);
  inactive after a succeeded run; failed and aborted runs leave it as it is.

An alert is identified by its `fingerprint`, a hash of the identity labels ``alertname,
monitor, endpoint, scorer`` only, so changing a monitor's benchmark (a label too) updates
the alert rather than orphaning it.

State machine (`advance`), run by run, per fingerprint::

    (none) --active--> pending --active x pending_runs--> firing --inactive--> resolved
                          |                                  ^  |                  |
                          +--inactive--> resolved (silent)   |  +--active, every   |
                                                             |     repeat_interval |
                                                             +------active---------+

* A condition seen on one run is *pending*; it fires once seen on `pending_runs`
  consecutive judged runs. The default of 1 fires at the first regressed verdict: the
  statistics (alpha, min_effect, Benjamini-Hochberg, CUSUM) already control false alarms,
  so waiting for a second run would only delay a real page by one schedule interval.
* A firing alert is notified when it starts firing (``notify_firing``), again at the first
  run at least `repeat_interval` after the last notification while it stays active
  (``notify_repeat``), and once when the next judged run is not regressed
  (``notify_resolved``). A pending alert that clears resolves silently: nobody was told.
* `advance` assumes delivery succeeds. When it did not, save `undelivered(...)` instead: it
  keeps what the receivers were last told, so the next run retries. An alert is *owed* a
  notification when it is firing but ``last_notified`` is None (the first notification
  failed), or resolved with ``last_notified < resolved_at`` (the resolution failed). As
  long as a resolution is owed the receivers still believe the alert fires: if the
  condition comes back, the alert simply continues firing (no new ``notify_firing``).

Times (`now`) must increase from call to call; every datetime is timezone-aware.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import quote, urlencode

from monitor.core.model import Run, RunStatus, ScoreSummary, Verdict, VerdictKind

__all__ = [
    "BUDGET_ALERT",
    "DEGRADED_ALERT",
    "IDENTITY_LABELS",
    "MAX_CHANGED_ITEMS",
    "REGRESSION_ALERT",
    "Action",
    "Alert",
    "AlertState",
    "DesiredAlert",
    "advance",
    "alerts_from_verdicts",
    "fingerprint",
    "undelivered",
]

REGRESSION_ALERT = "MonitorRegression"
DEGRADED_ALERT = "MonitorDegraded"
BUDGET_ALERT = "MonitorBudgetExceeded"

# Labels that identify an alert; the others (benchmark, severity) describe it.
IDENTITY_LABELS: tuple[str, ...] = ("alertname", "monitor", "endpoint", "scorer")

# How many flipped item keys an alert quotes (per direction); the API lists them all.
MAX_CHANGED_ITEMS = 5

# Verdicts that compare the run with its baseline and so can raise or clear a regression.
JUDGED: frozenset[VerdictKind] = frozenset(
    {VerdictKind.OK, VerdictKind.WARN, VerdictKind.IMPROVED, VerdictKind.REGRESSED}
)


class AlertState(StrEnum):
    """Where one alert stands."""

    PENDING = "pending"  # condition seen, fewer than `pending_runs` runs in a row
    FIRING = "firing"
    RESOLVED = "resolved"


class Action(StrEnum):
    """What `advance` asks the notifier to send for one alert."""

    NONE = "none"
    NOTIFY_FIRING = "notify_firing"
    NOTIFY_REPEAT = "notify_repeat"
    NOTIFY_RESOLVED = "notify_resolved"


@dataclass(frozen=True, slots=True)
class DesiredAlert:
    """What one run says about one alert: its labels, fresh annotations, and whether the
    condition holds (`active`). `advance` turns it into the next `Alert`."""

    fingerprint: str
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    active: bool


@dataclass(frozen=True, slots=True)
class Alert:
    """The stored state of one alert.

    `since` is when the current episode started (first pending or firing run);
    `last_notified` when a notification of the current episode was last delivered (None
    while pending, and after an episode that was never notified);
    `resolved_at` when the episode ended; `streak` counts consecutive active runs while
    pending (0 otherwise).
    """

    fingerprint: str
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: AlertState
    since: datetime
    last_notified: datetime | None = None
    resolved_at: datetime | None = None
    streak: int = field(default=0)

    @property
    def owes_resolution(self) -> bool:
        """Resolved, but the receivers were last told it fires (delivery failed)."""
        return (
            self.state is AlertState.RESOLVED
            and self.last_notified is not None
            and self.resolved_at is not None
            and self.last_notified < self.resolved_at
        )

    @property
    def notified_firing(self) -> bool:
        """Whether the receivers currently believe this alert fires."""
        if self.state is AlertState.FIRING:
            return self.last_notified is not None
        return self.owes_resolution


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit hash of `labels` (order-independent)."""
    canonical = json.dumps(sorted(labels.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- state machine


def advance(
    previous: Alert | None,
    desired: DesiredAlert,
    now: datetime,
    *,
    repeat_interval: timedelta,
    pending_runs: int = 1,
) -> tuple[Alert | None, Action]:
    """The next state of one alert after a run, and the notification to send.

    Returns ``(None, Action.NONE)`` when there is no alert and the condition is inactive.
    The returned alert assumes the notification is delivered; see `undelivered`.
    """
    if pending_runs < 1:
        raise ValueError(f"pending_runs must be at least 1, got {pending_runs}")
    if repeat_interval < timedelta(0):
        raise ValueError("repeat_interval must not be negative")
    if previous is not None and previous.fingerprint != desired.fingerprint:
        raise ValueError("previous and desired alerts have different fingerprints")
    if desired.active:
        return _advance_active(previous, desired, now, repeat_interval, pending_runs)
    return _advance_inactive(previous, desired, now)


def _advance_active(
    previous: Alert | None,
    desired: DesiredAlert,
    now: datetime,
    repeat_interval: timedelta,
    pending_runs: int,
) -> tuple[Alert, Action]:
    last = previous.last_notified if previous is not None else None
    if previous is not None and last is not None and previous.notified_firing:
        # The receivers believe it fires: continue the episode, repeat when due.
        due = now - last >= repeat_interval
        alert = _alert(desired, AlertState.FIRING, previous.since, now if due else last)
        return alert, Action.NOTIFY_REPEAT if due else Action.NONE
    if previous is not None and previous.state is AlertState.FIRING:
        # Firing, but its first notification was never delivered: try again.
        return _alert(desired, AlertState.FIRING, previous.since, now), Action.NOTIFY_FIRING
    continuing = previous is not None and previous.state is AlertState.PENDING
    streak = previous.streak + 1 if previous is not None and continuing else 1
    since = previous.since if previous is not None and continuing else now
    if streak >= pending_runs:
        return _alert(desired, AlertState.FIRING, since, now), Action.NOTIFY_FIRING
    return _alert(desired, AlertState.PENDING, since, None, streak=streak), Action.NONE


def _advance_inactive(
    previous: Alert | None, desired: DesiredAlert, now: datetime
) -> tuple[Alert | None, Action]:
    if previous is None:
        return None, Action.NONE
    if previous.owes_resolution:
        # A resolution that was not delivered: send it again, with its original content.
        return replace(previous, last_notified=now), Action.NOTIFY_RESOLVED
    if previous.state is AlertState.RESOLVED:
        return previous, Action.NONE
    resolved = _alert(desired, AlertState.RESOLVED, previous.since, None, resolved_at=now)
    if previous.notified_firing:
        return replace(resolved, last_notified=now), Action.NOTIFY_RESOLVED
    return resolved, Action.NONE  # pending, or firing but never notified: resolve silently


def undelivered(previous: Alert | None, advanced: Alert, action: Action) -> Alert:
    """The state to save when the notification `advance` asked for was not delivered.

    The next run then retries it: a first firing notification stays owed
    (``last_notified`` None), a repeat stays due, a resolution stays owed.
    """
    before = previous.last_notified if previous is not None else None
    if action is Action.NOTIFY_FIRING:
        return replace(advanced, last_notified=None)
    if action in {Action.NOTIFY_REPEAT, Action.NOTIFY_RESOLVED}:
        return replace(advanced, last_notified=before)
    return advanced


def _alert(
    desired: DesiredAlert,
    state: AlertState,
    since: datetime,
    last_notified: datetime | None,
    *,
    resolved_at: datetime | None = None,
    streak: int = 0,
) -> Alert:
    return Alert(
        fingerprint=desired.fingerprint,
        name=desired.name,
        labels=dict(desired.labels),
        annotations=_stamp(desired.annotations, since, resolved_at),
        state=state,
        since=since,
        last_notified=last_notified,
        resolved_at=resolved_at,
        streak=streak,
    )


def _stamp(
    annotations: Mapping[str, str], since: datetime, resolved_at: datetime | None
) -> dict[str, str]:
    """Add the episode's times to the annotations and to the end of the summary."""
    out = dict(annotations)
    out["since"] = _iso(since)
    summary = out.get("summary", "")
    if resolved_at is None:
        out["summary"] = f"{summary}, since {_human_time(since)}"
    else:
        out["resolved_at"] = _iso(resolved_at)
        out["summary"] = f"{summary} (alert since {_human_time(since)})"
    return out


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _human_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- content


def alerts_from_verdicts(
    run: Run,
    verdicts: Iterable[Verdict],
    *,
    api_base: str | None = None,
    dashboard_url: str | None = None,
    scores: Iterable[ScoreSummary] = (),
    open_alerts: Iterable[Alert] = (),
    ci_level: float = 0.95,
    max_items: int = MAX_CHANGED_ITEMS,
) -> list[DesiredAlert]:
    """The alerts a finished run raises or clears, with their labels and annotations.

    `api_base` (e.g. ``http://monitor:9464``) and `dashboard_url` (Grafana's base URL, or
    a dashboard URL containing ``/d/``) make the links; `scores` adds the current score's
    CI; `open_alerts` (the stored firing alerts) lets a judged run clear the regression
    alert of a scorer it no longer has (a scorer removed from the benchmark).
    """
    verdict_list = list(verdicts)
    open_alerts = list(open_alerts)
    links = _Links(run, api_base, dashboard_url)
    score_by_name = {s.scorer: s for s in scores}
    judged_scorers: dict[str, Verdict] = {}
    for verdict in verdict_list:
        if verdict.verdict in JUDGED:
            judged_scorers[verdict.scorer] = verdict  # the last one wins
    desired = [
        _regression_alert(
            run,
            verdict,
            score_by_name.get(verdict.scorer),
            links,
            ci_level=ci_level,
            max_items=max_items,
        )
        for verdict in judged_scorers.values()
    ]
    if judged_scorers:
        desired.extend(_vanished(run, set(judged_scorers), open_alerts, links))
    degraded = _degraded_alert(run, verdict_list, links)
    if degraded is not None:
        desired.append(degraded)
    budget = _budget_alert(run, links, {a.fingerprint for a in open_alerts})
    if budget is not None:
        desired.append(budget)
    return desired


class _Links:
    """Links from an alert to the run in the API and to the Grafana dashboards."""

    def __init__(self, run: Run, api_base: str | None, dashboard_url: str | None) -> None:
        self.run = run
        self.api = api_base.rstrip("/") if api_base else None
        self.grafana = dashboard_url.rstrip("/") if dashboard_url else None

    def run_links(self) -> dict[str, str]:
        if self.api is None:
            return {}
        run_url = f"{self.api}/api/v1/runs/{self.run.id}"
        page = f"{self.api}/ui/runs/{self.run.id}"
        pair = f"{quote(self.run.monitor, safe='')}/{quote(self.run.endpoint, safe='')}"
        return {
            "run_url": run_url,
            "items_url": f"{run_url}/items?changed=true",
            # the web pages (docs/ui.md): a person reads these, a program the two above
            "run_page_url": page,
            "items_page_url": f"{page}#flipped",
            "trend_url": f"{self.api}/ui/monitors/{pair}",
        }

    def dashboard(self, path: str, variables: Mapping[str, str]) -> dict[str, str]:
        if self.grafana is None:
            return {}
        query = urlencode({f"var-{k}": v for k, v in variables.items()})
        base = self.grafana if "/d/" in self.grafana else f"{self.grafana}{path}"
        sep = "&" if "?" in base else "?"
        return {"dashboard_url": f"{base}{sep}{query}"}


def _regression_alert(
    run: Run,
    verdict: Verdict,
    score: ScoreSummary | None,
    links: _Links,
    *,
    ci_level: float,
    max_items: int,
) -> DesiredAlert:
    identity = {
        "alertname": REGRESSION_ALERT,
        "monitor": run.monitor,
        "endpoint": run.endpoint,
        "scorer": verdict.scorer,
    }
    labels = {**identity, "benchmark": run.benchmark, "severity": "critical"}
    active = verdict.verdict is VerdictKind.REGRESSED
    numbers = _Numbers(verdict, score)
    annotations: dict[str, str] = {
        "summary": _regression_summary(run, verdict, numbers, ci_level, active=active),
        "description": _regression_description(run, verdict, numbers, ci_level, max_items),
        "run_id": str(run.id),
        "verdict": verdict.verdict.value,
        "test": verdict.test,
        "baseline": verdict.baseline,
        **numbers.annotations(),
        **_changed_annotations(verdict, max_items),
        **links.run_links(),
        **links.dashboard(
            "/d/monitor-detail/monitor-detail",
            {"monitor": run.monitor, "endpoint": run.endpoint, "scorer": verdict.scorer},
        ),
    }
    return DesiredAlert(fingerprint(identity), REGRESSION_ALERT, labels, annotations, active)


def _vanished(
    run: Run, judged: set[str], open_alerts: Iterable[Alert], links: _Links
) -> list[DesiredAlert]:
    """Clear regression alerts of this (monitor, endpoint) for scorers the run lacks."""
    out: list[DesiredAlert] = []
    for alert in open_alerts:
        labels = alert.labels
        if (
            alert.name != REGRESSION_ALERT
            or labels.get("monitor") != run.monitor
            or labels.get("endpoint") != run.endpoint
            or labels.get("scorer") in judged
            or alert.state is AlertState.RESOLVED
        ):
            continue
        scorer = labels.get("scorer", "")
        summary = (
            f"{run.monitor} on {run.endpoint}: {scorer} is no longer evaluated "
            f"(run {run.id} has no verdict for it)"
        )
        annotations = {
            "summary": summary,
            "description": summary + "; the alert is resolved because nothing is measured.",
            "run_id": str(run.id),
            **links.run_links(),
        }
        out.append(DesiredAlert(alert.fingerprint, alert.name, dict(labels), annotations, False))
    return out


def _budget_alert(run: Run, links: _Links, open_fingerprints: set[str]) -> DesiredAlert | None:
    """Fires when the run's budget stopped it; a later run that finishes clears it."""
    stopped = run.status is RunStatus.ABORTED and run.status_reason == "budget"
    identity = {"alertname": BUDGET_ALERT, "monitor": run.monitor, "endpoint": run.endpoint}
    if not stopped and (
        run.status not in (RunStatus.SUCCEEDED, RunStatus.DEGRADED)
        or fingerprint(identity) not in open_fingerprints
    ):
        return None  # nothing to raise, and nothing open to clear
    labels = {**identity, "benchmark": run.benchmark, "severity": "warning"}
    where = f"{run.monitor} on {run.endpoint}"
    cost = run.usage.dollars if run.usage is not None else None
    spent = "an unknown amount" if cost is None else f"${cost:.4g}"
    if stopped:
        summary = f"{where}: run {run.id} stopped by its budget after {run.n_items} items"
        description = (
            f"Run {run.id} of monitor {run.monitor} on endpoint {run.endpoint} reached the "
            f"monitor's per-run budget after {run.n_items} items and {spent}; it is recorded "
            "`aborted` with reason `budget`, its answers are kept, and it was not judged. "
            "Raise `budget.run_dollars` / `run_tokens`, or shorten the benchmark (`limit`)."
        )
    else:
        summary = f"{where}: run {run.id} finished within its budget"
        description = f"Run {run.id} on endpoint {run.endpoint} finished, costing {spent}."
    annotations = {
        "summary": summary,
        "description": description,
        "run_id": str(run.id),
        "n_items": str(run.n_items),
        **links.run_links(),
    }
    return DesiredAlert(fingerprint(identity), BUDGET_ALERT, labels, annotations, stopped)


def _degraded_alert(run: Run, verdicts: Sequence[Verdict], links: _Links) -> DesiredAlert | None:
    degraded = run.status is RunStatus.DEGRADED or any(
        v.verdict is VerdictKind.DEGRADED for v in verdicts
    )
    if not degraded and run.status is not RunStatus.SUCCEEDED:
        return None  # failed, aborted or running: says nothing about the endpoint's errors
    identity = {"alertname": DEGRADED_ALERT, "monitor": run.monitor, "endpoint": run.endpoint}
    labels = {**identity, "benchmark": run.benchmark, "severity": "warning"}
    share = run.n_errors / run.n_items if run.n_items else 0.0
    errors = f"{run.n_errors} of {run.n_items} items got no usable answer ({share:.1%})"
    where = f"{run.monitor} on {run.endpoint}"
    if degraded:
        summary = f"{where}: run {run.id} degraded, {errors}; quality was not judged"
        description = (
            f"Run {run.id} of monitor {run.monitor} (benchmark {run.benchmark}) on endpoint "
            f"{run.endpoint} had too many endpoint errors to judge quality: {errors}. "
            "Check the endpoint's availability; drift tests resume with the next clean run."
        )
    else:
        summary = f"{where}: run {run.id} succeeded, {errors}"
        description = f"Run {run.id} on endpoint {run.endpoint} was judged again: {errors}."
    annotations = {
        "summary": summary,
        "description": description,
        "run_id": str(run.id),
        "n_items": str(run.n_items),
        "n_errors": str(run.n_errors),
        **links.run_links(),
        **links.dashboard("/d/monitor-endpoint-health", {"endpoint": run.endpoint}),
    }
    return DesiredAlert(fingerprint(identity), DEGRADED_ALERT, labels, annotations, degraded)


# ---------------------------------------------------------------- number formatting


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _number(value: float) -> str:
    return format(value, ".6g")


class _Numbers:
    """The figures of one verdict, in score units and as display text."""

    def __init__(self, verdict: Verdict, score: ScoreSummary | None) -> None:
        self.baseline = _finite(verdict.baseline_score)
        self.effect = _finite(verdict.effect)
        self.current: float | None = None
        if score is not None and _finite(score.value) is not None:
            self.current = score.value
        elif self.baseline is not None and self.effect is not None:
            self.current = self.baseline + self.effect
        ci = verdict.effect_ci
        self.effect_ci = ci if ci is not None and all(_finite(v) is not None for v in ci) else None
        self.current_ci = (
            (score.ci_lower, score.ci_upper)
            if score is not None
            and _finite(score.ci_lower) is not None
            and _finite(score.ci_upper) is not None
            else None
        )
        self.p_value = _finite(verdict.p_value)
        self.p_adjusted = _finite(verdict.p_adjusted)
        # Scores in [0, 1] (accuracy-like) are discussed in percentage points.
        known = [v for v in (self.baseline, self.current) if v is not None]
        self.points = bool(known) and all(0.0 <= v <= 1.0 for v in known)

    def change(self, value: float) -> str:
        return f"{value * 100:.1f}" if self.points else f"{value:.3g}"

    def unit(self) -> str:
        return " points" if self.points else ""

    def annotations(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in (
            ("baseline_score", self.baseline),
            ("current_score", self.current),
            ("effect", self.effect),
            ("p_value", self.p_value),
            ("p_adjusted", self.p_adjusted),
        ):
            if value is not None:
                out[key] = _number(value)
        if self.effect_ci is not None:
            out["effect_ci_lower"] = _number(self.effect_ci[0])
            out["effect_ci_upper"] = _number(self.effect_ci[1])
        if self.current_ci is not None:
            out["current_ci_lower"] = _number(self.current_ci[0])
            out["current_ci_upper"] = _number(self.current_ci[1])
        return out


def _p_text(p: float) -> str:
    return f"p={p:.2g}"


def _level(ci_level: float) -> str:
    return f"{ci_level * 100:g}%"


def _regression_summary(
    run: Run, verdict: Verdict, n: _Numbers, ci_level: float, *, active: bool
) -> str:
    where = f"{run.monitor} on {run.endpoint}"
    if not active:
        text = f"{where}: {verdict.scorer} is no longer regressed ({verdict.verdict.value}"
        if n.current is not None and n.baseline is not None:
            text += f", {n.current:.3f} against {n.baseline:.3f}"
        if n.p_value is not None:
            text += f", {_p_text(n.p_value)}"
        return f"{text}) against {verdict.baseline}, run {run.id}"
    if n.effect is None:
        text = f"{where}: {verdict.scorer} regressed"
    else:
        verb = "dropped" if n.effect < 0 else "rose"
        text = f"{where}: {verdict.scorer} {verb} {n.change(abs(n.effect))}{n.unit()}"
    details: list[str] = []
    if n.baseline is not None and n.current is not None:
        details.append(f"{n.baseline:.3f} → {n.current:.3f}")
    if n.effect_ci is not None:
        lo, hi = n.effect_ci
        details.append(f"{_level(ci_level)} CI of the change [{n.change(lo)}, {n.change(hi)}]")
    if details:
        text += f" ({', '.join(details)})"
    if n.p_value is not None:
        text += f", {_p_text(n.p_value)}"
    return f"{text} against {verdict.baseline}"


def _regression_description(
    run: Run, verdict: Verdict, n: _Numbers, ci_level: float, max_items: int
) -> str:
    lines = [
        f"Scorer {verdict.scorer} of benchmark {run.benchmark} on endpoint {run.endpoint} "
        f"(monitor {run.monitor}), run {run.id}: {verdict.verdict.value}."
    ]
    if n.current is not None:
        current = f"Current score {n.current:.3f}"
        if n.current_ci is not None:
            current += f" ({_level(ci_level)} CI {n.current_ci[0]:.3f} to {n.current_ci[1]:.3f})"
        if n.baseline is not None:
            current += f" against a baseline of {n.baseline:.3f}"
        lines.append(f"{current} ({verdict.baseline}).")
    else:
        lines.append(f"Baseline: {verdict.baseline}.")
    if n.effect is not None:
        change = f"Change {'+' if n.effect >= 0 else '-'}{n.change(abs(n.effect))}{n.unit()}"
        if n.effect_ci is not None:
            lo, hi = n.effect_ci
            change += f" ({_level(ci_level)} CI {n.change(lo)} to {n.change(hi)})"
        lines.append(change + ".")
    test = f"Test {verdict.test}"
    if n.p_value is not None:
        test += f": {_p_text(n.p_value)}"
        if n.p_adjusted is not None:
            test += f" (adjusted for multiple testing {n.p_adjusted:.2g})"
    lines.append(test + ".")
    changed = verdict.changed
    for keys, what in (
        (changed.pass_to_fail, "from pass to fail"),
        (changed.fail_to_pass, "from fail to pass"),
    ):
        if keys:
            shown = ", ".join(keys[:max_items])
            more = f" and {len(keys) - max_items} more" if len(keys) > max_items else ""
            noun = "item" if len(keys) == 1 else "items"
            lines.append(f"{len(keys)} {noun} went {what}: {shown}{more}.")
    if verdict.detail:
        lines.append(verdict.detail)
    return "\n".join(lines)


def _changed_annotations(verdict: Verdict, max_items: int) -> dict[str, str]:
    changed = verdict.changed
    return {
        "pass_to_fail": json.dumps(list(changed.pass_to_fail[:max_items]), ensure_ascii=False),
        "pass_to_fail_count": str(len(changed.pass_to_fail)),
        "fail_to_pass": json.dumps(list(changed.fail_to_pass[:max_items]), ensure_ascii=False),
        "fail_to_pass_count": str(len(changed.fail_to_pass)),
    }
