"""Power and false alarms of the drift policy, side by side with naive rules.

A seeded simulation of the situation the product is built for: a 1,000-item
benchmark re-run against the same endpoint, where 60% of the items pass with
p in [0.98, 1], 25% pass with p in [0, 0.02] and 15% are flaky (p uniform in
[0.2, 0.8]). Each repetition draws a fresh benchmark, 5 baseline runs and 30
monitoring runs; a regression starts at monitoring run 10 (index 10, the 11th
run) and lasts:

* variant a: deterministic items flip (p -> 1 - p for round(d% x N) items
  that passed with p >= 0.98; a 1-point regression flips 10 items, an
  expected drop of ~0.98 points);
* variant b: flaky items degrade (every flaky item loses the same amount of
  pass probability, floored at 0, so the expected score drops by exactly d
  points).

Every rule is run the way the product runs by default: a rolling baseline of
the last runs it did not flag (runs judged regressed stay out of it), at
least 5 runs and at most 20 (`baseline: rolling:20`, `min_baseline_runs: 5`):
the 5 baseline runs at first, up to 15 at the change. One more engine row
keeps the window at 5 runs (`baseline: rolling:5`).
The engine is the full policy of monitor.core.policy (evaluate_arrays +
decide, one scorer per cycle, Benjamini-Hochberg over the cycle, min_effect
= 0.01, CUSUM). Naive rules look at run scores only:

* "SD": alert if the score is more than c baseline standard deviations below
  the baseline mean (c = 2, 3);
* "drop": alert if the score dropped by more than d points from the baseline
  mean (d = 1, 2);
* "z-test": unpaired two-proportion z-test of the run against the pooled
  baseline runs, one-sided at 1%.

Each is reported at its nominal threshold and calibrated (bisection on the
threshold over the no-change runs) to the engine's measured false-alarm rate.

Reported: false-alarm rate (share of 30-run periods without a change that
raise at least one alarm), power within 1 and within 3 runs of the change,
and the median detection delay in runs (1 = caught on the first changed
run; ">20" when fewer than half are caught by the end).

Usage: python benchmarks/detection.py [--reps 500] [--null-reps 1000]
[--workers 2] [--no-write]. Writes the table into docs/statistics.md between
the detection-table markers.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.core.model import VerdictKind
from monitor.core.policy import DriftSettings, decide, evaluate_arrays

N_ITEMS = 1000
K = 5  # baseline runs before monitoring starts (= min_baseline_runs)
WINDOW = 20  # the rolling window's longest length (the product default rolling:20)
RUNS = 30
CHANGE = 10
SIZES = (0.5, 1.0, 2.0, 5.0)
VARIANTS = ("a", "b")
SEED = 20240611
DOC = Path(__file__).resolve().parents[1] / "docs" / "statistics.md"
START, END = "<!-- detection-table:start -->", "<!-- detection-table:end -->"

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Scenario:
    variant: str  # "none", "a" or "b"
    size: float  # points

    @property
    def label(self) -> str:
        return "no change" if self.variant == "none" else f"{self.variant} {self.size:g} pt"


def population(rng: np.random.Generator) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Per-item pass probabilities and classes (0 stable pass, 1 stable fail, 2 flaky)."""
    n_pass, n_fail = round(0.60 * N_ITEMS), round(0.25 * N_ITEMS)
    cls = np.array([0] * n_pass + [1] * n_fail + [2] * (N_ITEMS - n_pass - n_fail))
    p = np.where(
        cls == 0,
        rng.uniform(0.98, 1.0, N_ITEMS),
        np.where(cls == 1, rng.uniform(0.0, 0.02, N_ITEMS), rng.uniform(0.2, 0.8, N_ITEMS)),
    )
    order = rng.permutation(N_ITEMS)  # item order carries no information
    return p[order], cls[order]


