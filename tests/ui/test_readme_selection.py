"""The README's model-selection block, run verbatim on a fresh clone against the demo models.

The ```bash block under "## Web view and model selection" is run by one bash in a `git
clone` of this repository (its `.venv` linked to the one under test), as
tests/test_readme.py does for the quick start. Ports 8089 and 8090 (the README's) must be
free.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def selection_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Web view and model selection\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "no bash block under 'Web view and model selection'"
    return match.group(1)


def test_model_selection_block_runs_as_printed(tmp_path: Path) -> None:
    """compare --endpoints and leaderboard say what the README says, on a fresh clone."""
    for port in (8089, 8090):
        probe = subprocess.run(
            ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], capture_output=True, check=False
        )
        assert probe.returncode != 0, f"port {port} is taken; the README's commands need it"
    clone = tmp_path / "monitor"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    (clone / ".venv").symlink_to(Path(sys.prefix))
    script = (
        "trap 'kill $(jobs -p) 2>/dev/null' EXIT\n"
        # the simulators need a moment to listen before the first run
        + selection_block().replace(
            ".venv/bin/monitor run pick",
            "for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8090) 2>/dev/null && break;"
            " sleep 0.1; done\n.venv/bin/monitor run pick",
            1,
        )
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(clone)},
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "practically equivalent (within 5 points)" in out
    assert "candidate is worse" in out
    # the figures the README quotes (the simulated models are deterministic)
    assert "p = 0.0378 -> practically equivalent" in out
    assert "difference -25.0 points [-37.2, -15.8]" in out
    assert "mcnemar_exact: p = 0.0001" in out
    tiers = re.findall(r"│ (\d)\s+│ (\S+)\s+│", out)
    assert ("1", "prod") in tiers
    assert ("1", "prod-b") in tiers
    assert ("2", "candidate") in tiers
