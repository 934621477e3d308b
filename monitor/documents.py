"""The JSON documents of runs and verdicts, shared by the API, the CLI and the demo.

One shape everywhere (docs/architecture.md, "Run documents"): `monitor run --format
json`, `monitor runs --format json` and `GET /api/v1/runs` print the same objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from monitor.core.cost import RunUsage
from monitor.core.fingerprint import Fingerprint
from monitor.core.judging import JudgeCheck
from monitor.core.model import ItemResult, Rescore, Run, ScoreSummary, Verdict
from monitor.core.slices import parse_slice_name

__all__ = [
    "json_float",
    "judge_check_document",
    "judges_document",
    "repeats_document",
    "rescore_document",
    "run_document",
    "slices_document",
    "usage_document",
    "verdict_document",
]


def run_document(
    run: Run,
    scores: Sequence[ScoreSummary],
    verdicts: Sequence[Verdict],
    duration_s: float | None = None,
    judge_checks: Sequence[JudgeCheck] = (),
) -> dict[str, Any]:
    """Serialize a run with its scores, verdicts and judge-sentinel checks to plain
    JSON-ready data."""
    if duration_s is None and run.finished_at is not None:
        duration_s = (run.finished_at - run.started_at).total_seconds()
    return {
        "id": run.id,
        "monitor": run.monitor,
        "endpoint": run.endpoint,
        "benchmark": run.benchmark,
        "benchmark_version": run.benchmark_version,
        "trigger": run.trigger,
        "status": run.status.value,
        "model_id": run.model_id,
        "n_items": run.n_items,
        "n_errors": run.n_errors,
        "repeats": run.repeats,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_s": None if duration_s is None else round(duration_s, 3),
        "scores": {
            s.scorer: {
                "value": json_float(s.value),
                "ci_lower": json_float(s.ci_lower),
                "ci_upper": json_float(s.ci_upper),
                "n": s.n,
            }
            for s in scores
        },
        "verdicts": {v.scorer: verdict_document(v) for v in verdicts},
        # per slice (`slices:`): its score and verdict, also under scores and verdicts
        "slices": slices_document(scores, verdicts),
        # what the run measured (monitor/core/fingerprint.py); null for older runs
        "fingerprint": None if run.fingerprint is None else run.fingerprint.to_json(),
        "events": [dict(e) for e in run.events],
        # tokens summed over the answers and their cost; dollars null means unknown, not 0
        "usage": None if run.usage is None else usage_document(run.usage),
        # per judge scorer: the judge as configured and as it answered
        "judges": {} if run.fingerprint is None else judges_document(run.fingerprint),
        "judge_checks": [judge_check_document(c) for c in judge_checks],
    }


def repeats_document(result: ItemResult) -> dict[str, Any] | None:
    """A repeated item's samples (a monitor's `repeats:`): per scorer how many samples
    passed of how many were scored, the scorers whose samples disagree (`flaky`), and each
    sample; null for an item sampled once."""
    if not result.repeats:
        return None
    counts: dict[str, list[int]] = {}
    for sample in result.repeats:
        for name, value in (sample.get("scores") or {}).items():
            passed, scored = counts.setdefault(name, [0, 0])
            counts[name] = [passed + (value >= 0.5), scored + 1]
    return {
        "n": len(result.repeats),
        "passed": {name: {"passed": k, "of": n} for name, (k, n) in sorted(counts.items())},
        "flaky": sorted(name for name, (k, n) in counts.items() if 0 < k < n),
        "samples": [dict(s) for s in result.repeats],
    }


def slices_document(
    scores: Sequence[ScoreSummary], verdicts: Sequence[Verdict]
) -> list[dict[str, Any]]:
    """One entry per scorer slice (`scorer[field=value]`), sorted: its score with CI and
    its paired test's verdict (null before it has a baseline)."""
    by_name = {v.scorer: v for v in verdicts}
    out = []
    for s in sorted(scores, key=lambda s: s.scorer):
        if (cut := parse_slice_name(s.scorer)) is None:
            continue
        v = by_name.get(s.scorer)
        out.append(
            {
                "scorer": cut[0],
                "slice": cut[1],
                "value": json_float(s.value),
                "ci_lower": json_float(s.ci_lower),
                "ci_upper": json_float(s.ci_upper),
                "n": s.n,
                "verdict": None if v is None else v.verdict.value,
                "effect": None if v is None else json_float(v.effect),
                "p_adjusted": None if v is None else json_float(v.p_adjusted),
            }
        )
    return out


