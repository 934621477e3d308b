"""Process start-up: wall time of short `monitor` commands, each in a fresh process.

`monitor run` must start in well under a second (comparable daemons take 3-11 s), so
this measures what every command pays before doing any work: the interpreter, the
imports, parsing the configuration. Each command runs once untimed (to warm the page
cache and write bytecode caches), then `--repeat` times; the median and the minimum are
reported. The minimum is the cost on a quiet machine, the median what a user sees.

    python benchmarks/startup.py              # prints and updates docs/performance.md
    python benchmarks/startup.py --no-doc     # prints only
    python benchmarks/startup.py --repeat 30  # more repetitions

Only the block between the `startup` markers of docs/performance.md is rewritten (a
`## Start-up` section is appended when the markers are missing); other scripts own the
other blocks of that file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- startup:begin -->", "<!-- startup:end -->"
QUICKSTART = "examples/quickstart.yaml"


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


def cases() -> list[tuple[str, list[str]]]:
    monitor = monitor_command()
    return [
        ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
        ("monitor --version", [*monitor, "--version"]),
        ('python -c "import monitor.app"', [sys.executable, "-c", "import monitor.app"]),
        (f"monitor check-config {QUICKSTART}", [*monitor, "check-config", QUICKSTART]),
    ]


def measure(label: str, argv: list[str], repeat: int) -> Result:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up run writes the bytecode caches
    env.pop("MONITOR_DB", None)  # the quickstart config reads it; keep the caller's out

    def once() -> float:
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(
                f"{label} exited with {done.returncode}:\n{done.stderr.decode(errors='replace')}"
            )
        return elapsed

    once()  # warm-up: page cache, __pycache__
    return Result(label, tuple(once() for _ in range(repeat)))


def write_doc(lines: list[str], repeat: int) -> None:
    block = "\n".join(
        [
            BEGIN,
            f"Measured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} cores, "
            f"Python {sys.version.split()[0]}), `python benchmarks/startup.py`: wall time "
            f"of each command in a fresh process, {repeat} runs after one warm-up run.",
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
    for label, argv in cases():
        lines.append(measure(label, argv, args.repeat).line())
        print(lines[-1], flush=True)
    if not args.no_doc:
        write_doc(lines, args.repeat)
        print(f"updated {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
