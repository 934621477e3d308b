"""Benchmarks that evolve and slices: real loader, real store, real judge (issue #16).

Each benchmark is a JSONL file loaded by the product's loader, so versions, frames and item
digests are the ones a user's file gets; the model is a scripted endpoint answering by key.
"""

from __future__ import annotations

import functools
import json
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from monitor.api import create_api
from monitor.api.ui import _version_change
from monitor.benchmarks.loader import load_benchmark
from monitor.config import Settings, parse_settings
from monitor.core.model import Benchmark, Item, Response, Run, RunStatus, Verdict, VerdictKind
from monitor.core.scoring import build_scorer
from monitor.core.slices import MAX_SLICE_VALUES
from monitor.documents import run_document
from monitor.errors import BenchmarkError
from monitor.judge import StoreJudge
from monitor.metrics import Metrics, MonitorTarget, build_snapshot
from monitor.ports import EndpointClient
from monitor.runner import Runner, RunRequest
from monitor.storage import SqlStore, open_store
from tests.fakes import ScriptedEndpoint

CATEGORIES = [f"c{i}" for i in range(10)]


def rows(n: int, *, start: int = 0, sliced: bool = False) -> list[dict[str, Any]]:
    out = []
    for k in range(start, start + n):
        row: dict[str, Any] = {"id": f"i{k}", "text": f"question {k}", "label": "yes"}
        if sliced:
            row["category"] = CATEGORIES[k % 10]
        out.append(row)
    return out


