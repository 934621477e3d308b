"""Process start-up: wall time of short `monitor` commands, each in a fresh process.

`monitor run` must start in well under a second (comparable daemons take 3-11 s), so
this measures what every command pays before doing any work: the interpreter, the
imports, parsing the configuration. Each command runs once untimed (to warm the page
cache and write bytecode caches), then `--repeat` times; the median and the minimum are
reported. The minimum is the cost on a quiet machine, the median what a user sees.

The `monitor run` case times the whole command end to end, an upper bound of its
start-up: one monitor with a one-item benchmark against `monitor demo-endpoint` (zero
latency, started once on 127.0.0.1 for all runs), on a temporary SQLite database. Each
run gets a fresh copy of a database already at the latest schema, so every run is a
first run (no baseline, exit code 0) and none pays for the one-time migration. Besides
the end-to-end time it reports the time until the command logs `run_started` (its JSON
log line's timestamp against the launch time): start-up proper, before any request.

    python benchmarks/startup.py              # prints and updates docs/performance.md
    python benchmarks/startup.py --no-doc     # prints only
    python benchmarks/startup.py --repeat 30  # more repetitions

Only the block between the `startup` markers of docs/performance.md is rewritten (a
`## Start-up` section is appended when the markers are missing); other scripts own the
other blocks of that file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- startup:begin -->", "<!-- startup:end -->"
QUICKSTART = "examples/quickstart.yaml"
RUN_MONITOR = "startup-probe"
ENDPOINT_READY_S = 30.0  # how long `monitor demo-endpoint` may take to print its address


@dataclass(frozen=True, slots=True)
class Result:
    label: str
    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)

    def line(self) -> str:
        return (
            f"{self.label:<48} median {self.median * 1000:6.0f} ms"
            f"  min {self.best * 1000:6.0f} ms  (n={len(self.times)})"
        )


def monitor_command() -> list[str]:
    """The `monitor` console script of this interpreter's environment, as installed."""
    beside = Path(sys.executable).parent / "monitor"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("monitor")
    if found is not None:
        return [found]
    # Not installed as a script: the module entry point runs the same code.
    return [sys.executable, "-m", "monitor"]


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    argv: list[str]
    before_each: Callable[[], None] | None = None  # untimed, before every run of argv
    mark: str | None = None  # also time until the command logs this event (JSON on stderr)


def run_config(url: str, folder: Path) -> Path:
    """A config with one monitor: a one-item benchmark against the endpoint at `url`."""
    data = folder / "one_item.jsonl"
    item = {"id": "probe-1", "text": "Please refund my broken order.", "label": "refund"}
    data.write_text(json.dumps(item) + "\n")
    config = folder / "monitor.yaml"
    # JSON is YAML: no quoting questions for the temporary paths
    config.write_text(
        json.dumps(
            {
                "storage": {"url": f"sqlite:///{folder / 'monitor.db'}"},
                "endpoints": [{"name": "local", "type": "openai-chat", "url": url, "model": "sim"}],
                "benchmarks": [
                    {
                        "name": "one-item",
                        "data": str(data),
                        "prompt": "Answer refund, billing or other.\nRequest: {{ text }}",
                        "reference": "label",
                        "scorers": ["exact_match"],
                    }
                ],
                "monitors": [
                    {"name": RUN_MONITOR, "benchmark": "one-item", "endpoints": ["local"]}
                ],
            },
            indent=2,
        )
        + "\n"
    )
    return config


