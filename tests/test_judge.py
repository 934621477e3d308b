"""Judging runs against baselines through the real store: rolling, pinned and re-baselined."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import Settings, parse_settings
from monitor.core.model import Benchmark, Item, RunStatus, ScorerSpec, VerdictKind
from monitor.core.scoring import build_scorer
from monitor.judge import StoreJudge, rebaseline
from monitor.ports import JudgeHook
from monitor.runner import Runner, RunRequest
from monitor.storage import SqlStore, open_store
from tests.fakes import ScriptedEndpoint

N = 300
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def settings(baseline: str = "rolling:3", drift: str | None = None) -> Settings:
    drift = drift if drift is not None else f'{{baseline: "{baseline}"}}'
    return parse_settings(
        f"""
endpoints: [{{name: ep, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}}]
benchmarks: [{{name: b, data: x.jsonl, reference: label, scorers: [exact_match]}}]
monitors: [{{name: mon, benchmark: b, endpoints: [ep], drift: {drift}}}]
"""
    )


def Model() -> ScriptedEndpoint:  # noqa: N802 - reads as the model under test
    """Answers correctly ("yes") except on every tenth item (10% always wrong)."""
    return ScriptedEndpoint({f"i{k}": "no" for k in range(0, N, 10)}, name="ep", default="yes")


def break_items(model: ScriptedEndpoint, keys: set[str]) -> None:
    """From now on the model answers these items wrongly."""
    model.answers.update(dict.fromkeys(keys, "no"))


BENCH = Benchmark(
    name="b",
    version="v1",
    items=tuple(Item(key=f"i{k}", fields={}, prompt="p", reference="yes") for k in range(N)),
    scorers=(ScorerSpec("exact_match", "exact_match"),),
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    yield s
    s.close()


def judge_hook(store: SqlStore, cfg: Settings, bench: Benchmark = BENCH) -> JudgeHook:
    """The judge bound to monitor `mon`'s settings, as `RunService` binds it."""
    scorers = tuple(build_scorer(s) for s in bench.scorers)
    return functools.partial(StoreJudge(store).judge, monitor=cfg.monitor("mon"), scorers=scorers)


async def run_once(store: SqlStore, model: ScriptedEndpoint, cfg: Settings) -> tuple[int, str]:
    outcome = await Runner(store).run(
        RunRequest(monitor="mon", benchmark=BENCH, endpoint=model, concurrency=8),
        judge=judge_hook(store, cfg),
    )
    assert outcome.run.status is RunStatus.SUCCEEDED
    verdict = next(v for v in outcome.verdicts if v.scorer == "exact_match")
    return outcome.run.id, verdict.verdict.value


class TestRolling:
    async def test_no_baseline_until_k_runs_then_ok(self, store: SqlStore) -> None:
        """The first K runs say no_baseline; a steady model is then ok."""
        model, cfg = Model(), settings()
        verdicts = [(await run_once(store, model, cfg))[1] for _ in range(5)]
        assert verdicts == ["no_baseline"] * 3 + ["ok", "ok"]

    async def test_default_window_starts_at_five_runs_and_grows_to_twenty(
        self, store: SqlStore
    ) -> None:
        """`rolling:20` (the default) judges from the 6th run on, over up to 20 runs."""
        model, cfg = Model(), settings(drift="{}")
        assert cfg.monitor("mon").drift.baseline == "rolling:20"
        runs = [await run_once(store, model, cfg) for _ in range(23)]
        assert [verdict for _, verdict in runs] == ["no_baseline"] * 5 + ["ok"] * 18
        last = runs[-1][0]
        (main,) = [v for v in store.run_verdicts([last])[last] if v.scorer == "exact_match"]
        window = [run_id for run_id, _ in runs[2:22]]  # the 20 runs before the last
        assert main.baseline == f"rolling:20 (runs {','.join(map(str, window))})"

    async def test_min_baseline_runs_is_configurable(self, store: SqlStore) -> None:
        """`min_baseline_runs` sets how many runs the window needs before verdicts."""
        model = Model()
        cfg = settings(drift='{baseline: "rolling:10", min_baseline_runs: 2}')
        verdicts = [(await run_once(store, model, cfg))[1] for _ in range(3)]
        assert verdicts == ["no_baseline"] * 2 + ["ok"]

    async def test_regression_detected_and_kept_out_of_baseline(self, store: SqlStore) -> None:
        """Breaking 3% of stable items is regressed, and the drop stays detected next run."""
        model, cfg = Model(), settings()
        for _ in range(3):
            await run_once(store, model, cfg)
        break_items(model, {f"i{k}" for k in range(1, 28, 3)})  # 8 stable items break (+ i10)
        first_id, first = await run_once(store, model, cfg)
        _, second = await run_once(store, model, cfg)
        assert (first, second) == ("regressed", "regressed")
        verdict = store.run_verdicts([first_id])[first_id]
        main = next(v for v in verdict if v.scorer == "exact_match")
        assert len(main.changed.pass_to_fail) == 8
        assert main.effect is not None
        assert main.effect == pytest.approx(-8 / N)
        assert "rolling:3 (runs 1,2,3)" in main.baseline

    async def test_rebaseline_accepts_the_new_level(self, store: SqlStore) -> None:
        """Pinning the regressed runs makes the new level normal: the next run is ok."""
        model, cfg = Model(), settings()
        for _ in range(3):
            await run_once(store, model, cfg)
        break_items(model, {f"i{k}" for k in range(1, 28, 3)})
        a, _ = await run_once(store, model, cfg)
        b, _ = await run_once(store, model, cfg)
        rebaseline(store, monitor="mon", endpoint="ep", run_ids=[a, b], now=NOW)
        _, after = await run_once(store, model, cfg)
        assert after == "ok"

    async def test_drift_signals_are_judged(self, store: SqlStore) -> None:
        """Latency and output length get distribution-drift verdicts once a baseline exists."""
        model, cfg = Model(), settings()
        for _ in range(3):
            await run_once(store, model, cfg)
        run_id, _ = await run_once(store, model, cfg)
        names = {v.scorer for v in store.run_verdicts([run_id])[run_id]}
        assert {"exact_match", "latency_seconds", "output_length_chars"} <= names


