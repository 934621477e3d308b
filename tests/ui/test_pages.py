"""The /ui/ pages in a real headless Chromium against a running daemon with real history."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from monitor.api.ui import CSP
from tests.ui.conftest import RUNS, XSS, LiveDaemon

pytestmark = pytest.mark.slow

RULES = Path(__file__).resolve().parents[2] / "deploy/prometheus/rules/monitor.rules.yml"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "run-page.png"


def get_json(live: LiveDaemon, path: str) -> Any:
    with urllib.request.urlopen(live.url + path, timeout=10) as answer:
        return json.load(answer)


def visit(browser: Any, url: str) -> list[dict[str, Any]]:
    """Load `url`; return the browser console entries it logged (errors and warnings)."""
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    return [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def by_css(browser: Any, selector: str) -> list[Any]:
    return list(browser.find_elements(By.CSS_SELECTOR, selector))


def latest_run(live: LiveDaemon, endpoint: str) -> dict[str, Any]:
    (run,) = get_json(live, f"/api/v1/runs?monitor=qa&endpoint={endpoint}&limit=1")["runs"]
    return dict(run)


@pytest.fixture
def shot(browser: Any, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[None]:
    """A screenshot of the page the test ends on, named after the test."""
    yield
    browser.save_screenshot(str(artifacts / f"{request.node.name}.png"))


class TestPages:
    """Every page loads without console errors and shows what the store holds."""

    def test_overview_lists_every_pair(self, live: LiveDaemon, browser: Any, shot: None) -> None:
        """Each configured (monitor, endpoint) has a row; the one never run is marked missed."""
        errors = visit(browser, live.url + "/ui/")
        assert errors == []
        rows = {
            (r.get_attribute("data-monitor"), r.get_attribute("data-endpoint")): r
            for r in by_css(browser, "tr.pair")
        }
        assert set(rows) == {("qa", "ep-a"), ("qa", "ep-b"), ("idle", "ep-b")}
        assert "run did not happen" in rows["idle", "ep-b"].text
        assert "run did not happen" not in rows["qa", "ep-a"].text
        assert "regressed" in rows["qa", "ep-a"].text
        spark = by_css(browser, 'tr.pair[data-endpoint="ep-a"] svg.spark polyline')
        assert len(spark[0].get_attribute("points").split()) == RUNS + 1

    def test_trend_chart_draws_one_point_per_run(
        self, live: LiveDaemon, browser: Any, shot: None
    ) -> None:
        """The chart has a point per succeeded run, the regressed one marked, and its CI band."""
        errors = visit(browser, live.url + "/ui/monitors/qa/ep-a")
        assert errors == []
        runs = get_json(live, "/api/v1/runs?monitor=qa&endpoint=ep-a&status=succeeded")["runs"]
        points = by_css(browser, 'section.chart[data-scorer="exact_match"] circle.point')
        assert len(points) == len(runs) == RUNS + 1
        assert {int(p.get_attribute("data-run")) for p in points} == {r["id"] for r in runs}
        assert len(by_css(browser, "circle.point.v-regressed")) == 1
        assert by_css(browser, "polygon.ci-band")
        assert by_css(browser, "polygon.baseline-band")
        # the scripted endpoint answers in 10 ms: the runs table shows it per run
        assert "0.010 / 0.010 s" in by_css(browser, "table.runs tbody tr")[0].text

    def test_run_page_lists_exactly_the_flipped_items(
        self, live: LiveDaemon, browser: Any, shot: None
    ) -> None:
        """The keys shown, over all pages, are the stored verdict's changed items."""
        run = latest_run(live, "ep-a")
        verdict = run["verdicts"]["exact_match"]
        assert verdict["verdict"] == "regressed"
        changed = verdict["changed_items"]
        expected = set(changed["pass_to_fail"]) | set(changed["fail_to_pass"])
        assert set(XSS) <= expected
        errors = visit(browser, f"{live.url}/ui/runs/{run['id']}")
        assert errors == []
        shown = {a.get_attribute("data-key") for a in by_css(browser, "article.flip")}
        assert shown == expected
        assert by_css(browser, "#flipped-total")[0].text == str(len(expected))
        flipped = by_css(browser, "tr.verdict-row")[0].get_attribute("data-flipped")
        assert flipped == str(len(expected))
        # one item: input, reference, before and after, with the difference highlighted
        item = by_css(browser, 'article.flip[data-key="i5"]')[0]
        assert "question 5" in item.text
        assert "yes" in item.find_element("css selector", ".reference").text
        assert item.find_element("css selector", ".before del").text == "yes"
        assert item.find_element("css selector", ".after ins").text == "no"
        if os.environ.get("MONITOR_UPDATE_SCREENSHOT"):
            SCREENSHOT.parent.mkdir(exist_ok=True)
            browser.save_screenshot(str(SCREENSHOT))

    def test_run_page_filters_by_split(self, live: LiveDaemon, browser: Any, shot: None) -> None:
        """The split filter keeps the flipped items of that split only (odd keys are hard)."""
        run = latest_run(live, "ep-a")
        changed = run["verdicts"]["exact_match"]["changed_items"]
        expected = {k for k in changed["pass_to_fail"] + changed["fail_to_pass"] if int(k[1:]) % 2}
        assert visit(browser, f"{live.url}/ui/runs/{run['id']}?split=hard") == []
        assert {a.get_attribute("data-key") for a in by_css(browser, "article.flip")} == expected

    def test_compare_page_matches_the_api(self, live: LiveDaemon, browser: Any, shot: None) -> None:
        """The equivalence verdict and the discordant items on the page are the API's."""
        query = "benchmark=qa&a=ep-a&b=ep-b&margin=0.1"
        api = get_json(live, f"/api/v1/compare?{query}")["scorers"]["exact_match"]
        assert visit(browser, f"{live.url}/ui/compare?{query}") == []
        section = by_css(browser, 'section.comparison[data-scorer="exact_match"]')[0]
        assert section.get_attribute("data-outcome") == api["comparison"]["outcome"]
        equivalent = "true" if api["comparison"]["equivalent"] else "false"
        assert section.get_attribute("data-equivalent") == equivalent
        keys = {r.get_attribute("data-key") for r in by_css(browser, "tr.discordant-item")}
        assert keys == set(api["a_only"]["keys"]) | set(api["b_only"]["keys"])

    def test_equivalent_endpoints_say_so(self, live: LiveDaemon, browser: Any) -> None:
        """Before ep-a broke, the two endpoints are practically equivalent within 5 points."""
        runs = get_json(live, "/api/v1/runs?monitor=qa&limit=4")["runs"]
        a = next(r["id"] for r in runs[1:] if r["endpoint"] == "ep-a")
        b = next(r["id"] for r in runs if r["endpoint"] == "ep-b")
        api = get_json(live, f"/api/v1/compare/runs?run_a={a}&run_b={b}&margin=0.05")
        assert api["scorers"]["exact_match"]["comparison"]["outcome"] == "equivalent"
        assert visit(browser, f"{live.url}/ui/compare?run_a={a}&run_b={b}&margin=0.05") == []
        assert "Practically equivalent" in by_css(browser, "p.outcome")[0].text

    def test_leaderboard_page(self, live: LiveDaemon, browser: Any, shot: None) -> None:
        """The leaderboard shows the API's tiers."""
        api = get_json(live, "/api/v1/leaderboard?benchmark=qa&margin=0.05")
        assert visit(browser, f"{live.url}/ui/leaderboard?benchmark=qa&margin=0.05") == []
        rows = by_css(browser, "table.leaderboard tbody tr")
        assert [(r.get_attribute("data-endpoint"), r.get_attribute("data-tier")) for r in rows] == [
            (e["endpoint"], str(e["tier"])) for e in api["entries"]
        ]

    def test_runbook_page_has_an_anchor_per_alert(
        self, live: LiveDaemon, browser: Any, shot: None
    ) -> None:
        """/ui/alerts, which the rules' runbook_url names, holds a section per shipped alert."""
        rules = RULES.read_text(encoding="utf-8")
        alerts = re.findall(r"^\s+- alert: (\w+)$", rules, re.MULTILINE)
        assert len(alerts) >= 7
        assert visit(browser, live.url + "/ui/alerts#monitorstale") == []
        for alert in alerts:
            (heading,) = by_css(browser, f"h2#{alert.lower()}")
            assert heading.text == alert
        # the table's links go to the sections of the same page
        assert {a.get_attribute("hash") for a in by_css(browser, "article.runbook td a")} == {
            f"#{a.lower()}" for a in alerts
        }


