"""Harness for real daemon processes on loopback: a simulated model and `monitor serve`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from monitor.daemon import Daemon as Service
from monitor.demo.data import PROMPT, write_items

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Simulator:
    """`monitor demo-endpoint` in a child process."""

    def __init__(self, latency: float = 0.0, regress_after: int = 0) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "demo-endpoint",
                "--listen",
                "127.0.0.1:0",
                "--latency",
                str(latency),
                "--regress-after",
                str(regress_after),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = line.split(" on ")[1].split(" ")[0]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server:
  {{listen: "127.0.0.1:{port}", api_token: "${{MONITOR_TEST_TOKEN}}", shutdown_grace: {grace}s}}
endpoints:
  - name: sim
    type: openai-chat
    url: {url}
    model: sim
    headers: {{Authorization: "Bearer ${{SIM_KEY:-sk-planted-secret-42}}"}}
    concurrency: {concurrency}
    timeout: 10s
    retries: 1
benchmarks:
  - name: intents
    data: items.jsonl
    prompt: {prompt}
    reference: label
    scorers: [exact_match]
monitors:
  - name: fast
    benchmark: intents
    endpoints: [sim]
    schedule: {{every: {every}s}}
    drift: {{baseline: "rolling:3"}}
"""


def write_config(
    folder: Path,
    sim_url: str,
    *,
    port: int,
    every: float = 1.0,
    items: int = 40,
    grace: float = 30.0,
    concurrency: int = 8,
) -> Path:
    write_items(folder / "items.jsonl", items)
    path = folder / "monitor.yaml"
    path.write_text(
        CONFIG.format(
            db=folder / "monitor.db",
            port=port,
            url=sim_url,
            every=every,
            grace=grace,
            concurrency=concurrency,
            prompt=json.dumps(PROMPT),
        )
    )
    return path


class Daemon:
    """`monitor serve` as a child process, with HTTP helpers."""

    def __init__(self, config: Path, port: int) -> None:
        self.config, self.port = config, port
        self.base = f"http://127.0.0.1:{port}"
        self.log = config.parent / f"daemon-{time.monotonic_ns()}.log"
        env = {**os.environ, "MONITOR_TEST_TOKEN": TOKEN}
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "serve", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def request(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, method=method, data=data)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                raw = resp.read().decode()
                status = resp.status
        except urllib.error.HTTPError as err:
            with err:  # closes the error response's socket now, not at some later GC
                raw, status = err.read().decode(), err.code
        try:
            return status, json.loads(raw)
        except json.JSONDecodeError:
            return status, raw

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return body

    def wait_ready(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.log_text()}")
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"daemon not ready: {self.log_text()}")

    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: {self.log_text()[-3000:]}")

    def runs(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/runs?limit=500")["runs"])

    def metrics(self) -> dict[str, list[Any]]:
        status, text = self.request("GET", "/metrics")
        assert status == 200
        out: dict[str, list[Any]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, []).append(sample)
        return out

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def sample(service: Service, name: str, **labels: str) -> float | None:
    """The value of one series in an in-process daemon's /metrics text, or None."""
    for family in text_string_to_metric_families(service.metrics_text().decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None