def regress(
    p: FloatArray, cls: npt.NDArray[np.int64], sc: Scenario, rng: np.random.Generator
) -> FloatArray:
    """Pass probabilities after the change."""
    after = p.copy()
    if sc.variant == "a":
        flip = rng.choice(
            np.flatnonzero(cls == 0), size=round(sc.size / 100 * N_ITEMS), replace=False
        )
        after[flip] = 1.0 - p[flip]
    elif sc.variant == "b":
        flaky = np.flatnonzero(cls == 2)
        target = sc.size / 100 * N_ITEMS
        lo, hi = 0.0, 1.0  # common loss of pass probability, floored at 0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if np.minimum(p[flaky], mid).sum() < target else (lo, mid)
        after[flaky] = np.maximum(p[flaky] - hi, 0.0)
    return after


def simulate(sc: Scenario, seed: np.random.SeedSequence) -> tuple[BoolArray, BoolArray]:
    """Baseline runs (K, N) and monitoring runs (RUNS, N) of one repetition."""
    rng = np.random.default_rng(seed)
    p, cls = population(rng)
    after = regress(p, cls, sc, rng)
    base = rng.random((K, N_ITEMS)) < p
    probs = np.where(np.arange(RUNS)[:, None] < CHANGE, p[None, :], after[None, :])
    return base, rng.random((RUNS, N_ITEMS)) < probs


@dataclass(frozen=True)
class Engine:
    settings: DriftSettings
    window: int = WINDOW


def engine_alarms(base: BoolArray, runs: BoolArray, engine: Engine) -> BoolArray:
    """The product's policy on one repetition: regressed verdict per monitoring run."""
    history = [row.astype(float) for row in base]
    settings = engine.settings
    state = 0.0
    alarms = np.zeros(RUNS, dtype=bool)
    for t in range(RUNS):
        ev = evaluate_arrays(
            "score",
            np.array(history[-engine.window :]),
            runs[t].astype(float),
            binary=True,
            settings=settings,
            baseline_description=f"rolling:{engine.window}",
            required_runs=K,
            cusum_state=state,
        )
        verdict = decide([ev], settings, degraded=False)[0]
        alarms[t] = verdict.verdict == VerdictKind.REGRESSED
        state = verdict.cusum_state or 0.0
        if not alarms[t]:
            history.append(runs[t].astype(float))
    return alarms


def _engine_task(
    args: tuple[Scenario, list[np.random.SeedSequence], Engine],
) -> tuple[BoolArray, FloatArray, FloatArray]:
    sc, seeds, engine = args
    alarms, base_scores, run_scores = [], [], []
    for seed in seeds:
        base, runs = simulate(sc, seed)
        alarms.append(engine_alarms(base, runs, engine))
        base_scores.append(base.mean(axis=1))
        run_scores.append(runs.mean(axis=1))
    return np.array(alarms), np.array(base_scores), np.array(run_scores)


# --------------------------------------------------------------------------- naive rules

Rule = Callable[[FloatArray, FloatArray, float], BoolArray]  # (baselines, scores, threshold)


# Baselines are (reps, WINDOW) arrays of run scores, oldest first, NaN where the window
# is not full yet.


def rule_sd(b: FloatArray, s: FloatArray, c: float) -> BoolArray:
    return np.asarray(s < np.nanmean(b, axis=1) - c * np.nanstd(b, axis=1, ddof=1))


def rule_drop(b: FloatArray, s: FloatArray, d: float) -> BoolArray:
    return np.asarray(np.nanmean(b, axis=1) - s > d / 100.0)


def rule_ztest(b: FloatArray, s: FloatArray, z: float) -> BoolArray:
    pb = np.nanmean(b, axis=1)
    k = (~np.isnan(b)).sum(axis=1)
    pooled = (pb * k + s) / (k + 1)
    se = np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * (1 / N_ITEMS + 1 / (k * N_ITEMS)))
    return np.asarray((s - pb) / se < -z)