class TestUntrustedText:
    """Model outputs are shown as text: nothing planted in them runs."""

    def test_xss_probes_do_not_execute(self, live: LiveDaemon, browser: Any) -> None:
        """<script>, an onerror image and a javascript: link appear as text, never as markup."""
        run = latest_run(live, "ep-a")
        # an alert() would make the next WebDriver call fail with UnexpectedAlertPresent
        assert visit(browser, f"{live.url}/ui/runs/{run['id']}") == []
        assert browser.execute_script("return window.__xss === undefined") is True
        for key, probe in XSS.items():
            (item,) = by_css(browser, f'article.flip[data-key="{key}"]')
            after = item.find_element("css selector", ".after pre.output")
            assert after.text == probe  # the whole probe, as literal text
            assert after.find_elements("css selector", "script, img, a") == []
        assert by_css(browser, 'a[href^="javascript:"]') == []
        assert by_css(browser, "main img") == []
        (link,) = [e for e in by_css(browser, "pre.output") if "click me" in e.text]
        link.click()  # clicking the text of the planted link does nothing
        assert browser.execute_script("return window.__xss === undefined") is True
        compare = "/ui/compare?benchmark=qa&a=ep-b&b=ep-a&margin=0.05"
        assert visit(browser, live.url + compare) == []
        assert by_css(browser, "pre.output script, pre.output img, pre.output a") == []
        assert browser.execute_script("return window.__xss === undefined") is True

    def test_pages_forbid_inline_script(self, live: LiveDaemon) -> None:
        """Every page and asset is sent with a CSP that allows no inline script."""
        for path in (
            "/ui/",
            "/ui/monitors/qa/ep-a",
            "/ui/compare",
            "/ui/alerts",
            "/ui/static/style.css",
        ):
            with urllib.request.urlopen(live.url + path, timeout=10) as answer:
                policy = answer.headers["Content-Security-Policy"]
            assert policy == CSP
            assert "script-src 'none'" in policy
            assert "unsafe-inline" not in policy


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    """A daemon without history, with ui_auth on and the token `t0ken`."""
    daemon = LiveDaemon(tmp_path_factory.mktemp("auth"), ui_auth=True, history=False)
    yield daemon.start()
    daemon.stop()


class TestAuth:
    """With server.ui_auth the pages take the API's bearer token."""

    def status(self, url: str, headers: dict[str, str] | None = None) -> int:
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            with exc:  # closes the error response's socket now, not at some later GC
                return exc.code

    def test_token_required(self, guarded: LiveDaemon) -> None:
        """No token or a wrong one gets the login form (401); the bearer token gets the page."""
        url = guarded.url + "/ui/"
        assert self.status(url) == 401
        assert self.status(url, {"Authorization": "Bearer nope"}) == 401
        assert self.status(url, {"Authorization": "Bearer t0ken"}) == 200

    def test_login_form_sets_the_cookie(self, guarded: LiveDaemon, browser: Any) -> None:
        """Signing in through the form in the browser opens the pages."""
        browser.delete_all_cookies()
        browser.get(guarded.url + "/ui/")
        assert "Sign in" in browser.title
        by_css(browser, 'input[name="token"]')[0].send_keys("t0ken")
        by_css(browser, 'button[type="submit"]')[0].click()
        # A click returns before the posted form's redirect has loaded: wait for it.
        WebDriverWait(browser, 10).until(lambda b: b.title.startswith("Overview"))
        assert by_css(browser, "tr.pair")
        browser.delete_all_cookies()
