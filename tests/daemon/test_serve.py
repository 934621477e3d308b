"""`monitor serve` as a real process: schedule, metrics, API auth, signals, crash restart."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from tests.daemon.harness import TOKEN, Daemon, Simulator, free_port, write_config

pytestmark = pytest.mark.slow


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def succeeded(d: Daemon, n: int) -> list[dict[str, object]]:
    runs = [r for r in d.runs() if r["status"] == "succeeded"]
    return runs if len(runs) >= n else []


class TestSchedule:
    def test_runs_at_cadence_without_overlap(
        self, tmp_path: Path, simulator: Simulator, daemons: list[Daemon]
    ) -> None:
        """Runs fire about every second and never overlap for one (monitor, endpoint)."""
        port = free_port()
        d = Daemon(write_config(tmp_path, simulator.url, port=port, every=1.0), port)
        daemons.append(d)
        d.wait_ready()
        runs = d.wait_for(lambda: succeeded(d, 5), what="5 runs")
        runs = sorted(runs, key=lambda r: r["id"])
        starts = [parse(r["started_at"]) for r in runs]
        gaps = [(b - a).total_seconds() for a, b in pairwise(starts)]
        assert all(0.5 < g < 2.5 for g in gaps), gaps
        for prev, nxt in pairwise(runs):
            assert parse(prev["finished_at"]) <= parse(nxt["started_at"])
        monitors = d.get("/api/v1/monitors")["monitors"]
        assert monitors[0]["endpoints"][0]["next_run_at"] is not None

    def test_manual_trigger_needs_token(
        self, tmp_path: Path, simulator: Simulator, daemons: list[Daemon]
    ) -> None:
        """POST routes refuse a missing or wrong token and accept the right one."""
        port = free_port()
        d = Daemon(write_config(tmp_path, simulator.url, port=port, every=3600), port)
        daemons.append(d)
        d.wait_ready()
        assert d.request("POST", "/api/v1/monitors/fast/run")[0] == 401
        assert d.request("POST", "/api/v1/monitors/fast/run", token="wrong")[0] == 401
        assert d.request("POST", "/-/reload", token="wrong")[0] == 401
        status, body = d.request("POST", "/api/v1/monitors/fast/run", token=TOKEN)
        assert status == 202
        assert body["runs"][0]["status"] == "started"
        assert d.request("POST", "/api/v1/monitors/nope/run", token=TOKEN)[0] == 404
        run = d.wait_for(lambda: succeeded(d, 1), what="manual run")[0]
        assert run["trigger"] == "manual"
        detail = d.get(f"/api/v1/runs/{run['id']}")
        assert (
            detail["scores"]["exact_match"]["ci_lower"] <= detail["scores"]["exact_match"]["value"]
        )
        items = d.get(f"/api/v1/runs/{run['id']}/items?limit=5")
        assert items["total"] == 40
        assert len(items["items"]) == 5
        assert d.request("GET", "/api/v1/runs/999999")[0] == 404

    def test_second_daemon_on_same_sqlite_is_refused(
        self, tmp_path: Path, simulator: Simulator, daemons: list[Daemon]
    ) -> None:
        """A lock file keeps a second `monitor serve` off the same SQLite database."""
        port = free_port()
        d = Daemon(write_config(tmp_path, simulator.url, port=port, every=3600), port)
        daemons.append(d)
        d.wait_ready()
        second = Daemon(d.config, free_port())
        daemons.append(second)
        assert second.wait_exit(30) == 2
        assert "another `monitor serve` is using this SQLite database" in second.log_text()


class TestMetrics:
    def test_exposition_is_parseable_and_lint_clean(
        self, tmp_path: Path, simulator: Simulator, daemons: list[Daemon]
    ) -> None:
        """/metrics parses with prometheus_client and `promtool check metrics` finds nothing."""
        port = free_port()
        d = Daemon(write_config(tmp_path, simulator.url, port=port, every=1.0), port)
        daemons.append(d)
        d.wait_ready()
        d.wait_for(lambda: succeeded(d, 2), what="2 runs")

        def two_runs_exported() -> dict[str, list[object]] | None:
            m = d.metrics()
            runs = {s.labels["status"]: s.value for s in m.get("monitor_runs_total", [])}
            return m if runs.get("succeeded", 0) >= 2 and "monitor_benchmark_score" in m else None

        # the snapshot is rebuilt after each run: it may lag the API by a moment
        samples = d.wait_for(two_runs_exported, what="metrics of two runs")
        (score,) = samples["monitor_benchmark_score"]
        assert score.labels == {
            "monitor": "fast",
            "benchmark": "intents",
            "endpoint": "sim",
            "scorer": "exact_match",
        }
        assert 0.0 <= score.value <= 1.0
        totals = {s.labels["status"]: s.value for s in samples["monitor_runs_total"]}
        assert totals["succeeded"] >= 2
        assert samples["monitor_build_info"][0].value == 1
        text = d.request("GET", "/metrics")[1]
        promtool = shutil.which("promtool")
        assert promtool, "promtool is installed by scripts/test.sh (Debian prometheus)"
        lint = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
        assert "sk-planted-secret-42" not in text

    def test_sigkill_restart_aborts_orphan_and_restores_gauges(
        self, tmp_path: Path, slow_simulator: Simulator, daemons: list[Daemon]
    ) -> None:
        """After SIGKILL mid-run, a restart marks the run aborted and gauges return at once."""
        port = free_port()
        config = write_config(
            tmp_path, slow_simulator.url, port=port, every=1.0, items=20, concurrency=4
        )
        d = Daemon(config, port)
        daemons.append(d)
        d.wait_ready()
        d.wait_for(lambda: succeeded(d, 1), what="a first run")
        running = d.wait_for(
            lambda: [r for r in d.runs() if r["status"] == "running"], what="a running run"
        )
        d.kill()
        d2 = Daemon(config, port)
        daemons.append(d2)
        d2.wait_ready()
        # the first scrape after the restart, before any new run could finish
        (score,) = d2.metrics()["monitor_benchmark_score"]
        orphan = d2.get(f"/api/v1/runs/{running[0]['id']}")
        assert orphan["status"] == "aborted"
        done = [r for r in d2.runs() if r["status"] == "succeeded" and r["id"] < orphan["id"]]
        latest = max(done, key=lambda r: r["id"])
        assert score.value == latest["scores"]["exact_match"]["value"]


class TestSignals:
    def test_sigterm_mid_run_aborts_after_grace_and_exits_zero(
        self, tmp_path: Path, slow_simulator: Simulator, daemons: list[Daemon]
    ) -> None:
        """SIGTERM waits for the grace period, then records the in-flight run as aborted."""
        port = free_port()
        config = write_config(
            tmp_path, slow_simulator.url, port=port, every=3600, items=40, grace=0.5, concurrency=2
        )
        d = Daemon(config, port)
        daemons.append(d)
        d.wait_ready()
        assert d.request("POST", "/api/v1/monitors/fast/run", token=TOKEN)[0] == 202
        d.wait_for(lambda: [r for r in d.runs() if r["status"] == "running"], what="running")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.wait_exit(30) == 0
        assert time.monotonic() - t0 < 10
        d2 = Daemon(config, port)
        daemons.append(d2)
        d2.wait_ready()
        assert [r["status"] for r in d2.runs()] == ["aborted"]
        assert "orphaned_runs_aborted" not in d2.log_text()  # recorded at shutdown already

    def test_sighup_with_broken_file_keeps_running_config(
        self, tmp_path: Path, simulator: Simulator, daemons: list[Daemon]
    ) -> None:
        """A broken config on SIGHUP is refused and exposed; a fixed one is applied."""
        port = free_port()
        config = write_config(tmp_path, simulator.url, port=port, every=3600)
        good = config.read_text()
        d = Daemon(config, port)
        daemons.append(d)
        d.wait_ready()
        config.write_text(good.replace("every: 3600", "every: nonsense"))
        d.signal(signal.SIGHUP)

        def reload_gauge() -> float | None:
            samples = d.metrics().get("monitor_config_last_reload_successful")
            return samples[0].value if samples else None

        d.wait_for(lambda: reload_gauge() == 0, what="failed reload exposed")
        assert "config_reload_failed" in d.log_text()
        assert [m["name"] for m in d.get("/api/v1/monitors")["monitors"]] == ["fast"]
        config.write_text(good.replace("name: fast", "name: renamed"))
        d.signal(signal.SIGHUP)
        d.wait_for(lambda: reload_gauge() == 1, what="successful reload")
        assert [m["name"] for m in d.get("/api/v1/monitors")["monitors"]] == ["renamed"]
        assert d.proc.poll() is None