@contextlib.contextmanager
def demo_endpoint(monitor: list[str], log: Path) -> Iterator[str]:
    """`monitor demo-endpoint` on a free loopback port; yields its base URL, then stops it."""
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*monitor, "demo-endpoint", "--listen", "127.0.0.1:0", "--latency", "0"],
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], ENDPOINT_READY_S)
        line = proc.stdout.readline().decode(errors="replace") if ready else ""
        # "simulated OpenAI-compatible model on http://127.0.0.1:PORT/v1 (model ...)"
        url = next((w for w in line.split() if w.startswith("http://")), None)
        if url is None:
            raise SystemExit(
                f"monitor demo-endpoint did not start (printed {line!r}):\n"
                f"{log.read_text(errors='replace')}"
            )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def run_case(stack: contextlib.ExitStack, monitor: list[str]) -> Case:
    """`monitor run` against a local endpoint; the endpoint and files live as long as `stack`."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="monitor-startup-")))
    url = stack.enter_context(demo_endpoint(monitor, folder / "endpoint.log"))
    config = run_config(url, folder)
    db, template = folder / "monitor.db", folder / "template.db"
    # Migrate once: every timed run starts from a copy of this empty, up-to-date database.
    done = subprocess.run(
        [*monitor, "db", "upgrade", "--config", str(config)], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"monitor db upgrade failed:\n{done.stderr.decode(errors='replace')}")
    shutil.copyfile(db, template)

    def fresh_database() -> None:
        for leftover in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(template, db)

    return Case(
        "monitor run, 1 item, local endpoint (end to end)",
        [*monitor, "run", RUN_MONITOR, "--config", str(config)],
        fresh_database,
        mark="run_started",
    )


def cases(stack: contextlib.ExitStack) -> list[Case]:
    monitor = monitor_command()
    return [
        Case("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
        Case("monitor --version", [*monitor, "--version"]),
        Case('python -c "import monitor.app"', [sys.executable, "-c", "import monitor.app"]),
        Case(f"monitor check-config {QUICKSTART}", [*monitor, "check-config", QUICKSTART]),
        run_case(stack, monitor),
    ]


def logged_at(stderr: str, event: str) -> float | None:
    """Epoch time of the first JSON log line of `event` in `stderr`, if any."""
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            return datetime.fromisoformat(str(record["timestamp"])).timestamp()
    return None


def measure(case: Case, repeat: int) -> list[Result]:
    """The case's wall times, and with `case.mark` the times until that event was logged."""
    label, argv = case.label, case.argv
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up run writes the bytecode caches
    env.pop("MONITOR_DB", None)  # the quickstart config reads it; keep the caller's out

    def once() -> tuple[float, float]:
        if case.before_each is not None:
            case.before_each()
        launched, start = time.time(), time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        stderr = done.stderr.decode(errors="replace")
        if done.returncode != 0:
            raise SystemExit(f"{label} exited with {done.returncode}:\n{stderr}")
        if case.mark is None:
            return elapsed, elapsed
        at = logged_at(stderr, case.mark)
        if at is None:
            raise SystemExit(f"{label} logged no {case.mark!r} event:\n{stderr}")
        return elapsed, at - launched

    once()  # warm-up: page cache, __pycache__
    runs = [once() for _ in range(repeat)]
    results = [Result(label, tuple(total for total, _ in runs))]
    if case.mark is not None:
        results.append(Result(f"  until it logs {case.mark}", tuple(m for _, m in runs)))
    return results


FIXED_N, FIXED_LATENCY_S, FIXED_CONCURRENCY = 1000, 0.05, 32
FIXED_HISTORY = 5  # runs before a warm run: the default baseline judges from the 6th


@dataclass(frozen=True, slots=True)
class Phases:
    """One whole `monitor run`: launch to exit, and the request phase the server saw."""

    wall: float
    first: float  # launch to the first request
    requests: float  # first request to last answer
    after: float  # last answer to exit

    @property
    def fixed(self) -> float:
        return self.wall - self.requests


