"""The import contracts in pyproject.toml hold, and break when a layer is crossed.

`lint-imports` runs on a copy of the package with one import planted, so a contract that
silently stopped covering a module (as `daemon`, `judge` and the adapters once were
left out of the layering) fails here, not in review.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its pyproject.toml."""
    shutil.copytree(
        ROOT / "monitor", tmp_path / "monitor", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def plant(tree: Path, module: str, line: str) -> None:
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


class TestContracts:
    def test_the_package_keeps_every_contract(self, tree: Path) -> None:
        """The shipped package breaks no contract."""
        done = lint_imports(tree)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Contracts: 3 kept, 0 broken." in done.stdout

    def test_runner_imported_by_storage_breaks_the_layers(self, tree: Path) -> None:
        """An adapter importing a use case is refused, naming the import."""
        plant(tree, "monitor/storage/repository.py", "import monitor.runner  # planted")
        done = lint_imports(tree)
        assert done.returncode == 1
        assert "monitor.storage is not allowed to import monitor.runner" in done.stdout
        assert "monitor.storage.repository -> monitor.runner" in done.stdout

    def test_storage_imported_by_core_breaks_the_layers(self, tree: Path) -> None:
        """The pure core importing an adapter is refused, naming the import."""
        plant(tree, "monitor/core/model.py", "import monitor.storage  # planted")
        done = lint_imports(tree)
        assert done.returncode == 1
        assert "monitor.core is not allowed to import monitor.storage" in done.stdout
        assert "monitor.core.model -> monitor.storage" in done.stdout
