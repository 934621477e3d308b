"""Real Prometheus and Alertmanager on loopback, for end-to-end tests of the shipped ops files.

Both daemons listen on free 127.0.0.1 ports with their own
temporary storage; Alertmanager's gossip port is turned off. Prometheus runs a generated
config (the shipped deploy/prometheus/prometheus.yml scrapes docker hostnames) that loads the
SHIPPED rules file by absolute path; Alertmanager runs a temporary copy of the SHIPPED config
in which only the webhook URLs (pointed at a recording webhook on loopback, keeping each URL's
path) and the grouping timers are rewritten. Routes, receivers and inhibit rules are kept.

`running_stack` always stops both daemons through their own Popen handles and closes the
webhook server, also when starting or the test fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.daemon.harness import free_port

Json = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "monitor.rules.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

# Alertmanager's shipped timers (group_wait 10-30 s, group_interval 5 m) would hold a resolved
# notification back for minutes; the test stack notifies at once and regroups every second.
GROUP_TIMERS = {"group_wait": "0s", "group_interval": "1s"}


@dataclass(frozen=True)
class Post:
    """One webhook delivery: when it arrived (monotonic), the URL path and the payload."""

    at: float
    path: str
    body: Json


class Webhook:
    """An HTTP server on loopback that records every JSON POST."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.started = time.monotonic()
        self.cond = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.cond:
                    hook.posts.append(Post(time.monotonic(), self.path, body))
                    hook.cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate: Callable[[Post], bool], timeout: float, what: str) -> Post:
        """The first recorded post that satisfies `predicate`; fails after `timeout` s."""
        with self.cond:
            found = self.cond.wait_for(lambda: any(map(predicate, self.posts)), timeout)
            if not found:
                seen = [(p.path, p.body.get("status"), _alert_names(p.body)) for p in self.posts]
                raise AssertionError(f"no webhook post {what} within {timeout}s; got {seen}")
            return next(p for p in self.posts if predicate(p))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _alert_names(body: Json) -> list[str]:
    return [a.get("labels", {}).get("alertname", "?") for a in body.get("alerts", [])]


def rewrite_alertmanager(text: str, webhook: str) -> str:
    """The shipped Alertmanager config with every webhook sent to `webhook` (paths kept) and
    the grouping timers of every route set to GROUP_TIMERS. Nothing else changes."""
    config = yaml.safe_load(text)

    def routes(route: Json) -> Iterator[Json]:
        yield route
        for child in route.get("routes", []):
            yield from routes(child)

    for route in routes(config["route"]):
        route.update(GROUP_TIMERS)
    hooks = [h for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert hooks, "the shipped Alertmanager config has no webhook receiver to redirect"
    for hook in hooks:
        hook["url"] = webhook + urllib.parse.urlsplit(hook["url"]).path
    return yaml.safe_dump(config, sort_keys=False)


def prometheus_config(target: str, alertmanager: str, rules: Path = RULES) -> Json:
    """Scrape and evaluate every second; job `monitor` (the rules match on it)."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules.resolve())],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {
                "job_name": "monitor",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [target]}],
            }
        ],
    }


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode())


@dataclass
class Stack:
    """A running Prometheus + Alertmanager + webhook; PromQL and polling helpers."""

    prometheus: str
    alertmanager: str
    webhook: Webhook
    folder: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def query(self, expr: str) -> list[Json]:
        """An instant query; fails on a PromQL error."""
        data = _get(f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert data["status"] == "success", (expr, data)
        return list(data["data"]["result"])

    def api(self, path: str) -> Any:
        return _get(self.prometheus + path)

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll `predicate` until it returns something truthy (errors count as not yet)."""
        end = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < end:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise AssertionError(f"{proc.args!r} exited: {self.log()[-3000:]}")
            try:
                value = predicate()
            except (OSError, ValueError, AssertionError) as err:
                value, last = None, err
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error {last})")

    def log(self) -> str:
        path = self.folder / "daemons.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # never a skip: CI installs them (scripts/test.sh)
        pytest.fail(f"{name} is not installed: the ops tests need it (see tests/ops/conftest.py)")
    return path


@contextmanager
def running_stack(folder: Path, target: str) -> Iterator[Stack]:
    """Start Alertmanager and Prometheus (scraping `target`, host:port) and wait until both
    are ready; stop them on exit whatever happened."""
    prom_port, am_port = free_port(), free_port()
    webhook = Webhook()
    stack = Stack(
        prometheus=f"http://127.0.0.1:{prom_port}",
        alertmanager=f"http://127.0.0.1:{am_port}",
        webhook=webhook,
        folder=folder,
    )
    am_config = folder / "alertmanager.yml"
    am_config.write_text(
        rewrite_alertmanager(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"), webhook.url),
        encoding="utf-8",
    )
    prom_config = folder / "prometheus.yml"
    prom_config.write_text(  # JSON is YAML
        json.dumps(prometheus_config(target, f"127.0.0.1:{am_port}"), indent=2), encoding="utf-8"
    )
    commands = [
        [
            _tool("prometheus-alertmanager"),
            f"--config.file={am_config}",
            f"--storage.path={folder / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",  # no gossip port (it would bind 0.0.0.0:9094)
        ],
        [
            _tool("prometheus"),
            f"--config.file={prom_config}",
            f"--storage.tsdb.path={folder / 'prom'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
    ]
    try:
        with (folder / "daemons.log").open("wb") as log:
            for cmd in commands:
                stack.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))

        def ready() -> bool:
            for base in (stack.alertmanager, stack.prometheus):
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
                    if response.status != 200:
                        return False
            return True

        stack.wait(ready, 30, "Prometheus and Alertmanager to be ready")
        yield stack
    finally:
        for proc in stack.procs:
            proc.terminate()
        for proc in stack.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        webhook.close()