def fixed_cost(monitor: list[str], repeat: int) -> list[str]:
    """Lines for `monitor run` of 1,000 items at L = 50 ms: its wall minus its request phase.

    The stand-in server of benchmarks/runner_throughput.py (`--serve L --timed`) reports
    when the first request arrived and the last answer left, so what remains of the
    process's wall is what a run costs besides its requests: start-up, imports, storing
    the benchmark version, judging, the exit. *Fresh*: a new database file each run
    (schema created, benchmark version stored, nothing to judge against). *Warm*: the
    version stored and 5 earlier runs, so each run is judged against its baseline.
    """
    from monitor.demo.data import write_items

    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "runner_throughput.py"),
            "--serve",
            str(FIXED_LATENCY_S),
            "--timed",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin, stdout = server.stdin, server.stdout
    assert stdin is not None
    assert stdout is not None
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    lines = []
    try:
        port = int(stdout.readline())
        with tempfile.TemporaryDirectory(prefix="monitor-fixed-") as tmp:
            folder = Path(tmp)
            data = write_items(folder / "items.jsonl", FIXED_N)
            db = folder / "monitor.db"
            config = folder / "monitor.yaml"
            config.write_text(
                json.dumps(
                    {
                        "storage": {"url": f"sqlite:///{db}"},
                        "endpoints": [
                            {
                                "name": "sim",
                                "type": "openai-chat",
                                "url": f"http://127.0.0.1:{port}/v1",
                                "model": "sim",
                                "concurrency": FIXED_CONCURRENCY,
                            }
                        ],
                        "benchmarks": [
                            {
                                "name": "intents",
                                "data": str(data),
                                "prompt": "Classify: refund, billing or other.\n{{ text }}",
                                "reference": "label",
                                "scorers": ["exact_match"],
                            }
                        ],
                        "monitors": [
                            {"name": RUN_MONITOR, "benchmark": "intents", "endpoints": ["sim"]}
                        ],
                    }
                )
            )
            argv = [*monitor, "run", RUN_MONITOR, "--config", str(config), "--format", "json"]

            def once() -> Phases:
                launched = time.time()
                done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=False)
                ended = time.time()
                print(file=stdin, flush=True)
                phase = stdout.readline().split()
                if done.returncode not in (0, 1) or "None" in phase:  # 1: a regression
                    raise SystemExit(
                        f"monitor run exited with {done.returncode}:\n"
                        f"{done.stderr.decode(errors='replace')}"
                    )
                first, last = map(float, phase)
                return Phases(ended - launched, first - launched, last - first, ended - last)

            def remove_db() -> None:
                for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                    path.unlink(missing_ok=True)

            once()  # warm-up: page cache, __pycache__
            fresh = []
            for _ in range(repeat):
                remove_db()
                fresh.append(once())
            remove_db()
            for _ in range(FIXED_HISTORY):
                once()
            warm = [once() for _ in range(repeat)]
    finally:
        stdin.close()
        server.wait(10)
    ideal = FIXED_N * FIXED_LATENCY_S / FIXED_CONCURRENCY
    head = (
        f"monitor run, {FIXED_N:,} items, L={FIXED_LATENCY_S * 1000:.0f} ms, "
        f"C={FIXED_CONCURRENCY} (request phase ideal {ideal:.2f} s), medians of {repeat}:"
    )
    lines.append(head)
    for name, runs in (("fresh database", fresh), ("warm database ", warm)):

        def med(field: str, runs: list[Phases] = runs) -> float:
            return float(statistics.median(getattr(r, field) for r in runs))

        lines.append(
            f"  {name}: wall {med('wall'):5.2f} s  request phase {med('requests'):5.2f} s  "
            f"fixed cost {med('fixed'):5.2f} s (min {min(r.fixed for r in runs):4.2f})"
            f" = before the first request {med('first'):4.2f} s"
            f" + after the last answer {med('after'):4.2f} s"
        )
    return lines


def write_doc(lines: list[str], repeat: int) -> None:
    block = "\n".join(
        [
            BEGIN,
            f"Measured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} cores, "
            f"Python {sys.version.split()[0]}), `python benchmarks/startup.py`: wall time "
            f"of each command in a fresh process, {repeat} runs after one warm-up run; "
            "for `monitor run` also the time until it logs `run_started` (start-up proper).",
            "",
            "```",
            *lines,
            "```",
            END,
        ]
    )
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    begin, end = text.find(BEGIN), text.find(END)
    if begin == -1 and end == -1:
        text = text.rstrip() + "\n\n## Start-up\n\n" + block + "\n"
    elif begin == -1 or end < begin:
        raise SystemExit(f"{DOC}: unbalanced {BEGIN} / {END} markers; fix them by hand")
    else:
        text = text[:begin] + block + text[end + len(END) :]
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description="Measure the start-up time of monitor commands.")
    ap.add_argument("--repeat", type=int, default=10, help="timed runs per command (10)")
    ap.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    lines = []
    with contextlib.ExitStack() as stack:  # stops the demo endpoint, removes its files
        for case in cases(stack):
            for result in measure(case, args.repeat):
                lines.append(result.line())
                print(lines[-1], flush=True)
    for line in fixed_cost(monitor_command(), max(3, args.repeat // 2)):
        lines.append(line)
        print(line, flush=True)
    if not args.no_doc:
        write_doc(lines, args.repeat)
        print(f"updated {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