def judges_document(fp: Fingerprint) -> dict[str, Any]:
    """Each judge scorer's identity: the configured endpoint, model, parameters, prompt
    digest, scale and votes, and the model and system fingerprint most judge answers
    carried (null when the run had none or the API returns none)."""
    out: dict[str, Any] = {}
    for name, entry in sorted(fp.judges.items()):
        served_model, system_fingerprint = fp.judge_served(name)
        configured = dict(entry.get("judge") or {})
        out[name] = {
            **configured,
            "served_model": served_model,
            "system_fingerprint": system_fingerprint,
        }
    return out


def judge_check_document(check: JudgeCheck) -> dict[str, Any]:
    """One judge-drift sentinel check, without its per-item scores."""
    return {
        "scorer": check.scorer,
        "sentinel": check.sentinel,
        "n": check.n,
        "errors": check.errors,
        "accuracy": json_float(check.accuracy),
        "kappa": json_float(check.kappa),
        "p_value": json_float(check.p_value),
        "moved": check.moved,
        "direction": check.direction,
        "agreement": dict(check.agreement),
        "drift": dict(check.drift),
    }


def usage_document(usage: RunUsage) -> dict[str, Any]:
    """A run's tokens and cost (`monitor.core.cost.RunUsage`)."""
    t = usage.tokens
    return {
        "tokens": {
            "prompt": t.prompt,
            "completion": t.completion,
            "cached": t.cached,
            "reasoning": t.reasoning,
            "answers": t.answers,
        },
        "cost_dollars": json_float(usage.dollars),
        "cost_basis": usage.basis,
    }


def verdict_document(v: Verdict) -> dict[str, Any]:
    """Serialize one verdict with the evidence behind it."""
    return {
        "verdict": v.verdict.value,
        "test": v.test,
        "baseline": v.baseline,
        "baseline_score": json_float(v.baseline_score),
        "statistic": json_float(v.statistic),
        "p_value": json_float(v.p_value),
        "p_adjusted": json_float(v.p_adjusted),
        "effect": json_float(v.effect),
        "effect_ci": None
        if v.effect_ci is None
        else [json_float(v.effect_ci[0]), json_float(v.effect_ci[1])],
        # the smallest drop one run's test could flag at the configured power, at the
        # baseline's noise: "this benchmark can only detect drops of 4 points here"
        "detectable_effect": json_float(v.detectable_effect),
        "changed_items": {
            "pass_to_fail": list(v.changed.pass_to_fail),
            "fail_to_pass": list(v.changed.fail_to_pass),
        },
        "detail": v.detail,
    }


def json_float(value: float | None) -> float | None:
    """A float for JSON: NaN has no JSON form, and None says "not computed" to every reader."""
    return None if value is None or math.isnan(value) else value


def rescore_document(rescore: Rescore, *, items: bool = False) -> dict[str, Any]:
    """One re-score of a run's stored outputs; with `items`, its per-item scores and the
    judge's reasons."""
    s = rescore.summary
    doc: dict[str, Any] = {
        "id": rescore.id,
        "run_id": rescore.run_id,
        "scorer": rescore.scorer,
        "scorer_id": rescore.scorer_id,
        "created_at": None if rescore.created_at is None else rescore.created_at.isoformat(),
        "value": None if s is None else json_float(s.value),
        "ci_lower": None if s is None else json_float(s.ci_lower),
        "ci_upper": None if s is None else json_float(s.ci_upper),
        "n": 0 if s is None else s.n,
        "errors": rescore.errors,
        "skipped": rescore.skipped,
    }
    if items:
        doc["scores"] = dict(rescore.scores)
        doc["judgments"] = {k: dict(v) for k, v in rescore.judgments.items()}
    return doc
