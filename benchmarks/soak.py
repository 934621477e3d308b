"""Soak: thousands of scheduled runs in one `monitor serve` process; RSS and fds must stay flat.

Four monitors fire every 200 ms against a zero-latency simulated model (a child process)
with a 20-item benchmark, so the daemon does ~15 runs/s through the real scheduler,
runner, store, metrics refresh and API. RSS and the open-fd count of the daemon are read
from /proc after a warm-up and at the end.

    python benchmarks/soak.py [--runs 2000]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import update_doc

from monitor.demo.data import PROMPT, write_items
from tests.daemon.harness import Simulator, free_port

CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:{port}"}}
endpoints:
  - {{name: sim, type: openai-chat, url: "{url}", model: sim, concurrency: 8, timeout: 10s}}
benchmarks:
  - {{name: intents, data: items.jsonl, prompt: {prompt}, reference: label, scorers: [exact_match]}}
monitors:
{monitors}
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def run_count(base: str) -> int:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:  # noqa: S310
        text = resp.read().decode()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("monitor_runs_total{")
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=300)
    args = ap.parse_args()
    sim = Simulator()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_items(folder / "items.jsonl", 20)
        port = free_port()
        monitors = "\n".join(
            f"  - {{name: soak-{i}, benchmark: intents, endpoints: [sim], "
            f"schedule: {{every: 200ms}}}}"
            for i in range(4)
        )
        (folder / "monitor.yaml").write_text(
            CONFIG.format(
                db=folder / "m.db",
                port=port,
                url=sim.url,
                prompt=json.dumps(PROMPT),
                monitors=monitors,
            )
        )
        log = (folder / "daemon.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "serve", "--config", str(folder / "monitor.yaml")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
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
            warm_rss, warm_fds, warm_n = rss_kib(proc.pid), fds(proc.pid), n
            samples = []
            while (n := run_count(base)) < args.runs:
                samples.append((n, rss_kib(proc.pid), fds(proc.pid)))
                time.sleep(1.0)
            end_rss, end_fds = rss_kib(proc.pid), fds(proc.pid)
            elapsed = time.monotonic() - t0
            peak = max([s[1] for s in samples] + [end_rss])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            log.close()
            sim.stop()
    lines = [
        f"{n} runs in {elapsed:.0f}s ({n / elapsed:.1f} runs/s), 4 monitors x 20 items, "
        f"zero-latency endpoint",
        f"RSS after {warm_n} runs (warm-up) {warm_rss / 1024:.1f} MiB, at the end "
        f"{end_rss / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB: "
        f"growth {(end_rss - warm_rss) / 1024:+.1f} MiB",
        f"open fds after warm-up {warm_fds}, at the end {end_fds}: growth {end_fds - warm_fds:+d}",
    ]
    for line in lines:
        print(line)
    update_doc("soak", "Soak", lines, f"python benchmarks/soak.py --runs {args.runs}")


if __name__ == "__main__":
    main()
