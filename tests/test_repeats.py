"""`repeats: n`: every item sampled n times, scored by the samples' mean (issue #13).

The real runner, store and judge; the endpoint answers each sample from a per-item script,
so which samples pass is known exactly.
"""

from __future__ import annotations

import asyncio
import functools
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from monitor.config import MonitorSettings, parse_settings
from monitor.core.model import (
    Benchmark,
    ErrorKind,
    Item,
    Response,
    RunStatus,
    ScorerSpec,
    Verdict,
    VerdictKind,
)
from monitor.core.scoring import build_scorer
from monitor.documents import repeats_document, run_document
from monitor.errors import ConfigError
from monitor.judge import StoreJudge
from monitor.runner import Runner, RunOutcome, RunRequest
from monitor.storage import SqlStore, open_store

N = 300
BENCH = Benchmark(
    name="b",
    version="v1",
    items=tuple(Item(key=f"i{k}", fields={}, prompt="p", reference="yes") for k in range(N)),
    scorers=(ScorerSpec("exact_match", "exact_match"),),
)


class Sampler:
    """Answers sample s of item k with script[k][s % len] ("yes" right, "no" wrong, "!" an
    endpoint error), or "yes" with probability p[k] from a seeded generator."""

    def __init__(
        self, script: Mapping[str, str] | None = None, p: dict[str, float] | None = None
    ) -> None:
        self.name = "ep"
        self.script = dict(script or {})
        self.p = p if p is not None else {}  # shared: a test changes the rates mid-way
        self.calls: Counter[str] = Counter()
        self.rng = random.Random(3)

    async def predict(self, item: Item) -> Response:
        sample = self.calls[item.key]
        self.calls[item.key] += 1
        if item.key in self.script:
            answer = self.script[item.key][sample % len(self.script[item.key])]
            if answer == "!":
                return Response(None, 0.01, error=ErrorKind.TIMEOUT, error_detail="10s")
            return Response("yes" if answer == "y" else "no", 0.01, model_id="m-1")
        right = self.rng.random() < self.p.get(item.key, 1.0)
        return Response("yes" if right else "no", 0.01, model_id="m-1")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    yield s
    s.close()


def monitor_settings(repeats: int) -> MonitorSettings:
    cfg = parse_settings(
        f"""
endpoints: [{{name: ep, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}}]
benchmarks: [{{name: b, data: x.jsonl, reference: label, scorers: [exact_match]}}]
monitors: [{{name: mon, benchmark: b, endpoints: [ep], repeats: {repeats},
             drift: {{baseline: "rolling:10"}}}}]
"""
    )
    return cfg.monitor("mon")


async def run(store: SqlStore, model: Sampler, repeats: int) -> RunOutcome:
    scorers = tuple(build_scorer(s) for s in BENCH.scorers)
    hook = functools.partial(
        StoreJudge(store).judge, monitor=monitor_settings(repeats), scorers=scorers
    )
    return await Runner(store).run(
        RunRequest(monitor="mon", benchmark=BENCH, endpoint=model, concurrency=8, repeats=repeats),
        judge=hook,
    )


def verdict(outcome: RunOutcome) -> Verdict:
    return next(v for v in outcome.verdicts if v.scorer == "exact_match")


def scores(outcome: RunOutcome) -> dict[str, float]:
    return {s.scorer: s.value for s in outcome.scores}


