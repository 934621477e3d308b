"""benchmarks/judge_sentinel.py: the simulation's pieces on tiny repetitions, and the doc block."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.judge_sentinel import (
    END,
    NOISES,
    START,
    Branch,
    latent,
    n_switched,
    render,
    repetition,
    run,
    switched,
    write_doc,
)


class TestJudge:
    def test_switch_moves_round_half_up_share_of_stable_items(self) -> None:
        """5% of 50 is 3 items (not Python's round(2.5) = 2), all taken from the stable side."""
        assert n_switched(0.05, 50) == 3
        rng = np.random.default_rng(1)
        p, pass_idx, fail_idx = latent(NOISES[0], 300, rng)
        assert p[pass_idx].min() >= 0.99
        assert p[fail_idx].max() <= 0.01
        q = switched(p, pass_idx, fail_idx, Branch(3, 0.05, "stricter"), rng)
        changed = np.flatnonzero(q != p)
        assert changed.size == 15
        assert set(changed) <= set(pass_idx)
        assert q[changed].max() <= 0.01
        q = switched(p, pass_idx, fail_idx, Branch(3, 0.05, "lenient"), rng)
        changed = np.flatnonzero(q != p)
        assert set(changed) <= set(fail_idx)
        assert q[changed].min() >= 0.99

    def test_null_stream_does_not_depend_on_the_branches(self) -> None:
        """The unchanged judge's re-scores are the same with or without power branches, so
        null and power cells share their first runs."""
        seed = np.random.SeedSequence(7)
        alone, none = repetition(NOISES[1], 50, seed, runs=5, branches=())
        with_branch, first = repetition(
            NOISES[1], 50, seed, runs=5, branches=(Branch(3, 0.1, "lenient"),)
        )
        assert none.size == 0
        assert np.array_equal(alone, with_branch)
        assert not alone[0]  # the first run has no history and no test
        assert 0 <= first[0] <= 3


class TestPower:
    def test_a_tenth_of_300_items_turning_stricter_is_caught(self) -> None:
        """10% of 300 items (30) failing now is caught by the first re-score after 3 runs."""
        seeds = np.random.SeedSequence(11).spawn(200)
        branch = (Branch(3, 0.10, "stricter"),)
        firsts = [repetition(NOISES[0], 300, s, runs=3, branches=branch)[1][0] for s in seeds]
        assert np.mean(np.array(firsts) == 1) > 0.8


class TestRun:
    def test_cells_are_fractions_and_render(self) -> None:
        """A tiny in-process run: shares in [0, 1], counts as asked, every cell in the table."""
        cells = run(4, 2, 1, noises=NOISES[:1], sizes=(50,))
        (c,) = cells
        assert (c.null_reps, c.power_reps) == (4, 2)
        for share in (c.fa_empty, c.fa_warm, c.per_rescore, *c.within1.values()):
            assert 0.0 <= share <= 1.0
        assert all(c.within1[b] <= c.within3[b] for b in c.within1)
        table = render(cells, 1.0)
        assert "| 10% ambiguous, flips <= 1% | 50 | 4 |" in table
        assert "**Reading.**" not in table  # no 300-item cell to read


class TestDoc:
    def test_replaces_between_the_markers_only(self, tmp_path: Path) -> None:
        doc = tmp_path / "statistics.md"
        doc.write_text(f"# S\n\nbefore\n{START}\nold\n{END}\nafter\n", encoding="utf-8")
        write_doc("new table", doc)
        write_doc("newer table", doc)
        text = doc.read_text(encoding="utf-8")
        assert text == f"# S\n\nbefore\n{START}\nnewer table\n{END}\nafter\n"

    def test_appends_section_12_without_markers(self, tmp_path: Path) -> None:
        doc = tmp_path / "statistics.md"
        doc.write_text("# S\n\n## 11. Other\n\ntext\n", encoding="utf-8")
        write_doc("table", doc)
        text = doc.read_text(encoding="utf-8")
        assert text.startswith("# S\n\n## 11. Other\n\ntext\n\n## 12. The judge-drift sentinel")
        assert "python benchmarks/judge_sentinel.py" in text
        assert text.endswith(f"{START}\ntable\n{END}\n")
