"""The real daemon against a real Prometheus and Alertmanager running the shipped ops files.

One scenario (module fixture), all on 127.0.0.1:

- `monitor demo-endpoint` simulates a model whose stable items start failing after five runs
  (`regress_after=5 * ITEMS`); monitor `fast` runs the 400-item benchmark on it every second
  with `baseline: rolling:3` and a score floor (so that `monitor_score_floor` is exported).
  The benchmark has `slices: [label]`: each of refund, billing and other is tested on its own
  items, and `fast` has a slice floor (so that every `monitor_slice_*` family is exported).
- Monitor `broken` runs 20 items every second on endpoint `dead`, a closed port: every request
  is refused, so `monitor_endpoint_errors_total` moves and every run ends `degraded`, which
  fires MonitorRunsFailing.
- `monitor serve` exposes /metrics; Prometheus scrapes it and evaluates the SHIPPED rules file
  (deploy/prometheus/rules/monitor.rules.yml) every second, from a generated prometheus.yml
  (the shipped one scrapes docker hostnames); Alertmanager runs the SHIPPED config with only
  its webhook URLs (pointed at a recording webhook, paths kept) and group timers rewritten.

The tests then check that a slice's regression alert and the regression alert reach the
critical receiver with their labels and evidence, that re-baselining through the API resolves
the latter, that every dashboard panel has
data in that Prometheus, and that every metric the dashboards and rules use is in the daemon's
real exposition.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
import yaml

from monitor.demo.data import PROMPT, write_items
from tests.daemon.harness import TOKEN, Daemon, Simulator, free_port
from tests.ops.stack import RULES, Post, Stack, running_stack
from tests.ops.test_dashboards import FILES, iter_panels, load, queries, render

pytestmark = [pytest.mark.ops, pytest.mark.slow]

ITEMS = 400
TIMEOUT = 60.0  # generous: the machine is shared and slow; a healthy run needs far less
CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:{port}", api_token: "${{MONITOR_TEST_TOKEN}}"}}
endpoints:
  - {{name: sim, type: openai-chat, url: "{url}", model: sim, concurrency: 16, timeout: 10s,
      pricing: {{prices: [{{since: "2026-01-01", input_per_million: 2.5,
                            output_per_million: 10}}]}}}}
  - {{name: dead, type: openai-chat, url: "http://127.0.0.1:{dead_port}/v1", model: sim,
      timeout: 2s, retries: 0}}
  # a second simulator, model and judge at once (monitor/demo/simulator.py, judge_verdict):
  # its requests do not move the first one's scripted regression
  - {{name: judged-sim, type: openai-chat, url: "{judge_url}", model: sim, concurrency: 8}}
benchmarks:
  # slices: each value of the items' `label` field (refund, billing, other) tested on its own
  - {{name: intents, data: items.jsonl, prompt: {prompt}, reference: label,
      scorers: [exact_match], slices: [label]}}
  - {{name: intents-small, data: items.jsonl, limit: 20, prompt: {prompt}, reference: label,
      scorers: [exact_match]}}
  - {{name: intents-judged, data: items.jsonl, limit: 20, prompt: {prompt}, reference: label,
      scorers: [{{llm_reference: {{endpoint: judged-sim, name: judged,
                                  calibration: {{data: calibration.jsonl}}}}}}]}}
monitors:
  - name: fast
    benchmark: intents
    endpoints: [sim]
    schedule: {{every: 1s}}
    drift: {{baseline: "rolling:3"}}
    score_floor: 0.5  # far below the regressed score: MonitorScoreBelowFloor stays silent
    slice_floors: {{"label=refund": 0.1}}  # far below too: MonitorSliceBelowFloor stays silent
  - name: broken
    benchmark: intents-small
    endpoints: [dead]
    schedule: {{every: 1s}}
  - name: judged
    benchmark: intents-judged
    endpoints: [judged-sim]
    schedule: {{every: 1s}}
"""

REGRESSION = {"monitor": "fast", "endpoint": "sim", "scorer": "exact_match"}


