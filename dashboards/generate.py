#!/usr/bin/env python3
"""Generate the Grafana dashboards in this folder from plain Python.

    python dashboards/generate.py           # (re)write overview.json, monitor-detail.json, ...
    python dashboards/generate.py --check   # exit 1 if a committed file differs from the output

The JSON files are committed; tests/ops/test_dashboards.py regenerates them and fails when they
differ by one byte, so edit this file, never the JSON. Output is deterministic: panel ids and
grid positions are assigned in order, and dictionaries keep their insertion order.

Conventions: Grafana schemaVersion 39 (Grafana 10.3+); every query uses the `${datasource}`
variable; label matchers on template variables are regular expressions (`=~"$monitor"`) so that
"All" (`.*`) and multi-value selections work; gauges that each replica restores from the shared
store are aggregated with `max`, so two replicas never draw two lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}

UID_OVERVIEW = "monitor-overview"
UID_DETAIL = "monitor-detail"
UID_ENDPOINT = "monitor-endpoint-health"

Json = dict[str, Any]

# label matchers shared by many queries
M = 'monitor=~"$monitor"'
ME = 'monitor=~"$monitor",endpoint=~"$endpoint"'
MES = 'monitor=~"$monitor",endpoint=~"$endpoint",scorer=~"$scorer"'
MESS = 'monitor=~"$monitor",endpoint=~"$endpoint",scorer=~"$scorer",slice=~"$slice"'
E = 'endpoint=~"$endpoint"'
SCORE_KEYS = "monitor, benchmark, endpoint, scorer"
SLICE_KEYS = "monitor, benchmark, endpoint, scorer, slice"
QUANTILES = (("A", "0.5", "p50"), ("B", "0.9", "p90"), ("C", "0.99", "p99"))


# ------------------------------------------------------------------ building blocks


def target(expr: str, legend: str = "__auto", ref: str = "A", *, table: bool = False) -> Json:
    """One Prometheus query; `table` makes it an instant query formatted as a table."""
    out: Json = {"datasource": DS, "editorMode": "code", "expr": expr}
    if table:
        out |= {"format": "table", "instant": True, "legendFormat": "__auto", "range": False}
    else:
        out |= {"instant": False, "legendFormat": legend, "range": True}
    out["refId"] = ref
    return out


def thresholds(*steps: tuple[str, float | None]) -> Json:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


GREEN = thresholds(("green", None))


def value_map(mapping: dict[str, tuple[str, str]]) -> list[Json]:
    """Value mappings {raw value: (text, color)}."""
    return [
        {
            "options": {
                raw: {"color": color, "index": i, "text": text}
                for i, (raw, (text, color)) in enumerate(mapping.items())
            },
            "type": "value",
        }
    ]


def override(matcher_id: str, name: str, **props: Any) -> Json:
    return {
        "matcher": {"id": matcher_id, "options": name},
        "properties": [{"id": k.replace("__", "."), "value": v} for k, v in props.items()],
    }


def field_config(
    unit: str,
    *,
    custom: Json | None = None,
    steps: Json = GREEN,
    mappings: list[Json] | None = None,
    color: str = "palette-classic",
    decimals: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    overrides: list[Json] | None = None,
    links: list[Json] | None = None,
) -> Json:
    defaults: Json = {"color": {"mode": color}}
    if custom is not None:
        defaults["custom"] = custom
    if decimals is not None:
        defaults["decimals"] = decimals
    if links:
        defaults["links"] = links
    defaults["mappings"] = mappings or []
    if maximum is not None:
        defaults["max"] = maximum
    if minimum is not None:
        defaults["min"] = minimum
    defaults["thresholds"] = steps
    defaults["unit"] = unit
    return {"defaults": defaults, "overrides": overrides or []}


def line_style(
    *, fill: int = 0, stack: bool = False, bars: bool = False, log: bool = False
) -> Json:
    return {
        "axisBorderShow": False,
        "axisPlacement": "auto",
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": fill,
        "gradientMode": "none",
        "lineInterpolation": "linear",
        "lineWidth": 1,
        "pointSize": 4,
        "scaleDistribution": {"log": 10, "type": "log"} if log else {"type": "linear"},
        "showPoints": "auto",
        "spanNulls": True,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
        "thresholdsStyle": {"mode": "off"},
    }


def timeseries(
    title: str,
    description: str,
    targets: list[Json],
    unit: str,
    *,
    fill: int = 0,
    stack: bool = False,
    bars: bool = False,
    log: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    threshold_line: float | None = None,
    overrides: list[Json] | None = None,
    links: list[Json] | None = None,
    **extra: Any,
) -> Json:
    custom = line_style(fill=fill, stack=stack, bars=bars, log=log)
    steps = GREEN
    if threshold_line is not None:
        custom["thresholdsStyle"] = {"mode": "dashed"}
        steps = thresholds(("green", None), ("red", threshold_line))
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": field_config(
            unit,
            custom=custom,
            steps=steps,
            minimum=minimum,
            maximum=maximum,
            overrides=overrides,
            links=links,
        ),
        "options": {
            "legend": {
                "calcs": ["lastNotNull"],
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets,
        **extra,
    }


def stat(
    title: str,
    description: str,
    expr: str,
    unit: str,
    *,
    steps: Json = GREEN,
    mappings: list[Json] | None = None,
    legend: str = "__auto",
    text_mode: str = "value",
    decimals: int | None = None,
) -> Json:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": field_config(
            unit, steps=steps, mappings=mappings, color="thresholds", decimals=decimals
        ),
        "options": {
            "colorMode": "background" if steps is not GREEN else "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showPercentChange": False,
            "textMode": text_mode,
            "wideLayout": True,
        },
        "targets": [target(expr, legend)],
    }


def table(
    title: str,
    description: str,
    columns: list[tuple[str, str]],
    *,
    keys: list[str],
    overrides: list[Json],
    sort_by: str,
) -> Json:
    """An instant-query table: one query per (column name, expr), merged on the label columns."""
    refs = [chr(ord("A") + i) for i in range(len(columns))]
    rename = {f"Value #{ref}": name for ref, (name, _) in zip(refs, columns, strict=True)}
    order = {name: i for i, name in enumerate([*keys, *rename.values()])}
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": field_config(
            "none",
            custom={"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
            color="thresholds",
            overrides=overrides,
        ),
        "options": {
            "cellHeight": "sm",
            "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
            "showHeader": True,
            "sortBy": [{"desc": True, "displayName": sort_by}],
        },
        "targets": [
            target(expr, ref=ref, table=True) for ref, (_, expr) in zip(refs, columns, strict=True)
        ],
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "indexByName": order,
                    "renameByName": rename,
                },
            },
        ],
    }


def heatmap(title: str, description: str, expr: str) -> Json:
    return {
        "type": "heatmap",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {
                "custom": {
                    "hideFrom": {"legend": False, "tooltip": False, "viz": False},
                    "scaleDistribution": {"type": "linear"},
                }
            },
            "overrides": [],
        },
        "options": {
            "calculate": False,
            "cellGap": 1,
            "color": {"exponent": 0.5, "mode": "scheme", "scheme": "Oranges", "steps": 64},
            "legend": {"show": True},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"mode": "single", "yHistogram": True},
            "yAxis": {"axisPlacement": "left", "unit": "s"},
        },
        "targets": [
            {
                "datasource": DS,
                "editorMode": "code",
                "expr": expr,
                "format": "heatmap",
                "instant": False,
                "legendFormat": "{{le}}",
                "range": True,
                "refId": "A",
            }
        ],
    }


def row(title: str, *, repeat: str | None = None) -> Json:
    out: Json = {"type": "row", "title": title, "collapsed": False, "panels": []}
    if repeat:
        out["repeat"] = repeat
    return out


class Layout:
    """Assign ids and grid positions left to right, top to bottom, on Grafana's 24 columns."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self.x = self.y = self.row_h = 0

    def add(self, panel: Json, w: int, h: int) -> None:
        if panel["type"] == "row":
            self._newline()
            w, h = 24, 1
        elif self.x + w > 24:
            self._newline()
        ordered = {
            "id": len(self.panels) + 1,
            "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
        }
        self.panels.append(ordered | panel)
        self.x += w
        self.row_h = max(self.row_h, h)
        if panel["type"] == "row":
            self._newline()

    def _newline(self) -> None:
        self.y += self.row_h
        self.x = self.row_h = 0


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = True,
    include_all: bool = True,
    hidden: bool = False,
) -> Json:
    out: Json = {"current": {}, "datasource": DS, "definition": query, "hide": 2 if hidden else 0}
    out["includeAll"] = include_all
    if include_all:
        out["allValue"] = ".*"
    out |= {
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": {
            "qryType": 1,
            "query": query,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }
    return out


