"""Many monitors at once: one daemon with P monitor/endpoint pairs firing together.

The daemon is built by `monitor.app.build_daemon` from a generated config (P monitors of
N items each, spread over a solo endpoint and five shared ones, SQLite in a temp dir) and
run with `Daemon.running()` (scheduler, metrics, alerts, housekeeping; no HTTP listener).
Every pair's fire time is handed to the scheduler's own job target
(`monitor.scheduling.fire` -> `Daemon.submit`) at the same instant, and the benchmark
waits until every run is finished. The model is the fixed-latency stand-in server of
benchmarks/runner_throughput.py (its `serve`), in its own process.

Each endpoint's `concurrency` is 2 per monitor on it, so every endpoint's shared limit is
the same M*N*L/C = N*L/2 and the offered load grows with P: the aggregate ideal is
2*P/L items/s. A case is run in a fresh child process (its own CPU clock, heap and
imports). The sweep measures each daemon's first round (no baseline yet, so no
verdicts); the steady case measures a second round, judged against the first.

Printed per case: aggregate items/s against the ideal, the daemon's CPU per item (all its
threads) and as a share of one core, the event loop's thread's share of the wall on a
CPU and waiting in the run queue for one (/proc schedstat: the part other processes on
this shared machine took), the event-loop lag (a task sleeping 10 ms records its
overshoot; p99 and max), each run's duration against its endpoint's shared limit
(median, worst, and the solo endpoint's one run against its own N*L/C), the stand-in's
CPU per request and its peak connections (at most the sum of the limits), and the load
average of this shared machine. `--profile P` attaches py-spy (if on PATH) to the
measured round and prints which threads hold the GIL, running what.

    python benchmarks/many_monitors.py              # 25/50/100/200 pairs + judged 100; docs
    python benchmarks/many_monitors.py --quick      # 10 and 25 pairs of 200 items, no docs
    python benchmarks/many_monitors.py --profile 100    # where the time goes; docs
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._doc import update_doc
from benchmarks.runner_throughput import serve

if TYPE_CHECKING:
    from monitor.daemon import Daemon

ROOT = Path(__file__).resolve().parent.parent
PER_MONITOR_C = 2
# Shares of the shared endpoints' monitors: several endpoints of different sizes.
SHARES = (0.10, 0.15, 0.20, 0.25, 0.30)

ENDPOINT = (
    '  - {{name: {name}, type: openai-chat, url: "http://127.0.0.1:{port}/v1", model: sim,'
    " concurrency: {c}, timeout: 30s, retries: 2}}\n"
)
MONITOR = (
    "  - {{name: {name}, benchmark: intents, endpoints: [{endpoint}],"
    ' schedule: {{every: 3600s}}, drift: {{baseline: "rolling:1"}}}}\n'
)
CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:1"}}
endpoints:
{endpoints}benchmarks:
  - name: intents
    data: items.jsonl
    prompt: "Classify the customer request as refund, billing or other.\\nRequest: {{{{ text }}}}"
    reference: label
    scorers: [exact_match, {{regex: {{pattern: "^(refund|billing|other)$", name: valid}}}}]
monitors:
{monitors}"""


def layout(pairs: int) -> dict[str, int]:
    """Monitors per endpoint: one alone on `solo`, the rest split by SHARES."""
    rest = pairs - 1
    counts = [int(rest * s) for s in SHARES]
    by_remainder = sorted(range(len(SHARES)), key=lambda i: rest * SHARES[i] - counts[i])
    for i in reversed(by_remainder[len(SHARES) - (rest - sum(counts)) :]):
        counts[i] += 1
    return {"solo": 1} | {f"shared{i}": m for i, m in enumerate(counts) if m}


def write_config(folder: Path, port: int, pairs: int, items: int) -> Path:
    from monitor.demo.data import write_items

    write_items(folder / "items.jsonl", items)
    endpoints, monitors = [], []
    k = 0
    for name, m in layout(pairs).items():
        endpoints.append(ENDPOINT.format(name=name, port=port, c=PER_MONITOR_C * m))
        for _ in range(m):
            monitors.append(MONITOR.format(name=f"m{k:03d}", endpoint=name))
            k += 1
    path = folder / "monitor.yaml"
    path.write_text(
        CONFIG.format(
            db=folder / "monitor.db", endpoints="".join(endpoints), monitors="".join(monitors)
        )
    )
    return path


