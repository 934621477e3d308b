"""The read-only web pages under `/ui/`: overview, trend, run, compare and leaderboard.

Server-rendered with Jinja2 (autoescaped: model outputs and benchmark inputs are untrusted
text), charts drawn as SVG on the server (docs/decisions/0007-ui-charts.md), no script at
all. Every page is sent with a Content-Security-Policy that allows no inline script and
nothing from another origin, and its assets come from `monitor/api/static/` in the
package. With `server.ui_auth` on, the pages take the API's bearer token, as an
``Authorization`` header or as the cookie the login form sets (docs/ui.md).
"""

from __future__ import annotations

import asyncio
import difflib
import hmac
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor.api.compare import (
    DEFAULT_MARGIN,
    ComparisonError,
    compare_endpoints,
    compare_runs,
    leaderboard,
    runs_to_compare,
)
from monitor.api.deps import MAX_ID, NAME, Daemon, DaemonView, Store
from monitor.api.runbook import render_runbook
from monitor.core.fingerprint import Fingerprint, differences
from monitor.core.model import ItemResult, Run, RunStatus, ScoreSummary, Verdict, VerdictKind
from monitor.storage import SqlStore
from monitor.storage.repository import VERDICT_SEVERITY

__all__ = ["CSP", "LoginRequiredError", "diff_segments", "login_required", "router", "trend_chart"]

