"""Power and false alarms of the drift policy under several kinds of noise, beside naive rules.

A seeded simulation of the situation the product is built for: a benchmark re-run
against the same endpoint. Each setting (benchmarks/detection_scenarios.py) is a
population and a run-level noise mechanism:

* the reference setting: 1,000 items, 60% pass with p in [0.98, 1], 25% with p in
  [0, 0.02], 15% flaky with p uniform in [0.2, 0.8], every item an independent coin;
* correlated noise, the SD of the run total at 2x and 4x its binomial SD, by two
  mechanisms: the flaky items of a run share one random logit shift, and on half the
  runs a random block of items fails together (stable items included);
* 100 and 10,000 items; twice the share of flaky items (30%); continuous scores in
  [0, 1] with per-item noise.

Each repetition draws a fresh endpoint, 5 baseline runs and 30 monitoring runs; a
change starts at the 11th monitoring run and persists: variant a breaks stable items
(p -> 1 - p for round(d% x N) items with p >= 0.98), variant b takes the same pass
probability from every flaky item (the expected score drops by exactly d points).

Every rule is run the way the product runs by default: a rolling baseline of the last
runs it did not flag (runs judged regressed stay out of it), at least 5 runs and at
most 20 (`baseline: rolling:20`, `min_baseline_runs: 5`). The engine is the full policy
of monitor.core.policy (evaluate_arrays + decide, one scorer per cycle, BH over the
cycle, min_effect 0.01, CUSUM) at its defaults. Naive rules look at run scores only:
"SD" (score more than c baseline SDs below the baseline mean), "drop" (more than d
points below it) and an unpaired two-proportion z-test, each calibrated (bisection on
the threshold over the setting's no-change runs) to the engine's false-alarm rate in
that setting, and, in the reference setting, also shown at nominal thresholds.

Reported: false alarms (share of 30-run periods without a change that raise at least
one alarm, with which route raised the first: the single-run test or the CUSUM),
power within 1 and within 3 runs of the change, and the median detection delay in
runs (1 = caught on the first changed run; ">20" when fewer than half are caught).

Usage: python benchmarks/detection.py [--quick] [--reps 300] [--null-reps 1000]
[--workers 2] [--only NAME] [--no-write]. Writes the tables into docs/statistics.md
between the detection-table markers.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks.detection_scenarios import (
    BLOCK_RATE,
    Change,
    Setting,
    endpoint,
    realized_strength,
)
from monitor.core.model import VerdictKind
from monitor.core.policy import DriftSettings, decide, evaluate_arrays

K = 5  # baseline runs before monitoring starts (= min_baseline_runs)
WINDOW = 20  # the rolling window's longest length (the product default rolling:20)
RUNS = 30
CHANGE = 10
SEED = 20240611
DOC = Path(__file__).resolve().parents[1] / "docs" / "statistics.md"
START, END = "<!-- detection-table:start -->", "<!-- detection-table:end -->"

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The settings and the changes measured in each; the first is the reference setting.
SETTINGS: tuple[tuple[Setting, tuple[Change, ...]], ...] = (
    (
        Setting("independent, 1,000 items"),
        tuple(Change(v, d) for v in ("a", "b") for d in (0.5, 1.0, 2.0, 5.0)),
    ),
    (
        Setting("flaky shift 2x", mechanism="shift", strength=2.0),
        (Change("a", 1.0), Change("b", 2.0), Change("b", 5.0)),
    ),
    (
        Setting("flaky shift 4x", mechanism="shift", strength=4.0),
        (Change("a", 1.0), Change("b", 2.0), Change("b", 5.0)),
    ),
    (
        Setting("failing blocks 2x", mechanism="block", strength=2.0),
        (Change("a", 1.0), Change("b", 2.0), Change("b", 5.0)),
    ),
    (
        Setting("failing blocks 4x", mechanism="block", strength=4.0),
        (Change("a", 1.0), Change("b", 2.0), Change("b", 5.0)),
    ),
    (
        Setting("100 items", n_items=100),
        (Change("a", 5.0), Change("b", 5.0), Change("b", 10.0)),
    ),
    (
        Setting("10,000 items", n_items=10_000),
        (Change("a", 1.0), Change("b", 1.0), Change("b", 2.0)),
    ),
    (
        Setting("30% flaky items", flaky_share=0.30),
        (Change("a", 1.0), Change("b", 2.0), Change("b", 5.0)),
    ),
    (
        Setting("continuous scores", continuous=True),
        (Change("a", 1.0), Change("b", 1.0), Change("b", 2.0)),
    ),
)
#: Changed repetitions per cell relative to --reps (the 10,000-item setting is the slow one).
REPS_SCALE = {"10,000 items": 0.5}
#: Route codes of an engine alarm.
RUN_TEST, CUSUM = 1, 2


def engine_settings(st: Setting) -> DriftSettings:
    """The defaults; continuous scores with the smallest bootstrap (it only sets the CI,
    never the verdict), so that setting costs what the others do."""
    return DriftSettings(bootstrap_resamples=100) if st.continuous else DriftSettings()


def simulate(
    st: Setting, ch: Change, seed: np.random.SeedSequence
) -> tuple[FloatArray, FloatArray]:
    """Baseline runs (K, N) and monitoring runs (RUNS, N) of one repetition."""
    rng = np.random.default_rng(seed)
    ep = endpoint(st, ch, rng)
    runs = ep.runs(rng, K + RUNS, K + CHANGE)
    return runs[:K], runs[K:]


def engine_alarms(
    st: Setting, base: FloatArray, runs: FloatArray, *, changed: bool = False
) -> tuple[IntArray, float]:
    """The product's policy on one repetition: the alarm route per monitoring run (0 = none),
    and the minimum detectable effect reported on the first changed run.

    With `changed`, the repetition stops at its first alarm after the change: nothing
    later enters the table, and it more than halves the cost of the changed cells.
    """
    settings = engine_settings(st)
    history = list(base)
    state = 0.0
    alarms = np.zeros(RUNS, dtype=np.int64)
    mde = math.nan
    for t in range(RUNS):
        ev = evaluate_arrays(
            "score",
            np.array(history[-WINDOW:]),
            runs[t],
            binary=not st.continuous,
            settings=settings,
            baseline_description=f"rolling:{WINDOW}",
            required_runs=K,
            cusum_state=state,
        )
        verdict = decide([ev], settings, degraded=False)[0]
        if t == CHANGE and verdict.detectable_effect is not None:
            mde = verdict.detectable_effect
        if verdict.verdict == VerdictKind.REGRESSED:
            alarms[t] = CUSUM if verdict.detail.startswith("regressed: CUSUM") else RUN_TEST
        state = verdict.cusum_state or 0.0
        if changed and t >= CHANGE and alarms[t]:
            break
        if not alarms[t]:
            history.append(runs[t])
    return alarms, mde


def _engine_task(
    args: tuple[Setting, Change, list[np.random.SeedSequence]],
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    st, ch, seeds = args
    alarms, base_scores, run_scores, mdes = [], [], [], []
    for seed in seeds:
        base, runs = simulate(st, ch, seed)
        routes, mde = engine_alarms(st, base, runs, changed=ch.variant != "none")
        alarms.append(routes)
        mdes.append(mde)
        base_scores.append(base.mean(axis=1))
        run_scores.append(runs.mean(axis=1))
    return np.array(alarms), np.array(base_scores), np.array(run_scores), np.array(mdes)


# --------------------------------------------------------------------------- naive rules

Rule = Callable[[FloatArray, FloatArray, float, int], BoolArray]


# Baselines are (reps, WINDOW) arrays of run scores, oldest first, NaN where the window
# is not full yet.


def rule_sd(b: FloatArray, s: FloatArray, c: float, _n: int) -> BoolArray:
    return np.asarray(s < np.nanmean(b, axis=1) - c * np.nanstd(b, axis=1, ddof=1))


def rule_drop(b: FloatArray, s: FloatArray, d: float, _n: int) -> BoolArray:
    return np.asarray(np.nanmean(b, axis=1) - s > d / 100.0)


def rule_ztest(b: FloatArray, s: FloatArray, z: float, n: int) -> BoolArray:
    pb = np.nanmean(b, axis=1)
    k = (~np.isnan(b)).sum(axis=1)
    pooled = (pb * k + s) / (k + 1)
    se = np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * (1 / n + 1 / (k * n)))
    return np.asarray((s - pb) / se < -z)


def naive_alarms(
    rule: Rule, threshold: float, base: FloatArray, runs: FloatArray, n: int
) -> BoolArray:
    """Vectorized over repetitions: each rule keeps its own rolling baseline of unflagged runs."""
    reps = base.shape[0]
    window = np.full((reps, WINDOW), np.nan)
    window[:, -K:] = base  # oldest first
    alarms = np.zeros((reps, RUNS), dtype=bool)
    for t in range(RUNS):
        hit = rule(window, runs[:, t], threshold, n)
        alarms[:, t] = hit
        keep = ~hit
        window[keep] = np.column_stack([window[keep, 1:], runs[keep, t]])
    return alarms


@dataclass(frozen=True)
class Naive:
    name: str
    rule: Rule
    nominal: float
    template: str  # label of the calibrated rule
    calibration_range: tuple[float, float]


NAIVE = (
    Naive("score < mean - 2 SD", rule_sd, 2.0, "score < mean - {:.2f} SD", (0.0, 50.0)),
    Naive("score < mean - 3 SD", rule_sd, 3.0, "", (0.0, 50.0)),
    Naive("drop > 1 point", rule_drop, 1.0, "drop > {:.2f} points", (0.0, 50.0)),
    Naive("drop > 2 points", rule_drop, 2.0, "", (0.0, 50.0)),
    Naive("two-proportion z-test, 1%", rule_ztest, 2.326, "z-test, z < -{:.2f}", (0.0, 40.0)),
)


def calibrate(nv: Naive, target: float, base: FloatArray, runs: FloatArray, n: int) -> float:
    """Most lenient threshold whose false-alarm rate does not exceed `target`."""
    lo, hi = nv.calibration_range
    for _ in range(40):
        mid = (lo + hi) / 2
        far = naive_alarms(nv.rule, mid, base, runs, n).any(axis=1).mean()
        lo, hi = (lo, mid) if far <= target else (mid, hi)
    return hi


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Detection:
    within1: float
    within3: float
    median_delay: float  # runs; inf when fewer than half detect


def detection(alarms: npt.NDArray[np.int64] | BoolArray) -> Detection:
    after = np.asarray(alarms[:, CHANGE:]).astype(bool)
    first = np.where(after.any(axis=1), after.argmax(axis=1) + 1, np.inf)
    return Detection(
        within1=float((first <= 1).mean()),
        within3=float((first <= 3).mean()),
        median_delay=float(np.median(first)),
    )


def fmt_cell(d: Detection) -> str:
    delay = ">20" if math.isinf(d.median_delay) else f"{d.median_delay:g}"
    return f"{d.within1:.2f} / {d.within3:.2f} / {delay}"


@dataclass
class SettingResult:
    setting: Setting
    changes: tuple[Change, ...]
    strength: float
    null_reps: int
    reps: int
    engine_far: float
    far_run_test: float  # periods whose first false alarm came from the single-run test
    far_cusum: float
    engine: dict[Change, Detection]
    mde: float  # median minimum detectable effect on the 11th run, no change
    naive_far: dict[str, float] = field(default_factory=dict)
    naive: dict[str, dict[Change, Detection]] = field(default_factory=dict)
    calibrated: set[str] = field(default_factory=set)
    elapsed: float = 0.0


def _upper95(rate: float, n: int) -> float:
    """One-sided 95% upper bound of a binomial share (Clopper-Pearson)."""
    from scipy import stats

    k = round(rate * n)
    return 1.0 if k >= n else float(stats.beta.ppf(0.95, k + 1, n - k))


def run(
    reps: int,
    null_reps: int,
    workers: int,
    only: Sequence[str] = (),
    deadline: float = math.inf,
) -> list[SettingResult]:
    root = np.random.SeedSequence(SEED)
    chosen = [(st, chs) for st, chs in SETTINGS if not only or st.name in only]
    seeds: dict[tuple[str, Change], list[np.random.SeedSequence]] = {}
    for st, chs in SETTINGS:  # spawned for every setting: --only keeps the same streams
        seeds[(st.name, Change("none", 0.0))] = root.spawn(null_reps)
        for ch in chs:
            seeds[(st.name, ch)] = root.spawn(max(2, round(reps * REPS_SCALE.get(st.name, 1.0))))
    chunk = 10
    cells = [(st, ch) for st, chs in chosen for ch in (Change("none", 0.0), *chs)]
    # round robin over the cells, chunk by chunk: when the deadline stops the run, every
    # cell has about the same share of its repetitions
    tasks = []
    longest = max(len(seeds[(st.name, ch)]) for st, ch in cells)
    for i in range(0, longest, chunk):
        for st, ch in cells:
            part = seeds[(st.name, ch)][i : i + chunk]
            if part:
                tasks.append((st, ch, part))
    raw: dict[tuple[str, Change], list[tuple[IntArray, FloatArray, FloatArray, FloatArray]]] = {}
    elapsed: dict[str, float] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[tuple[Setting, Change, Future[Any], float]] = []
        queue = iter(tasks)
        while True:
            while len(pending) < 2 * workers and time.time() < deadline:
                task = next(queue, None)
                if task is None:
                    break
                fut = pool.submit(_engine_task, task)
                pending.append((task[0], task[1], fut, time.perf_counter()))
            if not pending:
                break
            st, ch, fut, started = pending.pop(0)
            raw.setdefault((st.name, ch), []).append(fut.result())
            elapsed[st.name] = elapsed.get(st.name, 0.0) + time.perf_counter() - started
    results = []
    for st, chs in chosen:
        null = Change("none", 0.0)
        cat = {
            ch: tuple(np.concatenate([p[i] for p in raw[(st.name, ch)]]) for i in range(4))
            for ch in (null, *chs)
        }
        routes = cat[null][0]
        fired = routes.any(axis=1)
        first = np.where(fired, routes[np.arange(routes.shape[0]), (routes > 0).argmax(axis=1)], 0)
        res = SettingResult(
            setting=st,
            changes=chs,
            strength=realized_strength(st, np.random.default_rng(SEED))
            if not st.continuous
            else math.nan,
            null_reps=routes.shape[0],
            reps=cat[chs[0]][0].shape[0],
            engine_far=float(fired.mean()),
            far_run_test=float((first == RUN_TEST).mean()),
            far_cusum=float((first == CUSUM).mean()),
            engine={ch: detection(cat[ch][0]) for ch in chs},
            mde=float(np.nanmedian(cat[null][3])) if np.isfinite(cat[null][3]).any() else math.nan,
            elapsed=elapsed.get(st.name, 0.0),
        )
        nb, nr = cat[null][1], cat[null][2]
        n = st.n_items
        reference = st is SETTINGS[0][0]
        for nv in NAIVE:
            if reference:
                res.naive_far[nv.name] = float(
                    naive_alarms(nv.rule, nv.nominal, nb, nr, n).any(axis=1).mean()
                )
                res.naive[nv.name] = {
                    ch: detection(naive_alarms(nv.rule, nv.nominal, cat[ch][1], cat[ch][2], n))
                    for ch in chs
                }
            if not nv.template:
                continue
            thr = calibrate(nv, res.engine_far, nb, nr, n)
            label = nv.template.format(thr)
            res.calibrated.add(label)
            res.naive_far[label] = float(naive_alarms(nv.rule, thr, nb, nr, n).any(axis=1).mean())
            res.naive[label] = {
                ch: detection(naive_alarms(nv.rule, thr, cat[ch][1], cat[ch][2], n)) for ch in chs
            }
        results.append(res)
    return results


def beats_naive(res: SettingResult) -> list[str]:
    """Cells where a calibrated naive rule did better than the engine (beyond 0.02)."""
    misses = []
    for label in res.calibrated:
        for ch in res.changes:
            e, nv = res.engine[ch], res.naive[label][ch]
            if nv.within1 > e.within1 + 0.02 or nv.within3 > e.within3 + 0.02:
                misses.append(f"{label} on {ch.label}")
    return misses


def render(results: list[SettingResult], seconds: float) -> str:
    reps = max(r.reps for r in results)
    null_reps = max(r.null_reps for r in results)
    lines = [
        f"Seed {SEED}; {null_reps} repetitions without a change per setting, up to {reps} per "
        f"changed cell; {K} baseline runs, rolling window of at most {WINDOW} runs, {RUNS} "
        f"monitoring runs, change at run {CHANGE + 1}; blocks fail in {BLOCK_RATE:.0%} of "
        f"runs. Cells: power within 1 run / within 3 runs / median delay (runs). "
        f"Runtime {seconds:.0f} s.",
        "",
        "| setting | noise (SD of run total / binomial) | engine false alarms / 30 runs "
        "(95% upper bound) | first alarm: run test / CUSUM | detectable drop, 11th run "
        "(80% power) | engine beaten by a calibrated rule |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        strength = "-" if math.isnan(r.strength) else f"{r.strength:.1f}x"
        misses = beats_naive(r)
        lines.append(
            f"| {r.setting.name} | {strength} | {r.engine_far:.3f} "
            f"({_upper95(r.engine_far, r.null_reps):.3f}) | {r.far_run_test:.3f} / "
            f"{r.far_cusum:.3f} | {100 * r.mde:.1f} points | "
            f"{'; '.join(misses) if misses else 'no'} |"
        )
    lines.append("")
    for r in results:
        cols = r.changes
        lines.append(
            f"**{r.setting.name}** ({r.null_reps} / {r.reps} repetitions, {r.elapsed:.0f} s)"
        )
        lines.append("")
        lines.append(
            "| rule | false alarms / 30 runs | " + " | ".join(c.label for c in cols) + " |"
        )
        lines.append("|" + "---|" * (2 + len(cols)))
        cells = " | ".join(fmt_cell(r.engine[c]) for c in cols)
        lines.append(f"| **engine, defaults** | {r.engine_far:.3f} | {cells} |")
        for name, per in r.naive.items():
            tag = " (calibrated)" if name in r.calibrated else ""
            cells = " | ".join(fmt_cell(per[c]) for c in cols)
            lines.append(f"| {name}{tag} | {r.naive_far[name]:.3f} | {cells} |")
        lines.append("")
    lines.append(
        "Naive rules marked (calibrated) use the threshold at which their false-alarm rate "
        "matches the engine's in the same setting."
    )
    return "\n".join(lines)


def write_doc(table: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = f"{text.rstrip()}\n\n{block}\n"
    DOC.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=300, help="repetitions per changed cell")
    ap.add_argument("--null-reps", type=int, default=1000, help="repetitions without a change")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="40 / 20 repetitions, docs left alone")
    ap.add_argument("--only", action="append", default=[], help="setting name (repeatable)")
    ap.add_argument(
        "--deadline",
        help="UTC time HH:MM after which no more repetitions start (every cell keeps its share)",
    )
    ap.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.null_reps, args.no_write = 20, 40, True
    names = {st.name for st, _ in SETTINGS}
    unknown = [o for o in args.only if o not in names]
    if unknown:
        ap.error(f"unknown setting(s) {unknown}; choose from {sorted(names)}")
    t0 = time.perf_counter()
    deadline = math.inf
    if args.deadline:
        hh, mm = (int(x) for x in args.deadline.split(":"))
        now = time.gmtime()
        minutes = (hh * 60 + mm) - (now.tm_hour * 60 + now.tm_min)
        deadline = time.time() + minutes * 60 - now.tm_sec
    results = run(args.reps, args.null_reps, min(args.workers, 2), args.only, deadline)
    table = render(results, time.perf_counter() - t0)
    print(table)
    if not args.no_write and not args.only:
        write_doc(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
