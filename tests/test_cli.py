"""The `monitor` command as a user runs it: JSON output, tables, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.demo.data import PROMPT, write_items
from tests.daemon.harness import Simulator, free_port

pytestmark = pytest.mark.slow

CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
endpoints:
  - {{name: sim, type: openai-chat, url: "{url}", model: sim, timeout: 2s, retries: {retries}}}
benchmarks:
  - {{name: intents, data: items.jsonl, prompt: {prompt}, reference: label,
      scorers: [exact_match, {{regex: {{pattern: "^(refund|billing|other)$", name: valid}}}}]}}
monitors:
  - {{name: gate, benchmark: intents, endpoints: [sim],
      drift: {{baseline: "rolling:2", horizon_runs: 1, alpha: 0.01}}}}
"""


def monitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def config(folder: Path, url: str, items: int = 400, retries: int = 1) -> Path:
    write_items(folder / "items.jsonl", items)
    path = folder / "monitor.yaml"
    path.write_text(
        CONFIG.format(db=folder / "m.db", url=url, prompt=json.dumps(PROMPT), retries=retries)
    )
    return path


class TestRunCommand:
    def test_json_output_has_the_documented_shape(
        self, tmp_path: Path, simulator: Simulator
    ) -> None:
        """`monitor run --format json` prints one object of run documents."""
        cfg = config(tmp_path, simulator.url, items=50)
        done = monitor("run", "gate", "--config", str(cfg), "--format", "json")
        assert done.returncode == 0, done.stderr
        (run,) = json.loads(done.stdout)["runs"]
        for key in (
            "id",
            "monitor",
            "endpoint",
            "benchmark",
            "benchmark_version",
            "status",
            "n_items",
            "n_errors",
            "started_at",
            "finished_at",
            "duration_s",
            "scores",
            "verdicts",
        ):
            assert key in run
        assert run["status"] == "succeeded"
        assert set(run["scores"]["exact_match"]) >= {"value", "ci_lower", "ci_upper"}
        assert run["started_at"].endswith("+00:00")
        assert run["verdicts"]["exact_match"]["verdict"] == "no_baseline"
        assert '"event": "run_finished"' in done.stderr  # structured logs when not a TTY

    def test_table_output_and_runs_listing(self, tmp_path: Path, simulator: Simulator) -> None:
        """The table names scorer, score with CI and verdict; `monitor runs` lists the run."""
        cfg = config(tmp_path, simulator.url, items=30)
        done = monitor("run", "gate", "--config", str(cfg))
        assert done.returncode == 0, done.stderr
        assert "exact_match" in done.stdout
        assert "score [95% CI]" in done.stdout
        listed = monitor("runs", "--config", str(cfg), "--format", "json")
        assert [r["monitor"] for r in json.loads(listed.stdout)["runs"]] == ["gate"]

    def test_regression_exits_1_and_compare_lists_flips(self, tmp_path: Path) -> None:
        """After the model silently degrades, `monitor run` exits 1 and compare names items."""
        sim = Simulator(regress_after=3 * 400)
        try:
            cfg = config(tmp_path, sim.url)
            codes = [monitor("run", "gate", "--config", str(cfg)).returncode for _ in range(3)]
            assert codes == [0, 0, 0]
            regressed = monitor("run", "gate", "--config", str(cfg), "--format", "json")
        finally:
            sim.stop()
        assert regressed.returncode == 1, regressed.stderr
        run = json.loads(regressed.stdout)["runs"][0]
        verdict = run["verdicts"]["exact_match"]
        assert verdict["verdict"] == "regressed"
        assert verdict["effect"] < 0
        compare = monitor("compare", "3", str(run["id"]), "--config", str(cfg), "--format", "json")
        flips = json.loads(compare.stdout)["scorers"]["exact_match"]["pass_to_fail"]
        assert set(verdict["changed_items"]["pass_to_fail"]) & set(flips)

    def test_bad_config_exits_2(self, tmp_path: Path) -> None:
        """A config error is reported with file and line, exit code 2."""
        bad = tmp_path / "bad.yaml"
        bad.write_text("monitors:\n  - name: x\n    benchmark: nope\n    endpoints: [e]\n")
        done = monitor("run", "x", "--config", str(bad))
        assert done.returncode == 2
        assert f"{bad}:3: monitors[0].benchmark: unknown benchmark 'nope'" in done.stderr

    def test_unreachable_endpoint_exits_3(self, tmp_path: Path) -> None:
        """A run whose endpoint refuses every request is degraded: exit code 3."""
        cfg = config(tmp_path, f"http://127.0.0.1:{free_port()}/v1", items=10, retries=0)
        done = monitor("run", "gate", "--config", str(cfg), "--format", "json")
        assert done.returncode == 3
        assert json.loads(done.stdout)["runs"][0]["status"] == "degraded"

    def test_check_config_and_db_upgrade(self, tmp_path: Path, simulator: Simulator) -> None:
        """check-config validates the data too; `db upgrade` is idempotent."""
        cfg = config(tmp_path, simulator.url, items=20)
        checked = monitor("check-config", str(cfg))
        assert checked.returncode == 0
        assert "20 items" in checked.stdout
        assert monitor("db", "upgrade", "--config", str(cfg)).returncode == 0
        assert monitor("db", "upgrade", "--config", str(cfg)).returncode == 0


