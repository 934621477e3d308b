"""The `monitor` command.

Exit codes (the README's quick start): 0 ok, 1 regression detected, 2 bad config or
data, 3 run failed, degraded or aborted. When several endpoints disagree the most severe
wins: 3 over 1, because a run that could not be judged is worse than one that was.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from monitor import __version__

if TYPE_CHECKING:
    from monitor.config import Settings
    from monitor.runner import Progress as RunProgress
    from monitor.runner import RunOutcome

EXIT_OK, EXIT_REGRESSION, EXIT_CONFIG, EXIT_RUN_FAILED = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="monitor",
        description="Continuous evaluation and drift monitoring for deployed models.",
    )
    p.add_argument("--version", action="version", version=f"monitor {__version__}")
    p.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="log events at and above this level (default info; warning under a progress bar)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", "-c", default="monitor.yaml", help="YAML config file")
        return sp

    c = sub.add_parser("check-config", help="validate a config file and its benchmarks")
    c.add_argument("file", nargs="?", help="config file (or use --config)")
    c.add_argument("--config", "-c", dest="config_opt", default=None, help="YAML config file")

    r = with_config(sub.add_parser("run", help="run one monitor now, against all its endpoints"))
    r.add_argument("monitor", help="name of a monitor in the config")
    r.add_argument("--endpoint", "-e", action="append", default=[], help="only this endpoint")
    r.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    r.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="estimate tokens and cost from the last run (or the prompts); call no endpoint",
    )

    rs = with_config(sub.add_parser("runs", help="list past runs with scores"))
    rs.add_argument("--monitor", help="only runs of this monitor")
    rs.add_argument("--endpoint", help="only runs on this endpoint")
    rs.add_argument("--limit", type=int, default=20, help="how many of the newest runs")
    rs.add_argument("--format", choices=["table", "json"], default="table", help="output format")

    rsc = with_config(
        sub.add_parser(
            "rescore",
            help="apply a scorer (a judge too) to the outputs stored runs hold; no model call",
        )
    )
    rsc.add_argument("runs", type=int, nargs="+", help="run ids")
    rsc.add_argument(
        "--scorer",
        required=True,
        help="a scorer as in a benchmark's `scorers:` list, in YAML: exact_match, or "
        "'{llm_rubric: {endpoint: judge, rubric: \"...\", name: helpful-v2}}'",
    )
    rsc.add_argument("--format", choices=["table", "json"], default="table", help="output format")

    cp = with_config(
        sub.add_parser(
            "compare",
            help="two runs side by side, with flipped items; or two endpoints (--endpoints)",
        )
    )
    cp.add_argument("run_a", type=int, nargs="?", help="the earlier run (the reference)")
    cp.add_argument("run_b", type=int, nargs="?", help="the later run")
    cp.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    cp.add_argument("--endpoints", nargs=2, metavar=("A", "B"), help="compare endpoint B against A")
    cp.add_argument("--benchmark", help="with --endpoints: the benchmark both ran")
    cp.add_argument(
        "--margin", type=float, default=None, help="equivalence margin (default 0.01: 1 point)"
    )
    cp.add_argument("--scorer", help="with --endpoints: only this scorer")

    lb = with_config(
        sub.add_parser("leaderboard", help="endpoints in tiers of practically equal scores")
    )
    lb.add_argument("--benchmark", required=True, help="the benchmark every endpoint ran")
    lb.add_argument("--margin", type=float, default=None, help="equivalence margin (0.01)")
    lb.add_argument("--scorer", help="rank on this scorer (default: the first by name)")
    lb.add_argument("--format", choices=["table", "json"], default="table", help="output format")

    bl = with_config(sub.add_parser("baseline", help="pin runs as a baseline"))
    bl.add_argument("action", choices=["pin"], help="pin: make these runs the new normal")
    bl.add_argument("runs", type=int, nargs="+", help="succeeded runs of one (monitor, endpoint)")

    ex = with_config(sub.add_parser("export", help="a run's item results as JSONL or CSV"))
    ex.add_argument("run", type=int, help="run id")
    ex.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="output format")
    ex.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")

    db = with_config(sub.add_parser("db", help="database maintenance"))
    db.add_argument("action", choices=["upgrade"], help="upgrade: apply pending migrations")

    with_config(sub.add_parser("serve", help="run the monitoring service"))

    _add_demo_commands(sub)
    return p


def _add_demo_commands(sub: Any) -> None:
    """`monitor demo` and `monitor demo-endpoint`."""
    dm = sub.add_parser("demo", help="the whole service against a simulated model, on SQLite")
    dm.add_argument("--dir", default="monitor-demo", help="folder for config, data and DB")
    dm.add_argument("--listen", default="127.0.0.1:9464", help="API and /metrics address")
    dm.add_argument("--interval", type=float, default=3.0, help="seconds between runs")
    dm.add_argument("--runs", type=int, default=14, help="stop after this many runs")
    dm.add_argument("--forever", action="store_true", help="keep running until Ctrl-C")

    de = sub.add_parser("demo-endpoint", help="serve a simulated OpenAI-compatible model")
    de.add_argument("--listen", default="127.0.0.1:8089", help="address to serve on")
    de.add_argument("--regress-after", type=int, default=0, help="requests before the drop")
    de.add_argument(
        "--regress-fraction",
        type=float,
        default=0.05,
        help="share of items answered wrongly after the drop (default 0.05)",
    )
    de.add_argument("--latency", type=float, default=0.0, help="seconds per answer")


def console() -> NoReturn:
    """The `monitor` console script: `main`, then exit without a final garbage collection."""
    code = main()
    # Interpreter shutdown would otherwise run a full collection over every object (scipy
    # alone brings ~10^5), about 0.25 s of every `monitor run`; everything that holds a
    # resource was closed explicitly by now.
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    from monitor.errors import MonitorError
    from monitor.log import configure_logging

    show_bar = (
        args.command == "run"
        and args.format == "table"
        and sys.stdout.isatty()
        and not args.no_progress
    )
    args.show_bar = show_bar
    # info events would print over a live progress bar; the table after it says the same
    configure_logging(level=args.log_level or ("warning" if show_bar else "info"))
    try:
        handler = _COMMANDS[args.command]
        return handler(args)
    except MonitorError as exc:
        from monitor.errors import BenchmarkError, ConfigError
        from monitor.log import redactor

        # checks after parsing (cron, data files) may quote values from ${ENV}
        print(f"error: {redactor.mask(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError | BenchmarkError) else EXIT_RUN_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _UsageError as exc:
        print(f"monitor: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _settings(path: str, *, storage_only: bool = False) -> Settings:
    """The config at `path`; with `storage_only`, only its `storage` section is read, so
    commands that only read the database need none of the service's secrets."""
    from monitor.config import load_settings
    from monitor.log import redactor

    settings = load_settings(path, sections=("storage",) if storage_only else None)
    redactor.update(settings.secrets)
    return settings


