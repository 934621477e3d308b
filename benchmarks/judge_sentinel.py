"""False alarms and power of the judge-drift sentinel, in a seeded simulation.

The product (monitor/judge.py, `_sentinel`) has the judge re-score a frozen calibration
set on every run and asks `judge_drift` (monitor/core/stats/sentinel.py, at its default
alpha) whether the judge moved since its earlier re-scores. The history is the scores of
the last 10 earlier re-scores (oldest first) whose check did not say moved: a check that
said moved stays out of later histories (`judge_history` in monitor/storage/repository.py).
The first run has no history and no test. This simulation replays exactly that loop.

The judge. A calibration set of N items (50, 100, 300, 1,000). Each item has a latent
pass probability under the unchanged judge: an "ambiguous" share has p uniform in
[0.2, 0.8], the rest are near-deterministic, 60% of them passing with p in [1 - f, 1] and
40% failing with p in [0, f]. Three noise settings: 10% ambiguous with f = 0.01, 25%
ambiguous with f = 0.01, and 10% ambiguous with f = 0.03. Each re-score draws every
item's verdict (1.0 pass, 0.0 fail) independently from its p, so verdicts flip both ways
between re-scores, the ambiguous items most.

Null. Each repetition draws a calibration set and 40 re-scores of the unchanged judge.
False alarm = a 30-run period with at least one `moved`, measured on runs 1-30 (the first
run starts from an empty history) and on runs 11-40 (after 10 warm-up runs; their checks
feed the history as in the product, but their alarms are not counted).

Power. After H runs of the unchanged judge (H = 3 and 10, the same runs as the null's
first H), the judge turns stricter on a share s (2%, 5%, 10%) of the items: round(s x N)
near-deterministic pass items (p >= 1 - f, i.e. p >= 0.99 at f = 0.01) now fail with p
uniform in [0, 0.01]; or more lenient: as many near-deterministic fail items now pass
with p uniform in [0.99, 1]. The switched judge re-scores for up to 3 runs. Power within
1 run = share of repetitions whose first re-score after the switch says moved in the
right direction; within 3 runs = one of the first three does (a check in the wrong
direction, or none, does not count; a steady check enters the history as in the product).
Every branch of a repetition (H, s, direction) starts from the same pre-switch history.

Usage: python benchmarks/judge_sentinel.py [--quick] [--reps 1000] [--power-reps 300]
[--workers 2] [--no-write]. Writes the tables into docs/statistics.md between the
judge-sentinel-table markers (appending section 12 when they are missing).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from monitor.core.stats.sentinel import DEFAULT_ALPHA, judge_drift
from monitor.judge import SENTINEL_HISTORY

SEED = 20240612
RUNS = 30  # runs per false-alarm period
WARMUP = 10  # runs of history before the warm variant's period starts
AFTER = 3  # runs followed after the switch ("within 3 runs")
HS = (3, 10)  # runs of the unchanged judge before the switch
SHARES = (0.02, 0.05, 0.10)
DIRECTIONS = ("stricter", "lenient")
SIZES = (50, 100, 300, 1000)
PASS_SHARE = 0.6  # of the near-deterministic items
#: Null repetitions relative to --reps: a check at 1,000 items costs ~5x one at 300.
NULL_SCALE = {1000: 0.5}
CHUNK = 20
DOC = Path(__file__).resolve().parents[1] / "docs" / "statistics.md"
START, END = "<!-- judge-sentinel-table:start -->", "<!-- judge-sentinel-table:end -->"
#: The acceptance targets the tables are read against.
TARGET_N, TARGET_FA, TARGET_SHARE, TARGET_POWER = 300, 0.01, 0.05, 0.9

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Scores = dict[str, float]


@dataclass(frozen=True)
class Noise:
    """How non-deterministic the unchanged judge is."""

    name: str
    ambiguous: float  # share of items with p uniform in [0.2, 0.8]
    flip: float  # the near-deterministic items' highest flip rate


NOISES = (
    Noise("10% ambiguous, flips <= 1%", 0.10, 0.01),
    Noise("25% ambiguous, flips <= 1%", 0.25, 0.01),
    Noise("10% ambiguous, flips <= 3%", 0.10, 0.03),
)


@dataclass(frozen=True)
class Branch:
    """A switch of the judge after `h` runs."""

    h: int
    share: float
    direction: str

    @property
    def label(self) -> str:
        return f"{self.direction} {self.share:.0%}"


BRANCHES = tuple(Branch(h, s, d) for h in HS for d in DIRECTIONS for s in SHARES)


def n_switched(share: float, n: int) -> int:
    """Items the switch moves: s x N rounded half up (Python's round(2.5) is 2)."""
    return max(1, math.floor(share * n + 0.5))


def latent(noise: Noise, n: int, rng: np.random.Generator) -> tuple[FloatArray, IntArray, IntArray]:
    """Pass probabilities, and the indices of the near-deterministic pass and fail items."""
    n_amb = round(noise.ambiguous * n)
    n_pass = round(PASS_SHARE * (n - n_amb))
    n_fail = n - n_amb - n_pass
    p = np.concatenate(
        [
            rng.uniform(1.0 - noise.flip, 1.0, n_pass),
            rng.uniform(0.0, noise.flip, n_fail),
            rng.uniform(0.2, 0.8, n_amb),
        ]
    )
    return p, np.arange(n_pass), np.arange(n_pass, n_pass + n_fail)


def switched(
    p: FloatArray, pass_idx: IntArray, fail_idx: IntArray, b: Branch, rng: np.random.Generator
) -> FloatArray:
    """The pass probabilities of the judge after switch `b`."""
    k = n_switched(b.share, p.size)
    q = p.copy()
    if b.direction == "stricter":
        q[rng.choice(pass_idx, k, replace=False)] = rng.uniform(0.0, 0.01, k)
    else:
        q[rng.choice(fail_idx, k, replace=False)] = rng.uniform(0.99, 1.0, k)
    return q


def rescore(p: FloatArray, ids: Sequence[str], rng: np.random.Generator) -> Scores:
    """One re-score of the calibration set: every verdict an independent coin."""
    return dict(zip(ids, (rng.random(p.size) < p).astype(np.float64).tolist(), strict=True))


def after_switch(
    q: FloatArray,
    ids: Sequence[str],
    accepted: Sequence[Scores],
    direction: str,
    rng: np.random.Generator,
) -> int:
    """The first re-score after the switch (1..AFTER) that said moved in `direction`, else 0."""
    kept = list(accepted)
    for r in range(1, AFTER + 1):
        current = rescore(q, ids, rng)
        drift = judge_drift(current, kept[-SENTINEL_HISTORY:])
        if drift.moved and drift.direction == direction:
            return r
        if not drift.moved:  # a check that said moved stays out of later histories
            kept.append(current)
    return 0


def repetition(
    noise: Noise,
    n: int,
    seed: np.random.SeedSequence,
    *,
    runs: int = WARMUP + RUNS,
    branches: Sequence[Branch] = BRANCHES,
) -> tuple[BoolArray, IntArray]:
    """One calibration set: the moved flag of each of `runs` re-scores of the unchanged
    judge, and per branch the first re-score after its switch that caught it (0 = none)."""
    # children by position: the null stream is the same whether or not branches are run
    judge_ss, null_ss, *branch_ss = seed.spawn(2 + len(branches))
    p, pass_idx, fail_idx = latent(noise, n, np.random.default_rng(judge_ss))
    ids = [f"item-{i:04d}" for i in range(n)]
    rng = np.random.default_rng(null_ss)
    hs = {b.h for b in branches}
    accepted: list[Scores] = []
    before: dict[int, list[Scores]] = {}
    moved = np.zeros(runs, dtype=np.bool_)
    for t in range(max(runs, *hs) if hs else runs):
        current = rescore(p, ids, rng)
        drift = judge_drift(current, accepted[-SENTINEL_HISTORY:])
        if t < runs:
            moved[t] = drift.moved
        if not drift.moved:
            accepted.append(current)
        if t + 1 in hs:
            before[t + 1] = list(accepted)
    first = np.zeros(len(branches), dtype=np.int64)
    for i, (b, ss) in enumerate(zip(branches, branch_ss, strict=True)):
        brng = np.random.default_rng(ss)
        q = switched(p, pass_idx, fail_idx, b, brng)
        first[i] = after_switch(q, ids, before[b.h], b.direction, brng)
    return moved, first


def _task(
    args: tuple[int, int, list[np.random.SeedSequence], int],
) -> tuple[int, int, BoolArray, IntArray, float]:
    """A chunk of repetitions of one cell; the first `with_power` also run the branches."""
    noise_index, n, seeds, with_power = args
    started = time.perf_counter()
    moved, first = [], []
    for i, seed in enumerate(seeds):
        power = i < with_power
        m, f = repetition(NOISES[noise_index], n, seed, branches=BRANCHES if power else ())
        moved.append(m)
        first.append(f if power else np.full(len(BRANCHES), -1, dtype=np.int64))
    elapsed = time.perf_counter() - started
    return noise_index, n, np.array(moved), np.array(first), elapsed


@dataclass
class Cell:
    """The measurements of one noise setting and calibration-set size."""

    noise: Noise
    n: int
    null_reps: int
    power_reps: int
    fa_empty: float  # share of periods of runs 1-30 with a moved check
    fa_warm: float  # runs 11-40
    per_rescore: float  # share of checks with a test (runs 2-40) that said moved
    within1: dict[Branch, float]
    within3: dict[Branch, float]
    seconds: float

    def power_at(self, h: int) -> float:
        """The lowest power within 1 run at the target share, both directions, after `h`."""
        return min(self.within1[b] for b in BRANCHES if b.share == TARGET_SHARE and b.h == h)

    def power_ok(self, hs: Sequence[int] = HS) -> bool:
        return all(self.power_at(h) >= TARGET_POWER for h in hs)

    def fa_ok(self) -> bool:
        return self.fa_empty <= TARGET_FA and self.fa_warm <= TARGET_FA


def cell(noise: Noise, n: int, moved: BoolArray, first: IntArray, seconds: float = 0.0) -> Cell:
    """Summarize the repetitions of one cell (rows of `first` at -1 ran no branches)."""
    powered = first[(first >= 0).all(axis=1)]
    return Cell(
        noise=noise,
        n=n,
        null_reps=moved.shape[0],
        power_reps=powered.shape[0],
        fa_empty=float(moved[:, :RUNS].any(axis=1).mean()),
        fa_warm=float(moved[:, WARMUP : WARMUP + RUNS].any(axis=1).mean()),
        per_rescore=float(moved[:, 1:].mean()),
        within1={b: float((powered[:, i] == 1).mean()) for i, b in enumerate(BRANCHES)},
        within3={
            b: float(((powered[:, i] >= 1) & (powered[:, i] <= 3)).mean())
            for i, b in enumerate(BRANCHES)
        },
        seconds=seconds,
    )


def run(
    reps: int,
    power_reps: int,
    workers: int,
    noises: Sequence[Noise] = NOISES,
    sizes: Sequence[int] = SIZES,
) -> list[Cell]:
    """Every chosen cell; `workers` <= 1 runs in this process."""
    root = np.random.SeedSequence(SEED)
    seeds: dict[tuple[int, int], list[np.random.SeedSequence]] = {}
    for ni in range(len(NOISES)):  # spawned for every cell: a subset keeps the same streams
        for n in SIZES:
            null = max(2, round(reps * NULL_SCALE.get(n, 1.0)))
            seeds[(ni, n)] = root.spawn(max(null, power_reps))
    chosen = [(NOISES.index(nz), n) for nz in noises for n in sizes]
    tasks = []
    for key in chosen:
        cell_seeds = seeds[key]
        for i in range(0, len(cell_seeds), CHUNK):
            with_power = max(0, min(CHUNK, power_reps - i))
            tasks.append((key[0], key[1], cell_seeds[i : i + CHUNK], with_power))
    # the costliest chunks first, so the last ones to finish are short
    tasks.sort(key=lambda t: -t[1] * (len(t[2]) + t[3]))
    if workers <= 1:
        outputs = [_task(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outputs = list(pool.map(_task, tasks))
    parts: dict[tuple[int, int], list[tuple[BoolArray, IntArray, float]]] = {}
    for ni, n, moved, first, elapsed in outputs:
        parts.setdefault((ni, n), []).append((moved, first, elapsed))
    cells = []
    for key in chosen:
        got = parts[key]
        cells.append(
            cell(
                NOISES[key[0]],
                key[1],
                np.concatenate([g[0] for g in got]),
                np.concatenate([g[1] for g in got]),
                sum(g[2] for g in got),
            )
        )
    return cells


def _upper95(rate: float, n: int) -> float:
    """One-sided 95% upper bound of a binomial share (Clopper-Pearson)."""
    from scipy import stats

    k = round(rate * n)
    return 1.0 if k >= n else float(stats.beta.ppf(0.95, k + 1, n - k))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _verdict(c: Cell) -> str:
    if c.fa_ok() and c.power_ok():
        return "yes"
    why = []
    if not c.fa_ok():
        why.append(f"false alarms {_pct(max(c.fa_empty, c.fa_warm))}")
    low = [f"{c.power_at(h):.2f} at H = {h}" for h in HS if not c.power_ok((h,))]
    if low:
        why.append("power " + ", ".join(low))
    return "no: " + "; ".join(why)


def _span(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if lo == hi else f"{lo:.2f} to {hi:.2f}"


def _smallest(cells: Sequence[Cell], hs: Sequence[int]) -> str:
    """Per noise setting, the smallest size that meets both targets with `hs` of history."""
    out = []
    for name in dict.fromkeys(c.noise.name for c in cells):
        ok = sorted(c.n for c in cells if c.noise.name == name and c.fa_ok() and c.power_ok(hs))
        out.append(f"{ok[0]:,} items ({name})" if ok else f"none of the sizes ({name})")
    return "; ".join(out)


def reading(cells: Sequence[Cell]) -> str:
    """The paragraph that reads the tables, every figure taken from them."""
    at = [c for c in cells if c.n == TARGET_N]
    if not at:
        return ""
    fa = [max(c.fa_empty, c.fa_warm) for c in at]
    fa_met = all(c.fa_ok() for c in at)
    parts = [
        f"**Reading.** At {TARGET_N} calibration items an unchanged judge raised a false "
        f"alarm in {_pct(min(fa))} to {_pct(max(fa))} of {RUNS}-run periods (the worse of "
        f"the two starts; target <= {_pct(TARGET_FA)}: {'met' if fa_met else 'missed'})."
    ]
    for h in sorted(HS, reverse=True):
        per_dir = {
            d: [
                c.within1[b]
                for c in at
                for b in BRANCHES
                if b.h == h and b.share == TARGET_SHARE and b.direction == d
            ]
            for d in DIRECTIONS
        }
        missed = [c.noise.name for c in at if not c.power_ok((h,))]
        verdict = "met in every noise setting" if not missed else "missed in " + "; ".join(missed)
        parts.append(
            f"With {h} runs of history, a judge moving {TARGET_SHARE:.0%} of the items "
            f"({n_switched(TARGET_SHARE, TARGET_N)}) was caught by its first re-score in "
            + " and ".join(f"{_span(v)} of the repetitions {d}" for d, v in per_dir.items())
            + f" (target >= {TARGET_POWER}: {verdict})."
        )
    gain = max(c.within3[b] - c.within1[b] for c in cells for b in BRANCHES)
    if gain <= 0.01:
        parts.append(
            f"Within {AFTER} runs adds nothing (at most {gain:.2f}): the check that misses the "
            "switch keeps its scores in the history, the moved items are no longer stable in "
            "it, and later checks cannot see the switch."
        )
    else:
        parts.append(f"Within {AFTER} runs adds up to {gain:.2f} to the power within 1 run.")
    parts.append(
        f"The smallest calibration set that meets both targets after {' and '.join(map(str, HS))} "
        f"runs of history: {_smallest(cells, HS)}; after {max(HS)} runs only: "
        f"{_smallest(cells, (max(HS),))}."
    )
    return " ".join(parts)


def render(cells: Sequence[Cell], seconds: float) -> str:
    null_reps = {c.n: c.null_reps for c in cells}
    most = max(null_reps.values())
    fewer = ", ".join(f"{r} at {n:,} items" for n, r in null_reps.items() if r < most)
    power_reps = sorted({c.power_reps for c in cells})
    lines = [
        f"Seed {SEED}; {most} repetitions without a change per cell"
        f"{f' ({fewer})' if fewer else ''}, {' / '.join(map(str, power_reps))} per power cell; "
        f"alpha {DEFAULT_ALPHA:g} per re-score, history of the last {SENTINEL_HISTORY} checks "
        f"that did not say moved; periods of {RUNS} runs. Runtime {seconds:.0f} s.",
        "",
        f"**False alarms** (share of {RUNS}-run periods of an unchanged judge with at least "
        "one `moved`, 95% upper bound in brackets; per re-score: share of all checks with a "
        "test)",
        "",
        f"| judge noise | items | periods | from no history | after {WARMUP} warm-up runs "
        "| per re-score |",
        "|---|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {c.noise.name} | {c.n:,} | {c.null_reps} | {_pct(c.fa_empty)} "
        f"({_pct(_upper95(c.fa_empty, c.null_reps))}) | {_pct(c.fa_warm)} "
        f"({_pct(_upper95(c.fa_warm, c.null_reps))}) | {c.per_rescore:.1e} |"
        for c in cells
    )
    # the column order of BRANCHES within one h
    header = " | ".join(f"{d} {s:.0%}" for d in DIRECTIONS for s in SHARES)
    lines += [
        "",
        f"**Power** (share of repetitions caught in the right direction within 1 / within "
        f"{AFTER} runs of the switch; H = runs of the unchanged judge before it)",
        "",
        f"| judge noise | items | H | {header} |",
        "|---|---|---|" + "---|" * (len(DIRECTIONS) * len(SHARES)),
    ]
    for c in cells:
        for h in HS:
            row = " | ".join(
                f"{c.within1[b]:.2f} / {c.within3[b]:.2f}" for b in BRANCHES if b.h == h
            )
            lines.append(f"| {c.noise.name} | {c.n:,} | {h} | {row} |")
    sizes = sorted({c.n for c in cells})
    lines += [
        "",
        f"**Meets the targets** (false alarms <= {_pct(TARGET_FA)} from both starts and power "
        f">= {TARGET_POWER} within 1 run at {TARGET_SHARE:.0%}, both directions, H = "
        f"{' and '.join(map(str, HS))}; items moved at {TARGET_SHARE:.0%}: "
        + ", ".join(f"{n_switched(TARGET_SHARE, n)} of {n:,}" for n in sizes)
        + ")",
        "",
        "| judge noise | " + " | ".join(f"{n:,} items" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for name in dict.fromkeys(c.noise.name for c in cells):
        row = " | ".join(
            next((_verdict(c) for c in cells if c.noise.name == name and c.n == n), "-")
            for n in sizes
        )
        lines.append(f"| {name} | {row} |")
    text = reading(cells)
    if text:
        lines += ["", text]
    return "\n".join(lines)


SECTION = """## 12. The judge-drift sentinel

A judge scorer can move under a monitor with nothing else changed: the judge's provider
updates its model, or its prompt is edited. Every run, the judge also re-scores a frozen
calibration set (outputs with human labels, `monitor/core/stats/sentinel.py`), and
`judge_drift` asks whether the judge moved since its earlier re-scores of the same outputs:

- **Stable items.** An unchanged judge is still non-deterministic, but the items that flip
  are mostly the same ambiguous ones, both ways. A judge that turns stricter or more
  lenient moves items that used to be stable. So the test takes the items whose score was
  the same in every earlier re-score of the history and counts those that now went down
  and those that went up.
- **Null from the history.** An unchanged judge still moves a stable item at some small
  rate. The rate is estimated from the history itself (how often an item stable in the
  re-scores before one of them left its value in it, half of it per direction, Jeffreys
  prior), and each count is compared with the beta-binomial predictive distribution, so a
  rate estimated from few re-scores widens the null instead of being taken as known.
- **One earlier re-score.** No rate can be estimated: the test is the exact McNemar test on
  the items that changed.
- **Two directions.** Stricter and lenient are tested one-sided and the smaller p is
  doubled (Bonferroni); `moved` needs p < alpha and more items one way than the other.
- **alpha 3e-4 per re-score** (`DEFAULT_ALPHA`): 30 re-scores (a month of daily runs, a
  day of hourly ones) spend at most 30 x 3e-4 = 0.9%, so an unchanged judge raises a false
  alarm in under 1% of 30-run periods.

The history is the last 10 earlier checks that did not say moved (`judge_history` in
`monitor/storage/repository.py`): once the judge moved, its new verdicts do not become the
reference by themselves; pinning a run accepts them. The first run has no history and no
test.

`benchmarks/judge_sentinel.py` (seeded; `python benchmarks/judge_sentinel.py`, which
rewrites the tables below; `--quick` for iteration) replays that loop. A calibration set of
N items (50, 100, 300, 1,000): an ambiguous share with a pass probability uniform in
[0.2, 0.8], the rest near-deterministic, 60% passing with p in [1 - f, 1] and 40% failing
with p in [0, f]; every re-score draws every verdict independently. Three noise settings:
10% ambiguous with f = 0.01, 25% ambiguous with f = 0.01, 10% ambiguous with f = 0.03.
False alarms: share of 30-run periods of an unchanged judge with at least one `moved`,
starting from an empty history (runs 1-30) or after 10 warm-up runs (runs 11-40; the
warm-up checks feed the history as in the product). Power: after H = 3 or 10 runs of the
unchanged judge, round(s x N) near-deterministic pass items (p >= 1 - f) now fail with p
in [0, 0.01] (stricter), or as many near-deterministic fail items now pass with p in
[0.99, 1] (lenient), s = 2%, 5%, 10%; the share of repetitions whose first re-score after
the switch says moved in that direction (within 1 run), or one of the first three does
(within 3 runs).

"""


def write_doc(table: str, doc: Path = DOC) -> None:
    """Replace the block between the markers, or append section 12 with it."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = f"{text.rstrip()}\n\n{SECTION}{block}\n"
    doc.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=1000, help="repetitions without a change")
    ap.add_argument("--power-reps", type=int, default=300, help="repetitions per power cell")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="40 / 40 repetitions, docs left alone")
    ap.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.power_reps, args.no_write = 40, 40, True
    t0 = time.perf_counter()
    cells = run(args.reps, args.power_reps, args.workers)
    table = render(cells, time.perf_counter() - t0)
    print(table)
    if not args.no_write:
        write_doc(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