class TestPinned:
    async def test_pinned_mode_uses_only_pinned_runs(self, store: SqlStore) -> None:
        """With `baseline: pinned`, nothing is judged until runs are pinned."""
        model, cfg = Model(), settings("pinned")
        first, verdict = await run_once(store, model, cfg)
        assert verdict == "no_baseline"
        rebaseline(store, monitor="mon", endpoint="ep", run_ids=[first], now=NOW)
        break_items(model, {f"i{k}" for k in range(1, 60, 3)})  # 18 flips against one run: McNemar
        _, verdict = await run_once(store, model, cfg)
        assert verdict == VerdictKind.REGRESSED.value


class TestSplit:
    async def test_public_private_gap_is_tracked_and_tested(self, store: SqlStore) -> None:
        """Split scores are reported per split and a widening public-private gap warns."""
        items = tuple(
            Item(
                key=f"i{k}",
                fields={},
                prompt="p",
                reference="yes",
                split="private" if k % 3 == 0 else "public",
            )
            for k in range(N)
        )
        bench = Benchmark("b", "v1", items, (ScorerSpec("exact_match", "exact_match"),))
        model, cfg = Model(), settings()
        runner = Runner(store)

        async def go() -> dict[str, str]:
            out = await runner.run(
                RunRequest(monitor="mon", benchmark=bench, endpoint=model, concurrency=8),
                judge=judge_hook(store, cfg, bench),
            )
            assert {"exact_match[public]", "exact_match[private]"} <= {s.scorer for s in out.scores}
            return {v.scorer: v.verdict.value for v in out.verdicts}

        for _ in range(3):
            await go()
        assert (await go())["exact_match:split_gap"] == "ok"
        # private items get worse while public ones stay: the gap widens
        break_items(model, {f"i{k}" for k in range(3, N, 9)})
        verdicts = await go()
        assert verdicts.get("exact_match:split_gap") == "warn", verdicts


class TestQueries:
    async def test_judging_reads_no_item_result_of_the_judged_run_and_no_baseline_text(
        self, store: SqlStore
    ) -> None:
        """Judging selects only baseline rows, and the signal query reads no output text."""
        model, cfg = Model(), settings()
        ids = [(await run_once(store, model, cfg))[0] for _ in range(3)]
        statements: list[tuple[str, Any]] = []

        def record(_c: Any, _cur: Any, statement: str, params: Any, *_a: Any) -> None:
            statements.append((statement, params))

        engine = store._engine
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            run_id, verdict = await run_once(store, model, cfg)
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        assert verdict == "ok"
        reads = [(s, p) for s, p in statements if "FROM item_result" in s]
        assert reads, "the baseline's item scores and signals are read"
        for statement, params in reads:
            bound = list(params.values()) if isinstance(params, dict) else list(params)
            assert run_id not in bound, f"reads the judged run's items: {statement}"
            assert set(bound) & set(ids)
        signals = [s for s, _ in reads if "length(" in s]
        assert len(signals) == 1
        select = signals[0].split("FROM")[0]
        assert "item_result.output" not in select.replace("length(item_result.output)", "")

    async def test_pinned_runs_are_read_in_one_query(self, store: SqlStore) -> None:
        """With several pinned runs, judging reads the pinned runs with one statement."""
        model, cfg = Model(), settings()
        ids = [(await run_once(store, model, cfg))[0] for _ in range(4)]
        rebaseline(store, monitor="mon", endpoint="ep", run_ids=ids, now=NOW)
        statements: list[str] = []

        def record(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
            statements.append(statement)

        sa.event.listen(store._engine, "before_cursor_execute", record)
        try:
            await run_once(store, model, cfg)
        finally:
            sa.event.remove(store._engine, "before_cursor_execute", record)
        run_reads = [s for s in statements if s.lstrip().startswith("SELECT run.id")]
        in_lists = [s for s in run_reads if "run.id IN (" in s]
        assert len(in_lists) == 1, in_lists
