"""`monitor demo`: the whole service on one machine in one command.

It writes a demo config and a generated 400-item benchmark into a folder, starts the
simulated model on loopback, runs the real daemon (scheduler, store, API, metrics) on
SQLite, and prints each finished run as it lands. After a few runs the simulated model
silently gets worse on 5% of its items; the paired test against the rolling baseline
flags it, and the console shows what broke.
"""

from __future__ import annotations

import asyncio
import secrets
import shlex
import sys
from pathlib import Path
from typing import Any, TextIO

from monitor.api.server import bind_listener
from monitor.app import build_daemon, validate
from monitor.config import load_settings
from monitor.demo.data import PROMPT, write_items
from monitor.demo.simulator import demo_model, start_simulator
from monitor.documents import run_document
from monitor.log import configure_logging, redactor

_CONFIG = """\
# Written by `monitor demo`. Edit it and send SIGHUP (or POST /-/reload) to reload.
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "{listen}", api_token: "${{MONITOR_DEMO_TOKEN}}"}}
endpoints:
  - name: chat-sim
    type: openai-chat
    url: http://127.0.0.1:{sim_port}/v1
    model: sim-intents
    params: {{temperature: 0, max_tokens: 4}}
    concurrency: 16
    timeout: 5s
    retries: 2
benchmarks:
  - name: support-intents
    data: intents.jsonl
    prompt: {prompt}
    reference: label
    scorers:
      - {{exact_match: {{normalize: [strip, lower]}}}}
      - {{regex: {{pattern: "^(refund|billing|other)$", name: valid_label}}}}
    split: visibility
monitors:
  - name: intents-demo
    benchmark: support-intents
    endpoints: [chat-sim]
    schedule: {{every: {interval}s}}
    drift: {{baseline: "rolling:5", alpha: 0.01, min_effect: 0.01}}
    score_floor: 0.7
"""


