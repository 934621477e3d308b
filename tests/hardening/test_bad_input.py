"""Bad input: every malformed config or benchmark file of ``tests/data/bad`` is refused.

`monitor check-config` and `monitor serve` exit 2 with a message naming file, line and field
(``tests/data/bad/expected.yaml`` holds each case's expected lines), and a running daemon that
is sent SIGHUP with such a file keeps its old config and its stored runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.daemon.harness import Daemon, Simulator, free_port, write_config
from tests.hardening.measure import Measured, run_measured

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "bad"
EXPECTED: dict[str, list[str]] = yaml.safe_load((CORPUS / "expected.yaml").read_text("utf-8"))
CASES = sorted(EXPECTED)
# variables the env-var cases rely on being unset, removed from every child's environment
UNSET = ("MONITOR_BAD_INPUT_DB_URL", "MONITOR_BAD_INPUT_LLM_KEY")
# `monitor serve` on a sample: YAML, schema, reference, env, schedule and data errors
SERVE_CASES = [
    "yaml_syntax_error",
    "unknown_key_endpoint",
    "monitor_missing_endpoint",
    "missing_env_var_header",
    "cron_out_of_range",
    "data_invalid_jsonl",
]
RELOAD_CASES = [
    "yaml_syntax_error",
    "yaml_empty",
    "monitor_missing_endpoint",
    "missing_env_var_header",
    "cron_out_of_range",
    "data_invalid_jsonl",
]
CHILD_TIMEOUT = 60.0

pytestmark = pytest.mark.slow


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_monitor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )


def expected_lines(case: str, folder: Path, config: str | None = None) -> list[str]:
    """The case's expected lines for a copy of it in ``folder`` (``{dir}``), read as ``config``."""
    lines = [line.replace("{dir}", str(folder.resolve())) for line in EXPECTED[case]]
    if config is not None:
        lines = [config + line.removeprefix(f"{case}.yaml") for line in lines]
    return lines


def assert_error_lines(message: str, expected: list[str]) -> None:
    """``message`` has exactly the expected lines, each starting with its expected text."""
    assert "Traceback" not in message, message
    lines = message.rstrip("\n").splitlines()
    assert len(lines) == len(expected), f"expected {len(expected)} lines, got:\n{message}"
    for got, want in zip(lines, expected, strict=True):
        assert got.startswith(want), f"\n got: {got}\nwant: {want}..."


def cli_error(stderr: str) -> str:
    assert stderr.startswith("error: "), stderr
    return stderr.removeprefix("error: ")


def copy_case(case: str, folder: Path) -> None:
    """Copy a case's config and data files (``NAME.*``, ``_items.jsonl``) into ``folder``."""
    for path in CORPUS.iterdir():
        if path.name == "_items.jsonl" or path.stem == case:
            if path.is_dir():
                shutil.copytree(path, folder / path.name, dirs_exist_ok=True)
            else:
                shutil.copy2(path, folder / path.name)


