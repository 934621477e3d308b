"""What a new user meets in the first hour (issue #18): each test failed on the code
before the fix it names."""

from __future__ import annotations

import io
import json
import math
import os
import pty
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.cli import _listed, _parser
from monitor.config import load_settings
from monitor.core.model import ErrorKind, ItemResult, Usage
from monitor.export import read_records, record, result_from_record, write_records
from monitor.storage import open_store
from tests.daemon.harness import Simulator, free_port

pytestmark = pytest.mark.slow

SPLIT_CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
endpoints:
  - {{name: sim, type: openai-chat, url: "{url}", model: sim, timeout: 2s, retries: 0}}
benchmarks:
  - name: intents
    data: {data}
    prompt: "Classify the request as refund, billing or other.\\nRequest: {{{{ text }}}}"
    reference: label
    scorers: [{{exact_match: {{normalize: [strip, lower]}}}}]
    split: visibility
monitors:
  - {{name: gate, benchmark: intents, endpoints: [sim]}}
"""
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def monitor(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=cwd,
        env={**os.environ, **env},
    )


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr + done.stdout
    assert "Exception ignored" not in done.stderr


class TestDemo:
    def test_second_demo_shows_only_its_own_runs_and_its_hint_works(self, tmp_path: Path) -> None:
        """A rerun in the same folder prints only its runs; the printed hint runs as is."""
        folder, port = tmp_path / "demo", free_port()
        args = ("demo", "--dir", str(folder), "--listen", f"127.0.0.1:{port}", "--runs", "2")
        first = monitor(*args, "--interval", "1")
        assert first.returncode == 0, first.stderr
        second = monitor(*args, "--interval", "1")
        assert second.returncode == 0, second.stderr

        def shown(done: subprocess.CompletedProcess[str]) -> set[int]:
            return {int(ln.split()[1]) for ln in done.stdout.splitlines() if ln.startswith("run ")}

        assert len(shown(first)) >= 2
        assert len(shown(second)) >= 2
        assert min(shown(second)) > max(shown(first))  # the first demo's runs are not replayed
        hint = next(line for line in second.stdout.splitlines() if "list them:" in line)
        command = hint.split("list them:", 1)[1].split()
        assert command[0] == "monitor"  # started as `python -m monitor`
        env = {k: v for k, v in os.environ.items() if k != "MONITOR_DEMO_TOKEN"}
        listed = subprocess.run(
            [sys.executable, "-m", "monitor", *command[1:], "--format", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert listed.returncode == 0, listed.stderr
        listed_ids = {r["id"] for r in json.loads(listed.stdout)["runs"]}
        assert shown(first) | shown(second) <= listed_ids

    def test_busy_port_exits_2_with_one_line_naming_the_address(self, tmp_path: Path) -> None:
        """`monitor demo` and `monitor serve` on a taken port: exit 2, one line, no traceback."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            demo = monitor("demo", "--dir", str(tmp_path / "d"), "--listen", f"127.0.0.1:{port}")
            config = tmp_path / "serve.yaml"
            config.write_text(
                f'storage: {{url: "sqlite:///{tmp_path}/s.db"}}\n'
                f'server: {{listen: "127.0.0.1:{port}"}}\n'
            )
            serve = monitor("serve", "--config", str(config))
        for done in (demo, serve):
            assert done.returncode == 2, done.stderr
            no_traceback(done)
            errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            assert errors == [
                f"error: server.listen 127.0.0.1:{port}: cannot listen: Address already in use"
            ], done.stderr