async def _lag_probe(samples: list[float], period: float = 0.01) -> None:
    """How late a 10 ms sleep wakes up: the time the event loop was busy elsewhere."""
    loop = asyncio.get_running_loop()
    while True:
        t = loop.time()
        await asyncio.sleep(period)
        samples.append(loop.time() - t - period)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _schedstat() -> tuple[float, float]:
    """This thread's seconds on a CPU and waiting in the run queue for one (Linux)."""
    path = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")
    on_cpu, waiting, _ = path.read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


async def _connection_probe(server_pid: int, peak: list[int]) -> None:
    """The stand-in's open file descriptors, less those it had idle: its connections."""
    fds = Path(f"/proc/{server_pid}/fd")
    idle = len(os.listdir(fds))
    while True:
        peak[0] = max(peak[0], len(os.listdir(fds)) - idle)
        await asyncio.sleep(0.1)


async def _drive(
    daemon: Daemon, specs: list[tuple[str, str]], rounds: int, server_pid: int
) -> dict[str, Any]:
    """`rounds` rounds of every pair at once, in the running daemon; the last is measured."""
    from monitor.scheduling import RunSpec, fire

    lags: list[float] = []
    peak = [0]
    load0, cpu0, wall0, sched0 = 0.0, 0.0, 0.0, (0.0, 0.0)
    connections = asyncio.create_task(_connection_probe(server_pid, peak))
    async with daemon.running():
        probe = asyncio.create_task(_lag_probe(lags))
        for r in range(rounds):
            last = r == rounds - 1
            if last:
                print("measuring", flush=True)  # the profiler attaches here
                lags.clear()
                load0 = os.getloadavg()[0]
                cpu0, wall0 = time.process_time(), time.perf_counter()
                sched0 = _schedstat()  # of the event loop's thread
            for monitor, endpoint in specs:  # simultaneous fire times
                if last:  # the scheduler's own job target
                    await fire("monitor", monitor, endpoint)
                else:  # a scheduled one would be dropped as too soon after
                    await daemon.submit(RunSpec(monitor, endpoint, "manual"))
            await daemon.wait_idle()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        sched = _schedstat()
        print("measured", flush=True)
        probe.cancel()
        connections.cancel()
        runs = await asyncio.to_thread(daemon.store.list_runs, limit=len(specs) * rounds + 10)
    return {
        "connections": peak[0],
        "loop_on_cpu": (sched[0] - sched0[0]) / wall,
        "loop_waiting": (sched[1] - sched0[1]) / wall,
        "wall": wall,
        "cpu": cpu,
        "lags": lags,
        "load": (load0, os.getloadavg()[0]),
        "runs": runs[: len(specs)],  # newest first: the measured round
    }


def case(pairs: int, items: int, latency: float, rounds: int) -> dict[str, Any]:
    """Child process: one daemon, `rounds` rounds of all pairs at once; the last measured."""
    from monitor.app import build_daemon, load_checked_settings
    from monitor.judge import drift_settings
    from monitor.log import configure_logging

    configure_logging(level="warning")
    # the stand-in answers every item alike, so the drift tests' p-values are floored
    warnings.filterwarnings("ignore", message="p-value floored")
    server = subprocess.Popen(
        # this script's own --serve: a process named after runner_throughput.py is fair
        # game for whoever cleans up after that benchmark on a shared machine
        [sys.executable, __file__, "--serve", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp), port, pairs, items)
            settings = load_checked_settings(config)
            daemon, close = build_daemon(config, settings)
            # as `monitor serve` does (monitor/app.py, run_daemon): the statistics stack
            # loaded up front, start-up objects out of the collector's sight
            import monitor.core.policy  # noqa: F401

            gc.freeze()
            # h of the CUSUM is computed once per drift configuration (lru_cache in
            # monitor/core/stats/sequential.py, ~0.8 s): a daemon that has judged before
            # has it; measure that state, not a fresh process's first judged round
            for mon in settings.monitors:
                _ = drift_settings(mon).cusum_threshold
            specs = [(m.name, m.endpoints[0]) for m in settings.monitors]
            try:
                got = asyncio.run(_drive(daemon, specs, rounds, server.pid))
            finally:
                close()
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    server_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    got["server_cpu"] = server_cpu.ru_utime + server_cpu.ru_stime
    return _figures(got, pairs, items, latency, rounds)