@pytest.fixture(scope="module")
def check_results() -> dict[str, subprocess.CompletedProcess[str]]:
    """`monitor check-config NAME.yaml` for every case, run in parallel in the corpus folder."""
    workers = max(2, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(
            lambda case: run_monitor("check-config", f"{case}.yaml", cwd=CORPUS), CASES
        )
        return dict(zip(CASES, results, strict=True))


class TestCorpus:
    """The corpus and its expectations are complete and precise."""

    def test_every_case_has_expectations(self) -> None:
        """Each config in the folder is a case with expected lines, and there are at least 50."""
        configs = {
            p.stem
            for p in CORPUS.glob("*.yaml")
            if not p.name.startswith("_") and p.name != "expected.yaml"
        }
        assert configs == set(EXPECTED)
        assert len(CASES) >= 50
        assert all(EXPECTED[case] for case in CASES)

    def test_expectations_name_file_line_and_field(self) -> None:
        """Every expected line starts ``NAME.yaml:LINE: field:`` (or, for a file that is not
        YAML at all, ``invalid YAML`` / ``not valid UTF-8``)."""
        for case, lines in EXPECTED.items():
            for line in lines:
                where, _, rest = line.partition(": ")
                file, _, number = where.rpartition(":")
                assert file == f"{case}.yaml", line
                assert number.isdigit(), line
                field = rest.partition(": ")[0]
                assert (
                    field in {"invalid YAML", "not valid UTF-8", "(top level)"} or " " not in field
                ), line

    def test_control_config_is_valid(self) -> None:
        """The control config that every case breaks once passes check-config."""
        result = run_monitor("check-config", "_good.yaml", cwd=CORPUS)
        assert result.returncode == 0, result.stderr
        assert "ok (1 endpoint, 1 benchmark with 3 items, 1 monitor)" in result.stdout


class TestCheckConfig:
    """`monitor check-config` refuses every case with exit 2 and the expected message."""

    @pytest.mark.parametrize("case", CASES)
    def test_refused_with_file_line_and_field(
        self, case: str, check_results: dict[str, subprocess.CompletedProcess[str]]
    ) -> None:
        """The case exits 2 and stderr holds exactly the expected lines, without a traceback."""
        result = check_results[case]
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert result.stdout == ""
        assert_error_lines(cli_error(result.stderr), expected_lines(case, CORPUS))


class TestServe:
    """`monitor serve` refuses to start on a sample of cases."""

    @pytest.mark.parametrize("case", SERVE_CASES)
    def test_serve_exits_2_quickly(self, case: str, tmp_path: Path) -> None:
        """The daemon exits 2 within seconds with the message, no traceback and no database."""
        copy_case(case, tmp_path)
        start = time.monotonic()
        result = run_monitor("serve", "--config", f"{case}.yaml", cwd=tmp_path)
        elapsed = time.monotonic() - start
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert elapsed < 15, f"took {elapsed:.1f}s"
        assert_error_lines(cli_error(result.stderr), expected_lines(case, tmp_path))
        assert not list(tmp_path.glob("*.db*")), "nothing may start before the config is valid"


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = Simulator()
    yield sim
    sim.stop()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons started by a test; killed at the end whatever happened."""
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


def reload_failures(d: Daemon) -> list[dict[str, Any]]:
    """The ``config_reload_failed`` events of the daemon's JSON log, in order."""
    events = []
    for line in d.log_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("event") == "config_reload_failed":
            events.append(event)
    return events


def reload_gauge(d: Daemon) -> float | None:
    samples = d.metrics().get("monitor_config_last_reload_successful")
    return None if not samples else float(samples[0].value)


def monitor_names(d: Daemon) -> list[tuple[str, list[str]]]:
    body = d.get("/api/v1/monitors")
    return [(m["name"], [e["name"] for e in m["endpoints"]]) for m in body["monitors"]]


def replace_file(path: Path, data: bytes) -> None:
    """Replace a file atomically, as an editor or a config-management tool would."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    tmp.replace(path)


class TestReload:
    """SIGHUP with a bad file keeps the running config, the service and the stored runs."""

    def test_bad_reloads_keep_old_config_and_runs(
        self,
        tmp_path: Path,
        simulator: Simulator,
        daemons: list[Daemon],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Each bad file is refused and logged with its message; monitors and runs survive."""
        for name in UNSET:
            monkeypatch.delenv(name, raising=False)
        port = free_port()
        config = write_config(tmp_path, simulator.url, port=port, every=1.0, items=20)
        good = config.read_bytes()
        d = Daemon(config, port)
        daemons.append(d)
        d.wait_ready()
        d.wait_for(
            lambda: sum(r["status"] == "succeeded" for r in d.runs()) >= 2,
            what="two stored runs",
        )
        runs_before = {r["id"] for r in d.runs()}
        monitors_before = monitor_names(d)
        assert monitors_before == [("fast", ["sim"])]

        for case in RELOAD_CASES:
            copy_case(case, tmp_path)
            replace_file(config, (CORPUS / f"{case}.yaml").read_bytes())
            seen = len(reload_failures(d))
            d.signal(signal.SIGHUP)
            d.wait_for(lambda n=seen: len(reload_failures(d)) > n, what=f"{case} refused")
            event = reload_failures(d)[seen]
            assert_error_lines(event["error"], expected_lines(case, tmp_path, str(config)))
            assert d.proc.poll() is None, f"daemon exited on {case}"
            assert reload_gauge(d) == 0
            assert monitor_names(d) == monitors_before

        runs_after = {r["id"] for r in d.runs()}
        assert runs_before <= runs_after, "runs stored before the bad reloads were lost"
        d.wait_for(
            lambda: max(r["id"] for r in d.runs()) > max(runs_before),
            what="a new run under the old config",
        )
        replace_file(config, good)
        d.signal(signal.SIGHUP)
        d.wait_for(lambda: reload_gauge(d) == 1, what="the good config reloaded")
        assert monitor_names(d) == monitors_before


# Hostile files (issue #19): an alias bomb and templates that would run for hours or fill the
# memory. Each must be refused fast and small, both by check-config and by a running daemon.
HOSTILE_CASES = ["yaml_alias_bomb", "template_nested_loops", "template_huge_output"]
MAX_SECONDS = 2.0
MAX_RSS_BYTES = 200 * 1024 * 1024
MAX_RELOAD_GROWTH_BYTES = 20 * 1024 * 1024


def peak_rss(pid: int) -> int:
    """The peak resident set (VmHWM) of a live process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.fixture(scope="module")
def control() -> Measured:
    """check-config of the corpus's valid file: start-up and imports, measured now."""
    m = run_measured(
        [sys.executable, "-m", "monitor", "check-config", "_good.yaml"],
        cwd=CORPUS,
        env=child_env(),
    )
    assert m.code == 0, m.stderr
    return m


class TestHostileInput:
    """Alias bombs and runaway templates are refused in under 2 s and under 200 MB."""

    @pytest.mark.parametrize("case", HOSTILE_CASES)
    def test_check_config_refuses_fast_and_small(self, case: str, control: Measured) -> None:
        """check-config exits 2 with file:line, within 2 s of CPU beyond a valid file's
        check (the same start-up, measured in the same minute), and under 200 MB of RSS."""
        m = run_measured(
            [sys.executable, "-m", "monitor", "check-config", f"{case}.yaml"],
            cwd=CORPUS,
            env=child_env(),
        )
        assert m.code == 2, m.stderr
        assert_error_lines(cli_error(m.stderr), expected_lines(case, CORPUS))
        # CPU time is the measure (the machine may be shared), less the start-up that any
        # check pays (one CI run spent 2.07 s in all, 1.2 s of it the limit's own work);
        # wall time only guards a hang
        extra = m.cpu_s - control.cpu_s
        assert extra < MAX_SECONDS, f"{case}: {extra:.2f} s of CPU beyond start-up"
        assert m.wall_s < 5 * MAX_SECONDS + control.wall_s, f"{case}: {m.wall_s:.2f} s"
        assert m.rss_bytes < MAX_RSS_BYTES, f"{case}: {m.rss_bytes / 2**20:.0f} MB"

    def test_sighup_refuses_them_and_keeps_serving(
        self, tmp_path: Path, simulator: Simulator, daemons: list[Daemon]
    ) -> None:
        """Each hostile file sent by SIGHUP is refused within 2 s with its file:line; the
        daemon's peak RSS grows by under 20 MB, it keeps answering and runs its old config."""
        port = free_port()
        config = write_config(tmp_path, simulator.url, port=port, every=1.0, items=20)
        d = Daemon(config, port)
        daemons.append(d)
        d.wait_ready()
        d.wait_for(lambda: any(r["status"] == "succeeded" for r in d.runs()), what="a run")
        monitors_before = monitor_names(d)
        rss_before = peak_rss(d.proc.pid)
        for case in HOSTILE_CASES:
            copy_case(case, tmp_path)
            replace_file(config, (CORPUS / f"{case}.yaml").read_bytes())
            seen = len(reload_failures(d))
            start = time.monotonic()
            d.signal(signal.SIGHUP)
            # /healthz answers while the reload is being refused
            assert d.request("GET", "/healthz")[0] == 200
            d.wait_for(lambda n=seen: len(reload_failures(d)) > n, what=f"{case} refused")
            elapsed = time.monotonic() - start
            event = reload_failures(d)[seen]
            assert_error_lines(event["error"], expected_lines(case, tmp_path, str(config)))
            assert elapsed < MAX_SECONDS, f"{case}: refused after {elapsed:.2f} s"
            assert d.proc.poll() is None, f"daemon exited on {case}"
            assert monitor_names(d) == monitors_before
            assert reload_gauge(d) == 0
        # the daemon itself needs ~180 MB (measured): the refusals may add little to its peak
        grown = peak_rss(d.proc.pid) - rss_before
        assert grown < MAX_RELOAD_GROWTH_BYTES, f"peak RSS grew {grown / 2**20:.0f} MB"
        last = max(r["id"] for r in d.runs())
        d.wait_for(
            lambda: max(r["id"] for r in d.runs()) > last, what="a new run under the old config"
        )