def write(path: Path, records: Sequence[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def config(
    data: Path, *, extra: str = "", prompt: str = "Q: {{ text }}", scorers: str = "[exact_match]"
) -> Settings:
    return parse_settings(
        f"""
endpoints: [{{name: ep, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}}]
benchmarks:
  - {{name: b, data: "{data}", reference: label, prompt: "{prompt}", scorers: {scorers}{extra}}}
monitors: [{{name: mon, benchmark: b, endpoints: [ep], drift: {{baseline: "rolling:20"}}}}]
"""
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    yield s
    s.close()


async def run(
    store: SqlStore, cfg: Settings, model: EndpointClient
) -> tuple[Benchmark, list[Verdict]]:
    bench = load_benchmark(cfg.benchmarks[0])
    scorers = tuple(build_scorer(s) for s in bench.scorers)
    hook = functools.partial(StoreJudge(store).judge, monitor=cfg.monitor("mon"), scorers=scorers)
    outcome = await Runner(store).run(
        RunRequest(monitor="mon", benchmark=bench, endpoint=model, concurrency=16), judge=hook
    )
    assert outcome.run.status is RunStatus.SUCCEEDED
    return bench, list(outcome.verdicts)


def main(verdicts: Sequence[Verdict], name: str = "exact_match") -> Verdict:
    return next(v for v in verdicts if v.scorer == name)


def version_info(run: Run) -> dict[str, str]:
    """The labels monitor_benchmark_version_info gets for `run` as the pair's latest run."""
    metrics = Metrics()
    metrics.update(
        build_snapshot(
            latest_runs=[run],
            scores={},
            verdicts={},
            run_counts={},
            item_totals={},
            targets=[MonitorTarget("mon", "b", "ep", None, None, ("exact_match",))],
        )
    )
    text = metrics.render().decode()
    (line,) = [x for x in text.splitlines() if x.startswith("monitor_benchmark_version_info{")]
    assert line.endswith(" 1.0")
    pairs = line.split("{", 1)[1].split("}", 1)[0].split(",")
    return {k: v.strip('"') for k, v in (p.split("=", 1) for p in pairs)}


def model() -> ScriptedEndpoint:
    """Right on every item except every 25th (4% always wrong)."""
    return ScriptedEndpoint({f"i{k}": "no" for k in range(0, 2000, 25)}, name="ep", default="yes")


class TestContinuity:
    async def test_added_items_keep_the_history_of_the_unchanged_ones(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        """20 items added after 5 runs: the next run is judged on the 1,000 unchanged
        items, and breaking 10 of them is then regressed."""
        data = tmp_path / "b.jsonl"
        write(data, rows(1000))
        cfg, m = config(data), model()
        for _ in range(5):
            first, _ = await run(store, cfg, m)
        write(data, rows(1020))
        grown, verdicts = await run(store, cfg, m)
        assert grown.version != first.version
        v = main(verdicts)
        assert v.verdict is VerdictKind.OK, v.detail
        assert "1000 item(s) compared with runs of benchmark version(s)" in v.detail
        assert first.version in v.detail
        assert "20 new item(s) and 0 changed item(s)" in v.detail
        assert v.baseline.startswith("rolling:20 (runs 1,2,3,4,5)")
        judged = store.get_run(6)
        assert judged is not None
        (event,) = [e for e in judged.events if e["kind"] == "benchmark_versions_compared"]
        assert event == {
            "kind": "benchmark_versions_compared",
            "versions": [first.version],
            "new_items": 20,
            "changed_items": 0,
            "cosmetic_template_change": [],
        }
        assert "compared item by item" in _version_change(judged)
        assert version_info(judged) == {
            "benchmark": "b",
            "comparison": "item_by_item",
            "endpoint": "ep",
            "monitor": "mon",
            "version": grown.version,
        }
        before = store.get_run(5)
        assert before is not None
        assert version_info(before)["comparison"] == "own_version"
        assert store.get_run(5) is not None
        assert _version_change(store.get_run(5)).endswith("a new baseline")  # type: ignore[arg-type]
        m.answers.update({f"i{k}": "no" for k in range(1, 11)})  # 10 unchanged items break
        _, verdicts = await run(store, cfg, m)
        v = main(verdicts)
        assert v.verdict is VerdictKind.REGRESSED, v.detail
        assert set(v.changed.pass_to_fail) == {f"i{k}" for k in range(1, 11)}

    async def test_a_changed_reference_leaves_only_that_item_out(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        data = tmp_path / "b.jsonl"
        records = rows(300)
        write(data, records)
        cfg, m = config(data), model()
        for _ in range(5):
            await run(store, cfg, m)
        records[7] = {**records[7], "label": "no"}  # a corrected reference: i7 now fails
        write(data, records)
        _, verdicts = await run(store, cfg, m)
        v = main(verdicts)
        assert v.verdict is VerdictKind.OK, v.detail
        assert "299 item(s) compared" in v.detail
        assert "0 new item(s) and 1 changed item(s)" in v.detail
        assert v.changed.pass_to_fail == ()  # i7's new failure is not compared with its past

    async def test_removed_items_leave_the_comparison(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        data = tmp_path / "b.jsonl"
        write(data, rows(300))
        cfg, m = config(data), model()
        for _ in range(5):
            await run(store, cfg, m)
        write(data, rows(290))
        _, verdicts = await run(store, cfg, m)
        v = main(verdicts)
        assert "290 item(s) compared" in v.detail
        assert "missing from this run" not in v.detail  # retired, not errored

    async def test_a_new_template_starts_a_new_history(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        data = tmp_path / "b.jsonl"
        write(data, rows(300))
        m = model()
        for _ in range(5):
            await run(store, config(data), m)
        _, verdicts = await run(store, config(data, prompt="Question: {{ text }}"), m)
        assert main(verdicts).verdict is VerdictKind.NO_BASELINE

    async def test_a_template_declared_cosmetic_keeps_the_history_and_says_so(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        data = tmp_path / "b.jsonl"
        write(data, rows(300))
        m, cosmetic = model(), ", template_change: cosmetic"
        for _ in range(5):
            await run(store, config(data, extra=cosmetic), m)
        _, verdicts = await run(
            store, config(data, extra=cosmetic, prompt="Question: {{ text }}"), m
        )
        v = main(verdicts)
        assert v.verdict is VerdictKind.OK, v.detail
        assert "300 item(s) compared" in v.detail
        assert "declared cosmetic (template_change: cosmetic)" in v.detail

    async def test_a_changed_scorer_starts_a_new_history(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        data = tmp_path / "b.jsonl"
        write(data, rows(300))
        m = model()
        for _ in range(5):
            await run(store, config(data), m)
        lowered = "[{exact_match: {normalize: [strip, lower]}}]"
        _, verdicts = await run(store, config(data, scorers=lowered), m)
        assert main(verdicts).verdict is VerdictKind.NO_BASELINE


class FlakyModel:
    """An endpoint whose answer to item i is right with probability p[i], drawn from a
    seeded generator per (request count, item): runs differ, the test does not."""

    def __init__(self, p: dict[str, float], seed: int = 7) -> None:
        self.name = "ep"
        self.p = p
        self.seed = seed
        self.calls = 0

    async def predict(self, item: Item) -> Response:
        self.calls += 1
        rng = random.Random(f"{self.seed}:{self.calls // len(self.p)}:{item.key}")
        right = rng.random() < self.p[item.key]
        return Response("yes" if right else "no", 0.01, model_id="m-1")


def sliced_rows() -> list[dict[str, Any]]:
    """1,000 items in 10 categories of 100: half of each category flaky (p = 0.5)."""
    return rows(1000, sliced=True)


def flaky_p() -> dict[str, float]:
    return {f"i{k}": 0.5 if (k // 10) % 2 else 1.0 for k in range(1000)}


class TestSlices:
    async def test_a_slice_regresses_while_the_aggregate_does_not(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        """The flaky items of category c9 fall from 0.5 to 0.1: 40 points of c9's flaky half,
        2 points overall, inside the aggregate's noise; the slice test names c9."""
        data = tmp_path / "b.jsonl"
        write(data, sliced_rows())
        cfg = config(data, extra=", slices: [category]")
        p = flaky_p()
        m = FlakyModel(p)
        for _ in range(20):
            _, verdicts = await run(store, cfg, m)
        quiet = [v for v in verdicts if v.scorer.startswith("exact_match[")]
        assert len(quiet) == 10
        assert {v.verdict for v in quiet} <= {VerdictKind.OK, VerdictKind.WARN}
        for k in range(9, 1000, 10):
            if p[f"i{k}"] < 1.0:
                p[f"i{k}"] = 0.1
        _, verdicts = await run(store, cfg, m)
        by = {v.scorer: v for v in verdicts}
        assert by["exact_match[category=c9]"].verdict is VerdictKind.REGRESSED
        assert by["exact_match"].verdict is not VerdictKind.REGRESSED, by["exact_match"].detail
        others = [by[f"exact_match[category={c}]"].verdict for c in CATEGORIES[:9]]
        assert VerdictKind.REGRESSED not in others

    async def test_the_items_api_lists_one_slices_flipped_items(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        """15 always-right items of c9 break: `changed=true&scorer=<the slice's verdict>`
        lists exactly them; another slice's verdict lists none."""
        data = tmp_path / "b.jsonl"
        write(data, sliced_rows())
        cfg = config(data, extra=", slices: [category]")
        p = flaky_p()
        m = FlakyModel(p)
        for _ in range(10):
            await run(store, cfg, m)
        broken = [f"i{k}" for k in range(9, 1000, 10) if p[f"i{k}"] == 1.0][:15]
        p.update(dict.fromkeys(broken, 0.0))
        _, verdicts = await run(store, cfg, m)
        sliced = {v.scorer: v for v in verdicts}["exact_match[category=c9]"]
        assert sliced.verdict is VerdictKind.REGRESSED, sliced.detail
        (latest,) = store.latest_runs()
        app = create_api(SimpleNamespace(store=store, settings=cfg))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def flipped(scorer: str) -> list[str]:
                got = await client.get(
                    f"/api/v1/runs/{latest.id}/items",
                    params={"changed": "true", "scorer": scorer, "limit": 1000},
                )
                assert got.status_code == 200, got.text
                return sorted(i["item_key"] for i in got.json()["items"])

            assert await flipped("exact_match[category=c9]") == sorted(broken)
            assert await flipped("exact_match[category=c3]") == []

    async def test_slice_scores_are_stored_and_exported(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        data = tmp_path / "b.jsonl"
        write(data, sliced_rows())
        cfg = config(data, extra=", slices: [category]")
        m = FlakyModel(flaky_p())
        await run(store, cfg, m)
        (latest,) = store.latest_runs()
        scores = store.run_scores([latest.id])[latest.id]
        doc = run_document(latest, scores, store.run_verdicts([latest.id])[latest.id])
        assert [s["slice"] for s in doc["slices"]] == [f"category={c}" for c in CATEGORIES]
        assert all(s["n"] == 100 for s in doc["slices"])
        metrics = Metrics()
        target = MonitorTarget(
            "mon", "b", "ep", None, None, ("exact_match",), slice_floors={"category=c1": 0.6}
        )
        metrics.update(
            build_snapshot(
                latest_runs=[latest],
                scores={latest.id: scores},
                verdicts={},
                run_counts={},
                item_totals={},
                targets=[target],
            )
        )
        text = metrics.render().decode()
        assert (
            'monitor_slice_score{benchmark="b",endpoint="ep",monitor="mon",scorer="exact_match",slice="category=c3"}'
            in text
        )
        assert 'scorer="exact_match[category=c3]"' not in text  # never an unbounded scorer label
        floor = 'benchmark="b",monitor="mon",scorer="exact_match",slice="category=c1"'
        assert f"monitor_slice_score_floor{{{floor}}} 0.6" in text

    def test_a_slice_value_that_is_not_a_category_names_the_item(self, tmp_path: Path) -> None:
        data = tmp_path / "b.jsonl"
        records = rows(5, sliced=True)
        records[3]["category"] = {"nested": True}
        write(data, records)
        with pytest.raises(BenchmarkError) as raised:
            load_benchmark(config(data, extra=", slices: [category]").benchmarks[0])
        assert f"{data}:4: slice field 'category' must be a string, number or boolean" in str(
            raised.value
        )

    def test_a_floor_on_a_slice_the_benchmark_lacks_fails_check_config(
        self, tmp_path: Path
    ) -> None:
        data = tmp_path / "b.jsonl"
        write(data, rows(20, sliced=True))
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text(
            f"""endpoints: [{{name: ep, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}}]
benchmarks:
  - {{name: b, data: "{data}", reference: label, scorers: [exact_match], slices: [category]}}
monitors:
  - name: mon
    benchmark: b
    endpoints: [ep]
    slice_floors: {{"category=c1": 0.5, "category=c01": 0.5}}
""",
            encoding="utf-8",
        )
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "check-config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        out = done.stdout + done.stderr
        assert f"{cfg}:8: monitors[0].slice_floors: no item of benchmark 'b' is in slice " in out
        assert "'category=c01' (its slices: category=c0, category=c1," in out
        assert "'category=c1'" not in out  # the one that exists is fine

    def test_more_slice_values_than_the_cap_fail_check_config(self, tmp_path: Path) -> None:
        data = tmp_path / "b.jsonl"
        write(data, [{**r, "category": f"v{k}"} for k, r in enumerate(rows(MAX_SLICE_VALUES + 1))])
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text(
            f"""endpoints: [{{name: ep, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}}]
benchmarks:
  - name: b
    data: "{data}"
    reference: label
    scorers: [exact_match]
    slices: [category]
monitors: [{{name: mon, benchmark: b, endpoints: [ep]}}]
""",
            encoding="utf-8",
        )
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "check-config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        out = done.stdout + done.stderr
        assert f"{cfg}:7: benchmarks[0].slices" in out
        assert f"{data}:{MAX_SLICE_VALUES + 1}" in out
        assert f"more than {MAX_SLICE_VALUES} slice values" in out