@dataclass
class Scenario:
    daemon: Daemon
    stack: Stack


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Simulator, daemon, Prometheus, Alertmanager and webhook; all stopped at the end."""
    tmp = tmp_path_factory.mktemp("e2e-daemon")
    write_items(tmp / "items.jsonl", ITEMS)
    port = free_port()
    config = tmp / "monitor.yaml"
    sim = Simulator(regress_after=5 * ITEMS)  # stable items start failing at run 6
    judge_sim = Simulator()
    calibration = [  # the judge passes an output that states its reference
        {
            "id": f"c{k}",
            "input": f"Request: case {k}",
            "output": output,
            "reference": "billing",
            "label": "pass" if output == "billing" else "fail",
        }
        for k, output in enumerate(["billing", "refund", "billing", "billing", "other"] * 4)
    ]
    (tmp / "calibration.jsonl").write_text("".join(json.dumps(r) + "\n" for r in calibration))
    daemon: Daemon | None = None
    try:
        config.write_text(
            CONFIG.format(
                db=tmp / "monitor.db",
                port=port,
                url=sim.url,
                judge_url=judge_sim.url,
                dead_port=free_port(),  # nothing listens there: connections are refused
                prompt=json.dumps(PROMPT),
            ),
            encoding="utf-8",
        )
        daemon = Daemon(config, port)  # sets MONITOR_TEST_TOKEN=TOKEN for the child
        with running_stack(tmp, f"127.0.0.1:{port}") as stack:
            daemon.wait_ready()
            # Prometheus applies new targets on a 5 s tick: the first scrape comes 5-6 s in
            stack.wait(lambda: stack.query('up{job="monitor"} == 1'), TIMEOUT, "the first scrape")
            yield Scenario(daemon, stack)
    finally:
        if daemon is not None:
            daemon.kill()
        sim.stop()
        judge_sim.stop()


def _is_alert(post: Post, status: str, path: str, alertname: str, **labels: str) -> bool:
    return post.path == path and any(
        a["status"] == status
        and a["labels"].get("alertname") == alertname
        and all(a["labels"].get(k) == v for k, v in labels.items())
        for a in post.body["alerts"]
    )


def _alert(post: Post, alertname: str) -> dict[str, Any]:
    return next(a for a in post.body["alerts"] if a["labels"]["alertname"] == alertname)


def _runs(daemon: Daemon, monitor: str, endpoint: str) -> list[dict[str, Any]]:
    return [r for r in daemon.runs() if (r["monitor"], r["endpoint"]) == (monitor, endpoint)]


def _verdict(run: dict[str, Any]) -> str | None:
    verdict: str | None = run["verdicts"].get("exact_match", {}).get("verdict")
    return verdict


def _settled(value: Callable[[], Any], good: Callable[[Any], bool], timeout: float) -> Any:
    """Poll `value()` until `good` accepts it or `timeout` passes; return the last value, so
    that the caller's assert shows what was wrong. Series appear a few scrapes after runs."""
    end = time.monotonic() + timeout
    current = value()
    while not good(current) and time.monotonic() < end:
        time.sleep(0.5)
        current = value()
    return current