def _figures(
    got: dict[str, Any], pairs: int, items: int, latency: float, rounds: int
) -> dict[str, Any]:
    counts = layout(pairs)
    limits = {ep: m * items * latency / (PER_MONITOR_C * m) for ep, m in counts.items()}
    ratios, solo, statuses, errors, done = [], 0.0, collections.Counter[str](), 0, 0
    for run in got["runs"]:
        assert run.finished_at is not None
        duration = (run.finished_at - run.started_at).total_seconds()
        ratio = duration / limits[run.endpoint]
        ratios.append(ratio)
        if run.endpoint == "solo":
            solo = ratio
        statuses[str(run.status)] += 1
        errors += run.n_errors
        done += run.n_items
    total = pairs * items
    ideal_wall = max(limits.values())
    lags = got["lags"]
    return {
        "pairs": pairs,
        "rounds": rounds,
        "endpoints": len(counts),
        "in_flight": PER_MONITOR_C * pairs,
        "items": items,
        "latency_ms": latency * 1000,
        "wall_s": got["wall"],
        "ideal_s": ideal_wall,
        "items_per_s": total / got["wall"],
        "ideal_items_per_s": total / ideal_wall,
        "cpu_ms_per_item": got["cpu"] / total * 1000,
        "cpu_share": got["cpu"] / got["wall"],
        "lag_p99_ms": _p(lags, 0.99) * 1000,
        "lag_max_ms": max(lags) * 1000,
        "run_ratio_median": statistics.median(ratios),
        "run_ratio_max": max(ratios),
        "run_ratio_solo": solo,
        # every round's requests (the server's CPU cannot be split by round)
        "server_us_per_request": got["server_cpu"] / (rounds * total) * 1e6,
        "connections": got["connections"],  # peak, every round
        "loop_on_cpu": got["loop_on_cpu"],
        "loop_waiting": got["loop_waiting"],
        "statuses": dict(statuses),
        "stored_items": done,
        "errors": errors,
        "load": got["load"],
    }


def line(r: dict[str, Any]) -> str:
    statuses = ",".join(f"{k} {v}" for k, v in sorted(r["statuses"].items()))
    return (
        f"P={r['pairs']:>3} ({r['endpoints']} endpoints, {r['in_flight']:>3} in flight) "
        f"{'round 2, judged' if r['rounds'] > 1 else 'round 1, cold  '}  "
        f"N={r['items']} L={r['latency_ms']:.0f}ms  "
        f"{r['items_per_s']:5.0f} items/s of ideal {r['ideal_items_per_s']:5.0f} "
        f"(wall {r['wall_s']:6.1f}s / ideal {r['ideal_s']:5.1f}s = "
        f"{r['wall_s'] / r['ideal_s']:.2f}x)  "
        f"CPU {r['cpu_ms_per_item']:.3f} ms/item = {r['cpu_share']:.2f} cores "
        f"(1/CPU per item: {1000 / r['cpu_ms_per_item']:4.0f} items/s)  "
        f"loop thread wanted a CPU {r['loop_on_cpu'] + r['loop_waiting']:.0%} of the wall "
        f"(on one {r['loop_on_cpu']:.0%}, waiting {r['loop_waiting']:.0%})  "
        f"loop lag p99 {r['lag_p99_ms']:5.1f} ms max {r['lag_max_ms']:5.0f} ms  "
        f"run duration/limit median {r['run_ratio_median']:.2f}x max {r['run_ratio_max']:.2f}x "
        f"solo {r['run_ratio_solo']:.2f}x  "
        f"server {r['server_us_per_request']:.0f} us/request, "
        f"peak {r['connections']} connections  "
        f"runs {statuses} errors {r['errors']}  "
        f"load {r['load'][0]:.1f}->{r['load'][1]:.1f}"
    )