class TestSplitScorers:
    def test_tables_runs_and_compare_name_each_split_with_its_counts_and_flips(
        self, tmp_path: Path
    ) -> None:
        """`exact_match[public]` keeps its suffix, its own item count and its own flips."""
        sim = Simulator(regress_after=60)
        try:
            cfg = tmp_path / "split.yaml"
            cfg.write_text(
                SPLIT_CONFIG.format(
                    db=tmp_path / "m.db", url=sim.url, data=EXAMPLES / "support_intents.jsonl"
                )
            )
            first = monitor("run", "gate", "--config", str(cfg))
            second = monitor("run", "gate", "--config", str(cfg), "--format", "json")
        finally:
            sim.stop()
        assert "exact_match[public]" in first.stdout
        assert "exact_match[private]" in first.stdout
        doc = json.loads(second.stdout)["runs"][0]
        n_public = doc["scores"]["exact_match[public]"]["n"]
        n_private = doc["scores"]["exact_match[private]"]["n"]
        assert n_public + n_private == doc["n_items"]
        row = next(line for line in first.stdout.splitlines() if "exact_match[public]" in line)
        assert f" {n_public} " in row
        compared = monitor("compare", "1", "2", "--config", str(cfg), "--format", "json")
        scorers = json.loads(compared.stdout)["scorers"]
        flips = {
            name: set(s["pass_to_fail"]) | set(s["fail_to_pass"]) for name, s in scorers.items()
        }
        assert flips["exact_match"], "the scripted drop flips some items"
        assert flips["exact_match"] == flips["exact_match[public]"] | flips["exact_match[private]"]
        assert not flips["exact_match[public]"] & flips["exact_match[private]"]

    def test_truncated_flip_lists_say_how_many_are_not_shown(self) -> None:
        """A list cut at 20 names says how many more there are and how to see them."""
        text = _listed([f"k{i}" for i in range(31)])
        assert text.startswith("(31): k0, ")
        assert text.endswith("(11 more not shown; --format json lists all)")
        assert _listed(["a"]) == "(1): a"


class TestFailures:
    def test_unreachable_endpoint_names_the_error_kind_and_url(self, tmp_path: Path) -> None:
        """All items failing with `connect` shows the kind and the URL, in console and log."""
        url = f"http://127.0.0.1:{free_port()}/v1"
        cfg = tmp_path / "down.yaml"
        cfg.write_text(
            SPLIT_CONFIG.format(
                db=tmp_path / "m.db", url=url, data=EXAMPLES / "support_intents.jsonl"
            )
        )
        done = monitor("run", "gate", "--config", str(cfg))
        assert done.returncode == 3
        assert f"60 of 60 items got no answer: connect (60); endpoint {url}" in done.stdout
        assert "degraded_threshold" in done.stdout
        finished = next(
            json.loads(line) for line in done.stderr.splitlines() if '"run_finished"' in line
        )
        assert finished["error_kinds"] == {"connect": 60}
        assert finished["url"] == url

    def test_baseline_pin_of_an_unknown_run_is_bad_input(self, tmp_path: Path) -> None:
        """`baseline pin 999` exits 2 (bad input), not 3 (run failed)."""
        cfg = tmp_path / "m.yaml"
        cfg.write_text(f'storage: {{url: "sqlite:///{tmp_path}/m.db"}}\n')
        done = monitor("baseline", "pin", "999", "--config", str(cfg))
        assert done.returncode == 2
        assert "no run with id 999" in done.stderr

    def test_db_upgrade_names_the_database_not_the_class(self, tmp_path: Path) -> None:
        """`db upgrade` prints the database URL."""
        cfg = tmp_path / "m.yaml"
        cfg.write_text('storage: {url: "sqlite:///m.db"}\n')
        done = monitor("db", "upgrade", "--config", str(cfg))
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"database sqlite:///{tmp_path / 'm.db'} is at the latest schema\n"

    def test_every_option_has_help_text(self) -> None:
        """`--help` of each command describes every option."""
        parser = _parser()
        subparsers = next(a for a in parser._actions if a.dest == "command")
        assert isinstance(subparsers.choices, dict)
        for name, sub in subparsers.choices.items():
            for action in sub._actions:
                if action.dest != "help":
                    assert action.help, f"monitor {name}: {action.dest} has no help"


