"""A scripted regression end to end: simulated model -> daemon -> verdict -> webhook alert."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.demo.data import PROMPT, write_items
from tests.daemon.harness import Daemon, Simulator, free_port

pytestmark = pytest.mark.slow

ITEMS = 400
CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:{port}"}}
endpoints:
  - {{name: sim, type: openai-chat, url: "{url}", model: sim, concurrency: 16, timeout: 10s}}
benchmarks:
  - {{name: intents, data: items.jsonl, prompt: {prompt}, reference: label,
      scorers: [exact_match]}}
monitors:
  - name: fast
    benchmark: intents
    endpoints: [sim]
    schedule: {{every: 1s}}
    drift: {{baseline: "rolling:3"}}
    alert: [hook]
alerting:
  receivers:
    - {{name: hook, webhook: {{url: "http://127.0.0.1:{hook_port}/alert"}}}}
"""


class Hook:
    """A webhook receiver on loopback that records JSON posts."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def regressing() -> Iterator[Simulator]:
    sim = Simulator(regress_after=5 * ITEMS)  # stable items start failing at run 6
    yield sim
    sim.stop()


class TestRegressionAlert:
    def test_regression_reaches_webhook_with_evidence(
        self, tmp_path: Path, regressing: Simulator, hook: Hook, daemons: list[Daemon]
    ) -> None:
        """A silent drop on stable items is judged regressed and delivered to the webhook."""
        write_items(tmp_path / "items.jsonl", ITEMS)
        port = free_port()
        config = tmp_path / "monitor.yaml"
        config.write_text(
            CONFIG.format(
                db=tmp_path / "m.db",
                port=port,
                url=regressing.url,
                prompt=json.dumps(PROMPT),
                hook_port=hook.port,
            )
        )
        d = Daemon(config, port)
        daemons.append(d)
        d.wait_ready()
        d.wait_for(lambda: hook.posts, timeout=60, what="a webhook post")
        post = hook.posts[0]
        text = json.dumps(post)
        assert "MonitorRegression" in text
        assert '"fast"' in text
        assert "exact_match" in text
        runs = d.runs()
        verdicts = [r["verdicts"]["exact_match"]["verdict"] for r in runs if r["verdicts"]]
        assert "regressed" in verdicts
        regressed = next(r for r in runs if r["verdicts"]["exact_match"]["verdict"] == "regressed")
        flipped = regressed["verdicts"]["exact_match"]["changed_items"]["pass_to_fail"]
        assert flipped, "the verdict names the items that broke"
        changed = d.get(f"/api/v1/runs/{regressed['id']}/items?changed=true&limit=1000")
        assert set(flipped) <= {i["item_key"] for i in changed["items"]}
        first_regressed = min(
            r["id"]
            for r in runs
            if r["verdicts"].get("exact_match", {}).get("verdict") == "regressed"
        )
        assert first_regressed >= 6, "no alarm before the change (runs 1-5 are clean)"
        alerts = d.get("/api/v1/alerts")["alerts"]
        assert [a["labels"]["monitor"] for a in alerts] == ["fast"]

        def firing() -> dict[str, list[Any]] | None:
            m = d.metrics()
            gauge = m.get("monitor_alerts_firing")
            return m if gauge and gauge[0].value == 1 else None

        metrics = d.wait_for(firing, what="monitor_alerts_firing 1")
        detected = metrics["monitor_regression_detected"]
        assert any(s.labels["scorer"] == "exact_match" for s in detected)