def run_case(
    pairs: int, items: int, latency: float, rounds: int, profile: Path | None = None
) -> dict[str, Any]:
    """Run one case in a child process; with `profile`, py-spy records its measured round."""
    cmd = [sys.executable, __file__, "--case", str(pairs), "--items", str(items)]
    cmd += ["--latency", str(latency), "--rounds", str(rounds)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    spy: subprocess.Popen[bytes] | None = None
    result: dict[str, Any] | None = None
    for text in child.stdout:
        if text.startswith("measuring") and profile is not None:
            spy = _start_spy(child.pid, profile)
        elif text.startswith("measured") and spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
            spy.wait(60)
        elif text.startswith("{"):
            result = json.loads(text)
    if child.wait() != 0 or result is None:
        raise SystemExit(f"case P={pairs} failed (exit {child.returncode})")
    assert result["stored_items"] == pairs * items, result
    if result["errors"]:  # e.g. the stand-in went away: no figure of a broken run
        raise SystemExit(f"case P={pairs}: {result['errors']} endpoint errors")
    return result


def _start_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--threads",
            "--gil",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# Inclusive shares: samples whose stack passes through a frame of this qualified name.
STAGES = (
    ("inside JsonEndpoint.predict", "JsonEndpoint.predict ("),
    ("answer scored (_Collected.add)", "_Collected.add ("),
    ("item results written (_ResultWriter)", "_ResultWriter."),
    ("run started/finished (Runner.run's store calls)", "SqlStore.start_run ("),
    ("", "SqlStore.finish_run ("),
    ("judge (StoreJudge.judge)", "StoreJudge.judge"),
    ("metrics refresh (Daemon.refresh_metrics)", "Daemon.refresh_metrics ("),
)


def summarize_profile(raw: Path, wall: float) -> list[str]:
    """py-spy's collapsed stacks of the GIL's holder: who holds it, running what."""
    threads: collections.Counter[str] = collections.Counter()
    libraries: collections.Counter[str] = collections.Counter()
    stages: collections.Counter[str] = collections.Counter()
    total = 0
    for text in raw.read_text().splitlines():
        stack, _, count = text.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        # the first frame is "thread (id): name"; asyncio.to_thread's pool is asyncio_<n>
        name = frames[0].partition(": ")[2]
        threads[
            "event loop"
            if name == "MainThread"
            else "to_thread pool"
            if name.startswith("asyncio_")
            else "other threads"
        ] += n
        libraries[_library(frames[-1])] += n
        label = ""
        for stage, prefix in STAGES:
            label = stage or label  # an empty label adds its frame to the stage before it
            if any(f.startswith(prefix) for f in frames[1:]):
                stages[label] += n
                break
    labels = [stage for stage, _ in STAGES if stage]
    rest = 1 - sum(stages.values()) / total
    return [
        f"py-spy, 200 samples/s of the thread holding the GIL: {total} samples = "
        f"GIL held {total / (wall * 200):.0%} of the measured round",
        "by thread: " + ", ".join(f"{k} {v / total:.0%}" for k, v in threads.most_common()),
        "self time by package: "
        + ", ".join(f"{k} {v / total:.0%}" for k, v in libraries.most_common(10)),
        "inclusive, by stage: "
        + ", ".join(f"{k} {stages[k] / total:.0%}" for k in labels)
        + f", rest (event-loop turns, aiohttp socket callbacks) {rest:.0%}",
    ]


def _library(frame: str) -> str:
    """`func (path:line)` -> its package: `aiohttp`, `asyncio`, `monitor.runner`, ..."""
    path = frame.rpartition(" (")[2].rpartition(":")[0]
    parts = path.split("/")
    if parts[0] == "monitor" and len(parts) > 1:
        return "monitor." + parts[1].removesuffix(".py")
    return parts[0].removesuffix(".py") or frame


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 and 25 pairs of 200 items")
    ap.add_argument("--pairs", type=int, nargs="+", help="pair counts to sweep")
    ap.add_argument("--items", type=int, default=1000, help="items per monitor (1000)")
    ap.add_argument("--latency", type=float, default=0.05, help="model latency, s (0.05)")
    ap.add_argument("--steady", type=int, default=100, help="pairs of the judged case (100)")
    ap.add_argument("--profile", type=int, metavar="P", help="profile P pairs with py-spy")
    ap.add_argument("--case", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    if args.case is not None:
        print(json.dumps(case(args.case, args.items, args.latency, args.rounds)), flush=True)
        return
    items = 200 if args.quick else args.items
    if args.profile is not None:
        raw = Path(tempfile.gettempdir()) / f"many_monitors_profile_{args.profile}.txt"
        result = run_case(args.profile, items, args.latency, 2, raw)
        lines = [line(result), *summarize_profile(raw, result["wall_s"])]
        print(f"(py-spy's collapsed stacks: {raw})", file=sys.stderr)
        print("\n".join(lines))
        if not args.quick:
            update_doc(
                "many_monitors_profile",
                "Many monitors at once: where the time goes",
                lines,
                f"python benchmarks/many_monitors.py --profile {args.profile}",
            )
        return
    # The sweep measures each daemon's first round (no baseline yet: the judge stores
    # no verdicts); the steady case is a second round, judged against the first.
    sweep = args.pairs or ([10, 25] if args.quick else [25, 50, 100, 200])
    cases = [(p, 1) for p in sweep] + [(25 if args.quick else args.steady, 2)]
    lines = []
    for p, rounds in cases:
        lines.append(line(run_case(p, items, args.latency, rounds)))
        print(lines[-1], flush=True)
    if not args.quick and args.pairs is None:
        update_doc(
            "many_monitors", "Many monitors at once", lines, "python benchmarks/many_monitors.py"
        )


if __name__ == "__main__":
    main()
