"""Per-slice regression detection: false alarms over 10 slices, and slice regressions the
aggregate score hides.

A seeded simulation on the reference endpoint of benchmarks/detection.py (independent
items; 60% pass with p in [0.98, 1], 25% with p in [0, 0.02], 15% flaky with p uniform in
[0.2, 0.8]) cut into 10 slices of one field: s0 has 40 items, s1..s9 share the other 960
(107 or 106 each), every slice with the reference mix. Per monitoring run the engine
evaluates the aggregate and each slice with its own CUSUM state (the slices' policy from
monitor.core.slices.slice_policy: arl0 x 10), then one `decide` over the 11 checks
(time-Bonferroni and one Benjamini-Hochberg); a run with any `regressed` verdict stays out
of the rolling baseline, as the product does. 5 baseline runs, a rolling window of at most
20, 30 monitoring runs, the change from the 11th on and persisting (as detection.py).

Scenarios:

* no change, on the reference slices and on the population of scenario b;
* a: 30% of the always-right items of s0 break (p -> 1 - p for round(0.3 x 24) = 7 items);
* b: s1 is a hard slice (107 items, 50% flaky, the rest stable pass/fail 60:25), and the
  same pass probability is taken from each of its flaky items so that the slice's
  expected score drops by exactly 10 points (floored at 0).

Reported: false alarms per 30 runs (share of quiet periods with at least one alarm) of any
check, of the slice verdicts and of the aggregate, with one-sided 95% upper bounds and the
route of the first alarm (single-run test or CUSUM); for a and b, power within 1 and 3
runs and the median delay of the changed slice's own verdict, of any slice verdict and of
the aggregate verdict, and whether the first slice alarm names the changed slice.

Usage: python benchmarks/detection_slices.py [--quick] [--reps 300] [--null-reps 1000]
[--workers 2] [--deadline HH:MM] [--no-write]. Writes the tables into docs/statistics.md
between the slice-table markers.
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks.detection import (
    CHANGE,
    CUSUM,
    RUN_TEST,
    RUNS,
    SEED,
    WINDOW,
    Detection,
    K,
    _upper95,
    detection,
    fmt_cell,
)
from benchmarks.detection_scenarios import Change, Endpoint, Setting, changed_rates, population
from monitor.core.model import VerdictKind
from monitor.core.policy import DriftSettings, decide, evaluate_arrays
from monitor.core.slices import slice_name, slice_policy

DOC = Path(__file__).resolve().parents[1] / "docs" / "statistics.md"
START, END = "<!-- slice-table:start -->", "<!-- slice-table:end -->"

N_ITEMS = 1000
N_SLICES = 10
SMALL = 40  # items of s0, the slice of scenario a
HARD_FLAKY = 0.5  # flaky share of the hard slice s1 (scenario b)
BREAK_SHARE = 0.3  # scenario a: share of s0's always-right items that break
DECLINE = 10.0  # scenario b: points the hard slice's expected score loses

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
RouteArray = npt.NDArray[np.int8]


@dataclass(frozen=True)
class Scenario:
    name: str
    hard: bool  # s1 is the hard slice
    change: str  # "none", "a" or "b"

    @property
    def changed_slice(self) -> int:
        """Index of the slice the change hits (-1: none)."""
        return {"a": 0, "b": 1}.get(self.change, -1)


NULLS = (
    Scenario("no change, reference slices", hard=False, change="none"),
    Scenario("no change, s1 hard (population of b)", hard=True, change="none"),
)
CHANGES = (
    Scenario(f"a: {BREAK_SHARE:.0%} of s0's always-right items break", hard=False, change="a"),
    Scenario(f"b: s1's flaky items lose {DECLINE:g} points of the slice", hard=True, change="b"),
)


def slice_sizes() -> list[int]:
    """s0 has SMALL items; the rest split as evenly as possible over s1..s9."""
    rest, others = N_ITEMS - SMALL, N_SLICES - 1
    return [SMALL] + [rest // others + (1 if i < rest % others else 0) for i in range(others)]


def slice_bounds() -> list[slice]:
    """Item columns of each slice (slices are contiguous; item order carries no information)."""
    edges = np.cumsum([0, *slice_sizes()])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def draw_endpoint(sc: Scenario, rng: np.random.Generator) -> tuple[Endpoint, FloatArray]:
    """One repetition's endpoint and the expected drop (points) of its changed slice and of
    the aggregate."""
    ps, cl, after = [], [], []
    for v, n in enumerate(slice_sizes()):
        flaky = HARD_FLAKY if sc.hard and v == 1 else 0.15
        p, cls = population(rng, Setting(f"s{v}", n_items=n, flaky_share=flaky))
        q = p.copy()
        if sc.change == "a" and v == sc.changed_slice:
            high = np.flatnonzero(cls == 0)
            pick = rng.choice(high, size=round(BREAK_SHARE * high.size), replace=False)
            q[pick] = 1.0 - p[pick]
        elif sc.change == "b" and v == sc.changed_slice:
            q = changed_rates(p, cls, Setting(f"s{v}", n_items=n), Change("b", DECLINE), rng)
        ps.append(p)
        cl.append(cls)
        after.append(q)
    p, q = np.concatenate(ps), np.concatenate(after)
    ep = Endpoint(Setting("slices", n_items=N_ITEMS), p, q, np.concatenate(cl), 0.0, 0)
    loss = p - q
    drops = np.array([math.nan, 100.0 * loss.mean()])
    if sc.changed_slice >= 0:
        drops[0] = 100.0 * loss[slice_bounds()[sc.changed_slice]].mean()
    return ep, drops


def engine_routes(runs: FloatArray, *, changed_slice: int = -1) -> RouteArray:
    """The product's policy on one repetition: (RUNS, 1 + N_SLICES) alarm routes per run and
    check (column 0 the aggregate, then s0..s9; 0 none, RUN_TEST, CUSUM).

    With `changed_slice`, the repetition stops once both that slice's verdict and the
    aggregate's have alarmed after the change: nothing later enters the table.
    """
    settings = DriftSettings()
    per_slice = slice_policy(settings, N_SLICES)
    cols = slice_bounds()
    names = ["score", *(slice_name("score", f"slice=s{v}") for v in range(N_SLICES))]
    history = list(runs[:K])
    states = [0.0] * (1 + N_SLICES)
    routes = np.zeros((RUNS, 1 + N_SLICES), dtype=np.int8)
    for t in range(RUNS):
        run = runs[K + t]
        window = np.array(history[-WINDOW:])
        evs = [
            evaluate_arrays(
                names[0],
                window,
                run,
                binary=True,
                settings=settings,
                required_runs=K,
                cusum_state=states[0],
            )
        ]
        evs.extend(
            evaluate_arrays(
                names[1 + v],
                window[:, c],
                run[c],
                binary=True,
                settings=per_slice,
                required_runs=K,
                cusum_state=states[1 + v],
            )
            for v, c in enumerate(cols)
        )
        verdicts = decide(evs, settings, degraded=False)
        for j, verdict in enumerate(verdicts):
            if verdict.verdict == VerdictKind.REGRESSED:
                assert verdict.scorer == names[j]  # decide keeps the order
                cusum = verdict.detail.startswith("regressed: CUSUM")
                routes[t, j] = CUSUM if cusum else RUN_TEST
            states[j] = verdict.cusum_state or 0.0
        if changed_slice >= 0 and t >= CHANGE:
            after = routes[CHANGE : t + 1]
            if after[:, 0].any() and after[:, 1 + changed_slice].any():
                break
        if not routes[t].any():
            history.append(run)
    return routes


def _task(args: tuple[Scenario, list[np.random.SeedSequence]]) -> tuple[RouteArray, FloatArray]:
    sc, seeds = args
    routes, drops = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        ep, drop = draw_endpoint(sc, rng)
        runs = ep.runs(rng, K + RUNS, K + CHANGE)
        routes.append(engine_routes(runs, changed_slice=sc.changed_slice))
        drops.append(drop)
    return np.array(routes), np.array(drops)


# --------------------------------------------------------------------------- metrics


def _first_route(routes: RouteArray) -> IntArray:
    """Route of each repetition's first alarm among `routes` (reps, RUNS, checks); 0 none.
    Two checks alarming in the same run by different routes count as the run test."""
    hit = routes.max(axis=2) > 0
    t = hit.argmax(axis=1)
    at = routes[np.arange(routes.shape[0]), t].astype(np.int64)
    first = np.where((at == RUN_TEST).any(axis=1), RUN_TEST, at.max(axis=1))
    return np.where(hit.any(axis=1), first, 0)


@dataclass(frozen=True)
class Rate:
    share: float
    n: int
    run_test: float = math.nan  # share of periods whose first alarm came from the run test
    cusum: float = math.nan

    def cell(self) -> str:
        return f"{self.share:.3f} ({_upper95(self.share, self.n):.3f})"

    def routes(self) -> str:
        return f"{self.run_test:.3f} / {self.cusum:.3f}"


def false_alarms(routes: RouteArray) -> dict[str, Rate]:
    """Any check, the slice verdicts and the aggregate verdict, over the whole period."""
    out = {}
    for key, part in (
        ("any", routes),
        ("slices", routes[:, :, 1:]),
        ("aggregate", routes[:, :, :1]),
    ):
        first = _first_route(part)
        out[key] = Rate(
            share=float((first > 0).mean()),
            n=part.shape[0],
            run_test=float((first == RUN_TEST).mean()),
            cusum=float((first == CUSUM).mean()),
        )
    return out


@dataclass(frozen=True)
class Power:
    reps: int
    slice_drop: float  # expected drop of the changed slice, points (mean over repetitions)
    aggregate_drop: float
    own: Detection  # the changed slice's own verdict
    any_slice: Detection
    aggregate: Detection
    own_cusum: float  # share of the own verdict's first alarms (after the change) by CUSUM
    names_it: float  # first slice alarm after the change: the changed slice is among them
    names_other: float  # ... another slice is among them


def power(routes: RouteArray, drops: FloatArray, changed: int) -> Power:
    after = routes[:, CHANGE:]
    own = after[:, :, 1 + changed]
    slices = after[:, :, 1:]
    hit: BoolArray = np.asarray((slices > 0).any(axis=2))
    found = hit.any(axis=1)
    t = hit.argmax(axis=1)
    at = slices[np.arange(slices.shape[0]), t] > 0  # (reps, N_SLICES) at the first slice alarm
    others = np.delete(at, changed, axis=1).any(axis=1)
    own_first = own[np.arange(own.shape[0]), (own > 0).argmax(axis=1)]
    caught = (own > 0).any(axis=1)
    return Power(
        reps=routes.shape[0],
        slice_drop=float(drops[:, 0].mean()),
        aggregate_drop=float(drops[:, 1].mean()),
        own=detection(routes[:, :, 1 + changed] > 0),
        any_slice=detection(np.asarray((routes[:, :, 1:] > 0).any(axis=2))),
        aggregate=detection(routes[:, :, 0] > 0),
        own_cusum=float((own_first[caught] == CUSUM).mean()) if caught.any() else math.nan,
        names_it=float(at[found, changed].mean()) if found.any() else math.nan,
        names_other=float(others[found].mean()) if found.any() else math.nan,
    )


# --------------------------------------------------------------------------- run


@dataclass
class Results:
    nulls: dict[str, dict[str, Rate]]
    changes: dict[str, Power]
    null_reps: int
    reps: int


def run(reps: int, null_reps: int, workers: int, deadline: float = math.inf) -> Results:
    root = np.random.SeedSequence(SEED)
    seeds = {sc: root.spawn(null_reps) for sc in NULLS}
    seeds.update({sc: root.spawn(reps) for sc in CHANGES})
    chunk = 10
    cells = [*NULLS, *CHANGES]
    # round robin over the cells, chunk by chunk: when the deadline stops the run, every
    # cell has about the same share of its repetitions
    tasks = [
        (sc, seeds[sc][i : i + chunk])
        for i in range(0, max(len(s) for s in seeds.values()), chunk)
        for sc in cells
        if seeds[sc][i : i + chunk]
    ]
    raw: dict[Scenario, list[tuple[RouteArray, FloatArray]]] = {sc: [] for sc in cells}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[tuple[Scenario, Future[Any]]] = []
        queue = iter(tasks)
        while True:
            while len(pending) < 2 * workers and time.time() < deadline:
                task = next(queue, None)
                if task is None:
                    break
                pending.append((task[0], pool.submit(_task, task)))
            if not pending:
                break
            sc, fut = pending.pop(0)
            raw[sc].append(fut.result())
    cat = {
        sc: (np.concatenate([r for r, _ in parts]), np.concatenate([d for _, d in parts]))
        for sc, parts in raw.items()
        if parts
    }
    return Results(
        nulls={sc.name: false_alarms(cat[sc][0]) for sc in NULLS if sc in cat},
        changes={sc.name: power(*cat[sc], sc.changed_slice) for sc in CHANGES if sc in cat},
        null_reps=min((cat[sc][0].shape[0] for sc in NULLS if sc in cat), default=0),
        reps=min((cat[sc][0].shape[0] for sc in CHANGES if sc in cat), default=0),
    )


def _share(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def render(res: Results, seconds: float) -> str:
    sizes = slice_sizes()
    lines = [
        f"Seed {SEED}; {res.null_reps} repetitions without a change per population, "
        f"{res.reps} per change; {N_ITEMS} items in {N_SLICES} slices (s0 {sizes[0]} items, "
        f"s1..s9 {min(sizes[1:])}-{max(sizes[1:])}); {K} baseline runs, rolling window of "
        f"at most {WINDOW} unflagged runs, {RUNS} monitoring runs, change at run {CHANGE + 1}; "
        f"11 checks per run (aggregate + slices, slice CUSUMs at arl0 x {N_SLICES}), one BH. "
        f"Runtime {seconds:.0f} s.",
        "",
        "| population (no change) | false alarms / 30 runs, any check (95% upper bound) | "
        "slice verdicts | aggregate verdict | first slice alarm: run test / CUSUM | "
        "first aggregate alarm: run test / CUSUM |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res.nulls.items():
        lines.append(
            f"| {name} | {r['any'].cell()} | {r['slices'].cell()} | {r['aggregate'].cell()} | "
            f"{r['slices'].routes()} | {r['aggregate'].routes()} |"
        )
    lines += [
        "",
        'Cells: power within 1 run / within 3 runs / median delay (runs; ">20" when fewer '
        "than half are caught).",
        "",
        "| change | expected drop: slice / aggregate | changed slice's verdict | any slice "
        "verdict | aggregate verdict | changed slice's first alarm by CUSUM | first slice "
        "alarm names the changed slice / another slice |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in res.changes.items():
        lines.append(
            f"| {name} | {p.slice_drop:.1f} / {p.aggregate_drop:.2f} points | "
            f"{fmt_cell(p.own)} | {fmt_cell(p.any_slice)} | {fmt_cell(p.aggregate)} | "
            f"{_share(p.own_cusum)} | {_share(p.names_it)} / {_share(p.names_other)} |"
        )
    return "\n".join(lines)


def write_doc(table: str, doc: Path = DOC) -> None:
    """Replace the block between the slice-table markers (which the doc must have)."""
    text = doc.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{doc} has no {START} ... {END} block")
    block = f"{START}\n{table}\n{END}"
    text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    doc.write_text(text, encoding="utf-8")


def _deadline(hhmm: str | None) -> float:
    """Epoch seconds of the next HH:MM UTC today (inf without one)."""
    if not hhmm:
        return math.inf
    hh, mm = (int(x) for x in hhmm.split(":"))
    now = time.gmtime()
    minutes = (hh * 60 + mm) - (now.tm_hour * 60 + now.tm_min)
    return time.time() + minutes * 60 - now.tm_sec


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=300, help="repetitions per change")
    ap.add_argument(
        "--null-reps", type=int, default=1000, help="repetitions without a change per population"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="4 / 4 repetitions, docs left alone")
    ap.add_argument(
        "--deadline",
        help="UTC time HH:MM after which no more repetitions start (every cell keeps its share)",
    )
    ap.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.null_reps, args.no_write = 4, 4, True
    t0 = time.perf_counter()
    res = run(args.reps, args.null_reps, max(1, min(args.workers, 2)), _deadline(args.deadline))
    table = render(res, time.perf_counter() - t0)
    print(table)
    if not args.no_write:
        write_doc(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
