"""The metrics the daemon exposes (the README's metrics table), and PromQL helpers to check names.

This catalog stands in for the daemon's live exposition until the ops tests can scrape a real
``monitor serve``: the names and label sets below are binding for the dashboards and alert rules.
Only the CATALOG mapping needs replacing then; the helpers work on any name -> labels mapping.
tests/ops/test_e2e_daemon.py scrapes a real daemon and checks the catalog, the dashboards and the
rules against its exposition (`from_exposition`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

_SCORE = ("monitor", "benchmark", "endpoint", "scorer")
_SLICE = (*_SCORE, "slice")  # a benchmark's `slices:`, slice="field=value"


@dataclass(frozen=True)
class Metric:
    """One metric family: its type and the labels its samples carry."""

    kind: str  # gauge | counter | histogram
    labels: tuple[str, ...]


CATALOG: dict[str, Metric] = {
    # gauges
    "monitor_benchmark_score": Metric("gauge", _SCORE),
    "monitor_benchmark_score_ci_lower": Metric("gauge", _SCORE),
    "monitor_benchmark_score_ci_upper": Metric("gauge", _SCORE),
    "monitor_baseline_score": Metric("gauge", _SCORE),
    "monitor_regression_effect": Metric("gauge", _SCORE),
    "monitor_drift_p_value": Metric("gauge", (*_SCORE, "test")),
    "monitor_regression_detected": Metric("gauge", _SCORE),
    "monitor_detectable_effect": Metric("gauge", _SCORE),
    "monitor_score_floor": Metric("gauge", ("monitor", "benchmark", "scorer")),
    "monitor_benchmark_version_info": Metric(
        "gauge", ("monitor", "benchmark", "endpoint", "version", "comparison")
    ),
    "monitor_last_run_timestamp_seconds": Metric("gauge", ("monitor", "endpoint", "status")),
    "monitor_schedule_interval_seconds": Metric("gauge", ("monitor", "endpoint")),
    "monitor_alerts_firing": Metric("gauge", ()),
    "monitor_build_info": Metric("gauge", ("version",)),
    "monitor_ui_info": Metric("gauge", ("url",)),
    "monitor_endpoint_model_info": Metric("gauge", ("endpoint", "model", "fingerprint")),
    "monitor_served_model_changed": Metric("gauge", ("monitor", "endpoint")),
    "monitor_run_cost_dollars": Metric("gauge", ("monitor", "endpoint")),
    "monitor_run_tokens": Metric("gauge", ("monitor", "endpoint", "kind")),
    "monitor_config_last_reload_successful": Metric("gauge", ()),
    "monitor_leader": Metric("gauge", ()),
    "monitor_run_in_progress": Metric("gauge", ("monitor", "endpoint")),
    "monitor_endpoint_concurrency_limit": Metric("gauge", ("endpoint",)),
    "monitor_endpoint_in_flight": Metric("gauge", ("endpoint",)),
    "monitor_judge_agreement": Metric("gauge", ("monitor", "endpoint", "scorer", "measure")),
    "monitor_judge_drift": Metric("gauge", ("monitor", "endpoint", "scorer")),
    "monitor_judge_drift_p_value": Metric("gauge", ("monitor", "endpoint", "scorer")),
    "monitor_judge_calibration_items": Metric(
        "gauge", ("monitor", "endpoint", "scorer", "outcome")
    ),
    "monitor_slice_score": Metric("gauge", _SLICE),
    "monitor_slice_regression_effect": Metric("gauge", _SLICE),
    "monitor_slice_regression_detected": Metric("gauge", _SLICE),
    "monitor_slice_score_floor": Metric("gauge", ("monitor", "benchmark", "scorer", "slice")),
    # counters (exposed with the _total suffix)
    "monitor_runs_total": Metric("counter", ("monitor", "endpoint", "status")),
    "monitor_items_total": Metric("counter", ("monitor", "benchmark", "endpoint", "outcome")),
    "monitor_endpoint_errors_total": Metric("counter", ("endpoint", "kind")),
    "monitor_endpoint_requests_total": Metric("counter", ("endpoint",)),
    "monitor_tokens_total": Metric("counter", ("monitor", "endpoint", "kind")),
    "monitor_cost_dollars_total": Metric("counter", ("monitor", "endpoint")),
    # histograms
    "monitor_run_duration_seconds": Metric("histogram", ("monitor", "endpoint")),
    "monitor_endpoint_request_duration_seconds": Metric("histogram", ("endpoint",)),
    # Prometheus's own
    "up": Metric("gauge", ()),
}

# Labels every scraped series gets from its target (compose and Kubernetes service discovery).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container"})


def series_names(catalog: Mapping[str, Metric] = CATALOG) -> dict[str, frozenset[str]]:
    """Every series name a query may select, with the labels it may match on."""
    out: dict[str, frozenset[str]] = {}
    for name, metric in catalog.items():
        labels = frozenset(metric.labels) | TARGET_LABELS
        if metric.kind == "histogram":
            out[f"{name}_bucket"] = labels | {"le"}
            out[f"{name}_sum"] = labels
            out[f"{name}_count"] = labels
        else:
            out[name] = labels
    return out


# ------------------------------------------------------------------ PromQL scanning

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NUMBER = re.compile(r"(?<![\w:.])(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)")
_DURATION = re.compile(r"(?<![\w:.])(?:\d+(?:ms|[smhdwy]))+(?![\w:])")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MATCHERS = re.compile(r"\{([^}]*)\}")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
)


@dataclass(frozen=True)
class Selector:
    """A vector selector found in a query: the series name and the label names it matches on."""

    name: str
    labels: tuple[str, ...]


def selectors(expr: str) -> Iterator[Selector]:
    """The vector selectors of a PromQL expression (function names and keywords skipped)."""
    # keep label names of matchers, but blank out every string so that no value looks like a name
    text = _STRING.sub('""', expr)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _DURATION.sub(" ", text)  # `offset 5m`
    text = _NUMBER.sub(" ", text)
    matchers: dict[int, tuple[str, ...]] = {}

    def stash(match: re.Match[str]) -> str:
        names = tuple(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", match.group(1)))
        matchers[len(matchers)] = names
        return f" \x00{len(matchers) - 1}\x00 "

    text = _MATCHERS.sub(stash, text)
    tokens = re.finditer(r"\x00(\d+)\x00|" + _IDENT.pattern + r"|\(|\S", text)
    items = [(m.group(0), m.group(1)) for m in tokens]
    i = 0
    while i < len(items):
        token, stash_id = items[i]
        nxt = items[i + 1] if i + 1 < len(items) else ("", None)
        if stash_id is not None:  # a bare {…} selector: the name is in __name__ (unsupported)
            yield Selector("", matchers[int(stash_id)])
        elif _IDENT.fullmatch(token) and token.lower() not in _KEYWORDS and nxt[0] != "(":
            labels = matchers[int(nxt[1])] if nxt[1] is not None else ()
            yield Selector(token, labels)
            if nxt[1] is not None:
                i += 1
        i += 1


def unknown_series(expr: str, catalog: Mapping[str, Metric] = CATALOG) -> list[str]:
    """Problems with the series and matcher labels of one expression; empty when all are known."""
    known = series_names(catalog)
    problems = []
    for sel in selectors(expr):
        if sel.name not in known:
            problems.append(f"unknown metric {sel.name or '{…}'!r}")
            continue
        problems.extend(
            f"metric {sel.name!r} has no label {label!r}"
            for label in sel.labels
            if label not in known[sel.name] and label != "__name__"
        )
    return problems


_TEMPLATE_METRIC = re.compile(r"\b(?:monitor_[a-z0-9_]+|up)\b(?=\s*[{\[(%)])")


def template_series(text: str) -> set[str]:
    """Series names that a rule annotation queries through template functions like `query`."""
    return set(_TEMPLATE_METRIC.findall(text))


# ------------------------------------------------------------------ the real exposition


def from_exposition(text: str) -> dict[str, Metric]:
    """A catalog read from a live /metrics text: every family that has samples, under the
    name queries use (counters with `_total`), with the union of its samples' labels."""
    out: dict[str, Metric] = {}
    for family in text_string_to_metric_families(text):
        if not family.samples or family.type not in {"gauge", "counter", "histogram"}:
            continue
        name = f"{family.name}_total" if family.type == "counter" else family.name
        labels = {label for s in family.samples for label in s.labels if label != "le"}
        out[name] = Metric(family.type, tuple(sorted(labels)))
    return out
