"""Judging a finished run: fetch its baseline from the store, apply the policy, store verdicts.

The statistics are pure (`monitor.core.policy`); this module only gathers their input:
the baseline runs (`rolling:K` succeeded runs of the benchmark's frame, the versions measured
alike, with as many samples per item, not judged regressed or degraded, or the pinned
runs), their per-item scores (of other versions only the unchanged items), the CUSUM
state, and
the operational signals for distribution drift (latency, output length, and the
predicted-label mix when a classification scorer is configured).

All checks of one run are corrected together (Benjamini-Hochberg across the run's scorers
and drift signals, after the policy's time correction over its horizon). Monitors fire on
independent schedules, so the run is the natural cycle; see docs/statistics.md.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import sys
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.clock import utc_now
from monitor.config import MonitorSettings
from monitor.core.evidence import RunEvidence
from monitor.core.fingerprint import (
    JudgeServedChange,
    ServedChange,
    judged_alike,
    served_alike,
    served_change,
)
from monitor.core.judging import JUDGE_KINDS, JudgeCheck, Rescored
from monitor.core.model import Run, RunStatus, Verdict, VerdictKind
from monitor.documents import usage_document
from monitor.ports import Clock, JudgeStore, ScorerInfo

if TYPE_CHECKING:  # the policy pulls in scipy: import it when the first run is judged
    from monitor.core.policy import DriftSettings, Evaluation

_POLICY = "monitor.core.policy"
# earlier re-scores of a calibration set the sentinel compares a new one with
SENTINEL_HISTORY = 10
_loading: threading.Thread | None = None  # StoreJudge.prepare's import, once per process


def rebaseline(
    store: JudgeStore, *, monitor: str, endpoint: str, run_ids: Sequence[int], now: datetime
) -> None:
    """Pin `run_ids` as the new normal of (monitor, endpoint) and restart its detectors.

    With `baseline: pinned` the pinned runs are the baseline. With `rolling:K` pinning
    acknowledges a change: the window restarts from the pinned runs (runs judged
    regressed included), and later runs roll in after them.
    """
    store.pin_baseline(monitor=monitor, endpoint=endpoint, run_ids=run_ids, now=now)
    store.reset_sequential_state(monitor=monitor, endpoint=endpoint)


def drift_settings(mon: MonitorSettings) -> DriftSettings:
    """The policy's settings from a monitor's `drift:` section."""
    from monitor.core.policy import DriftSettings  # noqa: PLC0415 - see TYPE_CHECKING above

    d = mon.drift
    return DriftSettings(
        alpha=d.alpha,
        min_effect=d.min_effect,
        sequential=d.sequential,
        arl0=d.arl0,
        horizon_runs=d.horizon_runs,
        warn_alpha=max(d.alpha, 0.05),  # warn at 5% unless alpha itself is looser
    )


class StoreJudge:
    """Reads baselines from the store, applies the policy, stores verdicts.

    The judged run's own evidence comes from the runner, in memory; the store is asked
    only for the baseline: its item scores per scorer, its run-level scores (split gaps)
    and the narrow drift signals (`JudgeStore.baseline_signals`, no output text).
    """

    def __init__(self, store: JudgeStore, *, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    def prepare(self) -> None:
        """Import the statistics stack on a thread while the run's requests are in flight.

        SciPy and the policy take ~0.6-1 s to import, which a one-run command would
        otherwise pay after its last answer (docs/performance.md, "Fixed cost of a run").
        The daemon imports them at start, so there this returns at once.
        """
        global _loading  # noqa: PLW0603 - one loader per process
        if _loading is None and _POLICY not in sys.modules:
            _loading = threading.Thread(
                target=importlib.import_module, args=(_POLICY,), name="load-stats", daemon=True
            )
            _loading.start()

    async def judge(
        self,
        run: Run,
        evidence: RunEvidence,
        monitor: MonitorSettings,
        scorers: Sequence[ScorerInfo],
    ) -> list[Verdict]:
        return await asyncio.to_thread(self.judge_sync, run, evidence, monitor, scorers)

    def _baseline(
        self, run: Run, mon: MonitorSettings, lineage: Mapping[str, str | None]
    ) -> tuple[list[int], int, str]:
        """Baseline run ids (oldest first), how many are required, and a description.

        Runs of every version in the run's lineage are candidates: versions measured alike,
        whose unchanged items are compared (`_comparable`)."""
        store = self._store
        k = mon.drift.rolling_window
        versions = sorted({run.benchmark_version, *lineage})
        pinned_all = store.pinned_run_ids(monitor=run.monitor, endpoint=run.endpoint)
        pinned_runs = store.get_runs([rid for rid in pinned_all if rid < run.id])
        pinned = [
            rid
            for rid in pinned_all
            if (r := pinned_runs.get(rid)) is not None
            and r.benchmark_version in versions
            and r.repeats == run.repeats
        ]
        if k is None:  # pinned: only pinned runs of this frame and sample count count
            listed = ",".join(map(str, pinned)) or "none of this benchmark version"
            return pinned, max(1, len(pinned_all)), f"pinned (runs {listed})"
        rolling = store.baseline_run_ids(
            monitor=run.monitor,
            endpoint=run.endpoint,
            benchmark_version=versions,
            k=k,
            before_run_id=run.id,
            repeats=run.repeats,
        )
        if pinned:  # re-baselined: the window restarts at the pinned runs
            ids = sorted({*pinned, *(rid for rid in rolling if rid > max(pinned))})[-k:]
            return (
                ids,
                min(k, len(pinned)),
                f"rolling:{k} from pin (runs {','.join(map(str, ids))})",
            )
        listed = ",".join(map(str, rolling)) or "none yet"
        return rolling, mon.drift.required_runs, f"rolling:{k} (runs {listed})"

    def judge_sync(
        self,
        run: Run,
        evidence: RunEvidence,
        mon: MonitorSettings,
        scorers: Sequence[ScorerInfo],
    ) -> list[Verdict]:
        """Evaluate every scorer and drift signal of `run`; store and return the verdicts."""
        from monitor.core.policy import ScorerHistory, decide, evaluate_scorer  # noqa: PLC0415
        from monitor.core.slices import parse_slice_name, slice_policy  # noqa: PLC0415

        built = {s.name: s for s in scorers}
        policy = drift_settings(mon)
        store = self._store
        lineage = store.benchmark_lineage(run.benchmark, run.benchmark_version)
        ids, need, description = self._baseline(run, mon, lineage)
        # the baseline runs, read once for the checks below that need them: another served
        # model or judge (fingerprints), other benchmark versions (lineage)
        versions = set(lineage) - {run.benchmark_version}
        runs = store.get_runs(ids) if ids and (run.fingerprint or versions) else {}
        change, ids, description = self._served(run, mon, ids, description, runs)
        judges = [s.name for s in scorers if s.kind in JUDGE_KINDS]
        judged = self._judged_alike(run, ids, judges, runs)
        comparable = self._comparable(run, ids, runs, lineage)
        slices: dict[str, list[str]] = {}  # scorer -> its slices' evidence names
        for name in evidence.scores:
            if (parsed := parse_slice_name(name)) is not None and parsed[0] in built:
                slices.setdefault(parsed[0], []).append(name)
        evaluations: list[Evaluation] = []
        for name, current in evidence.scores.items():
            scorer = built.get(name)
            if scorer is None:  # subsets: slices below, `scorer[split]` by their split gap
                continue
            own_ids, own_description = ids, description
            if name in judged:  # a judge scorer's baseline: runs graded by the same judge
                own_ids, judge_change = judged[name]
                if judge_change is not None:
                    own_description = f"{description}; {judge_change}"
            per_run = comparable.restrict(store.item_scores(own_ids, name) if own_ids else {})
            tests = [(name, current, policy)]
            sliced = sorted(slices.get(name, ()))
            tests += [(s, evidence.scores[s], slice_policy(policy, len(sliced))) for s in sliced]
            for check, scores, settings in tests:
                evaluations.append(
                    evaluate_scorer(
                        ScorerHistory(
                            scorer=check,
                            # with repeats a score is a share of samples: the continuous test
                            binary=scorer.binary and run.repeats == 1,
                            current=scores,
                            baseline=[_only(per_run.get(rid, {}), scores) for rid in own_ids]
                            if check != name
                            else [per_run.get(rid, {}) for rid in own_ids],
                            baseline_description=own_description,
                            required_runs=need,
                            cusum_state=store.get_sequential_state(
                                run.monitor, run.endpoint, check, run.benchmark_version
                            ),
                            coverage=comparable.coverage(scores),
                        ),
                        settings,
                    )
                )
        if ids and run.status is RunStatus.SUCCEEDED:
            evaluations.extend(self._split_gaps(evidence.scores, ids, description, policy))
            labels = any(s.kind == "classification" for s in scorers)
            evaluations.extend(self._drift(evidence, ids, description, policy, labels))
        verdicts = decide(evaluations, policy, degraded=run.status is RunStatus.DEGRADED)
        if change is not None:  # every verdict of the run says what it was judged against
            verdicts = [replace(v, detail=f"{v.detail} Note: {change}.".lstrip()) for v in verdicts]
        now = self._clock()
        checks = [self._sentinel(run, r, now) for r in evidence.calibration.values()]
        verdicts = _with_sentinels(verdicts, checks)
        for v in verdicts:
            if v.cusum_state is not None:
                store.set_sequential_state(
                    run.monitor, run.endpoint, v.scorer, run.benchmark_version, v.cusum_state, now
                )
        store.save_verdicts(run.id, verdicts)
        events = [change.to_json()] if change is not None else []
        events += [c.to_json() for _, c in judged.values() if c is not None]
        events += comparable.events()
        events += [  # what the judges' calls cost this run (docs/judges.md)
            {"kind": "judge_usage", "scorer": name, **usage_document(usage)}
            for name, usage in sorted(evidence.judge_usage.items())
        ]
        store.set_run_events(run.id, events)
        return verdicts

    def _comparable(
        self,
        run: Run,
        ids: Sequence[int],
        runs: Mapping[int, Run],
        lineage: Mapping[str, str | None],
    ) -> _Comparable:
        """Which items of each baseline run are the same question as in this run: every
        item of runs of this run's version; of runs of another version in the lineage,
        the items whose key and digest (fields and reference) are unchanged."""
        store = self._store
        version_of = {rid: r.benchmark_version for rid in ids if (r := runs.get(rid))}
        others = sorted({v for v in version_of.values() if v != run.benchmark_version})
        if not others:
            return _Comparable()
        digests = store.item_digests(run.benchmark, [run.benchmark_version, *others])
        mine = digests.get(run.benchmark_version, {})
        same = {
            v: frozenset(
                k for k, d in digests.get(v, {}).items() if d is not None and mine.get(k) == d
            )
            for v in others
        }
        keys = {rid: same[v] if v in same else frozenset(mine) for rid, v in version_of.items()}
        before = set().union(*(digests.get(v, {}) for v in others))
        known = set().union(*keys.values())
        own = lineage.get(run.benchmark_version)
        worded = sorted({v for v in others if lineage.get(v) != own})
        return _Comparable(
            keys=keys,
            new=frozenset(k for k in mine if k not in before and k not in known),
            changed=frozenset(k for k in mine if k in before and k not in known),
            versions=tuple(others),
            reworded=tuple(worded),
        )

    def _judged_alike(
        self, run: Run, ids: list[int], names: Sequence[str], runs: Mapping[int, Run]
    ) -> dict[str, tuple[list[int], JudgeServedChange | None]]:
        """Per judge scorer, the baseline runs its judge graded as it graded this run
        (same served model and system fingerprint): another judge is another history."""
        if not names or not ids or run.fingerprint is None:
            return dict.fromkeys(names, (ids, None))
        prints = {rid: fp for rid in ids if (r := runs.get(rid)) and (fp := r.fingerprint)}
        out: dict[str, tuple[list[int], JudgeServedChange | None]] = {}
        for name in names:
            kept, judge_change = judged_alike(run.fingerprint, prints, name)
            unprinted = [rid for rid in ids if rid not in prints]
            out[name] = (sorted({*kept, *unprinted}), judge_change)
        return out

    def _sentinel(self, run: Run, rescored: Rescored, now: datetime) -> JudgeCheck:
        """Test a calibration re-score against the judge's earlier ones; store the check."""
        from monitor.core.stats.sentinel import agreement, judge_drift  # noqa: PLC0415

        store = self._store
        pinned = [
            rid
            for rid in store.pinned_run_ids(monitor=run.monitor, endpoint=run.endpoint)
            if rid < run.id
        ]
        history = store.judge_history(
            monitor=run.monitor,
            endpoint=run.endpoint,
            scorer=rescored.scorer,
            sentinel=rescored.sentinel,
            k=SENTINEL_HISTORY,
            before_run_id=run.id,
            pinned=pinned,
        )
        agree = agreement(rescored.scores, rescored.labels)
        drift = judge_drift(rescored.scores, history)
        check = JudgeCheck(
            monitor=run.monitor,
            endpoint=run.endpoint,
            scorer=rescored.scorer,
            sentinel=rescored.sentinel,
            scores=dict(rescored.scores),
            n=len(rescored.scores),
            errors=rescored.errors,
            accuracy=_finite_or_none(agree.accuracy),
            kappa=_finite_or_none(agree.kappa),
            p_value=drift.p_value,
            moved=drift.moved,
            direction=drift.direction,
            agreement=agree.to_json(),
            drift=drift.to_json(),
            run_id=run.id,
        )
        store.save_judge_check(run.id, check, now)
        return check

    def _served(
        self,
        run: Run,
        mon: MonitorSettings,
        ids: list[int],
        description: str,
        runs: Mapping[int, Run],
    ) -> tuple[ServedChange | None, list[int], str]:
        """Whether the run was served another model than its baseline; with
        `on_model_change: rebaseline`, the baseline keeps only runs served alike."""
        if run.fingerprint is None or not ids:
            return None, ids, description
        current = run.fingerprint
        prints = {rid: fp for rid in ids if (r := runs.get(rid)) and (fp := r.fingerprint)}
        change = served_change(current, prints.values())
        if change is None or mon.drift.on_model_change == "keep":
            return change, ids, description
        kept = [rid for rid in ids if rid in prints and served_alike(current, prints[rid])]
        left = len(ids) - len(kept)
        return change, kept, f"{description}, {left} run(s) served otherwise left out"

    def _split_gaps(
        self,
        scores: Mapping[str, Mapping[str, float]],
        ids: Sequence[int],
        description: str,
        policy: DriftSettings,
    ) -> list[Evaluation]:
        """Public/private gap checks for scorers whose items carry those split values."""
        from monitor.core.split import split_gap_evaluation  # noqa: PLC0415 - see policy import

        out = []
        baseline = self._store.run_scores(ids) if ids else {}
        for name in sorted(scores):
            public, private = scores.get(f"{name}[public]"), scores.get(f"{name}[private]")
            if "[" in name or public is None or private is None:
                continue
            gaps = []
            for rid in ids:
                by = {s.scorer: s.value for s in baseline.get(rid, ())}
                pub, priv = by.get(f"{name}[public]"), by.get(f"{name}[private]")
                if pub is not None and priv is not None and not math.isnan(pub - priv):
                    gaps.append(pub - priv)
            out.append(
                split_gap_evaluation(
                    f"{name}:split_gap",
                    list(public.values()),
                    list(private.values()),
                    gaps,
                    policy,
                    baseline_description=description,
                )
            )
        return out

    def _drift(
        self,
        current: RunEvidence,
        ids: Sequence[int],
        description: str,
        policy: DriftSettings,
        labels: bool,
    ) -> list[Evaluation]:
        """Distribution drift of latency, output length, completion tokens (where the
        answers report them) and (for classifiers) labels."""
        from monitor.core.policy import evaluate_categories, evaluate_distribution  # noqa: PLC0415

        base = self._store.baseline_signals(ids, labels=labels)
        out = [
            evaluate_distribution(
                "latency_seconds",
                base.latencies,
                list(current.latencies),
                policy,
                baseline_description=description,
                lower_is_better=True,  # a faster endpoint is not a warning
            ),
            evaluate_distribution(
                "output_length_chars",
                base.output_lengths,
                list(current.output_lengths),
                policy,
                baseline_description=description,
            ),
        ]
        if current.completion_tokens:  # verbosity drift: twice the words cost twice as much
            out.append(
                evaluate_distribution(
                    "completion_tokens",
                    base.completion_tokens,
                    list(current.completion_tokens),
                    policy,
                    baseline_description=description,
                )
            )
        if labels:
            out.append(
                evaluate_categories(
                    "predicted_label",
                    Counter(base.labels),
                    Counter(current.labels),
                    policy,
                    baseline_description=description,
                )
            )
        return out