class TestSampling:
    async def test_every_item_is_sampled_n_times_and_scored_by_the_mean(
        self, store: SqlStore
    ) -> None:
        model = Sampler({"i0": "yyn", "i1": "nnn", "i2": "yny"})
        outcome = await run(store, model, 3)
        assert outcome.run.status is RunStatus.SUCCEEDED
        assert outcome.run.repeats == 3
        assert set(model.calls.values()) == {3}  # 900 requests, 3 per item
        assert outcome.run.n_items == N
        stored = {r.item_key: r for r in store.item_results(outcome.run.id)}
        assert len(stored) == N  # one result per item, not per sample
        assert stored["i0"].scores["exact_match"] == pytest.approx(2 / 3)
        assert stored["i1"].scores["exact_match"] == 0.0
        assert [s["scores"]["exact_match"] for s in stored["i2"].repeats] == [1.0, 0.0, 1.0]
        got = scores(outcome)
        assert got["exact_match"] == pytest.approx((N - 3 + 2 / 3 + 0 + 2 / 3) / N)
        # pass@3: some sample passed (all but i1); pass^3: every sample passed (not i0-i2)
        assert got["exact_match:pass@3"] == pytest.approx((N - 1) / N)
        assert got["exact_match:pass^3"] == pytest.approx((N - 3) / N)

    async def test_flakiness_per_item_in_the_api_document(self, store: SqlStore) -> None:
        outcome = await run(store, Sampler({"i0": "yyn", "i1": "nnn"}), 3)
        stored = {r.item_key: r for r in store.item_results(outcome.run.id)}
        doc = repeats_document(stored["i0"])
        assert doc is not None
        assert doc["n"] == 3
        assert doc["passed"] == {"exact_match": {"passed": 2, "of": 3}}
        assert doc["flaky"] == ["exact_match"]
        assert repeats_document(stored["i1"])["flaky"] == []  # type: ignore[index]
        run_doc = run_document(outcome.run, outcome.scores, outcome.verdicts)
        assert run_doc["repeats"] == 3
        assert "exact_match:pass^3" in run_doc["scores"]

    async def test_failed_samples_count_only_when_no_sample_was_scored(
        self, store: SqlStore
    ) -> None:
        outcome = await run(store, Sampler({"i0": "y!y", "i1": "!!!"}), 3)
        stored = {r.item_key: r for r in store.item_results(outcome.run.id)}
        assert stored["i0"].error is None
        assert stored["i0"].scores["exact_match"] == 1.0
        assert stored["i0"].error_detail == "1 of 3 samples failed: timeout"
        assert stored["i1"].error is ErrorKind.TIMEOUT
        assert stored["i1"].scores == {}
        assert outcome.run.n_errors == 1
        assert outcome.error_kinds == {"timeout": 1}  # items, not samples

    async def test_sampled_once_by_default(self, store: SqlStore) -> None:
        model = Sampler()
        outcome = await run(store, model, 1)
        assert set(model.calls.values()) == {1}
        assert "exact_match:pass@1" not in scores(outcome)
        assert store.item_results(outcome.run.id)[0].repeats == ()


def flaky_p() -> dict[str, float]:
    """A third of the items right with probability 0.6, the rest always."""
    return {f"i{k}": 0.6 if k % 3 == 0 else 1.0 for k in range(N)}


class TestJudging:
    async def test_another_number_of_samples_is_another_history(self, store: SqlStore) -> None:
        model = Sampler(p=flaky_p())
        for _ in range(6):
            last = verdict(await run(store, model, 1))
        assert last.verdict is not VerdictKind.NO_BASELINE
        first = verdict(await run(store, model, 5))
        assert first.verdict is VerdictKind.NO_BASELINE

    async def test_shares_of_samples_are_tested_as_scores_and_a_drop_is_caught(
        self, store: SqlStore
    ) -> None:
        """Flaky items falling from 0.6 to 0.3 right (10 points overall), sampled 5 times:
        regressed on the first changed run."""
        p = flaky_p()
        model = Sampler(p=p)
        quiet = [verdict(await run(store, model, 5)) for _ in range(8)]
        assert {v.verdict for v in quiet[5:]} <= {VerdictKind.OK, VerdictKind.WARN}
        assert quiet[-1].test.startswith("wilcoxon"), quiet[-1].test
        p.update({k: 0.3 for k, v in p.items() if v < 1.0})
        changed = verdict(await run(store, model, 5))
        assert changed.verdict is VerdictKind.REGRESSED, changed.detail
        assert changed.effect == pytest.approx(-0.1, abs=0.03)

    async def test_rescoring_a_repeated_run_is_refused(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        """Only a prefix of each sample's answer is stored: `monitor rescore` says so (exit 2)
        and writes nothing."""
        outcome = await run(store, Sampler(), 2)
        data = tmp_path / "x.jsonl"
        data.write_text('{"id": "i0", "label": "yes"}\n', encoding="utf-8")
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text(
            f"""storage: {{url: "sqlite:///{tmp_path / "m.db"}"}}
endpoints: [{{name: ep, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}}]
benchmarks: [{{name: b, data: "{data}", reference: label, scorers: [exact_match]}}]
monitors: [{{name: mon, benchmark: b, endpoints: [ep], repeats: 2}}]
""",
            encoding="utf-8",
        )
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "monitor",
                "rescore",
                str(outcome.run.id),
                "--scorer",
                "exact_match",
                "--config",
                str(cfg),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert "sampled each item several times (repeats)" in done.stdout + done.stderr
        assert not store.rescores([outcome.run.id]).get(outcome.run.id)


class TestConfig:
    def test_repeats_are_bounded(self) -> None:
        with pytest.raises(ConfigError, match="repeats"):
            monitor_settings(0)
        assert monitor_settings(20).repeats == 20