HERE = Path(__file__).parent
#: No script from anywhere (the pages have none), styles and images from this origin only.
CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
COOKIE = "monitor_ui_token"
PAGE_SIZE = 50  # flipped items per page of the run page
TREND_RUNS = 100  # runs on the trend chart
SPARK_RUNS = 20  # runs on an overview sparkline
DIFF_MAX_TOKENS = 2000  # longer outputs are shown without a word diff (cost is quadratic)
_BASELINE_RUNS = re.compile(r"\(runs ([0-9,]+)\)")
# a word or a punctuation mark with the white space before it: half the tokens of
# splitting white space off, which makes difflib ~7x faster on typical answers
_TOKENS = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# the package's own assets, read once: the route serves only these names
_STATIC = {
    p.name: (p.read_bytes(), _STATIC_TYPES[p.suffix])
    for p in (HERE / "static").iterdir()
    if p.suffix in _STATIC_TYPES
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every {{ }} is escaped, in text and in attributes
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _pts(value: float | None, digits: int = 1) -> str:
    """A difference in points of score (0.012 -> +1.2)."""
    return "-" if value is None or math.isnan(value) else f"{100 * value:+.{digits}f}"


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_env.filters.update(fmt=_fmt, pts=_pts, when=_when)


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


# ---------------------------------------------------------------- auth


def _ui_auth(request: Request) -> None:
    """With `server.ui_auth`, the API's bearer token (header or login cookie) is required."""
    server = request.app.state.daemon.settings.server
    if not server.ui_auth:
        return
    token = server.api_token
    if not token:
        raise HTTPException(403, "server.ui_auth is on but server.api_token is not set")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        given = request.cookies.get(COOKIE, "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise LoginRequiredError


class LoginRequiredError(Exception):
    """A page was asked for without the token: the login form is shown instead."""


UiAuth = Annotated[None, Depends(_ui_auth)]
router = APIRouter(prefix="/ui", include_in_schema=False)


PageName = Annotated[str, PathParam(pattern=NAME)]
OptName = Annotated[str | None, Query(pattern=NAME)]
# a scorer, or one of its subsets: `exact_match[private]`, `exact_match[category=refund]`
SCORER = NAME.removesuffix("$") + r"(\[[^\[\]]{1,200}\])?$"
OptScorer = Annotated[str | None, Query(pattern=SCORER)]


async def login_required(request: Request, exc: Exception) -> Response:
    """The exception handler for `LoginRequiredError`: the login form, 401."""
    del exc
    return _page("login.html", status=401, next=request.url.path, failed=False)


# ---------------------------------------------------------------- charts (SVG geometry)


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """One run on a trend chart."""

    x: float
    y: float
    run_id: int
    value: float
    verdict: str  # a VerdictKind value, or "none"
    label: str  # the tooltip


@dataclass(frozen=True, slots=True)
class ChartMarker:
    """A vertical line where the model fingerprint or the benchmark version changed."""

    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A trend chart's geometry in SVG user units; the template only draws it."""

    width: int
    height: int
    points: tuple[ChartPoint, ...]
    line: str  # polyline points
    ci_band: str  # polygon points
    baseline_band: str  # polygon points (may be empty)
    markers: tuple[ChartMarker, ...]
    y_ticks: tuple[tuple[float, str], ...]
    left: int = 48
    top: int = 10
    bottom: int = 24


@dataclass(frozen=True, slots=True)
class TrendRun:
    """What the trend chart needs of one succeeded run for one scorer."""

    run: Run
    score: ScoreSummary
    verdict: Verdict | None
    baseline_range: tuple[float, float] | None  # min and max score of its baseline runs


def _fingerprint_changes(before: Fingerprint | None, after: Fingerprint | None) -> list[str]:
    """What changed between two runs' fingerprints, for a marker's title."""
    if before is None or after is None:
        return []
    out = [str(d) for d in differences(before, after) if d.field != "benchmark_version"]
    if before.system_fingerprint != after.system_fingerprint:
        out.append(
            f"system fingerprint {before.system_fingerprint or '?'} → "
            f"{after.system_fingerprint or '?'}"
        )
    return out


def _version_change(run: Run) -> str:
    """A benchmark version change on a trend: continued item by item, or a new history."""
    version = f"benchmark version {run.benchmark_version[:12]}"
    event = next((e for e in run.events if e.get("kind") == "benchmark_versions_compared"), None)
    if event is None:
        return f"{version}: a new baseline"
    return (
        f"{version}: compared item by item with earlier versions "
        f"({event.get('new_items', 0)} new, {event.get('changed_items', 0)} changed item(s) "
        "left out)"
    )


def _polygon(upper: Sequence[tuple[float, float]], lower: Sequence[tuple[float, float]]) -> str:
    if not upper:
        return ""
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in [*upper, *reversed(lower)])


def trend_chart(rows: Sequence[TrendRun], *, width: int = 760, height: int = 240) -> Chart:
    """Lay out a score trend: one point per run, its CI band, the baseline band, markers."""
    left, top, bottom, right = 48, 10, 24, 10
    values = [
        v
        for r in rows
        for v in (
            r.score.value,
            r.score.ci_lower,
            r.score.ci_upper,
            *(r.baseline_range or ()),
        )
        if not math.isnan(v)
    ]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max((hi - lo) * 0.08, 0.005)
    # scores in [0, 1] keep their axis inside it
    lo, hi = (
        max(0.0, lo - pad) if lo >= 0 else lo - pad,
        min(1.0, hi + pad) if hi <= 1 else hi + pad,
    )
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(i: int) -> float:
        return left + (plot_w * (i + 0.5) / max(len(rows), 1))

    def y_of(v: float) -> float:
        return top + plot_h * (1.0 - (v - lo) / (hi - lo))

    def y_or_mid(v: float) -> float:
        return y_of(v) if not math.isnan(v) else y_of((lo + hi) / 2)

    points = []
    upper, lower, b_upper, b_lower = [], [], [], []
    markers = []
    for i, r in enumerate(rows):
        x = x_of(i)
        kind = r.verdict.verdict.value if r.verdict is not None else "none"
        label = (
            f"run {r.run.id} · {_when(r.run.started_at)} · {r.score.scorer} "
            f"{_fmt(r.score.value)} [{_fmt(r.score.ci_lower)}, {_fmt(r.score.ci_upper)}]"
            f" · {kind}"
        )
        points.append(ChartPoint(x, y_or_mid(r.score.value), r.run.id, r.score.value, kind, label))
        if not (math.isnan(r.score.ci_lower) or math.isnan(r.score.ci_upper)):
            upper.append((x, y_of(r.score.ci_upper)))
            lower.append((x, y_of(r.score.ci_lower)))
        if r.baseline_range is not None:
            # at least 3 units tall, so baseline runs that all scored the same still show
            top_y, bottom_y = y_of(r.baseline_range[1]), y_of(r.baseline_range[0])
            middle = (top_y + bottom_y) / 2
            b_upper.append((x, min(top_y, middle - 1.5)))
            b_lower.append((x, max(bottom_y, middle + 1.5)))
        if i:
            prev = rows[i - 1].run
            changes = []
            if r.run.model_id != prev.model_id:
                changes.append(f"model {prev.model_id or '?'} → {r.run.model_id or '?'}")
            if r.run.benchmark_version != prev.benchmark_version:
                changes.append(_version_change(r.run))
            changes.extend(_fingerprint_changes(prev.fingerprint, r.run.fingerprint))
            if changes:
                markers.append(ChartMarker((x + x_of(i - 1)) / 2, "; ".join(changes)))
    ticks = tuple((y_of(lo + (hi - lo) * k / 4), _fmt(lo + (hi - lo) * k / 4)) for k in range(5))
    return Chart(
        width=width,
        height=height,
        points=tuple(points),
        line=" ".join(f"{p.x:.1f},{p.y:.1f}" for p in points if not math.isnan(p.value)),
        ci_band=_polygon(upper, lower),
        baseline_band=_polygon(b_upper, b_lower),
        markers=tuple(markers),
        y_ticks=ticks,
    )


def sparkline(values: Sequence[float], *, width: int = 120, height: int = 24) -> str:
    """Polyline points of a small trend (oldest first); NaN values are skipped."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (height - 4) * (v - lo) / span:.1f}"
        for i, v in enumerate(values)
        if not math.isnan(v)
    )


# ---------------------------------------------------------------- diffs


def diff_segments(before: str, after: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Word-level diff: (before segments, after segments), each (kind, text) with kind
    "same", "del" (only before) or "ins" (only after). When what differs (after the
    common head and tail) is over `DIFF_MAX_TOKENS` tokens it is marked changed whole."""
    if before == after:
        return [("same", before)], [("same", after)]
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    # the common head and tail need no matching (answers usually differ in one place)
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    prefix, suffix = "".join(a[:head]), "".join(a[len(a) - tail :])
    a, b = a[head : len(a) - tail], b[head : len(b) - tail]
    if len(a) > DIFF_MAX_TOKENS or len(b) > DIFF_MAX_TOKENS:
        return (
            [("same", prefix), ("del", "".join(a)), ("same", suffix)],
            [("same", prefix), ("ins", "".join(b)), ("same", suffix)],
        )
    left: list[tuple[str, str]] = [("same", prefix)]
    right: list[tuple[str, str]] = [("same", prefix)]
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            text = "".join(a[i1:i2])
            left.append(("same", text))
            right.append(("same", text))
            continue
        if i2 > i1:
            left.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            right.append(("ins", "".join(b[j1:j2])))
    left.append(("same", suffix))
    right.append(("same", suffix))
    return [p for p in left if p[1]], [p for p in right if p[1]]


def _shown(value: Any) -> str:
    """A field or reference for display: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


# ---------------------------------------------------------------- page data


def _baseline_ids(verdict: Verdict) -> list[int]:
    """The baseline run ids a verdict's description names ("rolling:5 (runs 3,4,5)")."""
    found = _BASELINE_RUNS.search(verdict.baseline or "")
    return [int(x) for x in found.group(1).split(",") if x] if found else []


def _primary(scores: Sequence[ScoreSummary]) -> ScoreSummary | None:
    return scores[0] if scores else None


@dataclass
class Cell:
    """One (monitor, endpoint) row of the overview."""

    monitor: str
    endpoint: str
    benchmark: str
    latest: Run | None = None
    score: ScoreSummary | None = None  # of the latest succeeded run, first scorer
    verdict: str = "none"
    spark: str = ""
    spark_n: int = 0
    missed: str = ""  # why the run that should have happened did not, or ""


def _missed(latest: Run | None, every: float | None, now: datetime) -> str:
    """The "run did not happen" marker: never ran, the last run broke off, or overdue."""
    if latest is None:
        return "no run yet"
    if latest.status in (RunStatus.FAILED, RunStatus.ABORTED):
        return f"last run {latest.status.value}"
    if every is not None and (now - latest.started_at).total_seconds() > 2 * every:
        return f"no run since {_when(latest.started_at)} (every {every:g} s)"
    return ""


# per pair: the newest succeeded run's first score, its sparkline points and point count,
# and the latest run's verdict for that scorer
_Trend = tuple[ScoreSummary | None, str, int, str]


class OverviewCache:
    """The overview's per-pair summaries, each kept while its pair's latest runs are unchanged.

    Scores and verdicts of a run are written before its final status (the judge runs
    before `finish_run`), and a new run changes its pair's latest run; so while the latest
    runs of a (monitor, endpoint) and their statuses are the same, so are its sparkline and
    verdict. One small query (`latest_runs`) decides, per pair: a finished run costs the
    next view one pair's reads, not 200. Only the summaries are kept (a string of points
    per sparkline, not its 20 scores): objects that outlive a request are what makes
    Python's full garbage collections run, ~40 ms each in the daemon.
    """

    def __init__(self) -> None:
        # (stamp per pair, summary per pair), replaced whole so threads never see a mix
        self.entry: tuple[dict[Pair, object], dict[Pair, _Trend]] = ({}, {})


Pair = tuple[str, str]


def _trends(store: SqlStore, pairs: Iterable[Pair], latest: dict[Pair, Run]) -> dict[Pair, _Trend]:
    recent = store.recent_scores(pairs, SPARK_RUNS)
    verdicts = store.run_verdicts([r.id for r in latest.values()])
    trends: dict[Pair, _Trend] = {}
    for pair, scores in recent.items():
        score: ScoreSummary | None = None
        spark, n = "", 0
        if scores:
            newest = scores[0][0]
            score = next(s for rid, s in scores if rid == newest)  # first scorer by name
            series = [s.value for _, s in reversed(scores) if s.scorer == score.scorer]
            spark, n = sparkline(series), sum(not math.isnan(v) for v in series)
        kind = "none"
        if pair in latest:
            found = verdicts.get(latest[pair].id, [])
            mine = [v.verdict for v in found if score and v.scorer == score.scorer]
            kind = _worst(mine or [v.verdict for v in found])
        trends[pair] = (score, spark, n, kind)
    return trends


def overview_cells(
    daemon: DaemonView, store: SqlStore, now: datetime, cache: OverviewCache | None = None
) -> list[Cell]:
    """Every configured (monitor, endpoint), and every pair with history, in name order.

    Three narrow reads: the latest run of each pair, the scores of its newest
    `SPARK_RUNS` succeeded runs (one indexed query per pair), and the latest runs'
    verdicts; the last two only for the pairs whose latest runs `cache` has not seen.
    """
    settings = daemon.settings
    configured = {(m.name, e): m for m in settings.monitors for e in m.endpoints}
    latest_rows = store.latest_runs()  # per pair and status, ordered by id
    latest: dict[Pair, Run] = {}
    rows_of: dict[Pair, list[tuple[int, RunStatus, datetime | None]]] = {}
    for r in latest_rows:
        latest[r.monitor, r.endpoint] = r
        rows_of.setdefault((r.monitor, r.endpoint), []).append((r.id, r.status, r.finished_at))
    pairs = configured.keys() | latest.keys()
    stamps: dict[Pair, object] = {p: tuple(rows_of.get(p, ())) for p in pairs}
    seen, kept = cache.entry if cache is not None else ({}, {})
    stale = [p for p in pairs if p not in kept or seen.get(p) != stamps[p]]
    trends = {p: kept[p] for p in pairs if p in kept}
    if stale:
        trends |= _trends(store, stale, {p: latest[p] for p in stale if p in latest})
    if cache is not None:
        cache.entry = (stamps, trends)
    cells = []
    for monitor, endpoint in sorted(pairs):
        mon = configured.get((monitor, endpoint))
        last = latest.get((monitor, endpoint))
        bench = mon.benchmark if mon is not None else (last.benchmark if last else "")
        score, spark, n, kind = trends.get((monitor, endpoint), (None, "", 0, "none"))
        every = mon.schedule.every if mon is not None and mon.schedule is not None else None
        cells.append(
            Cell(
                monitor,
                endpoint,
                bench,
                latest=last,
                score=score,
                verdict=kind,
                spark=spark,
                spark_n=n,
                missed=_missed(last, every, now),
            )
        )
    return cells


_ORDER = list(VERDICT_SEVERITY)  # worst first, as the store ranks `run.judged`


def _worst(kinds: Iterable[VerdictKind]) -> str:
    ranked = sorted(kinds, key=_ORDER.index)
    return ranked[0].value if ranked else "none"


@dataclass(frozen=True, slots=True)
class FlippedItem:
    """One flipped item on the run page, with everything shown beside it."""

    key: str
    direction: str  # "pass_to_fail" or "fail_to_pass"
    scorers: tuple[str, ...]
    split: str | None
    fields: tuple[tuple[str, str], ...]
    reference: str | None
    before: ItemResult | None
    after: ItemResult | None
    before_segments: list[tuple[str, str]]
    after_segments: list[tuple[str, str]]


def flipped_keys(
    verdicts: Sequence[Verdict], scorer: str | None
) -> dict[str, tuple[str, set[str]]]:
    """Item key -> (direction, scorers) of every item the stored verdicts count as flipped."""
    found: dict[str, tuple[str, set[str]]] = {}
    for v in verdicts:
        if scorer is not None and v.scorer != scorer:
            continue
        for direction, keys in (
            ("pass_to_fail", v.changed.pass_to_fail),
            ("fail_to_pass", v.changed.fail_to_pass),
        ):
            for key in keys:
                found.setdefault(key, (direction, set()))[1].add(v.scorer)
    return found


def run_page_data(
    store: SqlStore, run: Run, *, scorer: str | None, split: str | None, page: int
) -> dict[str, Any]:
    """Everything the run page shows: scores, verdicts, one page of flipped items."""
    scores = store.run_scores([run.id])[run.id]
    verdicts = store.run_verdicts([run.id])[run.id]
    flips = flipped_keys(verdicts, scorer)
    splits = store.benchmark_splits(run.benchmark, run.benchmark_version)
    if split is not None:
        splits_of = store.item_splits(run.benchmark, run.benchmark_version, flips)
        keys = sorted(k for k in flips if splits_of.get(k) == split)
    else:
        keys = sorted(flips)
    pages = max(1, math.ceil(len(keys) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = keys[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    before_ids = [i for v in verdicts for i in _baseline_ids(v)]
    before_run = max(before_ids) if before_ids else None
    if before_run is None:
        previous = [
            r
            for r in store.list_runs(monitor=run.monitor, endpoint=run.endpoint, limit=20)
            if r.id < run.id and r.status is RunStatus.SUCCEEDED
        ]
        before_run = previous[0].id if previous else None
    after = store.item_results_by_key(run.id, shown)
    before = store.item_results_by_key(before_run, shown) if before_run is not None else {}
    items = store.items_by_key(run.benchmark, run.benchmark_version, shown)
    rows = []
    for key in shown:
        item = items.get(key)
        a, b = before.get(key), after.get(key)
        left, right = diff_segments(
            (a.output if a else None) or "", (b.output if b else None) or ""
        )
        direction, by = flips[key]
        rows.append(
            FlippedItem(
                key=key,
                direction=direction,
                scorers=tuple(sorted(by)),
                split=item.split if item else None,
                fields=tuple((k, _shown(v)) for k, v in item.fields.items()) if item else (),
                reference=None
                if item is None or item.reference is None
                else _shown(item.reference),
                before=a,
                after=b,
                before_segments=left,
                after_segments=right,
            )
        )
    scorers = sorted(
        {v.scorer for v in verdicts if v.changed.pass_to_fail or v.changed.fail_to_pass}
    )
    return {
        "run": run,
        "scores": scores,
        "verdicts": verdicts,
        "flipped": rows,
        "total": len(keys),
        "page": page,
        "pages": pages,
        "scorer": scorer,
        "split": split,
        "scorers": scorers,
        "splits": splits,
        "before_run": before_run,
        # effects of these are score differences (points); drift checks have their own units
        "score_names": {s.scorer for s in scores},
    }


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v is not None})


# ---------------------------------------------------------------- routes


@router.get("/static/{name}")
async def static(name: Annotated[str, PathParam(pattern=r"^[a-z0-9_-]+\.(css|svg)$")]) -> Response:
    """The package's own stylesheet and images (no file system lookups by name)."""
    if name not in _STATIC:
        raise HTTPException(404, "no such asset")
    body, media = _STATIC[name]
    return Response(
        body, media_type=media, headers={**_HEADERS, "Cache-Control": "public, max-age=3600"}
    )


@router.get("/login")
async def login_form(next: str = "/ui/") -> HTMLResponse:
    """The token form (only useful with `server.ui_auth`)."""
    return _page("login.html", next=_local(next), failed=False)


def _local(target: str) -> str:
    """Only a path on this site is a redirect target (no open redirect)."""
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/"


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token from the form and keep it in an HttpOnly, same-site cookie."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = form.get("token", [""])[0]
    target = _local(form.get("next", ["/ui/"])[0])
    expected = request.app.state.daemon.settings.server.api_token or ""
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        return _page("login.html", status=401, next=target, failed=True)
    response = RedirectResponse(target, status_code=303, headers=_HEADERS)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/ui")
    return response


@router.get("/alerts")
async def alerts(_auth: UiAuth) -> HTMLResponse:
    """The alert runbook, which the alert rules' ``runbook_url`` annotations link to."""
    title, body = render_runbook()
    return _page("alerts.html", title=title, body=body)


@router.get("/")
async def overview(request: Request, daemon: Daemon, db: Store, _auth: UiAuth) -> HTMLResponse:
    """Monitors x endpoints: latest score and CI, verdict, sparkline, last run."""
    now = datetime.now(UTC)
    cache = getattr(request.app.state, "ui_overview", None)
    if cache is None:
        cache = request.app.state.ui_overview = OverviewCache()
    cells = await asyncio.to_thread(overview_cells, daemon, db, now, cache)
    return _page("overview.html", cells=cells, now=now)


@router.get("/monitors/{monitor}/{endpoint}")
async def trend(monitor: PageName, endpoint: PageName, db: Store, _auth: UiAuth) -> HTMLResponse:
    """A (monitor, endpoint)'s score trend per scorer, and its recent runs."""

    def read() -> dict[str, Any]:
        runs = db.list_runs(monitor=monitor, endpoint=endpoint, limit=TREND_RUNS)[::-1]
        ids = [r.id for r in runs]
        scores, verdicts = db.run_scores(ids), db.run_verdicts(ids)
        baseline_ids = {i for rid in ids for v in verdicts[rid] for i in _baseline_ids(v)} - set(
            ids
        )
        scores.update(db.run_scores(sorted(baseline_ids)))
        names = sorted({s.scorer for rid in ids for s in scores[rid]})
        charts = []
        for name in names:
            rows = []
            for r in runs:
                s = next((s for s in scores[r.id] if s.scorer == name), None)
                if r.status is not RunStatus.SUCCEEDED or s is None:
                    continue
                v = next((v for v in verdicts[r.id] if v.scorer == name), None)
                base = [
                    b.value
                    for i in (_baseline_ids(v) if v else [])
                    for b in scores.get(i, [])
                    if b.scorer == name and not math.isnan(b.value)
                ]
                rng = (min(base), max(base)) if base else None
                rows.append(TrendRun(r, s, v, rng))
            charts.append((name, trend_chart(rows)))
        latencies = db.run_latencies(ids)
        return {
            "runs": runs[::-1],
            "charts": charts,
            "verdicts": verdicts,
            "scores": scores,
            "latencies": latencies,
        }

    data = await asyncio.to_thread(read)
    if not data["runs"]:
        raise HTTPException(404, f"no runs of {monitor} on {endpoint}")
    return _page("trend.html", monitor=monitor, endpoint=endpoint, **data)


@router.get("/runs/{run_id}")
async def run_page(
    run_id: Annotated[int, PathParam(ge=1, le=MAX_ID)],
    db: Store,
    _auth: UiAuth,
    *,
    scorer: OptScorer = None,
    split: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """One run: scores, verdicts with their evidence, and the items that flipped."""

    def read() -> dict[str, Any] | None:
        found = db.get_run(run_id)
        if found is None:
            return None
        return run_page_data(db, found, scorer=scorer or None, split=split or None, page=page)

    data = await asyncio.to_thread(read)
    if data is None:
        raise HTTPException(404, f"no run {run_id}")
    run = data["run"]

    def link(**change: Any) -> str:
        params = {"scorer": data["scorer"], "split": data["split"], "page": None, **change}
        return f"/ui/runs/{run.id}?{_query(**params)}"

    return _page("run.html", link=link, **data)


@router.get("/compare")
async def compare_page(
    db: Store,
    _auth: UiAuth,
    *,
    benchmark: OptName = None,
    a: OptName = None,
    b: OptName = None,
    run_a: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    run_b: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    margin: Annotated[float, Query(gt=0.0, le=1.0)] = DEFAULT_MARGIN,
) -> HTMLResponse:
    """Two endpoints on one benchmark version, or two runs: difference, test, equivalence."""

    def read() -> tuple[dict[str, Any] | None, str, dict[str, Any]]:
        try:
            if run_a is not None and run_b is not None:
                ra, rb = runs_to_compare(db, run_a, run_b)
                report = compare_runs(db, ra, rb, margin=margin)
            elif benchmark and a and b:
                report = compare_endpoints(db, benchmark=benchmark, a=a, b=b, margin=margin)
            else:
                return None, "", {}
        except ComparisonError as exc:
            return None, str(exc), {}
        outputs = {}
        for name, r in report["scorers"].items():
            keys = (r["a_only"]["keys"] + r["b_only"]["keys"])[:PAGE_SIZE]
            outputs[name] = (
                db.item_results_by_key(report["a"]["run_id"], keys),
                db.item_results_by_key(report["b"]["run_id"], keys),
                keys,
            )
        return report, "", outputs

    report, error, outputs = await asyncio.to_thread(read)
    return _page(
        "compare.html",
        status=404 if error else 200,
        report=report,
        error=error,
        outputs=outputs,
        form={"benchmark": benchmark or "", "a": a or "", "b": b or "", "margin": margin},
        interval=_interval_svg,
    )


def _interval_svg(ci: Sequence[float | None], margin: float) -> dict[str, float]:
    """Geometry of the equivalence picture: the interval against (-margin, +margin)."""
    lo, hi = (c if c is not None else 0.0 for c in ci)
    span = max(abs(lo), abs(hi), margin) * 1.3

    def x(v: float) -> float:
        return 10 + 280 * (v + span) / (2 * span)

    return {"lo": x(lo), "hi": x(hi), "m_lo": x(-margin), "m_hi": x(margin), "zero": x(0.0)}


@router.get("/leaderboard")
async def leaderboard_page(
    db: Store,
    _auth: UiAuth,
    *,
    benchmark: OptName = None,
    margin: Annotated[float, Query(gt=0.0, le=1.0)] = DEFAULT_MARGIN,
    scorer: OptName = None,
) -> HTMLResponse:
    """Endpoints in tiers; a tier changes only where the difference is outside the noise."""

    def read() -> tuple[dict[str, Any] | None, str]:
        if not benchmark:
            return None, ""
        try:
            return leaderboard(db, benchmark=benchmark, margin=margin, scorer=scorer), ""
        except ComparisonError as exc:
            return None, str(exc)

    board, error = await asyncio.to_thread(read)
    return _page(
        "leaderboard.html",
        status=404 if error else 200,
        board=board,
        error=error,
        form={"benchmark": benchmark or "", "margin": margin},
    )
