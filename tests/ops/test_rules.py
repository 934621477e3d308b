"""Prometheus alert rules, their unit tests, the Prometheus config and the Alertmanager config."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from monitor.api.runbook import render_runbook

pytestmark = pytest.mark.ops

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "monitor.rules.yml"
RULES_TEST = RULES.with_name("monitor.rules_test.yml")
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
DOCS = ROOT / "docs"

Run = Callable[..., subprocess.CompletedProcess[str]]


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


ALERT_NAMES = [rule["alert"] for rule in _alerts()]


class TestRuleFiles:
    def test_promtool_check_rules_is_clean(self, run: Run) -> None:
        """`promtool check rules` accepts the rules file without findings."""
        result = run(["promtool", "check", "rules", RULES])
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(_rules())} rules found" in result.stdout

    def test_promtool_unit_tests_pass(self, run: Run) -> None:
        """`promtool test rules` passes every unit test of the rules."""
        result = run(["promtool", "test", "rules", RULES_TEST.name], cwd=RULES_TEST.parent)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    def test_a_wrong_expectation_fails_the_unit_tests(self, run: Run, tmp_path: Path) -> None:
        """The unit tests compare annotations exactly: one changed character makes them fail."""
        shutil.copy(RULES, tmp_path / RULES.name)
        text = RULES_TEST.read_text(encoding="utf-8")
        assert "changed by -0.052" in text
        (tmp_path / RULES_TEST.name).write_text(
            text.replace("changed by -0.052", "changed by -0.053"), encoding="utf-8"
        )
        result = run(["promtool", "test", "rules", RULES_TEST.name], cwd=tmp_path)
        assert result.returncode != 0
        assert "FAILED" in result.stdout + result.stderr

    def test_required_alerts_exist(self) -> None:
        """The alerts that docs and dashboards promise are all defined."""
        assert {
            "MonitorRegressionDetected",
            "MonitorScoreBelowFloor",
            "MonitorRunsFailing",
            "MonitorStale",
            "MonitorEndpointErrors",
            "MonitorDown",
            "MonitorSliceRegressed",
            "MonitorSliceBelowFloor",
        } <= set(ALERT_NAMES)

    @pytest.mark.parametrize("alert", ALERT_NAMES)
    def test_alert_has_severity_and_annotations(self, alert: str) -> None:
        """Each alert has a routable severity, a summary, a description and both links."""
        rule = next(r for r in _alerts() if r["alert"] == alert)
        assert rule["labels"]["severity"] in {"critical", "warning"}
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url", "dashboard"} <= set(annotations)
        # the daemon's runbook page (monitor/api/runbook.py), at its monitor_ui_info address
        assert annotations["runbook_url"].endswith(f"/ui/alerts#{alert.lower()}")
        assert "monitor_ui_info" in annotations["runbook_url"]
        assert "example.com" not in json.dumps(annotations)
        assert re.match(r"^https?://[^ ]+/d/monitor-[a-z-]+/", annotations["dashboard"])

    @pytest.mark.parametrize("alert", ALERT_NAMES)
    def test_alert_is_documented(self, alert: str) -> None:
        """docs/alerts.md has a section for the alert, which its runbook_url points at."""
        text = (DOCS / "alerts.md").read_text(encoding="utf-8")
        assert re.search(rf"^## {alert}$", text, re.MULTILINE), f"no '## {alert}' in alerts.md"
        # and the page the daemon serves has the anchor the link names
        _, body = render_runbook()
        assert f'<h2 id="{alert.lower()}">{alert}</h2>' in body

    @pytest.mark.parametrize("alert", ALERT_NAMES)
    def test_alert_is_unit_tested_firing_and_not_firing(self, alert: str) -> None:
        """The unit tests check each alert both firing and not firing."""
        tests = yaml.safe_load(RULES_TEST.read_text(encoding="utf-8"))["tests"]
        cases = [
            case
            for test in tests
            for case in test.get("alert_rule_test", [])
            if case["alertname"] == alert
        ]
        assert any(case["exp_alerts"] for case in cases), f"{alert} never expected to fire"
        assert any(not case["exp_alerts"] for case in cases), f"{alert} never expected silent"

    def test_rules_use_only_catalogued_metrics(self, catalog: ModuleType) -> None:
        """Every series and matcher label in the rules, and in their annotation queries, exists."""
        problems = []
        known = catalog.series_names()
        for rule in _rules():
            name = rule.get("alert") or rule.get("record")
            problems += [f"{name}: {p}" for p in catalog.unknown_series(rule["expr"])]
            for key, text in rule.get("annotations", {}).items():
                problems += [
                    f"{name}.{key}: unknown metric {m!r}"
                    for m in catalog.template_series(text)
                    if m not in known
                ]
        assert problems == []


class TestPrometheusConfig:
    def test_promtool_check_config_is_clean(self, run: Run, tmp_path: Path) -> None:
        """`promtool check config` accepts the config and finds the rules relative to it."""
        result = run(["promtool", "check", "config", PROMETHEUS], cwd=tmp_path)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "SUCCESS: 1 rule files found" in output
        assert "rules/monitor.rules.yml" in output

    def test_scrapes_the_daemon_and_alerts_alertmanager(self) -> None:
        """The `monitor` job scrapes monitor:9464 and alerts go to alertmanager:9093."""
        config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert jobs["monitor"]["static_configs"][0]["targets"] == ["monitor:9464"]
        targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
        assert targets == ["alertmanager:9093"]
        assert config["rule_files"] == ["rules/monitor.rules.yml"]


class TestAlertmanagerConfig:
    def test_amtool_check_config_is_clean(self, run: Run) -> None:
        """`amtool check-config` accepts the Alertmanager config."""
        result = run(["amtool", "check-config", ALERTMANAGER])
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    @pytest.mark.parametrize(
        ("labels", "receiver"),
        [
            (["severity=critical", "alertname=MonitorRegressionDetected"], "monitor-critical"),
            (["severity=warning", "alertname=MonitorStale"], "monitor-warning"),
            (["alertname=SomethingElse"], "monitor-warning"),
        ],
    )
    def test_alerts_route_by_severity(self, run: Run, labels: list[str], receiver: str) -> None:
        """Critical alerts go to the critical receiver, everything else to the warning one."""
        result = run(
            ["amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels]
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == receiver

    @pytest.mark.parametrize("alert", ALERT_NAMES)
    def test_every_alert_reaches_its_severity_route(self, run: Run, alert: str) -> None:
        """Each alert of the rules file reaches the receiver named after its severity."""
        rule = next(r for r in _alerts() if r["alert"] == alert)
        severity = rule["labels"]["severity"]
        result = run(
            [
                "amtool",
                "config",
                "routes",
                "test",
                f"--config.file={ALERTMANAGER}",
                f"alertname={alert}",
                f"severity={severity}",
            ]
        )
        assert result.stdout.strip() == f"monitor-{severity}"

    def test_groups_by_monitor_and_endpoint_and_sends_resolved(self) -> None:
        """Notifications are grouped per monitor and endpoint; webhooks also get resolutions."""
        config = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
        assert config["route"]["group_by"] == ["monitor", "endpoint"]
        for receiver in config["receivers"]:
            hooks = receiver["webhook_configs"]
            assert hooks
            assert all(hook["send_resolved"] for hook in hooks)


class TestAlertPipeline:
    """The rules in a real Prometheus 2.x, routed by the real Alertmanager config to webhooks.

    The simulated exporter (tests/ops/conftest.py) has intents-prod regressed and below its
    floor on chat-prod, with its slice label=refund regressed (above that slice's floor), and
    one failed run on chat-canary.
    """

    @staticmethod
    def _firing(alertname: str, path: str) -> Callable[[str, dict[str, Any]], bool]:
        def match(got_path: str, body: dict[str, Any]) -> bool:
            return got_path == path and any(
                a["status"] == "firing" and a["labels"]["alertname"] == alertname
                for a in body["alerts"]
            )

        return match

    @staticmethod
    def _alert(body: dict[str, Any], alertname: str) -> dict[str, Any]:
        return next(a for a in body["alerts"] if a["labels"]["alertname"] == alertname)

    def test_regression_reaches_the_critical_webhook(self, live_stack: Any) -> None:
        """A regression pages via the critical route, with the numbers filled in by Prometheus."""
        body = live_stack.wait_for_post(
            self._firing("MonitorRegressionDetected", "/alerts/critical")
        )
        alert = self._alert(body, "MonitorRegressionDetected")
        assert alert["labels"] == {
            "alertname": "MonitorRegressionDetected",
            "severity": "critical",
            "job": "monitor",
            "monitor": "intents-prod",
            "benchmark": "support-intents",
            "endpoint": "chat-prod",
            "scorer": "exact_match",
        }
        assert alert["annotations"]["description"] == (
            "Scorer exact_match of benchmark support-intents changed by -0.052 on endpoint "
            "chat-prod (monitor intents-prod): latest score 0.780 (CI 0.760 to 0.800) against a "
            "baseline of 0.832; smallest drift p-value 0.0004. The drop is statistically "
            "significant and at least the monitor's min_effect."
        )
        assert body["groupLabels"] == {"monitor": "intents-prod", "endpoint": "chat-prod"}

    def test_score_below_floor_reaches_the_critical_webhook(self, live_stack: Any) -> None:
        """A score under the floor pages with the score, the floor and the shortfall."""
        body = live_stack.wait_for_post(self._firing("MonitorScoreBelowFloor", "/alerts/critical"))
        alert = self._alert(body, "MonitorScoreBelowFloor")
        assert alert["annotations"]["description"] == (
            "Scorer exact_match of benchmark support-intents scored 0.780 on endpoint chat-prod "
            "(monitor intents-prod), below the configured floor of 0.800 by 0.020."
        )

    def test_slice_regression_reaches_the_critical_webhook(self, live_stack: Any) -> None:
        """A regressed slice pages via the critical route, naming the slice, its numbers and
        the scorer over all items."""
        body = live_stack.wait_for_post(self._firing("MonitorSliceRegressed", "/alerts/critical"))
        alert = self._alert(body, "MonitorSliceRegressed")
        assert alert["labels"]["slice"] == "label=refund"
        assert alert["labels"]["endpoint"] == "chat-prod"
        assert alert["annotations"]["description"] == (
            "Slice label=refund of scorer exact_match of benchmark support-intents changed by "
            "-0.090 on endpoint chat-prod (monitor intents-prod): latest slice score 0.700 "
            "against a baseline of 0.790; the scorer over all items scored 0.780 (regressed "
            "too). The drop on the slice's items is statistically significant and at least the "
            "monitor's min_effect."
        )
        assert alert["annotations"]["dashboard"].endswith("&var-slice=label%3Drefund")

    def test_failed_run_reaches_the_warning_webhook(self, live_stack: Any) -> None:
        """A failed run goes to the warning route, naming monitor and endpoint."""
        body = live_stack.wait_for_post(self._firing("MonitorRunsFailing", "/alerts/warning"))
        alert = self._alert(body, "MonitorRunsFailing")
        assert alert["labels"]["endpoint"] == "chat-canary"
        assert re.fullmatch(
            r"\d run\(s\) of monitor intents-prod on endpoint chat-canary ended failed or "
            r"degraded in the last hour \(\d failed, 0 degraded\)\. .*",
            alert["annotations"]["description"],
        )

    def test_healthy_endpoint_does_not_alert(self, live_stack: Any) -> None:
        """chat-canary is neither regressed nor below its floor: neither alert fires for it."""
        live_stack.wait_for_post(self._firing("MonitorRegressionDetected", "/alerts/critical"))
        firing = live_stack.query('ALERTS{alertstate="firing"}')
        by_endpoint = {(a["metric"]["alertname"], a["metric"].get("endpoint")) for a in firing}
        assert ("MonitorRegressionDetected", "chat-prod") in by_endpoint
        assert ("MonitorRegressionDetected", "chat-canary") not in by_endpoint
        assert ("MonitorScoreBelowFloor", "chat-canary") not in by_endpoint
        slices = {
            (a["metric"]["alertname"], a["metric"].get("endpoint"), a["metric"].get("slice"))
            for a in firing
            if a["metric"]["alertname"].startswith("MonitorSlice")
        }
        # label=refund on chat-prod regressed, above its floor; nothing else about slices
        assert slices == {("MonitorSliceRegressed", "chat-prod", "label=refund")}