class TestConfigPaths:
    def test_relative_sqlite_path_resolves_against_the_config_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`sqlite:///monitor.db` is next to the config file, from any working directory."""
        folder = tmp_path / "conf"
        folder.mkdir()
        (folder / "m.yaml").write_text('storage: {url: "sqlite:///monitor.db?timeout=5"}\n')
        monkeypatch.chdir(tmp_path)
        settings = load_settings(folder / "m.yaml")
        assert settings.storage.url == f"sqlite:///{folder / 'monitor.db'}?timeout=5"

    def test_read_only_commands_need_no_service_secret(self, tmp_path: Path) -> None:
        """`monitor runs` reads a service config whose token and keys are not set."""
        cfg = tmp_path / "service.yaml"
        cfg.write_text(
            'storage: {url: "sqlite:///m.db"}\n'
            'server: {api_token: "${MONITOR_API_TOKEN}"}\n'
            "endpoints: [{name: e, type: openai-chat, url: http://127.0.0.1:1/v1, model: m,"
            ' headers: {Authorization: "Bearer ${LLM_KEY}"}}]\n'
        )
        env = {k: v for k, v in os.environ.items() if k not in ("MONITOR_API_TOKEN", "LLM_KEY")}
        for command in (["runs"], ["db", "upgrade"]):
            done = subprocess.run(
                [sys.executable, "-m", "monitor", *command, "--config", str(cfg)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env=env,
            )
            assert done.returncode == 0, done.stderr
        full = subprocess.run(
            [sys.executable, "-m", "monitor", "check-config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert full.returncode == 2  # the service itself still needs them
        assert "MONITOR_API_TOKEN is not set" in full.stderr


class TestExport:
    def test_jsonl_and_csv_round_trip_every_stored_field(self, tmp_path: Path) -> None:
        """An export read back gives the stored item results, nulls and NaN included."""
        store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
        run = store.start_run(
            monitor="m",
            benchmark="b",
            benchmark_version="v",
            endpoint="e",
            trigger="manual",
            started_at=datetime.now(UTC),
        )
        results = [
            ItemResult(
                "a",
                'yes, "quoted"\nnewline',
                {"exact": 1.0, "f1": math.nan},
                0.25,
                usage=Usage(prompt_tokens=12, completion_tokens=3),
                attempts=2,
            ),
            ItemResult(
                "b", None, {}, 1.5, error=ErrorKind.TIMEOUT, error_detail="\\N x", attempts=4
            ),
            ItemResult("c", "", {"exact": 0.0}, math.nan),
        ]
        store.add_item_results(run.id, results)
        stored = store.item_results(run.id)
        store.close()
        for fmt in ("jsonl", "csv"):
            out = io.StringIO()
            assert write_records((record(run.id, r) for r in stored), out, fmt) == 3
            back = [result_from_record(rec) for rec in read_records(out.getvalue(), fmt)]
            assert [rid for rid, _ in back] == [run.id] * 3
            for (_, got), want in zip(back, stored, strict=True):
                assert _same(got, want), (fmt, got, want)

    def test_export_command_writes_the_run(self, tmp_path: Path) -> None:
        """`monitor export RUN --format csv` writes one row per item result plus a header."""
        cfg = tmp_path / "m.yaml"
        cfg.write_text(f'storage: {{url: "sqlite:///{tmp_path}/m.db"}}\n')
        store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
        run = store.start_run(
            monitor="m",
            benchmark="b",
            benchmark_version="v",
            endpoint="e",
            trigger="manual",
            started_at=datetime.now(UTC),
        )
        store.add_item_results(
            run.id, [ItemResult(f"k{i}", "x", {"s": 1.0}, 0.1) for i in range(5)]
        )
        store.close()
        done = monitor("export", str(run.id), "--format", "csv", "--config", str(cfg))
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.splitlines()) == 6
        missing = monitor("export", "99", "--config", str(cfg))
        assert missing.returncode == 2


def _same(a: ItemResult, b: ItemResult) -> bool:
    def norm(x: float) -> object:
        return "nan" if isinstance(x, float) and math.isnan(x) else x

    return (
        a.item_key == b.item_key
        and a.output == b.output
        and {k: norm(v) for k, v in a.scores.items()} == {k: norm(v) for k, v in b.scores.items()}
        and norm(a.latency_s) == norm(b.latency_s)
        and a.error == b.error
        and a.error_detail == b.error_detail
        and a.usage == b.usage
        and a.attempts == b.attempts
    )


class TestTerminal:
    def test_progress_bar_is_not_interleaved_with_log_lines(self, tmp_path: Path) -> None:
        """On a terminal, `monitor run` shows the bar and table with no log line between."""
        sim = Simulator()
        try:
            cfg = tmp_path / "t.yaml"
            cfg.write_text(
                SPLIT_CONFIG.format(
                    db=tmp_path / "m.db", url=sim.url, data=EXAMPLES / "support_intents.jsonl"
                )
            )
            leader, follower = pty.openpty()
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "gate", "--config", str(cfg)],
                stdin=follower,
                stdout=follower,
                stderr=follower,
                env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
            )
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert proc.wait(60) == 0
            os.close(leader)
        finally:
            sim.stop()
        screen = b"".join(chunks).decode("utf-8", "replace")
        text = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|[│┃|]", " ", screen).split())
        assert "monitor run" in text  # the table's title
        assert "run_started" not in text
        assert "run_finished" not in text
        assert "no_baseline:" in text  # the verdict says why it is not judged
        assert "exact_match[public]" in text  # never cut to fit