@dataclass(frozen=True, slots=True)
class _Comparable:
    """The items of a baseline that spans benchmark versions that are paired with the run.

    `keys` is None when every baseline run is of the run's own version (nothing to drop).
    """

    keys: Mapping[int, frozenset[str]] | None = None  # run id -> comparable item keys
    new: frozenset[str] = frozenset()  # in no baseline version
    changed: frozenset[str] = frozenset()  # in one, but asked or expected otherwise
    versions: tuple[str, ...] = ()  # the other versions in the baseline
    reworded: tuple[str, ...] = ()  # of those, the ones with another prompt wording

    def restrict(
        self, per_run: Mapping[int, Mapping[str, float]]
    ) -> Mapping[int, Mapping[str, float]]:
        if self.keys is None:
            return per_run  # one version: nothing to drop
        out: dict[int, dict[str, float]] = {}
        for rid, scores in per_run.items():
            keep = self.keys.get(rid, frozenset())
            out[rid] = {k: v for k, v in scores.items() if k in keep}
        return out

    def events(self) -> list[dict[str, Any]]:
        """The run's record of a cross-version comparison (the API's run events; the web
        view's trend marks the version change as continued)."""
        if self.keys is None:
            return []
        return [
            {
                "kind": "benchmark_versions_compared",
                "versions": list(self.versions),
                "new_items": len(self.new),
                "changed_items": len(self.changed),
                "cosmetic_template_change": list(self.reworded),
            }
        ]

    def coverage(self, current: Mapping[str, float]) -> str | None:
        """The detail's account of a cross-version comparison, for these items."""
        if self.keys is None:
            return None
        new = sum(1 for k in current if k in self.new)
        changed = sum(1 for k in current if k in self.changed)
        listed = ", ".join(self.versions)
        text = (
            f"with runs of benchmark version(s) {listed} too; {new} new item(s) and "
            f"{changed} changed item(s) (fields or reference) left out"
        )
        if self.reworded:
            text += (
                f"; the prompt template differs from version(s) {', '.join(self.reworded)}, "
                "declared cosmetic (template_change: cosmetic)"
            )
        return text