SELECTION = """\
storage: {{url: "sqlite:///{db}"}}
endpoints:
  - {{name: a, type: openai-chat, url: "{healthy}", model: sim, timeout: 2s, retries: 1}}
  - {{name: b, type: openai-chat, url: "{healthy}", model: sim, timeout: 2s, retries: 1}}
  - {{name: c, type: openai-chat, url: "{broken}", model: sim, timeout: 2s, retries: 1}}
benchmarks:
  - {{name: intents, data: items.jsonl, prompt: {prompt}, reference: label,
      scorers: [exact_match]}}
monitors:
  - {{name: pick, benchmark: intents, endpoints: [a, b, c]}}
"""


@pytest.fixture(scope="module")
def selection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Endpoints a and b answer alike; c has the demo's regression from the start."""
    folder = tmp_path_factory.mktemp("selection")
    healthy, broken = Simulator(), Simulator(regress_after=1)
    try:
        write_items(folder / "items.jsonl", 400)
        cfg = folder / "monitor.yaml"
        cfg.write_text(
            SELECTION.format(
                db=folder / "m.db",
                healthy=healthy.url,
                broken=broken.url,
                prompt=json.dumps(PROMPT),
            )
        )
        done = monitor("run", "pick", "--config", str(cfg))
        assert done.returncode == 0, done.stderr
    finally:
        healthy.stop()
        broken.stop()
    return cfg


class TestModelSelection:
    """`monitor compare --endpoints` and `monitor leaderboard` against the demo endpoint."""

    def test_equivalent_endpoints_and_a_worse_one(self, selection: Path) -> None:
        """a and b are equivalent within 5 points; c is worse than a, with its flips listed."""
        same = monitor(
            "compare", "--endpoints", "a", "b", "--benchmark", "intents", "--margin", "0.05",
            "--config", str(selection), "--format", "json",
        )  # fmt: skip
        assert same.returncode == 0, same.stderr
        report = json.loads(same.stdout)
        c = report["scorers"]["exact_match"]["comparison"]
        assert (report["a"]["endpoint"], report["b"]["endpoint"]) == ("a", "b")
        assert c["outcome"] == "equivalent"
        assert c["test"] == "mcnemar_exact"
        assert c["ci"][0] <= c["difference"] <= c["ci"][1]
        worse = monitor(
            "compare", "--endpoints", "a", "c", "--benchmark", "intents",
            "--config", str(selection), "--format", "json",
        )  # fmt: skip
        w = json.loads(worse.stdout)["scorers"]["exact_match"]
        assert w["comparison"]["outcome"] == "b_worse"
        assert w["a_only"]["count"] > w["b_only"]["count"]
        assert len(w["a_only"]["keys"]) == w["a_only"]["count"]

    def test_table_output_states_the_verdict(self, selection: Path) -> None:
        """The terminal form says "practically equivalent" in words, with the margin."""
        done = monitor(
            "compare", "--endpoints", "a", "b", "--benchmark", "intents", "--margin", "0.05",
            "--config", str(selection),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "practically equivalent (within 5 points)" in done.stdout

    def test_leaderboard_groups_the_equivalent_endpoints(self, selection: Path) -> None:
        """a and b share tier 1; c, shown worse than the leader, starts tier 2."""
        done = monitor(
            "leaderboard", "--benchmark", "intents", "--margin", "0.05",
            "--config", str(selection), "--format", "json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        tiers = {e["endpoint"]: e["tier"] for e in json.loads(done.stdout)["entries"]}
        assert tiers == {"a": 1, "b": 1, "c": 2}
        table = monitor("leaderboard", "--benchmark", "intents", "--config", str(selection))
        assert table.returncode == 0, table.stderr
        assert "leader" in table.stdout

    def test_unknown_endpoint_and_bad_arguments(self, selection: Path) -> None:
        """No runs of an endpoint is an error naming it; half the options is a usage error."""
        done = monitor(
            "compare", "--endpoints", "a", "zz", "--benchmark", "intents",
            "--config", str(selection),
        )  # fmt: skip
        assert done.returncode == 3
        assert "'zz' has no succeeded run" in done.stderr
        half = monitor("compare", "--endpoints", "a", "b", "--config", str(selection))
        assert half.returncode == 2
        assert "--benchmark" in half.stderr
        margin = monitor(
            "compare", "--endpoints", "a", "b", "--benchmark", "intents", "--margin", "2",
            "--config", str(selection),
        )  # fmt: skip
        assert margin.returncode == 2
