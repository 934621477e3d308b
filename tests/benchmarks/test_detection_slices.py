"""benchmarks/detection_slices.py: the simulated slices and changes, the doc block, and a
quick run of the script in a child process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.detection_slices import (
    CHANGES,
    END,
    NULLS,
    START,
    draw_endpoint,
    slice_bounds,
    slice_sizes,
    write_doc,
)

ROOT = Path(__file__).resolve().parents[2]


class TestPopulation:
    def test_slice_sizes(self) -> None:
        """s0 has 40 items; the other 960 split 107 / 106 over s1..s9."""
        sizes = slice_sizes()
        assert sizes[0] == 40
        assert sum(sizes) == 1000
        assert len(sizes) == 10
        assert set(sizes[1:]) == {106, 107}
        assert sizes[1] == 107

    def test_a_breaks_30_percent_of_s0_always_right_items_only(self) -> None:
        """24 always-right items in s0, round(0.3 x 24) = 7 flipped, nothing else moves."""
        ep, drops = draw_endpoint(CHANGES[0], np.random.default_rng(3))
        moved = np.flatnonzero(ep.after != ep.p)
        assert moved.size == 7
        assert moved.max() < 40
        assert (ep.p[moved] >= 0.98).all()
        assert np.allclose(ep.after[moved], 1.0 - ep.p[moved])
        assert drops[0] == pytest.approx(100 * (ep.p - ep.after)[:40].mean())
        assert (ep.cls[:40] == 0).sum() == 24

    def test_b_takes_10_points_from_the_hard_slice_flaky_items(self) -> None:
        """s1 is half flaky; only its flaky items lose, by the same amount, 10 points in all."""
        ep, drops = draw_endpoint(CHANGES[1], np.random.default_rng(4))
        s1 = slice_bounds()[1]
        assert (ep.cls[s1] == 2).sum() == 54
        moved = np.flatnonzero(ep.after != ep.p)
        assert set(moved) == set(s1.start + np.flatnonzero(ep.cls[s1] == 2))
        loss = (ep.p - ep.after)[moved]
        assert np.allclose(loss, loss[0])
        assert drops[0] == pytest.approx(10.0)
        assert drops[1] == pytest.approx(10.0 * 107 / 1000)

    def test_null_populations_do_not_change(self) -> None:
        for sc in NULLS:
            ep, _ = draw_endpoint(sc, np.random.default_rng(5))
            assert np.array_equal(ep.p, ep.after)


class TestDoc:
    def test_replaces_between_the_markers_only(self, tmp_path: Path) -> None:
        doc = tmp_path / "statistics.md"
        doc.write_text(f"# S\n\nbefore\n{START}\nold\n{END}\nafter\n", encoding="utf-8")
        write_doc("new table", doc)
        write_doc("newer table", doc)
        assert (
            doc.read_text(encoding="utf-8")
            == f"# S\n\nbefore\n{START}\nnewer table\n{END}\nafter\n"
        )

    def test_refuses_a_doc_without_markers(self, tmp_path: Path) -> None:
        doc = tmp_path / "statistics.md"
        doc.write_text("# S\n", encoding="utf-8")
        with pytest.raises(ValueError, match="slice-table"):
            write_doc("table", doc)
        assert doc.read_text(encoding="utf-8") == "# S\n"


@pytest.mark.slow
def test_quick_run_prints_both_tables() -> None:
    """`--quick` runs a few repetitions of every cell, prints the tables and leaves the docs
    alone (it implies --no-write)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "detection_slices.py"), "--quick"],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
        cwd=ROOT,
    ).stdout
    assert out.startswith("Seed 20240611; 4 repetitions without a change per population, 4 per")
    for sc in (*NULLS, *CHANGES):
        assert f"| {sc.name} | " in out
    assert "| population (no change) | false alarms / 30 runs" in out
    assert "| change | expected drop: slice / aggregate |" in out
    assert START not in out