def naive_alarms(rule: Rule, threshold: float, base: FloatArray, runs: FloatArray) -> BoolArray:
    """Vectorized over repetitions: each rule keeps its own rolling baseline of unflagged runs."""
    reps = base.shape[0]
    window = np.full((reps, WINDOW), np.nan)
    window[:, -K:] = base  # oldest first
    alarms = np.zeros((reps, RUNS), dtype=bool)
    for t in range(RUNS):
        hit = rule(window, runs[:, t], threshold)
        alarms[:, t] = hit
        keep = ~hit
        window[keep] = np.column_stack([window[keep, 1:], runs[keep, t]])
    return alarms


@dataclass(frozen=True)
class Naive:
    name: str
    rule: Rule
    nominal: float
    unit: str
    calibration_range: tuple[float, float]


NAIVE = (
    Naive("score < mean - 2 SD", rule_sd, 2.0, "SD", (0.0, 50.0)),
    Naive("score < mean - 3 SD", rule_sd, 3.0, "SD", (0.0, 50.0)),
    Naive("drop > 1 point", rule_drop, 1.0, "points", (0.0, 20.0)),
    Naive("drop > 2 points", rule_drop, 2.0, "points", (0.0, 20.0)),
    Naive("two-proportion z-test, 1%", rule_ztest, 2.326, "z", (0.0, 20.0)),
)


def calibrate(nv: Naive, target: float, base: FloatArray, runs: FloatArray) -> float:
    """Most lenient threshold whose false-alarm rate does not exceed `target`."""
    lo, hi = nv.calibration_range
    for _ in range(50):
        mid = (lo + hi) / 2
        far = naive_alarms(nv.rule, mid, base, runs).any(axis=1).mean()
        lo, hi = (lo, mid) if far <= target else (mid, hi)
    return hi


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Detection:
    within1: float
    within3: float
    median_delay: float  # runs; inf when fewer than half detect


def detection(alarms: BoolArray) -> Detection:
    after = alarms[:, CHANGE:]
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
class Results:
    engine_far: dict[str, float]
    engine: dict[str, dict[Scenario, Detection]]
    naive_far: dict[str, float]
    naive: dict[str, dict[Scenario, Detection]]
    thresholds: dict[str, float]
    elapsed: float
    reps: int
    null_reps: int


def run(reps: int, null_reps: int, workers: int, configs: dict[str, Engine]) -> Results:
    t0 = time.perf_counter()
    root = np.random.SeedSequence(SEED)
    scenarios = [Scenario("none", 0.0)] + [Scenario(v, s) for v in VARIANTS for s in SIZES]
    seeds = {sc: root.spawn(null_reps if sc.variant == "none" else reps) for sc in scenarios}
    chunk = 25
    tasks = [
        (name, sc, (sc, seeds[sc][i : i + chunk], cfg))
        for name, cfg in configs.items()
        for sc in scenarios
        for i in range(0, len(seeds[sc]), chunk)
    ]
    engine_raw: dict[tuple[str, Scenario], list[tuple[BoolArray, FloatArray, FloatArray]]] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for (name, sc, _), out in zip(
            tasks, pool.map(_engine_task, [t[2] for t in tasks]), strict=True
        ):
            engine_raw.setdefault((name, sc), []).append(out)
    alarms: dict[tuple[str, Scenario], BoolArray] = {}
    scores: dict[Scenario, tuple[FloatArray, FloatArray]] = {}
    for (name, sc), parts in engine_raw.items():
        alarms[(name, sc)] = np.concatenate([p[0] for p in parts])
        scores[sc] = (np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]))
    null = scenarios[0]
    engine_far = {name: float(alarms[(name, null)].any(axis=1).mean()) for name in configs}
    engine = {name: {sc: detection(alarms[(name, sc)]) for sc in scenarios[1:]} for name in configs}
    headline = next(iter(configs))
    target = engine_far[headline]
    naive_far: dict[str, float] = {}
    naive: dict[str, dict[Scenario, Detection]] = {}
    thresholds: dict[str, float] = {}
    nb, nr = scores[null]
    for nv in NAIVE:
        naive_far[nv.name] = float(naive_alarms(nv.rule, nv.nominal, nb, nr).any(axis=1).mean())
        naive[nv.name] = {
            sc: detection(naive_alarms(nv.rule, nv.nominal, *scores[sc])) for sc in scenarios[1:]
        }
    calibrated = (
        (NAIVE[0], "score < mean - {:.2f} SD"),
        (NAIVE[2], "drop > {:.2f} points"),
        (NAIVE[4], "two-proportion z-test, z < -{:.2f}"),
    )
    for family, template in calibrated:
        thr = calibrate(family, target, nb, nr)
        label = template.format(thr)
        thresholds[label] = thr
        naive_far[label] = float(naive_alarms(family.rule, thr, nb, nr).any(axis=1).mean())
        naive[label] = {
            sc: detection(naive_alarms(family.rule, thr, *scores[sc])) for sc in scenarios[1:]
        }
    return Results(
        engine_far=engine_far,
        engine=engine,
        naive_far=naive_far,
        naive=naive,
        thresholds=thresholds,
        elapsed=time.perf_counter() - t0,
        reps=reps,
        null_reps=null_reps,
    )


