"""The README's quick start and service blocks, run verbatim on a fresh clone.

The shell blocks are taken from README.md as they are printed, run in order by one bash
in a `git clone` of this repository (its `.venv` linked to the one under test), and the
exit codes and key lines they print are checked. A README that drifts from the code
turns this test red. Everything listens on 127.0.0.1 (the README's ports 8089 and 9464).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def shell_block(readme: str, heading: str) -> str:
    """The first ```bash block under `## heading`."""
    section = readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, f"no bash block under {heading!r}"
    return match.group(1)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A fresh clone of the committed repository, with the venv under test."""
    target = tmp_path / "monitor"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True, timeout=120)
    (target / ".venv").symlink_to(Path(sys.prefix))  # the venv running this test
    return target


def test_quick_start_and_service_blocks_run_as_printed(clone: Path) -> None:
    """Every command of both blocks works as written and says what the README says."""
    for port in (8089, 9464):  # the README's fixed ports must be free
        assert shutil.which("bash")
        probe = subprocess.run(
            ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], capture_output=True, check=False
        )
        assert probe.returncode != 0, f"port {port} is taken; the README's commands need it"
    readme = (clone / "README.md").read_text(encoding="utf-8")
    script = (
        "trap 'kill $(jobs -p) 2>/dev/null' EXIT\n"
        "echo '>>> quick start'\n"
        + shell_block(readme, "Quick start")
        + "echo '>>> service'\n"
        + shell_block(readme, "Running it as a service")
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(clone)},
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    quick, service = out.split(">>> service\n", 1)
    assert (
        "examples/quickstart.yaml: ok (1 endpoint, 1 benchmark with 60 items, 1 monitor)" in quick
    )
    assert "exact_match" in quick
    assert "no_baseline" in quick
    assert "runs (1 newest)" in quick
    exits = dict(re.findall(r"^run (\d): exit (\d)$", quick, re.M))
    assert exits == {"2": "0", "3": "0", "4": "0", "5": "0", "6": "1"}, quick
    sixth = json.loads((clone / "run-6.json").read_text())["runs"][0]
    assert sixth["verdicts"]["exact_match"]["verdict"] == "regressed"
    flipped = sixth["verdicts"]["exact_match"]["changed_items"]["pass_to_fail"]
    assert re.search(rf"pass -> fail \({len(flipped)}\): ", quick), quick
    assert re.search(r'^monitor_benchmark_score\{.*scorer="exact_match"\} ', service, re.M)
    runs = json.loads(next(ln for ln in service.splitlines() if ln.startswith('{"runs"')))
    assert runs["runs"][0]["id"] == 6
    posted = json.loads(next(ln for ln in service.splitlines() if ln.startswith('{"monitor"')))
    assert posted["runs"][0]["status"] in {"started", "queued"}
    assert "serve: exit 0" in service
    assert not (clone / "examples" / "monitor.db.lock").exists()