def cmd_check_config(args: argparse.Namespace) -> int:
    from monitor.app import check_config

    path = args.file or args.config_opt or "monitor.yaml"
    settings = _settings(path)
    benches = check_config(settings)
    items = sum(len(b.items) for b in benches)
    counts = (
        f"{_count(len(settings.endpoints), 'endpoint')}, "
        f"{_count(len(benches), 'benchmark')} with {_count(items, 'item')}, "
        f"{_count(len(settings.monitors), 'monitor')}"
    )
    print(f"{path}: ok ({counts})")
    return EXIT_OK


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.app import open_settings_store
    from monitor.core.model import RunStatus, VerdictKind

    settings = _settings(args.config)
    store = open_settings_store(settings)
    if args.dry_run:
        return _dry_run(args, settings, store)
    try:
        show_bar = bool(args.show_bar)
        outcomes = asyncio.run(_run_monitor(settings, store, args.monitor, args.endpoint, show_bar))
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps({"runs": [o.document() for o in outcomes]}, indent=2))
    else:
        _print_outcomes(outcomes)
    if any(o.run.status is not RunStatus.SUCCEEDED for o in outcomes):
        return EXIT_RUN_FAILED
    if any(v.verdict is VerdictKind.REGRESSED for o in outcomes for v in o.verdicts):
        return EXIT_REGRESSION
    return EXIT_OK