DATASOURCE_VARIABLE: Json = {
    "current": {},
    "hide": 0,
    "includeAll": False,
    "label": "Data source",
    "multi": False,
    "name": "datasource",
    "options": [],
    "query": "prometheus",
    "refresh": 1,
    "regex": "",
    "skipUrlSync": False,
    "type": "datasource",
}


def dashboard(
    uid: str,
    title: str,
    description: str,
    layout: Layout,
    variables: list[Json],
    *,
    time_from: str,
    annotations: list[Json] | None = None,
) -> Json:
    builtin = {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
    return {
        "annotations": {"list": [builtin, *(annotations or [])]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": ["monitor"],
                "targetBlank": False,
                "title": "Monitor dashboards",
                "type": "dashboards",
            }
        ],
        "panels": layout.panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["monitor"],
        "templating": {"list": [DATASOURCE_VARIABLE, *variables]},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def link_to(uid: str, title: str, params: str) -> Json:
    return {
        "targetBlank": False,
        "title": title,
        "url": f"/d/{uid}/{uid}?{params}&${{__url_time_range}}",
    }


VERDICT = value_map({"0": ("OK", "green"), "1": ("REGRESSION", "red")})
UP = value_map({"0": ("DOWN", "red"), "1": ("UP", "green")})
RELOAD = value_map({"0": ("FAILED", "red"), "1": ("OK", "green")})
RUNNING = value_map({"0": ("idle", "transparent"), "1": ("running", "blue")})


# The daemon's own pages (docs/ui.md) at the address it exports as monitor_ui_info{url}
# (its server.public_url), so that the dashboards need no edit per site.
UI_VARIABLE = query_variable(
    "monitor_url",
    "Monitor web view",
    "label_values(monitor_ui_info, url)",
    multi=False,
    include_all=False,
    hidden=True,
)


def trend_page(monitor: str, endpoint: str) -> Json:
    """A data link to the daemon's trend page of one (monitor, endpoint)."""
    return {
        "targetBlank": True,
        "title": "Trend page: flipped items and outputs",
        "url": f"${{monitor_url}}/ui/monitors/{monitor}/{endpoint}",
    }


def score_of(metric: str, matchers: str = MES) -> str:
    return f"max by ({SCORE_KEYS}) ({metric}{{{matchers}}})"


# ------------------------------------------------------------------ overview


def overview() -> Json:
    lay = Layout()
    err_ratio = (
        f"sum(increase(monitor_endpoint_errors_total{{{E}}}[$__range]))"
        f" / sum(increase(monitor_endpoint_requests_total{{{E}}}[$__range]))"
    )
    stats = [
        stat(
            "Regressions",
            "Monitor x endpoint x scorer combinations whose latest run is a significant "
            "regression against its baseline (monitor_regression_detected).",
            f"sum({score_of('monitor_regression_detected', ME)}) or vector(0)",
            "none",
            steps=thresholds(("green", None), ("red", 1)),
        ),
        stat(
            "Regressed slices",
            "Slices (a benchmark's `slices:`, field=value) of a scorer whose latest run is a "
            "significant regression on the slice's own items "
            "(monitor_slice_regression_detected == 1); the scorer may be ok over all items.",
            f"count(max by ({SLICE_KEYS}) (monitor_slice_regression_detected{{{ME}}}) == 1)"
            " or vector(0)",
            "none",
            steps=thresholds(("green", None), ("red", 1)),
        ),
        stat(
            "Below floor",
            "Latest scores below the monitor's configured score_floor.",
            f"count({score_of('monitor_benchmark_score', ME)}"
            " < on (monitor, benchmark, scorer) group_left ()"
            f" max by (monitor, benchmark, scorer) (monitor_score_floor{{{M}}})) or vector(0)",
            "none",
            steps=thresholds(("green", None), ("red", 1)),
        ),
        stat(
            "Alerts firing",
            "Alerts firing in the daemon's built-in notifier (monitor_alerts_firing).",
            "max(monitor_alerts_firing)",
            "none",
            steps=thresholds(("green", None), ("orange", 1)),
        ),
        stat(
            "Failed or degraded runs",
            "Runs that ended failed or degraded in the selected time range.",
            "sum(increase(monitor_runs_total"
            f'{{{ME},status=~"failed|degraded"}}[$__range])) or vector(0)',
            "none",
            steps=thresholds(("green", None), ("orange", 1)),
            decimals=0,
        ),
        stat(
            "Endpoint error ratio",
            "Failed requests / all requests to the selected endpoints in the time range.",
            err_ratio,
            "percentunit",
            steps=thresholds(("green", None), ("orange", 0.01), ("red", 0.05)),
        ),
        stat(
            "Daemon",
            "Whether Prometheus can scrape every monitor daemon (min of up).",
            'min(up{job="monitor"})',
            "none",
            steps=thresholds(("red", None), ("green", 1)),
            mappings=UP,
        ),
        stat(
            "Config reload",
            "Whether the last configuration reload succeeded on every replica.",
            "min(monitor_config_last_reload_successful)",
            "none",
            steps=thresholds(("red", None), ("green", 1)),
            mappings=RELOAD,
        ),
        stat(
            "Version",
            "The daemon version (monitor_build_info).",
            "max by (version) (monitor_build_info)",
            "none",
            legend="{{version}}",
            text_mode="name",
        ),
    ]
    lay.add(row("Summary"), 24, 1)
    # nine stats on 24 columns: the three status stats (daemon, reload, version) are narrower
    for panel, width in zip(stats, [3] * 6 + [2] * 3, strict=True):
        lay.add(panel, width, 4)

    lay.add(row("Monitors"), 24, 1)
    detail_link = link_to(
        UID_DETAIL,
        "Monitor detail",
        "var-monitor=${__data.fields.monitor}&var-endpoint=${__data.fields.endpoint}",
    )
    score_cols = [
        ("Score", score_of("monitor_benchmark_score", ME)),
        ("CI lower", score_of("monitor_benchmark_score_ci_lower", ME)),
        ("CI upper", score_of("monitor_benchmark_score_ci_upper", ME)),
        ("Baseline", score_of("monitor_baseline_score", ME)),
        ("Effect", score_of("monitor_regression_effect", ME)),
        ("Min p-value", f"min by ({SCORE_KEYS}) (monitor_drift_p_value{{{ME}}})"),
        ("Verdict", score_of("monitor_regression_detected", ME)),
    ]
    lay.add(
        table(
            "Scores: latest run against baseline",
            "One row per monitor, endpoint and scorer: the latest succeeded run's score with "
            "its confidence interval, the baseline, the effect (score minus baseline), the "
            "smallest drift p-value and the verdict. Click a monitor for its detail dashboard.",
            score_cols,
            keys=["monitor", "benchmark", "endpoint", "scorer"],
            sort_by="Verdict",
            overrides=[
                override(
                    "byName",
                    "monitor",
                    links=[
                        detail_link,
                        trend_page("${__data.fields.monitor}", "${__data.fields.endpoint}"),
                    ],
                ),
                override("byName", "Score", decimals=3),
                override("byName", "CI lower", decimals=3),
                override("byName", "CI upper", decimals=3),
                override("byName", "Baseline", decimals=3),
                override(
                    "byName",
                    "Effect",
                    decimals=3,
                    custom__cellOptions={"type": "color-text"},
                    thresholds=thresholds(("red", None), ("green", 0)),
                ),
                override("byName", "Min p-value", decimals=4),
                override(
                    "byName",
                    "Verdict",
                    mappings=VERDICT,
                    custom__cellOptions={"mode": "basic", "type": "color-background"},
                ),
            ],
        ),
        24,
        9,
    )

    # per monitor x endpoint; the endpoint error ratio is copied onto every monitor using it
    keys_me = f"max by (monitor, endpoint) (monitor_last_run_timestamp_seconds{{{ME}}})"
    run_cols = [
        ("Last run age", f"time() - {keys_me}"),
        (
            "Last success age",
            "time() - max by (monitor, endpoint) "
            f'(monitor_last_run_timestamp_seconds{{{ME},status="succeeded"}})',
        ),
        ("Interval", f"max by (monitor, endpoint) (monitor_schedule_interval_seconds{{{ME}}})"),
        (
            "Failed or degraded runs",
            "sum by (monitor, endpoint) (increase(monitor_runs_total"
            f'{{{ME},status=~"failed|degraded"}}[$__range]))',
        ),
        (
            "Endpoint error ratio",
            "(sum by (endpoint) (increase(monitor_endpoint_errors_total"
            f"{{{E}}}[$__range]))"
            " / sum by (endpoint) (increase(monitor_endpoint_requests_total"
            f"{{{E}}}[$__range])))"
            f" + on (endpoint) group_right () (0 * {keys_me})",
        ),
        ("Running", f"max by (monitor, endpoint) (monitor_run_in_progress{{{ME}}})"),
    ]
    lay.add(
        table(
            "Runs: freshness and failures",
            "One row per monitor and endpoint: time since the last run and the last successful "
            "run (MonitorStale fires past twice the interval), failed or degraded runs and the "
            "endpoint's request error ratio in the time range, and whether a run is in progress.",
            run_cols,
            keys=["monitor", "endpoint"],
            sort_by="Last success age",
            overrides=[
                override("byName", "monitor", links=[detail_link]),
                override("byName", "Last run age", unit="s"),
                override("byName", "Last success age", unit="s"),
                override("byName", "Interval", unit="s"),
                override("byName", "Failed or degraded runs", decimals=0),
                override(
                    "byName",
                    "Endpoint error ratio",
                    unit="percentunit",
                    custom__cellOptions={"type": "color-text"},
                    thresholds=thresholds(("green", None), ("orange", 0.01), ("red", 0.05)),
                ),
                override("byName", "Running", mappings=RUNNING),
            ],
        ),
        24,
        8,
    )

    lay.add(row("Trends"), 24, 1)
    lay.add(
        timeseries(
            "Scores",
            "Latest succeeded run's score per monitor, endpoint and scorer.",
            [
                target(
                    f"max by (monitor, endpoint, scorer) (monitor_benchmark_score{{{ME}}})",
                    "{{monitor}} / {{endpoint}} / {{scorer}}",
                )
            ],
            "percentunit",
            links=[trend_page("${__field.labels.monitor}", "${__field.labels.endpoint}")],
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Effect against baseline",
            "Score minus baseline score; below zero is a drop. Significance is in the detail "
            "dashboard.",
            [
                target(
                    f"max by (monitor, endpoint, scorer) (monitor_regression_effect{{{ME}}})",
                    "{{monitor}} / {{endpoint}} / {{scorer}}",
                )
            ],
            "percentunit",
            threshold_line=0,
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Runs by status",
            "Finished runs per status.",
            [
                target(
                    f"sum by (status) (increase(monitor_runs_total{{{ME}}}[$__rate_interval]))",
                    "{{status}}",
                )
            ],
            "none",
            bars=True,
            stack=True,
            fill=80,
            overrides=[
                override("byName", "succeeded", color={"fixedColor": "green", "mode": "fixed"}),
                override("byName", "failed", color={"fixedColor": "red", "mode": "fixed"}),
                override("byName", "degraded", color={"fixedColor": "orange", "mode": "fixed"}),
                override("byName", "aborted", color={"fixedColor": "purple", "mode": "fixed"}),
            ],
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Endpoint error ratio",
            "Failed requests / all requests per endpoint. MonitorEndpointErrors fires above 5% "
            "over 15 minutes.",
            [
                target(
                    "sum by (endpoint) (rate(monitor_endpoint_errors_total"
                    f"{{{E}}}[$__rate_interval]))"
                    " / sum by (endpoint) (rate(monitor_endpoint_requests_total"
                    f"{{{E}}}[$__rate_interval]))",
                    "{{endpoint}}",
                )
            ],
            "percentunit",
            minimum=0,
            threshold_line=0.05,
        ),
        12,
        8,
    )
    return dashboard(
        UID_OVERVIEW,
        "Monitor / Overview",
        "Every monitor and endpoint: latest score against baseline, verdict, freshness, "
        "failures and endpoint errors.",
        lay,
        [
            query_variable(
                "monitor", "Monitor", "label_values(monitor_last_run_timestamp_seconds, monitor)"
            ),
            query_variable(
                "endpoint",
                "Endpoint",
                f"label_values(monitor_last_run_timestamp_seconds{{{M}}}, endpoint)",
            ),
            UI_VARIABLE,
        ],
        time_from="now-7d",
    )


# ------------------------------------------------------------------ monitor detail


def monitor_detail() -> Json:
    lay = Layout()
    one = f"{{{MES}}}"
    lay.add(row("Scores on $endpoint", repeat="endpoint"), 24, 1)
    lay.add(
        timeseries(
            "$scorer on $endpoint",
            "Latest succeeded run's score with its confidence interval (shaded), the baseline "
            "it is tested against, and the configured floor.",
            [
                target(f"max(monitor_benchmark_score_ci_lower{one})", "CI lower", "A"),
                target(f"max(monitor_benchmark_score_ci_upper{one})", "CI upper", "B"),
                target(f"max(monitor_benchmark_score{one})", "score", "C"),
                target(f"max(monitor_baseline_score{one})", "baseline", "D"),
                target(
                    f'max(monitor_score_floor{{{M},scorer=~"$scorer"}})',
                    "floor",
                    "E",
                ),
            ],
            "percentunit",
            overrides=[
                override(
                    "byName",
                    "CI upper",
                    custom__fillBelowTo="CI lower",
                    custom__fillOpacity=20,
                    custom__lineWidth=0,
                    color={"fixedColor": "blue", "mode": "fixed"},
                ),
                override(
                    "byName",
                    "CI lower",
                    custom__lineWidth=0,
                    color={"fixedColor": "blue", "mode": "fixed"},
                ),
                override(
                    "byName",
                    "score",
                    custom__lineWidth=2,
                    color={"fixedColor": "blue", "mode": "fixed"},
                ),
                override(
                    "byName",
                    "baseline",
                    custom__lineStyle={"dash": [10, 10], "fill": "dash"},
                    color={"fixedColor": "green", "mode": "fixed"},
                ),
                override(
                    "byName",
                    "floor",
                    custom__lineStyle={"dash": [4, 4], "fill": "dash"},
                    color={"fixedColor": "red", "mode": "fixed"},
                ),
            ],
            links=[trend_page("${monitor}", "${endpoint}")],
            repeat="scorer",
            repeatDirection="h",
            maxPerRow=2,
        ),
        24,
        9,
    )
    lay.add(
        timeseries(
            "Effect against baseline on $endpoint",
            "Score minus baseline per scorer. Below zero is a drop; MonitorRegressionDetected "
            "fires when a drop is significant and at least min_effect.",
            [
                target(
                    f"max by (scorer) (monitor_regression_effect{one})",
                    "{{scorer}}",
                )
            ],
            "percentunit",
            threshold_line=0,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Drift p-values on $endpoint",
            "p-value of each drift test per scorer (log scale). The daemon corrects for "
            "multiple testing before it decides; see docs/statistics.",
            [
                target(
                    f"min by (scorer, test) (monitor_drift_p_value{one})",
                    "{{scorer}} / {{test}}",
                )
            ],
            "none",
            log=True,
            maximum=1,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Verdict on $endpoint",
            "1 while the latest run is a significant regression (monitor_regression_detected).",
            [
                target(
                    f"max by (scorer) (monitor_regression_detected{one})",
                    "{{scorer}}",
                )
            ],
            "none",
            minimum=0,
            maximum=1,
            fill=30,
        ),
        8,
        8,
    )

    lay.add(row("Slices"), 24, 1)
    slice_of = f"{{{MESS}}}"
    by_slice = "max by (endpoint, scorer, slice)"
    lay.add(
        stat(
            "Regressed slices",
            "Slices of the selected scorers whose latest run is a significant regression on "
            "the slice's own items (monitor_slice_regression_detected == 1); "
            "MonitorSliceRegressed fires for each.",
            f"count({by_slice} (monitor_slice_regression_detected{slice_of}) == 1) or vector(0)",
            "none",
            steps=thresholds(("green", None), ("red", 1)),
        ),
        4,
        8,
    )
    lay.add(
        table(
            "Slices: latest run against baseline",
            "One row per endpoint, scorer and slice (a benchmark's `slices:`, field=value): the "
            "slice's score in the latest succeeded run, its baseline, the effect (score minus "
            "baseline) and the verdict of its own paired test. The slice's flipped items are on "
            "the run page of the daemon's web view.",
            [
                ("Score", f"{by_slice} (monitor_slice_score{slice_of})"),
                (
                    "Baseline",
                    f"{by_slice} (monitor_slice_score{slice_of})"
                    f" - {by_slice} (monitor_slice_regression_effect{slice_of})",
                ),
                ("Effect", f"{by_slice} (monitor_slice_regression_effect{slice_of})"),
                ("Verdict", f"{by_slice} (monitor_slice_regression_detected{slice_of})"),
            ],
            keys=["endpoint", "scorer", "slice"],
            sort_by="Verdict",
            overrides=[
                override(
                    "byName",
                    "slice",
                    links=[trend_page("${monitor}", "${__data.fields.endpoint}")],
                ),
                override("byName", "Score", decimals=3),
                override("byName", "Baseline", decimals=3),
                override(
                    "byName",
                    "Effect",
                    decimals=3,
                    custom__cellOptions={"type": "color-text"},
                    thresholds=thresholds(("red", None), ("green", 0)),
                ),
                override(
                    "byName",
                    "Verdict",
                    mappings=VERDICT,
                    custom__cellOptions={"mode": "basic", "type": "color-background"},
                ),
            ],
        ),
        20,
        8,
    )
    lay.add(
        timeseries(
            "Slice scores",
            "Latest succeeded run's score per slice, and the slice floors configured in the "
            "monitor's slice_floors (dashed); MonitorSliceBelowFloor fires under a floor.",
            [
                target(
                    f"{by_slice} (monitor_slice_score{slice_of})",
                    "{{slice}} {{scorer}} on {{endpoint}}",
                    "A",
                ),
                target(
                    "max by (scorer, slice) (monitor_slice_score_floor"
                    f'{{{M},scorer=~"$scorer",slice=~"$slice"}})',
                    "{{slice}} {{scorer}} floor",
                    "B",
                ),
            ],
            "percentunit",
            overrides=[
                override(
                    "byRegexp",
                    ".* floor",
                    custom__lineStyle={"dash": [4, 4], "fill": "dash"},
                    color={"fixedColor": "red", "mode": "fixed"},
                )
            ],
            links=[trend_page("${monitor}", "${__field.labels.endpoint}")],
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Slice effect against baseline",
            "Slice score minus its baseline on the same items. Below zero is a drop; "
            "MonitorSliceRegressed fires when a drop is significant and at least min_effect.",
            [
                target(
                    f"{by_slice} (monitor_slice_regression_effect{slice_of})",
                    "{{slice}} {{scorer}} on {{endpoint}}",
                )
            ],
            "percentunit",
            threshold_line=0,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Slice verdicts",
            "1 while the latest run is a significant regression of the slice "
            "(monitor_slice_regression_detected).",
            [
                target(
                    f"{by_slice} (monitor_slice_regression_detected{slice_of})",
                    "{{slice}} {{scorer}} on {{endpoint}}",
                )
            ],
            "none",
            minimum=0,
            maximum=1,
            fill=30,
        ),
        8,
        8,
    )

    lay.add(row("Runs"), 24, 1)
    run_q = [
        target(
            f"histogram_quantile({q}, sum by (le, endpoint) (increase("
            f"monitor_run_duration_seconds_bucket{{{ME}}}[1h])))",
            f"{{{{endpoint}}}} {name}",
            ref,
        )
        for ref, q, name in QUANTILES
    ]
    lay.add(
        timeseries(
            "Run duration",
            "Quantiles of the run duration over the runs of the past hour (histogram).",
            run_q,
            "s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Runs by status",
            "Finished runs per endpoint and status.",
            [
                target(
                    "sum by (endpoint, status) (increase(monitor_runs_total"
                    f"{{{ME}}}[$__rate_interval]))",
                    "{{endpoint}} {{status}}",
                )
            ],
            "none",
            bars=True,
            stack=True,
            fill=80,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Items by outcome",
            "Benchmark items scored per second, by outcome (error: the endpoint gave no usable "
            "answer).",
            [
                target(
                    "sum by (endpoint, outcome) (rate(monitor_items_total"
                    f"{{{ME}}}[$__rate_interval]))",
                    "{{endpoint}} {{outcome}}",
                )
            ],
            "ops",
            stack=True,
            fill=30,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Item error ratio",
            "Items with outcome error / all items. Runs above the monitor's degraded_threshold "
            "are marked degraded and left out of drift tests.",
            [
                target(
                    "sum by (endpoint) (rate(monitor_items_total"
                    f'{{{ME},outcome="error"}}[$__rate_interval]))'
                    " / sum by (endpoint) (rate(monitor_items_total"
                    f"{{{ME}}}[$__rate_interval]))",
                    "{{endpoint}}",
                )
            ],
            "percentunit",
            minimum=0,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Time since last run",
            "Seconds since the last run per status; MonitorStale fires when the last "
            "succeeded run is older than twice the schedule interval (dashed).",
            [
                target(
                    "time() - max by (endpoint, status) "
                    f"(monitor_last_run_timestamp_seconds{{{ME}}})",
                    "{{endpoint}} {{status}}",
                    "A",
                ),
                target(
                    f"2 * max by (endpoint) (monitor_schedule_interval_seconds{{{ME}}})",
                    "{{endpoint}} stale after",
                    "B",
                ),
            ],
            "s",
            overrides=[
                override(
                    "byRegexp",
                    ".* stale after",
                    custom__lineStyle={"dash": [10, 10], "fill": "dash"},
                )
            ],
        ),
        8,
        8,
    )
    lay.add(
        {
            "type": "state-timeline",
            "title": "Run in progress",
            "description": "When a run of this monitor was running, per endpoint.",
            "datasource": DS,
            "fieldConfig": field_config(
                "none",
                custom={
                    "fillOpacity": 70,
                    "hideFrom": {"legend": False, "tooltip": False, "viz": False},
                    "lineWidth": 0,
                },
                mappings=RUNNING,
                color="thresholds",
            ),
            "options": {
                "alignValue": "left",
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
                "mergeValues": True,
                "rowHeight": 0.9,
                "showValue": "never",
                "tooltip": {"mode": "single", "sort": "none"},
            },
            "targets": [
                target(
                    f"max by (endpoint) (monitor_run_in_progress{{{ME}}})",
                    "{{endpoint}}",
                )
            ],
        },
        8,
        8,
    )

    lay.add(row("Cost and tokens"), 24, 1)
    lay.add(
        timeseries(
            "Cost per run",
            "Dollars the newest answered run cost, from the endpoint's configured price or "
            "the genai-prices table; no line while the price is unknown (never 0).",
            [
                target(
                    f"max by (endpoint) (monitor_run_cost_dollars{{{ME}}})",
                    "{{endpoint}}",
                )
            ],
            "currencyUSD",
            minimum=0,
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Tokens per run",
            "Tokens of the newest answered run: prompt and completion, and the cached and "
            "reasoning parts of them. A model that starts writing twice as much shows here.",
            [
                target(
                    f"max by (endpoint, kind) (monitor_run_tokens{{{ME}}})",
                    "{{endpoint}} {{kind}}",
                )
            ],
            "short",
            minimum=0,
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Spend over the time range's steps",
            "Dollars of runs whose cost is known, and tokens, per step: the increase of "
            "monitor_cost_dollars_total and monitor_tokens_total (counted in the store).",
            [
                target(
                    "sum by (endpoint) (increase(monitor_cost_dollars_total"
                    f"{{{ME}}}[$__rate_interval]))",
                    "{{endpoint}} $",
                    "A",
                ),
                target(
                    "sum by (endpoint) (increase(monitor_tokens_total"
                    f'{{{ME},kind=~"prompt|completion"}}[$__rate_interval]))',
                    "{{endpoint}} tokens",
                    "B",
                ),
            ],
            "short",
            minimum=0,
            overrides=[override("byFrameRefID", "A", unit="currencyUSD")],
        ),
        24,
        8,
    )

    lay.add(row("Endpoint latency"), 24, 1)
    lay.add(
        timeseries(
            "Request latency",
            "Quantiles of the request duration to the selected endpoints.",
            latency_quantiles(),
            "s",
        ),
        12,
        8,
    )
    lay.add(
        heatmap(
            "Request latency distribution",
            "Requests per latency bucket over time.",
            "sum by (le) (increase(monitor_endpoint_request_duration_seconds_bucket"
            f"{{{E}}}[$__rate_interval]))",
        ),
        12,
        8,
    )
    run_annotation: Json = {
        "datasource": DS,
        "enable": True,
        "expr": "changes(max by (monitor, endpoint, status) (monitor_last_run_timestamp_seconds"
        f'{{{ME},status=~"failed|degraded|aborted"}})[2m:1m]) > 0',
        "hide": False,
        "iconColor": "red",
        "name": "Failed runs",
        "step": "1m",
        "tagKeys": "monitor,endpoint,status",
        "textFormat": "{{status}} run of {{monitor}} on {{endpoint}}",
        "titleFormat": "Run {{status}}",
    }
    served_annotation: Json = {
        "datasource": DS,
        "enable": True,
        "expr": f"max by (monitor, endpoint) (monitor_served_model_changed{{{ME}}}) == 1",
        "hide": False,
        "iconColor": "purple",
        "name": "Served model changed",
        "step": "1m",
        "tagKeys": "monitor,endpoint",
        "textFormat": "{{endpoint}} serves another model than the baseline of {{monitor}}",
        "titleFormat": "Served model changed",
    }
    # a new series of the info gauge is a benchmark version change: marked for 10 minutes,
    # saying whether its runs are compared item by item with earlier versions or start anew
    version_labels = "monitor, endpoint, version, comparison"
    version_annotation: Json = {
        "datasource": DS,
        "enable": True,
        "expr": f"max by ({version_labels}) (monitor_benchmark_version_info{{{ME}}}) unless "
        f"max by ({version_labels}) (monitor_benchmark_version_info{{{ME}}} offset 10m)",
        "hide": False,
        "iconColor": "blue",
        "name": "Benchmark version",
        "step": "1m",
        "tagKeys": "monitor,endpoint,comparison",
        "textFormat": "{{monitor}} on {{endpoint}} runs benchmark version {{version}}, "
        "compared {{comparison}} (item_by_item: unchanged items keep their history; "
        "own_version: a new baseline)",
        "titleFormat": "Benchmark version",
    }
    return dashboard(
        UID_DETAIL,
        "Monitor / Detail",
        "One monitor: score with confidence interval against baseline and floor, drift "
        "p-values and effect, slices, runs, items and endpoint latency.",
        lay,
        [
            query_variable(
                "monitor",
                "Monitor",
                "label_values(monitor_last_run_timestamp_seconds, monitor)",
                multi=False,
                include_all=False,
            ),
            query_variable(
                "endpoint",
                "Endpoint",
                f"label_values(monitor_last_run_timestamp_seconds{{{M}}}, endpoint)",
            ),
            query_variable(
                "scorer", "Scorer", f"label_values(monitor_benchmark_score{{{M}}}, scorer)"
            ),
            # a benchmark's `slices:` (field=value); none for a monitor without slices
            query_variable("slice", "Slice", f"label_values(monitor_slice_score{{{M}}}, slice)"),
            UI_VARIABLE,
        ],
        time_from="now-7d",
        annotations=[run_annotation, served_annotation, version_annotation],
    )


def latency_quantiles(by: str = "endpoint") -> list[Json]:
    return [
        target(
            f"histogram_quantile({q}, sum by (le, {by}) (rate("
            f"monitor_endpoint_request_duration_seconds_bucket{{{E}}}[$__rate_interval])))",
            f"{{{{{by}}}}} {name}",
            ref,
        )
        for ref, q, name in QUANTILES
    ]


# ------------------------------------------------------------------ endpoint health


def endpoint_health() -> Json:
    lay = Layout()
    lay.add(row("Summary"), 24, 1)
    for panel in (
        stat(
            "Requests",
            "Requests per second to the selected endpoints.",
            f"sum(rate(monitor_endpoint_requests_total{{{E}}}[$__rate_interval]))",
            "reqps",
        ),
        stat(
            "Error ratio",
            "Failed requests / all requests in the time range.",
            f"sum(increase(monitor_endpoint_errors_total{{{E}}}[$__range]))"
            f" / sum(increase(monitor_endpoint_requests_total{{{E}}}[$__range]))",
            "percentunit",
            steps=thresholds(("green", None), ("orange", 0.01), ("red", 0.05)),
        ),
        stat(
            "Latency p50",
            "Median request duration over the time range.",
            "histogram_quantile(0.5, sum by (le) (increase("
            f"monitor_endpoint_request_duration_seconds_bucket{{{E}}}[$__range])))",
            "s",
        ),
        stat(
            "Latency p99",
            "99th percentile of the request duration over the time range.",
            "histogram_quantile(0.99, sum by (le) (increase("
            f"monitor_endpoint_request_duration_seconds_bucket{{{E}}}[$__range])))",
            "s",
        ),
    ):
        lay.add(panel, 6, 4)

    lay.add(row("Latency"), 24, 1)
    lay.add(
        timeseries(
            "Request latency percentiles",
            "p50, p90 and p99 of the request duration per endpoint.",
            latency_quantiles(),
            "s",
        ),
        12,
        9,
    )
    lay.add(
        heatmap(
            "Request latency distribution",
            "Requests per latency bucket over time, all selected endpoints.",
            "sum by (le) (increase(monitor_endpoint_request_duration_seconds_bucket"
            f"{{{E}}}[$__rate_interval]))",
        ),
        12,
        9,
    )
    lay.add(
        timeseries(
            "Mean request latency",
            "Average request duration per endpoint.",
            [
                target(
                    "sum by (endpoint) (rate(monitor_endpoint_request_duration_seconds_sum"
                    f"{{{E}}}[$__rate_interval]))"
                    " / sum by (endpoint) (rate(monitor_endpoint_request_duration_seconds_count"
                    f"{{{E}}}[$__rate_interval]))",
                    "{{endpoint}}",
                )
            ],
            "s",
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Throughput",
            "Requests per second per endpoint.",
            [
                target(
                    "sum by (endpoint) (rate(monitor_endpoint_requests_total"
                    f"{{{E}}}[$__rate_interval]))",
                    "{{endpoint}}",
                )
            ],
            "reqps",
        ),
        12,
        8,
    )

    lay.add(row("Errors"), 24, 1)
    lay.add(
        timeseries(
            "Errors by kind",
            "Failed requests per second by endpoint and kind (timeout, connect, http_4xx, "
            "http_5xx, invalid_response).",
            [
                target(
                    "sum by (endpoint, kind) (rate(monitor_endpoint_errors_total"
                    f"{{{E}}}[$__rate_interval]))",
                    "{{endpoint}} {{kind}}",
                )
            ],
            "reqps",
            stack=True,
            fill=40,
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Error ratio",
            "Failed requests / all requests per endpoint; MonitorEndpointErrors fires above 5% "
            "over 15 minutes.",
            [
                target(
                    "sum by (endpoint) (rate(monitor_endpoint_errors_total"
                    f"{{{E}}}[$__rate_interval]))"
                    " / sum by (endpoint) (rate(monitor_endpoint_requests_total"
                    f"{{{E}}}[$__rate_interval]))",
                    "{{endpoint}}",
                )
            ],
            "percentunit",
            minimum=0,
            threshold_line=0.05,
        ),
        12,
        8,
    )
    lay.add(
        table(
            "Errors in the time range",
            "Failed requests per endpoint and kind in the selected time range.",
            [
                (
                    "Errors",
                    "sum by (endpoint, kind) (increase(monitor_endpoint_errors_total"
                    f"{{{E}}}[$__range])) > 0",
                )
            ],
            keys=["endpoint", "kind"],
            sort_by="Errors",
            overrides=[override("byName", "Errors", decimals=0)],
        ),
        24,
        7,
    )
    lay.add(
        table(
            "Served models",
            "The model id and system fingerprint most answers of each endpoint's newest run "
            "carried, and the monitors whose baseline was served otherwise (1: a silent "
            "update behind the configured model; docs/alerts.md, MonitorServedModelChanged).",
            [
                (
                    "Newest run",
                    f"max by (endpoint, model, fingerprint) (monitor_endpoint_model_info{{{E}}})",
                ),
                (
                    "Changed against baseline",
                    f"max by (endpoint) (monitor_served_model_changed{{{E}}})",
                ),
            ],
            keys=["endpoint", "model", "fingerprint"],
            sort_by="Changed against baseline",
            overrides=[override("byName", "Newest run", custom__hidden=True)],
        ),
        24,
        6,
    )
    return dashboard(
        UID_ENDPOINT,
        "Monitor / Endpoint health",
        "Request latency, throughput and errors of the model endpoints the monitors call.",
        lay,
        [
            query_variable(
                "endpoint", "Endpoint", "label_values(monitor_endpoint_requests_total, endpoint)"
            )
        ],
        time_from="now-24h",
    )


# ------------------------------------------------------------------ output

DASHBOARDS = {
    "overview.json": overview,
    "monitor-detail.json": monitor_detail,
    "endpoint-health.json": endpoint_health,
}


def render(dash: Json) -> str:
    """The exact text committed for a dashboard."""
    return json.dumps(dash, indent=2, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """File name -> JSON text, for every dashboard."""
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.stderr.write(f"out of date, run {Path(__file__).name}: {', '.join(stale)}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