def _gauge(daemon: Daemon, name: str, **labels: str) -> float | None:
    samples = daemon.metrics().get(name, [])
    found = [s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    return found[0] if len(found) == 1 else None


def _page(url: str) -> str:
    """A page of the daemon's web view, which must answer 200."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200, url
        return str(answer.read().decode("utf-8"))


class TestStack:
    def test_prometheus_runs_the_shipped_rules_against_the_daemon(self, scenario: Scenario) -> None:
        """The generated prometheus.yml loads the shipped rules file by absolute path and
        scrapes the daemon (not the docker hostnames of deploy/prometheus/prometheus.yml)."""
        stack = scenario.stack
        groups = stack.api("/api/v1/rules")["data"]["groups"]
        assert {g["file"] for g in groups} == {str(RULES.resolve())}
        shipped = yaml.safe_load(RULES.read_text(encoding="utf-8"))
        loaded = [r["name"] for g in groups for r in g["rules"]]
        assert loaded == [
            r.get("alert") or r["record"] for g in shipped["groups"] for r in g["rules"]
        ]
        targets = stack.api("/api/v1/targets")["data"]["activeTargets"]
        assert [(t["labels"]["job"], t["scrapeUrl"], t["health"]) for t in targets] == [
            ("monitor", f"{scenario.daemon.base}/metrics", "up")
        ]


class TestSliceRegressionAlert:
    def test_a_regressed_slice_fires_with_its_label_and_evidence(self, scenario: Scenario) -> None:
        """The scripted regression breaks stable items of every label: a slice's own test flags
        it, and MonitorSliceRegressed reaches the critical receiver naming the slice, with the
        evidence of a run the daemon judged regressed on that slice. The slice floor (0.1) is
        far below every slice's score: MonitorSliceBelowFloor stays silent.
        Runs before TestRegressionAlert, whose re-baselining ends the regression."""
        daemon, stack = scenario.daemon, scenario.stack
        post = stack.webhook.wait_for(
            lambda p: _is_alert(
                p, "firing", "/alerts/critical", "MonitorSliceRegressed", **REGRESSION
            ),
            TIMEOUT,
            "with MonitorSliceRegressed firing",
        )
        assert post.body["receiver"] == "monitor-critical"
        assert post.body["groupLabels"] == {"monitor": "fast", "endpoint": "sim"}
        alert = _alert(post, "MonitorSliceRegressed")
        slice_label = alert["labels"]["slice"]
        assert slice_label in {"label=refund", "label=billing", "label=other"}
        assert alert["labels"] == {
            "alertname": "MonitorSliceRegressed",
            "monitor": "fast",
            "benchmark": "intents",
            "endpoint": "sim",
            "scorer": "exact_match",
            "slice": slice_label,
            "severity": "critical",
            "job": "monitor",
        }
        notes = alert["annotations"]
        assert notes["summary"] == (
            f"intents/exact_match regressed on slice {slice_label} on endpoint sim (monitor fast)"
        )
        description = notes["description"]
        assert "n/a" not in description, description  # every evidence lookup found its series
        evidence = re.fullmatch(
            rf"Slice {re.escape(slice_label)} of scorer exact_match of benchmark intents "
            r"changed by (?P<effect>[-+]\d\.\d{3}) on endpoint sim \(monitor fast\): latest "
            r"slice score (?P<score>\d\.\d{3}) against a baseline of "
            r"(?P<baseline>\d\.\d{3}); the scorer over all items scored \d\.\d{3} "
            r"\((?:regressed too|not regressed)\)\. The drop on the slice's items is "
            r"statistically significant and at least the monitor's min_effect\.",
            description,
        )
        assert evidence, description
        effect, score, baseline = (float(evidence[k]) for k in ("effect", "score", "baseline"))
        assert effect <= -0.01  # a drop of at least min_effect (default 0.01)
        assert abs(score - baseline - effect) <= 0.0015  # rounding to 3 places
        assert notes["runbook_url"] == f"{daemon.base}/ui/alerts#monitorsliceregressed"
        assert 'id="monitorsliceregressed"' in _page(notes["runbook_url"])
        assert notes["dashboard"].endswith(
            "var-monitor=fast&var-endpoint=sim&var-scorer=exact_match"
            f"&var-slice={slice_label.replace('=', '%3D')}"
        )
        # the annotation shows the slice verdict of a run the daemon judged regressed, and
        # that run's page in the web view has the slice's verdict row
        name = f"exact_match[{slice_label}]"
        regressed = [
            r
            for r in _runs(daemon, "fast", "sim")
            if r["verdicts"].get(name, {}).get("verdict") == "regressed"
            and f"{r['verdicts'][name]['effect']:+.3f}" == evidence["effect"]
        ]
        assert regressed, (name, evidence["effect"])
        assert name in _page(f"{daemon.base}/ui/runs/{regressed[0]['id']}")
        # the floor is exported, and far below: no MonitorSliceBelowFloor
        floor = _gauge(daemon, "monitor_slice_score_floor", monitor="fast", slice="label=refund")
        assert floor == 0.1
        assert stack.query('ALERTS{alertname="MonitorSliceBelowFloor"}') == []


class TestRegressionAlert:
    def test_fires_with_labels_and_evidence_then_resolves_after_rebaselining(
        self, scenario: Scenario
    ) -> None:
        """Scripted regression -> daemon verdict -> gauge -> shipped rule -> shipped route ->
        webhook; re-baselining makes the next run ok, the gauge 0 and the alert resolved."""
        daemon, stack = scenario.daemon, scenario.stack
        hook = stack.webhook
        post = hook.wait_for(
            lambda p: _is_alert(
                p, "firing", "/alerts/critical", "MonitorRegressionDetected", **REGRESSION
            ),
            TIMEOUT,
            "with MonitorRegressionDetected firing",
        )
        assert post.body["receiver"] == "monitor-critical"
        assert post.body["groupLabels"] == {"monitor": "fast", "endpoint": "sim"}
        alert = _alert(post, "MonitorRegressionDetected")
        # `max without (instance, pod)`: one alert per (monitor, benchmark, endpoint, scorer)
        assert alert["labels"] == {
            "alertname": "MonitorRegressionDetected",
            "monitor": "fast",
            "benchmark": "intents",
            "endpoint": "sim",
            "scorer": "exact_match",
            "severity": "critical",
            "job": "monitor",
        }
        notes = alert["annotations"]
        assert notes["summary"] == "intents/exact_match regressed on endpoint sim (monitor fast)"
        description = notes["description"]
        assert "n/a" not in description, description  # every evidence lookup found its series
        evidence = re.fullmatch(
            r"Scorer exact_match of benchmark intents changed by (?P<effect>[-+]\d\.\d{3}) on "
            r"endpoint sim \(monitor fast\): latest score (?P<score>\d\.\d{3}) \(CI "
            r"(?P<lower>\d\.\d{3}) to (?P<upper>\d\.\d{3})\) against a baseline of "
            r"(?P<baseline>\d\.\d{3}); smallest drift p-value (?P<p>\S+)\. The drop is "
            r"statistically significant and at least the monitor's min_effect\.",
            description,
        )
        assert evidence, description
        effect, score, lower, upper, baseline, p = (
            float(evidence[k]) for k in ("effect", "score", "lower", "upper", "baseline", "p")
        )
        assert effect <= -0.01  # a drop of at least min_effect (default 0.01)
        assert abs(score - baseline - effect) <= 0.0015  # rounding to 3 places
        assert lower <= score <= upper
        assert p <= 0.01  # alpha
        # the links start at the daemon's own address, which Prometheus read from its
        # monitor_ui_info series, and the pages they name are there
        assert notes["runbook_url"] == f"{daemon.base}/ui/alerts#monitorregressiondetected"
        assert notes["trend_url"] == f"{daemon.base}/ui/monitors/fast/sim"
        assert 'id="monitorregressiondetected"' in _page(notes["runbook_url"])
        assert "exact_match" in _page(notes["trend_url"])
        assert "var-monitor=fast&var-endpoint=sim&var-scorer=exact_match" in notes["dashboard"]
        # the annotation shows the verdict of a run the daemon judged regressed
        regressed = [r for r in _runs(daemon, "fast", "sim") if _verdict(r) == "regressed"]
        assert regressed
        assert any(
            f"{r['verdicts']['exact_match']['effect']:+.3f}" == evidence["effect"]
            for r in regressed
        ), (evidence["effect"], [r["verdicts"]["exact_match"]["effect"] for r in regressed])
        assert _gauge(daemon, "monitor_regression_detected", **REGRESSION) == 1

        # acknowledge the change: pin every run judged regressed so far as the new baseline
        status, body = daemon.request(
            "POST",
            "/api/v1/baselines",
            token=TOKEN,
            body={"monitor": "fast", "endpoint": "sim", "run_ids": [r["id"] for r in regressed]},
        )
        assert status == 200, body
        pinned_at = time.monotonic()
        before = max(r["id"] for r in daemon.runs())  # a run in flight may still be judged

        def next_run() -> dict[str, Any] | None:
            later = [r for r in _runs(daemon, "fast", "sim") if r["id"] > before]
            first = min(later, key=lambda r: r["id"], default=None)
            return first if first is not None and first["status"] != "running" else None

        nxt = daemon.wait_for(next_run, TIMEOUT, "the first run after re-baselining")
        assert nxt["status"] == "succeeded", nxt
        verdict = nxt["verdicts"]["exact_match"]
        assert verdict["verdict"] == "ok", verdict
        assert "from pin" in verdict["baseline"], verdict
        daemon.wait_for(
            lambda: _gauge(daemon, "monitor_regression_detected", **REGRESSION) == 0,
            TIMEOUT,
            "monitor_regression_detected to go back to 0",
        )
        resolved = hook.wait_for(
            lambda p: (
                p.at > pinned_at
                and _is_alert(
                    p, "resolved", "/alerts/critical", "MonitorRegressionDetected", **REGRESSION
                )
            ),
            TIMEOUT,
            "with MonitorRegressionDetected resolved",
        )
        # the group (monitor, endpoint) also holds the slices' MonitorSliceRegressed alerts,
        # which may still fire: the alert is resolved, not necessarily the whole group
        assert resolved.body["receiver"] == "monitor-critical"
        ended = _alert(resolved, "MonitorRegressionDetected")
        assert ended["status"] == "resolved"
        assert ended["labels"] == alert["labels"]
        assert stack.query(
            "max without (instance, pod) (monitor_regression_detected"
            '{monitor="fast",endpoint="sim",scorer="exact_match"}) == 0'
        )
        print(
            f"firing at +{post.at - hook.started:.1f}s, resolved "
            f"{resolved.at - pinned_at:.1f}s after re-baselining"
        )

    def test_degraded_runs_fire_runs_failing_on_the_warning_route(self, scenario: Scenario) -> None:
        """Runs on the refused endpoint end degraded: MonitorRunsFailing reaches the warning
        receiver with a count of failed and degraded runs."""
        post = scenario.stack.webhook.wait_for(
            lambda p: _is_alert(
                p, "firing", "/alerts/warning", "MonitorRunsFailing", monitor="broken"
            ),
            TIMEOUT,
            "with MonitorRunsFailing firing",
        )
        assert post.body["receiver"] == "monitor-warning"
        alert = _alert(post, "MonitorRunsFailing")
        assert alert["labels"] == {
            "alertname": "MonitorRunsFailing",
            "monitor": "broken",
            "endpoint": "dead",
            "severity": "warning",
            "job": "monitor",
        }
        assert alert["annotations"]["summary"] == "Runs of monitor broken fail on endpoint dead"
        counts = re.search(r"\((\d+) failed, (\d+) degraded\)", alert["annotations"]["description"])
        assert counts, alert["annotations"]["description"]
        assert int(counts[1]) == 0
        assert int(counts[2]) >= 1


# Dashboard queries that may legitimately return nothing in this scenario, with the reason.
# Keep this minimal: every entry exempts one query from the live check (not from the syntax and
# metric-name checks, which cover every query).
NO_DATA_EXPECTED: dict[str, str] = {
    "monitor-detail.json: annotation 'Failed runs'": (
        "an annotation, not a panel: `changes(...[2m:1m]) > 0` samples at minute-aligned steps, "
        "so it needs two steps a minute apart that both have data (more than 60 s of history); "
        "this Prometheus is younger than that when the check runs"
    ),
    "monitor-detail.json: annotation 'Served model changed'": (
        "the scenario's endpoints serve one model throughout, so the gauge is 0 and `== 1` "
        "selects nothing; the exporter stack in tests/ops/test_dashboards.py has a change, and "
        "tests/daemon/test_fingerprint.py makes the daemon export one"
    ),
}


def _dashboard_queries() -> list[tuple[str, str]]:
    """(where, rendered expr) of every panel target, annotation and variable selector."""
    return [
        (f"{name}: {where}", render(expr)) for name in FILES for where, expr in queries(load(name))
    ]


class TestDashboardsAgainstTheDaemon:
    def test_every_panel_query_returns_data(self, scenario: Scenario) -> None:
        """Each panel query (and annotation and variable selector), with Grafana's macros and
        variables substituted, returns at least one series with a number (not only NaN) from the
        Prometheus scraping the daemon; exceptions are listed in NO_DATA_EXPECTED."""
        stack = scenario.stack
        items = _dashboard_queries()
        assert len(items) > 40
        assert set(NO_DATA_EXPECTED) <= {where for where, _ in items}, "stale exception"

        def empty() -> list[str]:
            out = []
            for where, expr in items:
                values = [float(r["value"][1]) for r in stack.query(expr)]
                if not any(math.isfinite(v) for v in values) and where not in NO_DATA_EXPECTED:
                    out.append(f"{where}: {expr} -> {values}")
            return out

        assert _settled(empty, lambda missing: not missing, TIMEOUT) == []

    def test_the_scores_panel_links_a_trend_page_the_daemon_serves(
        self, scenario: Scenario
    ) -> None:
        """The overview's Scores panel data link, filled in as Grafana would (the hidden
        monitor_url variable from Prometheus, the series' labels), opens the daemon's page."""
        stack = scenario.stack
        (panel,) = [
            p for p in iter_panels(load("overview.json")["panels"]) if p.get("title") == "Scores"
        ]
        (link,) = panel["fieldConfig"]["defaults"]["links"]
        urls = _settled(
            lambda: stack.api("/api/v1/label/url/values?match[]=monitor_ui_info")["data"],
            bool,
            TIMEOUT,
        )
        assert urls == [scenario.daemon.base]
        series = _settled(lambda: stack.query(render(panel["targets"][0]["expr"])), bool, TIMEOUT)
        labels = series[0]["metric"]
        url = (
            link["url"]
            .replace("${monitor_url}", urls[0])
            .replace("${__field.labels.monitor}", labels["monitor"])
            .replace("${__field.labels.endpoint}", labels["endpoint"])
        )
        assert "$" not in url
        page = _page(url)
        assert f'{labels["monitor"]} <span class="muted">@</span> {labels["endpoint"]}' in page

    def test_every_metric_used_is_in_the_daemon_exposition(
        self, scenario: Scenario, catalog: ModuleType
    ) -> None:
        """Every series and matcher label of every dashboard query (panels, annotations,
        variables) and every rule (expressions and annotation lookups) is in the daemon's real
        /metrics. `up` is Prometheus's own series, the only name not from the daemon."""
        daemon = scenario.daemon
        exprs = _dashboard_queries()
        rules = [r for g in yaml.safe_load(RULES.read_text("utf-8"))["groups"] for r in g["rules"]]
        exprs += [(f"rule {r.get('alert') or r['record']}", r["expr"]) for r in rules]

        def problems() -> list[str]:
            status, text = daemon.request("GET", "/metrics")
            assert status == 200
            real = {**catalog.from_exposition(text), "up": catalog.Metric("gauge", ())}
            known = catalog.series_names(real)
            out = [f"{where}: {p}" for where, e in exprs for p in catalog.unknown_series(e, real)]
            for rule in rules:
                for key, text in rule.get("annotations", {}).items():
                    out += [
                        f"rule {rule.get('alert')}.{key}: unknown metric {m!r}"
                        for m in catalog.template_series(text)
                        if m not in known
                    ]
            return out

        assert _settled(problems, lambda found: not found, TIMEOUT) == []

    def test_the_metric_catalog_matches_the_daemon(
        self, scenario: Scenario, catalog: ModuleType
    ) -> None:
        """tests/ops/metric_catalog.py (used by the static checks) lists exactly the daemon's
        metric families, with their types and label names."""
        daemon = scenario.daemon

        def real() -> dict[str, tuple[str, frozenset[str]]]:
            status, text = daemon.request("GET", "/metrics")
            assert status == 200
            return {
                n: (m.kind, frozenset(m.labels)) for n, m in catalog.from_exposition(text).items()
            }

        expected = {
            n: (m.kind, frozenset(m.labels)) for n, m in catalog.CATALOG.items() if n != "up"
        }
        assert _settled(real, lambda found: found == expected, TIMEOUT) == expected