def render(res: Results, configs: dict[str, Engine]) -> str:
    headline = next(iter(configs))
    lines = [
        f"Seed {SEED}; {res.null_reps} repetitions without a change, {res.reps} per changed "
        f"cell; {N_ITEMS} items, {K} baseline runs, rolling window of at most {WINDOW} "
        f"runs unless stated, {RUNS} monitoring runs, change at run "
        f"{CHANGE + 1}. Cells: power within 1 run / within 3 runs / median delay (runs). "
        f"Runtime {res.elapsed:.0f} s.",
        "",
    ]
    for variant, title in (("a", "deterministic items flip"), ("b", "flaky items degrade")):
        cols = [sc for sc in next(iter(res.engine.values())) if sc.variant == variant]
        lines.append(f"**Variant {variant}: {title}**")
        lines.append("")
        header = "| rule | false alarms / 30 runs | " + " | ".join(f"{sc.size:g} pt" for sc in cols)
        lines.append(header + " |")
        lines.append("|" + "---|" * (2 + len(cols)))
        for name in configs:
            cells = " | ".join(fmt_cell(res.engine[name][sc]) for sc in cols)
            lines.append(f"| **{name}** | {res.engine_far[name]:.3f} | {cells} |")
        for name, per in res.naive.items():
            tag = " (calibrated)" if name in res.thresholds else ""
            cells = " | ".join(fmt_cell(per[sc]) for sc in cols)
            lines.append(f"| {name}{tag} | {res.naive_far[name]:.3f} | {cells} |")
        lines.append("")
    lines.append(
        f"Naive rules marked (calibrated) use the threshold at which their false-alarm rate "
        f"matches the engine's ({headline}: {res.engine_far[headline]:.3f})."
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
    ap.add_argument("--reps", type=int, default=500, help="repetitions per changed cell")
    ap.add_argument("--null-reps", type=int, default=1000, help="repetitions without a change")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    ap.add_argument(
        "--engine",
        action="append",
        default=[],
        help="extra engine row, e.g. alpha=0.005,arl0=3000,window=20 (repeatable)",
    )
    ap.add_argument("--only-extra", action="store_true", help="only the --engine rows")
    args = ap.parse_args(argv)
    configs = {
        "engine, defaults": Engine(DriftSettings()),
        "engine, defaults, rolling:5": Engine(DriftSettings(), window=K),
    }
    for spec in args.engine:  # extra rows: alpha=..,arl0=..,window=..
        opts = dict(kv.split("=") for kv in spec.split(","))
        window = int(opts.pop("window", WINDOW))
        knobs: dict[str, Any] = {k: float(v) for k, v in opts.items()}  # the float knobs
        settings = DriftSettings(**knobs)
        configs[f"engine, {spec}"] = Engine(settings, window)
    if args.only_extra:
        configs = {k: v for k, v in configs.items() if k.removeprefix("engine, ") in args.engine}
    res = run(args.reps, args.null_reps, args.workers, configs)
    table = render(res, configs)
    print(table)
    if not args.no_write:
        write_doc(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
