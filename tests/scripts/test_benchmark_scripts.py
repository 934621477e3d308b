"""The benchmark scripts still run end to end (tiny sizes, docs left alone).

Their figures are measured by running them in full (docs/performance.md,
docs/statistics.md); these runs only keep the scripts from rotting.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def script(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_detection_table_has_every_row_and_cell() -> None:
    """A few repetitions print the summary and each setting's engine and calibrated rows."""
    before = (ROOT / "docs" / "statistics.md").read_text()
    out = script(
        "detection.py",
        *("--reps", "2", "--null-reps", "4", "--workers", "1", "--no-write"),
        *("--only", "independent, 1,000 items", "--only", "100 items"),
    )
    assert (ROOT / "docs" / "statistics.md").read_text() == before
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith(("| rule ", "| setting "))
    ]
    summary = [r for r in rows if len(r) == 6]
    assert [r[0] for r in summary] == ["independent, 1,000 items", "100 items"]
    for row in summary:
        assert re.fullmatch(r"\d\.\d{3} \(\d\.\d{3}\)", row[2]), row  # rate (upper bound)
        assert re.fullmatch(r"\d\.\d{3} / \d\.\d{3}", row[3]), row  # run test / CUSUM
    for title in ("**independent, 1,000 items**", "**100 items**"):
        assert title in out
    engine = [r for r in rows if r[0] == "**engine, defaults**"]
    assert [len(r) for r in engine] == [10, 5]  # 8 changed cells, then 3
    cell = re.compile(r"^\d\.\d\d / \d\.\d\d / (\d+(\.5)?|>20)$")
    table_rows = [r for r in rows if len(r) != 6]
    assert sum("(calibrated)" in r[0] for r in table_rows) == 6  # three rules x two settings
    for row in table_rows:
        assert re.fullmatch(r"\d\.\d{3}", row[1]), row  # false-alarm rate
        assert all(cell.match(c) for c in row[2:]), row


def test_runner_throughput_quick_stores_every_item() -> None:
    """The quick mode runs both cases through the real runner, without errors."""
    out = script("runner_throughput.py", "--quick")
    lines = [line for line in out.splitlines() if line.startswith("N=")]
    assert len(lines) == 2
    assert all("errors 0" in line for line in lines)