def _only(scores: Mapping[str, float], keys: Mapping[str, float]) -> dict[str, float]:
    """The baseline scores of a slice's items (a slice is the smaller side: walk its keys)."""
    return {k: v for k in keys if (v := scores.get(k)) is not None}


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _agreement_text(check: JudgeCheck) -> str:
    if check.accuracy is None:
        return f"no labelled item was graded ({check.errors} judge error(s))"
    kappa = "undefined" if check.kappa is None else f"{check.kappa:.2f}"
    return f"agreement with the human labels {check.accuracy:.1%}, kappa {kappa} (n={check.n})"


def _with_sentinels(verdicts: list[Verdict], checks: Sequence[JudgeCheck]) -> list[Verdict]:
    """Add one verdict per sentinel check (`<scorer>:judge`), and turn the judged scorer's
    verdicts into `judge_drift` when its judge moved: a score change graded by a moved
    judge is not the model's. Its CUSUM is left where it was."""
    moved = {c.scorer: c for c in checks if c.moved}
    out: list[Verdict] = []
    for v in verdicts:
        check = next(
            (c for name, c in moved.items() if v.scorer.startswith((f"{name}[", f"{name}:"))),
            moved.get(v.scorer),
        )
        if check is None or v.verdict is VerdictKind.DEGRADED:
            out.append(v)
            continue
        p = f", p={check.p_value:.2g}" if check.p_value is not None else ""
        note = (
            f"The judge of {check.scorer} moved ({check.direction}) on its calibration set{p}: "
            "this run's change is not attributed to the model. "
        )
        out.append(
            replace(v, verdict=VerdictKind.JUDGE_DRIFT, detail=note + v.detail, cusum_state=None)
        )
    for c in checks:
        drift_detail = str(c.drift.get("detail", ""))
        out.append(
            Verdict(
                scorer=f"{c.scorer}:judge",
                verdict=VerdictKind.JUDGE_DRIFT if c.moved else VerdictKind.OK,
                test="judge sentinel",
                baseline="earlier re-scores of the calibration set",
                p_value=c.p_value,
                effect=_finite_or_none(c.drift.get("effect")),
                detail=f"{drift_detail} {_agreement_text(c)}.".strip(),
            )
        )
    return out
