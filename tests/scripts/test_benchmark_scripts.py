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
    """A few repetitions print both variants with engine, naive and calibrated rows."""
    before = (ROOT / "docs" / "statistics.md").read_text()
    out = script(
        "detection.py",
        *("--reps", "4", "--null-reps", "8", "--workers", "1", "--no-write"),
        *("--engine", "alpha=0.01,arl0=1000,window=10"),
    )
    assert (ROOT / "docs" / "statistics.md").read_text() == before
    for variant in ("a", "b"):
        assert f"**Variant {variant}:" in out
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| rule ")
    ]
    engine = [r[0] for r in rows if r[0].startswith("**engine")]
    assert len(engine) == 6  # three configurations x two variants
    assert set(engine) == {
        "**engine, defaults**",
        "**engine, defaults, rolling:5**",
        "**engine, alpha=0.01,arl0=1000,window=10**",
    }
    cell = re.compile(r"^\d\.\d\d / \d\.\d\d / (\d+(\.5)?|>20)$")
    for row in rows:
        assert re.fullmatch(r"\d\.\d{3}", row[1]), row  # false-alarm rate
        assert len(row[2:]) == 4, row
        assert all(cell.match(c) for c in row[2:]), row


def test_runner_throughput_quick_stores_every_item() -> None:
    """The quick mode runs both cases through the real runner, without errors."""
    out = script("runner_throughput.py", "--quick")
    lines = [line for line in out.splitlines() if line.startswith("N=")]
    assert len(lines) == 2
    assert all("errors 0" in line for line in lines)
