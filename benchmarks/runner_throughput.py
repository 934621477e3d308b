"""Runner throughput: wall time against the ideal N*L/C, and client CPU per item.

A simulated OpenAI-compatible server runs in a separate process with a fixed latency L
(an asyncio sleep: cheap per request); the client runs N items with concurrency C
through exactly the code path of `monitor run` (prepare -> run_prepared: HTTP, scoring,
batched SQLite writes, aggregation). CPU is this process's CPU time (all threads,
including the storage writer), so the server's cost is not counted.

    python benchmarks/runner_throughput.py            # prints and updates docs/performance.md
    python benchmarks/runner_throughput.py --quick    # smaller N, no docs update
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- runner_throughput:begin -->", "<!-- runner_throughput:end -->"


def serve(n: int, latency: float) -> None:
    """Child process: the simulated model over the generated items, until stdin closes."""
    from monitor.demo.data import generate_items
    from monitor.demo.simulator import SimulatedModel, start_simulator

    async def main() -> None:
        model = SimulatedModel({r["text"]: r["label"] for r in generate_items(n)})
        runner, port = await start_simulator(model, latency=latency)
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


CONFIG = """
storage: {{url: "sqlite:///{db}"}}
endpoints:
  - {{name: sim, type: openai-chat, url: "http://127.0.0.1:{port}/v1", model: sim,
      concurrency: {c}, timeout: 30s, retries: 2}}
benchmarks:
  - name: intents
    data: {data}
    prompt: "Classify the customer request as refund, billing or other.\\nRequest: {{{{ text }}}}"
    reference: label
    scorers: [exact_match, {{regex: {{pattern: "^(refund|billing|other)$", name: valid}}}}]
monitors:
  - {{name: bench, benchmark: intents, endpoints: [sim]}}
"""


def measure(n: int, latency: float, concurrency: int) -> dict[str, float]:
    """One configuration: start the server, run once, return the figures."""
    from monitor.app import prepare, run_prepared
    from monitor.config import parse_settings
    from monitor.demo.data import write_items
    from monitor.log import configure_logging
    from monitor.storage import open_store

    configure_logging(level="warning")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(n), str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            data = write_items(Path(tmp) / "items.jsonl", n)
            settings = parse_settings(
                CONFIG.format(db=f"{tmp}/m.db", port=port, c=concurrency, data=data)
            )
            prepared = prepare(settings, "bench")
            store = open_store(settings.storage.url)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            (outcome,) = asyncio.run(run_prepared(settings, prepared, store))
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            stored = len(store.item_results(outcome.run.id))
            store.close()
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    assert stored == n, f"stored {stored} of {n} item results"
    ideal = n * latency / concurrency
    return {
        "n": n,
        "latency_ms": latency * 1000,
        "concurrency": concurrency,
        "wall_s": wall,
        "ideal_s": ideal,
        "ratio": wall / ideal if ideal else float("nan"),
        "cpu_ms_per_item": cpu / n * 1000,
        "items_per_s": n / wall,
        "errors": outcome.run.n_errors,
    }


def line(r: dict[str, float]) -> str:
    ratio = "   n/a" if r["ideal_s"] == 0 else f"{r['ratio']:.3f}x"
    return (
        f"N={r['n']:>6.0f} L={r['latency_ms']:>3.0f}ms C={r['concurrency']:>3.0f}  "
        f"wall {r['wall_s']:7.2f}s  ideal {r['ideal_s']:6.2f}s  wall/ideal {ratio}  "
        f"CPU {r['cpu_ms_per_item']:.3f} ms/item  {r['items_per_s']:7.0f} items/s  "
        f"errors {r['errors']:.0f}"
    )


def write_doc(lines: list[str]) -> None:
    block = "\n".join(
        [
            BEGIN,
            f"Measured {time.strftime('%Y-%m-%d')} on this machine "
            f"({os.cpu_count()} cores), `python benchmarks/runner_throughput.py`:",
            "",
            "```",
            *lines,
            "```",
            END,
        ]
    )
    text = DOC.read_text() if DOC.exists() else "# Performance\n\n"
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n## Runner throughput\n\n" + block + "\n"
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.serve:
        serve(int(args.serve[0]), float(args.serve[1]))
        return
    cases = (
        [(500, 0.05, 32), (2000, 0.0, 32)]
        if args.quick
        else [(1000, 0.05, 32), (10_000, 0.05, 32), (10_000, 0.0, 32)]
    )
    lines = []
    for n, lat, c in cases:
        result = measure(n, lat, c)
        lines.append(line(result))
        print(lines[-1], flush=True)
        print(json.dumps(result), file=sys.stderr)
    if not args.quick:
        write_doc(lines)


if __name__ == "__main__":
    main()