def _dry_run(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    from monitor.app import estimate
    from monitor.documents import usage_document

    try:
        estimates = estimate(settings, store, args.monitor, args.endpoint)
    finally:
        store.close()
    if args.format == "json":
        docs = [
            {
                "monitor": e.monitor,
                "endpoint": e.endpoint,
                "items": e.items,
                "usage": usage_document(e.usage),
                "estimated_from": e.source,
            }
            for e in estimates
        ]
        print(json.dumps({"dry_run": True, "estimates": docs}, indent=2))
        return EXIT_OK
    for e in estimates:
        t = e.usage.tokens
        print(
            f"dry run (no request sent): {e.monitor} @ {e.endpoint}: {e.items} items, "
            f"~{t.prompt:,} prompt + ~{t.completion:,} completion tokens, estimated cost "
            f"{_dollars(e.usage.dollars)} ({e.usage.basis}); from {e.source}"
        )
    return EXIT_OK


async def _run_monitor(
    settings: Settings, store: Any, monitor: str, endpoints: Sequence[str], show_bar: bool
) -> list[RunOutcome]:
    from monitor.app import cli_service

    async with cli_service(settings, store) as service:
        if not show_bar:
            return await service.run_monitor(monitor, endpoints)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from monitor.service import select_endpoints

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("errors {task.fields[errors]}  {task.fields[rate]:.1f} items/s"),
        )
        with Progress(*columns, transient=False) as bar:
            tasks = {
                name: bar.add_task(f"{monitor} @ {name}", total=None, errors=0, rate=0.0)
                for name in select_endpoints(settings, monitor, endpoints)
            }

            def update(name: str, p: RunProgress) -> None:
                bar.update(
                    tasks[name], total=p.total, completed=p.done, errors=p.errors, rate=p.rate
                )

            return await service.run_monitor(monitor, endpoints, on_progress=update)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _print_outcomes(outcomes: Sequence[RunOutcome]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    monitors = sorted({o.run.monitor for o in outcomes})
    table = Table(title=f"monitor run: {', '.join(monitors)}", show_edge=False)
    for col in ("run", "endpoint", "status"):
        table.add_column(col, no_wrap=True)
    # a split scorer's name is only right whole (`exact_match[public]`): never cut it
    widest = max((len(s.scorer) for o in outcomes for s in o.scores), default=6)
    table.add_column("scorer", no_wrap=True, min_width=widest)
    table.add_column("score [95% CI]", no_wrap=True)
    table.add_column("verdict", overflow="fold", min_width=20)
    # endpoint errors are counted, with their kinds, in the line under the table
    for col in ("items", "duration"):
        table.add_column(col, justify="right")
    for o in outcomes:
        verdicts = {v.scorer: v for v in o.verdicts}
        rows = o.scores or ()
        if not rows:
            table.add_row(
                str(o.run.id),
                o.run.endpoint,
                o.run.status.value,
                "-",
                "-",
                "-",
                str(o.run.n_items),
                f"{o.duration_s:.2f}s",
            )
        for s in rows:
            v = verdicts.get(s.scorer)
            verdict = "-" if v is None else v.verdict.value
            if v is not None and v.effect is not None and v.effect == v.effect:
                verdict += f" ({v.effect:+.3f}, {_fmt_p(v.p_adjusted)})"
                if v.detectable_effect is not None and v.detectable_effect == v.detectable_effect:
                    verdict += f"; detects drops >= {100 * v.detectable_effect:.1f} pts"
            elif v is not None and v.verdict.value in ("insufficient_data", "no_baseline"):
                verdict += f": {_reason(v.detail)}"
            table.add_row(
                str(o.run.id),
                o.run.endpoint,
                o.run.status.value,
                escape(s.scorer),  # `exact_match[public]` is a name, not rich markup
                f"{_fmt(s.value)} [{_fmt(s.ci_lower)}, {_fmt(s.ci_upper)}]",
                escape(verdict),
                str(s.n),  # a split scorer covers only its split's items
                f"{o.duration_s:.2f}s",
            )
    console = Console(width=160 if not sys.stdout.isatty() else None)
    console.print(table)
    for o in outcomes:
        for line in _slice_lines(o):
            console.print(escape(line), highlight=False)
        if o.error_kinds:
            console.print(escape(_failure_line(o)), highlight=False)
        if o.run.usage is not None and o.run.usage.tokens.answers:
            console.print(escape(_usage_line(o.run)), highlight=False)


def _slice_lines(o: RunOutcome) -> list[str]:
    """A regressed slice, named, with how its scorer did overall: a slice can regress while
    the aggregate is ok."""
    from monitor.core.model import VerdictKind
    from monitor.core.slices import parse_slice_name

    overall = {v.scorer: v.verdict.value for v in o.verdicts}
    lines = []
    for v in o.verdicts:
        cut = parse_slice_name(v.scorer)
        if cut is None or v.verdict is not VerdictKind.REGRESSED:
            continue
        effect = "" if v.effect is None else f" by {-100 * v.effect:.1f} points"
        lines.append(
            f"run {o.run.id} @ {o.run.endpoint}: slice {cut[1]} of {cut[0]} regressed{effect} "
            f"({_fmt_p(v.p_adjusted)}); {cut[0]} overall: {overall.get(cut[0], '-')}"
        )
    return lines


def _usage_line(run: Any) -> str:
    """`run 7 @ chat: 400 prompt + 40 completion tokens ..., cost $0.0021 (basis)`."""
    usage = run.usage
    t = usage.tokens
    parts = [f"{t.prompt:,} prompt + {t.completion:,} completion tokens"]
    extra = [f"{n:,} {name}" for n, name in ((t.cached, "cached"), (t.reasoning, "reasoning")) if n]
    if extra:
        parts.append(f" ({', '.join(extra)})")
    return (
        f"run {run.id} @ {run.endpoint}: {''.join(parts)} over {t.answers:,} answers, "
        f"cost {_dollars(usage.dollars)} ({usage.basis})"
    )


def _dollars(value: float | None) -> str:
    """Dollars with 4 significant figures; unknown is said, never shown as 0."""
    return "unknown" if value is None else f"${value:.4g}"


def _failure_line(o: RunOutcome) -> str:
    """Why items of a run got no answer, and from where (the run's endpoint URL)."""
    from monitor.log import mask_url_credentials, redactor

    kinds = ", ".join(f"{kind} ({n})" for kind, n in sorted(o.error_kinds.items()))
    failed = sum(o.error_kinds.values())
    url = o.endpoint_url or "-"
    line = (
        f"run {o.run.id} @ {o.run.endpoint}: {failed} of {o.run.n_items} items got no answer: "
        f"{kinds}; endpoint {mask_url_credentials(url)}"
    )
    if o.run.status.value == "degraded":
        line += (
            " (the run is `degraded`: more items failed than the monitor's "
            "degraded_threshold allows, so it was not judged)"
        )
    return redactor.mask(line)


def _reason(detail: str, width: int = 70) -> str:
    """Why a run could not be judged, from its verdict's detail, shortened for a table."""
    text = detail.removeprefix("insufficient data; ").removeprefix("insufficient data: ")
    text = text.split("; ")[0] or "-"
    return text if len(text) <= width else text[: width - 3] + "..."


def _fmt_p(p: float | None) -> str:
    """An adjusted p-value as a person reads it: `p<0.0001` rather than `p=0.0000`."""
    if p is None or math.isnan(p):
        return "p=-"
    return "p<0.0001" if p < 0.0001 else f"p={p:.2g}"


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from monitor.app import open_settings_store
    from monitor.documents import run_document

    settings = _settings(args.config, storage_only=True)
    store = open_settings_store(settings)
    try:
        runs = store.list_runs(monitor=args.monitor, endpoint=args.endpoint, limit=args.limit)
        ids = [r.id for r in runs]
        scores, verdicts = store.run_scores(ids), store.run_verdicts(ids)
        checks = store.judge_checks(ids)
    finally:
        store.close()
    docs = [
        run_document(
            r, scores.get(r.id, []), verdicts.get(r.id, []), judge_checks=checks.get(r.id, ())
        )
        for r in runs
    ]
    if args.format == "json":
        print(json.dumps({"runs": docs}, indent=2))
        return EXIT_OK
    table = Table(title=f"runs ({len(docs)} newest)")
    for col in ("run", "monitor", "endpoint", "status", "started", "duration", "items"):
        table.add_column(col)
    table.add_column("errors", justify="right")
    table.add_column("served")
    table.add_column("cost", justify="right")
    table.add_column("scores")
    table.add_column("verdicts")
    for d in docs:
        table.add_row(
            str(d["id"]),
            d["monitor"],
            d["endpoint"],
            d["status"],
            d["started_at"][:19].replace("T", " "),
            "-" if d["duration_s"] is None else f"{d['duration_s']:.1f}s",
            str(d["n_items"]),
            str(d["n_errors"]),
            escape(_served(d)),
            "-" if d["usage"] is None else _dollars(d["usage"]["cost_dollars"]),
            escape(", ".join(f"{k}={_fmt(v['value'])}" for k, v in d["scores"].items())),
            escape(", ".join(f"{k}={v['verdict']}" for k, v in d["verdicts"].items()) or "-"),
        )
    console = Console(width=160 if not sys.stdout.isatty() else None)
    console.print(table)
    if any(d["judges"] for d in docs):
        console.print(_judges_table(docs))
    return EXIT_OK


def _judges_table(docs: Sequence[Mapping[str, Any]]) -> Any:
    """One row per run and judge scorer: the judge as configured, what answered, the
    prompt's digest and the sentinel's finding when the run re-scored its calibration set."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="judges")
    for col in ("run", "scorer", "judge", "model", "served", "prompt", "params", "sentinel"):
        table.add_column(col)
    for d in docs:
        checks = {c["scorer"]: c for c in d.get("judge_checks", ())}
        for name, j in d["judges"].items():
            served = j.get("served_model") or "-"
            if j.get("system_fingerprint"):
                served += f" ({j['system_fingerprint']})"
            check = checks.get(name)
            if check is None:
                sentinel = "-"
            elif check["moved"]:
                sentinel = f"moved {check['direction']}"
            else:
                sentinel = "steady"
            params = ", ".join(f"{k}={v}" for k, v in (j.get("params") or {}).items())
            cells = (str(d["id"]), name, j.get("endpoint"), j.get("model"), served)
            table.add_row(
                *(escape(str(c or "-")) for c in cells),
                str(j.get("prompt", "-"))[:8],
                escape(params or "-"),
                sentinel,
            )
    return table


def cmd_rescore(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from monitor.app import cli_service, open_settings_store
    from monitor.config import scorer_option
    from monitor.documents import rescore_document

    settings = _settings(args.config)
    spec = scorer_option(settings, args.scorer)
    store = open_settings_store(settings)

    async def rescore() -> list[Any]:
        async with cli_service(settings, store) as service:
            return await service.rescore(args.runs, spec)

    try:
        done = asyncio.run(rescore())
        own = store.run_scores(args.runs)
    finally:
        store.close()
    docs = [rescore_document(r) for r in done]
    if args.format == "json":
        print(json.dumps({"rescores": docs}, indent=2))
        return EXIT_OK
    table = Table(title=f"rescore with {spec.name} ({spec.kind})")
    for col in ("run", "stored score", "rescored [95% CI]", "scored", "errors", "no output"):
        table.add_column(col)
    for d in docs:
        before = next((s for s in own.get(d["run_id"], []) if s.scorer == spec.name), None)
        table.add_row(
            str(d["run_id"]),
            "-" if before is None else _fmt(before.value),
            "-"
            if d["value"] is None
            else f"{_fmt(d['value'])} [{_fmt(d['ci_lower'])}, {_fmt(d['ci_upper'])}]",
            str(d["n"]),
            str(d["errors"]),
            str(d["skipped"]),
        )
    console = Console(width=160 if not sys.stdout.isatty() else None)
    console.print(table)
    console.print(
        escape(f"stored as re-score {', '.join(str(d['id']) for d in docs)}; no model request sent")
    )
    return EXIT_OK


def _served(doc: Mapping[str, Any]) -> str:
    """The model (and system fingerprint) most answers carried; `changed` after a change."""
    from monitor.core.fingerprint import Fingerprint

    if not doc.get("fingerprint"):
        return str(doc.get("model_id") or "-")
    fp = Fingerprint.from_json(doc["fingerprint"])
    text = fp.served_model or "-"
    if fp.system_fingerprint:
        text += f" ({fp.system_fingerprint})"
    if any(e.get("kind") == "served_model_changed" for e in doc.get("events", ())):
        text += " changed"
    return text


def cmd_compare(args: argparse.Namespace) -> int:
    from monitor.api.compare import comparability
    from monitor.app import open_settings_store
    from monitor.errors import ConfigError

    if args.endpoints is not None or args.benchmark is not None:
        return _compare_endpoints(args)
    if args.run_a is None or args.run_b is None:
        raise _UsageError("compare needs RUN_A RUN_B, or --endpoints A B --benchmark X")
    settings = _settings(args.config, storage_only=True)
    store = open_settings_store(settings)
    try:
        runs = [store.get_run(args.run_a), store.get_run(args.run_b)]
        missing = [rid for rid, r in zip((args.run_a, args.run_b), runs, strict=True) if r is None]
        if missing:
            raise ConfigError(f"no run with id {missing[0]}")
        splits = _item_splits(store, [r for r in runs if r is not None])
        scores = store.run_scores([args.run_a, args.run_b])
        a_scores = {s.scorer: s for s in scores.get(args.run_a, [])}
        b_scores = {s.scorer: s for s in scores.get(args.run_b, [])}
        run_a, run_b = (r for r in runs if r is not None)
        report: dict[str, Any] = {
            "run_a": args.run_a,
            "run_b": args.run_b,
            **comparability(run_a, run_b),
            "scorers": {},
        }
        for scorer in sorted(a_scores.keys() | b_scores.keys()):
            # `exact_match[public]` is `exact_match` on the items of that split
            base, _, split = scorer.partition("[")
            per_item = store.item_scores([args.run_a, args.run_b], base)
            a_items, b_items = per_item.get(args.run_a, {}), per_item.get(args.run_b, {})
            if split:
                wanted = split.removesuffix("]")
                a_items = {k: v for k, v in a_items.items() if splits.get(k) == wanted}
                b_items = {k: v for k, v in b_items.items() if splits.get(k) == wanted}
            common = a_items.keys() & b_items.keys()
            sa, sb = a_scores.get(scorer), b_scores.get(scorer)
            report["scorers"][scorer] = {
                "a": None if sa is None else sa.value,
                "b": None if sb is None else sb.value,
                "difference": None if sa is None or sb is None else sb.value - sa.value,
                "pass_to_fail": sorted(k for k in common if a_items[k] >= 0.5 > b_items[k]),
                "fail_to_pass": sorted(k for k in common if a_items[k] < 0.5 <= b_items[k]),
                "only_in_a": len(a_items.keys() - b_items.keys()),
                "only_in_b": len(b_items.keys() - a_items.keys()),
            }
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return EXIT_OK
    _print_comparability(report, args.run_a, args.run_b)
    for scorer, r in report["scorers"].items():
        print(
            f"{scorer}: run {args.run_a} = {_fmt(r['a'])}, run {args.run_b} = {_fmt(r['b'])}, "
            f"difference {_fmt(r['difference'])}"
        )
        print(f"  pass -> fail {_listed(r['pass_to_fail'])}")
        print(f"  fail -> pass {_listed(r['fail_to_pass'])}")
    return EXIT_OK


def _print_comparability(report: Mapping[str, Any], a: int, b: int) -> None:
    """Say first whether the two runs measured the same thing."""
    if report["comparable"] is False:
        print(f"runs {a} and {b} are NOT comparable: they measured different things")
        for d in report["differences"]:
            print(f"  {d['field']}: {json.dumps(d['a'])} -> {json.dumps(d['b'])}")
    elif report["comparable"] is None:
        print(f"comparability unknown: {report['reason']}")
    change = report.get("served_change")
    if change:  # what an endpoint said it served is untrusted text: shown JSON-quoted
        was = ", ".join(json.dumps(v) for v in change["before"]) or "none"
        now = json.dumps(change["after"])
        print(f"served {change['field']} changed: run {a} {was}, run {b} {now}")


_SHOWN = 20


def _listed(keys: Sequence[str]) -> str:
    """`(31): a, b, ... (11 more not shown; --format json lists all)`."""
    out = f"({len(keys)}): {', '.join(keys[:_SHOWN])}"
    if len(keys) > _SHOWN:
        out += f" ... ({len(keys) - _SHOWN} more not shown; --format json lists all)"
    return out


def _item_splits(store: Any, runs: Sequence[Any]) -> dict[str, str | None]:
    """Item key -> split value, over the benchmark versions of `runs`."""
    out: dict[str, str | None] = {}
    for bench, version in {(r.benchmark, r.benchmark_version) for r in runs}:
        out.update({k: i.split for k, i in store.items_by_key(bench, version).items()})
    return out


class _UsageError(Exception):
    """Arguments argparse cannot check on its own (exit code 2, as argparse's own)."""


def _margin(args: argparse.Namespace) -> float:
    from monitor.api.compare import DEFAULT_MARGIN

    margin = DEFAULT_MARGIN if args.margin is None else args.margin
    if not (0.0 < margin <= 1.0):
        raise _UsageError(f"--margin must lie in (0, 1], not {margin}")
    return float(margin)


def _points(margin: float) -> str:
    return f"{100 * margin:g} point" + ("" if math.isclose(margin, 0.01) else "s")


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:+.{digits}f}"


def _compare_endpoints(args: argparse.Namespace) -> int:
    from monitor.api.compare import compare_endpoints
    from monitor.app import open_settings_store

    if args.endpoints is None or args.benchmark is None:
        raise _UsageError("--endpoints A B and --benchmark X go together")
    if args.run_a is not None:
        raise _UsageError("give either RUN_A RUN_B or --endpoints, not both")
    margin = _margin(args)
    settings = _settings(args.config)
    store = open_settings_store(settings)
    try:
        a, b = args.endpoints
        report = compare_endpoints(
            store, benchmark=args.benchmark, a=a, b=b, margin=margin, scorer=args.scorer
        )
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return EXIT_OK
    ra, rb = report["a"], report["b"]
    print(
        f"{args.benchmark} (version {report['benchmark_version'][:12]}): "
        f"{rb['endpoint']} (run {rb['run_id']}) against {ra['endpoint']} (run {ra['run_id']}), "
        f"margin {_points(margin)}"
    )
    words = {
        "equivalent": f"practically equivalent (within {_points(margin)})",
        "b_better": f"{rb['endpoint']} is better",
        "b_worse": f"{rb['endpoint']} is worse",
        "inconclusive": "inconclusive: neither a difference nor equivalence is shown",
    }
    for scorer, r in report["scorers"].items():
        c = r["comparison"]
        if c is None:
            print(f"{scorer}: not compared ({r['insufficient']})")
            continue
        print(
            f"{scorer}: {_fmt(c['mean_a'])} -> {_fmt(c['mean_b'])} on {c['n']} paired items, "
            f"difference {_pct(c['difference'])} points "
            f"[{_pct(c['ci'][0])}, {_pct(c['ci'][1])}] ({100 * c['confidence']:g}% CI)"
        )
        print(f"  {c['test']}: p = {_fmt(c['p_value'], 4)}")
        print(
            f"  equivalence (TOST, alpha {c['alpha']:g}): p = {_fmt(c['p_equivalence'], 4)}"
            f" -> {words[c['outcome']]}"
        )
        if c["kind"] == "binary":
            for side, label in (("a_only", ra["endpoint"]), ("b_only", rb["endpoint"])):
                keys = r[side]["keys"]
                shown = ", ".join(keys[:20]) + (" ..." if r[side]["count"] > 20 else "")
                print(f"  only {label} passed ({r[side]['count']}): {shown}")
    return EXIT_OK


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from monitor.api.compare import leaderboard
    from monitor.app import open_settings_store

    margin = _margin(args)
    settings = _settings(args.config)
    store = open_settings_store(settings)
    try:
        board = leaderboard(store, benchmark=args.benchmark, margin=margin, scorer=args.scorer)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(board, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{args.benchmark} ({board['scorer']}, version {board['benchmark_version'][:12]})",
        caption=f"a new tier starts only where the difference is outside the noise; "
        f"margin {_points(margin)}",
    )
    for col in ("tier", "endpoint", "score", "items", "run", "against the tier's leader"):
        table.add_column(col)
    for e in board["entries"]:
        v = e["versus_leader"]
        if e["leader"] == e["endpoint"]:
            versus = "leader"
        elif v is None:
            versus = "no items in common"
        else:
            what = "equivalent" if v["equivalent"] else "not shown different"
            versus = f"{what}: {_pct(v['difference'])} [{_pct(v['ci'][0])}, {_pct(v['ci'][1])}]"
        table.add_row(
            str(e["tier"]),
            e["endpoint"],
            _fmt(e["score"]),
            str(e["n"]),
            str(e["run"]["run_id"]),
            versus,
        )
    Console(width=160 if not sys.stdout.isatty() else None).print(table)
    return EXIT_OK


def cmd_baseline(args: argparse.Namespace) -> int:
    from monitor.app import open_settings_store
    from monitor.clock import utc_now
    from monitor.core.model import RunStatus
    from monitor.errors import ConfigError
    from monitor.judge import rebaseline

    settings = _settings(args.config)
    store = open_settings_store(settings)
    try:
        found = store.get_runs(args.runs)
        runs = [found.get(rid) for rid in args.runs]
        for rid, run in zip(args.runs, runs, strict=True):
            if run is None:
                raise ConfigError(f"no run with id {rid}")
            if run.status is not RunStatus.SUCCEEDED:
                raise ConfigError(f"run {rid} is {run.status.value}; only succeeded runs pin")
        pairs = {(r.monitor, r.endpoint) for r in runs if r is not None}
        if len(pairs) != 1:
            raise ConfigError("the runs belong to different (monitor, endpoint) pairs")
        ((monitor, endpoint),) = pairs
        rebaseline(store, monitor=monitor, endpoint=endpoint, run_ids=args.runs, now=utc_now())
    finally:
        store.close()
    print(f"pinned runs {', '.join(map(str, args.runs))} as the baseline of {monitor}@{endpoint}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from monitor.app import open_settings_store
    from monitor.errors import ConfigError
    from monitor.export import record, write_records

    settings = _settings(args.config, storage_only=True)
    store = open_settings_store(settings)
    try:
        if store.get_run(args.run) is None:
            raise ConfigError(f"no run with id {args.run}")
        results = store.item_results(args.run)
    finally:
        store.close()
    records = (record(args.run, r) for r in results)
    if args.output == "-":
        write_records(records, sys.stdout, args.format)
        return EXIT_OK
    with open(args.output, "w", encoding="utf-8", newline="") as out:
        count = write_records(records, out, args.format)
    print(f"{count} item results of run {args.run} written to {args.output}", file=sys.stderr)
    return EXIT_OK


def cmd_db(args: argparse.Namespace) -> int:
    from monitor.storage import open_store

    settings = _settings(args.config, storage_only=True)
    store = open_store(settings.storage.url, migrate=True)
    store.close()
    print(f"database {store.url} is at the latest schema")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from monitor.app import run_daemon

    return run_daemon(args.config)


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo.run import main_demo

    return main_demo(args.dir, args.listen, args.interval, None if args.forever else args.runs)


def cmd_demo_endpoint(args: argparse.Namespace) -> int:
    from monitor.demo.simulator import serve_forever

    host, _, port = args.listen.rpartition(":")
    asyncio.run(
        serve_forever(
            host,
            int(port),
            regress_after=args.regress_after,
            regress_fraction=args.regress_fraction,
            latency=args.latency,
        )
    )
    return EXIT_OK


_COMMANDS = {
    "check-config": cmd_check_config,
    "run": cmd_run,
    "runs": cmd_runs,
    "compare": cmd_compare,
    "rescore": cmd_rescore,
    "leaderboard": cmd_leaderboard,
    "baseline": cmd_baseline,
    "db": cmd_db,
    "export": cmd_export,
    "serve": cmd_serve,
    "demo": cmd_demo,
    "demo-endpoint": cmd_demo_endpoint,
}
