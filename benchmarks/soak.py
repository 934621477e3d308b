"""Soak: thousands of scheduled runs in one `monitor serve` process; RSS and fds must stay flat.

Four monitors fire every 200 ms against a zero-latency simulated model (a child process)
with a 20-item benchmark, so the daemon does ~15 runs/s through the real scheduler,
runner, store, metrics refresh and API. With ``--faulty`` (the default) a fifth monitor
fires every 200 ms at a hostile endpoint: the fault server of tests/hardening/faults.py
in another child process, each request getting the next fault of its mix (5xx, 429,
resets, hang-ups, timeouts, one-byte-per-second drips, invalid JSON, wrong shapes,
50 MB bodies, redirects to another host). RSS and the open-fd count of the daemon are
read from /proc after a warm-up and at the end.

    python benchmarks/soak.py [--runs 2000] [--no-faulty]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from prometheus_client.parser import text_string_to_metric_families

from benchmarks._doc import update_doc
from monitor.demo.data import PROMPT, write_items
from tests.daemon.harness import Simulator, free_port
from tests.hardening.faults import MIX, FaultProcess

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:{port}"}}
endpoints:
  - {{name: sim, type: openai-chat, url: "{url}", model: sim, concurrency: 8, timeout: 10s}}
{faulty}benchmarks:
  - {{name: intents, data: items.jsonl, prompt: {prompt}, reference: label, scorers: [exact_match]}}
monitors:
{monitors}
"""
FAULTY_ENDPOINT = """\
  - name: faulty
    type: openai-chat
    url: "{url}"
    model: sim
    concurrency: 8
    timeout: 500ms
    retries: 1
    backoff: 50ms
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def scrape(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:  # noqa: S310
        return str(resp.read().decode())


def run_count(base: str) -> int:
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in scrape(base).splitlines()
            if line.startswith("monitor_runs_total{")
        )
    )


def samples(base: str, name: str, endpoint: str) -> dict[str, float]:
    """One metric's samples for `endpoint`, keyed by their other label (status or kind)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(scrape(base)):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("endpoint") == endpoint:
                key = sample.labels.get("status") or sample.labels.get("kind") or ""
                out[key] = out.get(key, 0.0) + sample.value
    return out


def describe(values: dict[str, float]) -> str:
    ordered = sorted(((k, v) for k, v in values.items() if v), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.0f}" for k, v in ordered) or "none"


def write_config(folder: Path, port: int, sim_url: str, faulty_url: str | None) -> Path:
    write_items(folder / "items.jsonl", 20)
    monitors = [
        f"  - {{name: soak-{i}, benchmark: intents, endpoints: [sim], schedule: {{every: 200ms}}}}"
        for i in range(4)
    ]
    if faulty_url is not None:
        monitors.append(
            "  - {name: soak-faulty, benchmark: intents, endpoints: [faulty], "
            "schedule: {every: 200ms}}"
        )
    path = folder / "monitor.yaml"
    path.write_text(
        CONFIG.format(
            db=folder / "m.db",
            port=port,
            url=sim_url,
            faulty=FAULTY_ENDPOINT.format(url=faulty_url) if faulty_url else "",
            prompt=json.dumps(PROMPT),
            monitors="\n".join(monitors),
        )
    )
    return path


@dataclass
class Soak:
    """What was measured on the daemon."""

    runs: int = 0
    elapsed: float = 0.0
    warm_n: int = 0
    warm_rss: int = 0
    warm_fds: int = 0
    end_rss: int = 0
    end_fds: int = 0
    peak_rss: int = 0
    alive: bool = False
    log_problems: int = 0
    faulty_runs: dict[str, float] = field(default_factory=dict)
    faulty_errors: dict[str, float] = field(default_factory=dict)
    fault_counts: dict[str, int] = field(default_factory=dict)


def measure(
    proc: subprocess.Popen[bytes], base: str, args: argparse.Namespace, faults: FaultProcess | None
) -> Soak:
    out = Soak()
    deadline = time.monotonic() + 30
    while True:
        try:
            run_count(base)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    t0 = time.monotonic()
    while (n := run_count(base)) < args.warmup:
        time.sleep(0.5)
    out.warm_rss, out.warm_fds, out.warm_n = rss_kib(proc.pid), fds(proc.pid), n
    peak = out.warm_rss
    while (n := run_count(base)) < args.runs:
        peak = max(peak, rss_kib(proc.pid))
        time.sleep(1.0)
    out.runs = n
    out.end_rss, out.end_fds = rss_kib(proc.pid), fds(proc.pid)
    out.elapsed = time.monotonic() - t0
    out.peak_rss = max(peak, out.end_rss)
    out.alive = proc.poll() is None
    if faults is not None:
        out.faulty_runs = samples(base, "monitor_runs_total", "faulty")
        out.faulty_errors = samples(base, "monitor_endpoint_errors_total", "faulty")
        out.fault_counts = faults.counts()
    return out


def report(m: Soak, faulty: bool) -> list[str]:
    mix = " + 1 monitor x 20 items on a faulty endpoint (timeout 500ms, 1 retry)" if faulty else ""
    lines = [
        f"{m.runs} runs in {m.elapsed:.0f}s ({m.runs / m.elapsed:.1f} runs/s), "
        f"4 monitors x 20 items on a zero-latency endpoint{mix}",
    ]
    if faulty:
        lines += [
            f"faulty endpoint: {sum(m.faulty_runs.values()):.0f} runs "
            f"({describe(m.faulty_runs)}); item errors: {describe(m.faulty_errors)}",
            f"fault server: {sum(m.fault_counts.values())} requests over {len(m.fault_counts)} "
            f"of {len(MIX)} faults; daemon {'up' if m.alive else 'DOWN'} at the end, "
            f"{m.log_problems} tracebacks or failed runs in its log",
        ]
    lines += [
        f"RSS after {m.warm_n} runs (warm-up) {m.warm_rss / 1024:.1f} MiB, at the end "
        f"{m.end_rss / 1024:.1f} MiB, peak {m.peak_rss / 1024:.1f} MiB: "
        f"growth {(m.end_rss - m.warm_rss) / 1024:+.1f} MiB",
        f"open fds after warm-up {m.warm_fds}, at the end {m.end_fds}: "
        f"growth {m.end_fds - m.warm_fds:+d}",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument(
        "--faulty",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add a monitor on a fault-injecting endpoint to the mix (default: on)",
    )
    args = ap.parse_args()
    sim = Simulator()
    faults = FaultProcess(cwd=str(ROOT)) if args.faulty else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            port = free_port()
            faulty_url = faults.url_for("mix") if faults is not None else None
            config = write_config(folder, port, sim.url, faulty_url)
            with (folder / "daemon.log").open("w") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "monitor", "serve", "--config", str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    measured = measure(proc, f"http://127.0.0.1:{port}", args, faults)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
            text = (folder / "daemon.log").read_text()
            measured.log_problems = text.count("Traceback") + text.count("run_failed")
    finally:
        sim.stop()
        if faults is not None:
            faults.stop()
    lines = report(measured, faults is not None)
    for line in lines:
        print(line)
    flag = "" if args.faulty else " --no-faulty"
    update_doc("soak", "Soak", lines, f"python benchmarks/soak.py --runs {args.runs}{flag}")


if __name__ == "__main__":
    main()