def write_demo_config(folder: Path, *, listen: str, sim_port: int, interval: float) -> Path:
    """Write the demo benchmark and config into `folder`; returns the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    write_items(folder / "intents.jsonl")
    config = folder / "demo.yaml"
    config.write_text(
        _CONFIG.format(
            db=(folder / "monitor.db").resolve(),
            listen=listen,
            sim_port=sim_port,
            interval=interval,
            prompt='"' + PROMPT.replace("\n", "\\n") + '"',
        ),
        encoding="utf-8",
    )
    return config


def _line(doc: dict[str, Any]) -> str:
    scores = "  ".join(
        f"{name}={s['value']:.3f} [{s['ci_lower']:.3f}, {s['ci_upper']:.3f}]"
        for name, s in doc["scores"].items()
        # per-split scores and run-level extras stay in the API and /metrics
        if s["value"] is not None and "[" not in name and not name.endswith("_macro_f1")
    )
    verdicts = {k: v["verdict"] for k, v in doc["verdicts"].items()}
    verdict = verdicts.get("exact_match", "-")
    return (
        f"run {doc['id']:>3}  {doc['monitor']} @ {doc['endpoint']}  {doc['status']:<9} "
        f"{doc['n_items']} items  {doc['duration_s'] or 0:.2f}s  {scores}  verdict={verdict}"
    )


def _regression_report(doc: dict[str, Any]) -> str | None:
    for scorer, v in doc["verdicts"].items():
        if v["verdict"] != "regressed":
            continue
        ci = v["effect_ci"] or [float("nan"), float("nan")]
        flipped = v["changed_items"]["pass_to_fail"]
        return (
            f"\n  !! REGRESSION DETECTED on {doc['monitor']} @ {doc['endpoint']} ({scorer})\n"
            f"     score {v['baseline_score']:.3f} -> {doc['scores'][scorer]['value']:.3f}: "
            f"{100 * v['effect']:+.1f} points, 95% CI [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]\n"
            f"     test {v['test']}, adjusted p = {v['p_adjusted']:.2g}, "
            f"baseline {v['baseline']}\n"
            f"     {len(flipped)} items went from pass to fail: {', '.join(flipped[:8])}"
            f"{' ...' if len(flipped) > 8 else ''}\n"
        )
    return None


async def run_demo(
    folder: Path,
    *,
    listen: str = "127.0.0.1:9464",
    interval: float = 3.0,
    runs: int | None = 14,
    regress_after_runs: int = 8,
    out: TextIO = sys.stdout,
) -> int:
    """Run the demo until `runs` runs have finished (None: until Ctrl-C)."""
    host, _, port = listen.rpartition(":")
    bind_listener(host, int(port)).close()  # a busy port: one clear error before anything starts
    model = demo_model()
    sim, sim_port = await start_simulator(model)
    config = write_demo_config(folder, listen=listen, sim_port=sim_port, interval=interval)
    token = secrets.token_urlsafe(16)
    settings = load_settings(config, environ={"MONITOR_DEMO_TOKEN": token})
    redactor.update(settings.secrets)
    await asyncio.to_thread(validate, settings)
    n_items = sum(1 for _ in (folder / "intents.jsonl").open())
    model.regress_after = regress_after_runs * n_items
    daemon, close = build_daemon(
        config,
        settings,
        load=lambda path: load_settings(path, environ={"MONITOR_DEMO_TOKEN": token}),
    )
    # runs of an earlier demo in the same folder are history, not news
    earlier = await asyncio.to_thread(daemon.store.list_runs, limit=1)
    floor = earlier[0].id if earlier else 0
    serving = asyncio.create_task(daemon.serve())
    base = f"http://{listen}"
    print(
        f"monitor demo: simulated model on http://127.0.0.1:{sim_port}/v1, "
        f"benchmark of {n_items} items every {interval:g}s\n"
        f"  config     {config}\n"
        f"  metrics    {base}/metrics       (point Prometheus here; dashboards/ for Grafana)\n"
        f"  API        {base}/api/v1/runs   (POST routes: Authorization: Bearer {token})\n"
        f"  logs       {folder / 'monitor.log'}\n"
        f"The model silently degrades after run {regress_after_runs}; "
        f"the first {5} runs build the baseline.\n",
        file=out,
        flush=True,
    )
    shown: set[int] = set()
    try:
        while not serving.done():
            await asyncio.sleep(0.5)
            store = daemon.store
            found = await asyncio.to_thread(store.list_runs, limit=20)
            fresh = sorted(
                (r for r in found if r.id > floor and r.id not in shown and r.finished_at),
                key=lambda r: r.id,
            )
            for run in fresh:
                shown.add(run.id)
                scores = await asyncio.to_thread(store.run_scores, [run.id])
                verdicts = await asyncio.to_thread(store.run_verdicts, [run.id])
                doc = run_document(run, scores[run.id], verdicts[run.id])
                print(_line(doc), file=out, flush=True)
                report = _regression_report(doc)
                if report:
                    print(report, file=out, flush=True)
            if runs is not None and len(shown) >= runs:
                daemon.stop()
        return await serving
    finally:
        daemon.stop()
        if not serving.done():
            await serving
        close()
        await sim.cleanup()
        command = _command()
        print(
            f"\nmonitor demo finished: {len(shown)} runs in {folder / 'monitor.db'}.\n"
            f"  list them:  {command} runs --config {shlex.quote(_shown_path(config))}\n"
            f"  keep going: {command} demo --forever  (then scrape {base}/metrics)",
            file=out,
        )


def _command() -> str:
    """How this process was started (`.venv/bin/monitor`), so the hints paste as printed."""
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "monitor":
        return shlex.quote(_shown_path(Path(argv0)))
    return "monitor"


def _shown_path(path: Path) -> str:
    """`path` relative to the working directory when it is below it, else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd()))
    except ValueError:
        return str(resolved)


def main_demo(folder: str, listen: str, interval: float, runs: int | None) -> int:
    """Entry for the CLI: logs go to a file so the console shows the runs."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    with (path / "monitor.log").open("a", encoding="utf-8") as log_file:
        configure_logging(stream=log_file, json=True)
        return asyncio.run(run_demo(path, listen=listen, interval=interval, runs=runs))
