"""Run fingerprints, tokens and cost end to end, against a loopback OpenAI-compatible server.

The server answers like OpenAI's chat completions API, with `model`, `usage` and a
`system_fingerprint` the test changes mid-history. The daemon is built in-process by the
composition root with its real HTTP client, so the path under test is the adapter's
parsing, the runner's counting, the store, the judge, the metrics and `monitor compare`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from monitor import __version__
from monitor.api.compare import compare_runs
from monitor.app import build_daemon
from monitor.config import load_settings
from monitor.core.cost import TokenTotals
from monitor.core.model import Run
from monitor.daemon import Daemon
from monitor.notify import Notifier
from monitor.scheduling import fire
from tests.daemon.harness import sample
from tests.fakes import ManualClock, RecordingReceiver, RecordingSleep

N = 40

CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:1"}}
endpoints:
  - name: ep
    type: openai-chat
    url: "{url}/v1"
    model: gpt-x
    params: {{temperature: {temperature}, max_tokens: 8}}
    retries: 0
    concurrency: 4
    {pricing}
benchmarks:
  - {{name: b, data: items.jsonl, prompt: "{{{{ text }}}}", reference: label,
      scorers: [exact_match]}}
monitors:
  - name: m
    benchmark: b
    endpoints: [ep]
    drift: {{baseline: "rolling:3", on_model_change: {on_change}}}
    budget: {budget}
    alert: [hook]
alerting:
  receivers: [{{name: hook, webhook: {{url: "{hook}/hook"}}}}]
"""
PRICED = (
    'pricing: {prices: [{since: "2026-01-01", input_per_million: 2.5, output_per_million: 10}]}'
)
ITEM_DOLLARS = (9 * 2.5 + 1 * 10) / 1e6  # each answer: 9 prompt and 1 completion tokens


class OpenAIServer:
    """Chat completions on 127.0.0.1: answers `yes`, with the model and fingerprint set."""

    def __init__(self) -> None:
        self.model = "gpt-x-2024-08-06"
        self.fingerprint: str | None = "fp_a"
        self.completion: Callable[[int], int] = lambda _: 1  # tokens of the n-th answer
        self.requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.json()
        assert body["model"] == "gpt-x"
        return web.json_response(
            {
                "id": f"chatcmpl-{self.requests}",
                "object": "chat.completion",
                "model": self.model,
                "system_fingerprint": self.fingerprint,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "yes"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 9,
                    "completion_tokens": self.completion(self.requests),
                    "total_tokens": 9 + self.completion(self.requests),
                },
            }
        )


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIServer]:
    server = OpenAIServer()
    await server.start()
    yield server
    await server.stop()


class Setup:
    """A config over the server, rewritable, and the daemon built from it."""

    def __init__(self, folder: Path, url: str, hook: str) -> None:
        self.folder, self.url, self.hook = folder, url, hook
        self.config = folder / "monitor.yaml"
        rows = [{"id": f"i{k}", "text": f"q{k}", "label": "yes"} for k in range(N)]
        (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.write()
        self.clock = ManualClock()

    def write(
        self,
        temperature: float = 0,
        on_change: str = "keep",
        pricing: str = "",
        budget: str = "{}",
    ) -> None:
        self.config.write_text(
            CONFIG.format(
                db=self.folder / "monitor.db",
                url=self.url,
                temperature=temperature,
                on_change=on_change,
                pricing=pricing,
                budget=budget,
                hook=self.hook,
            )
        )

    def build(self) -> tuple[Daemon, Callable[[], None]]:
        return build_daemon(
            self.config,
            load_settings(self.config),
            clock=self.clock,
            notifier=Notifier(sleep=RecordingSleep(), timeout=2.0),
        )


@pytest.fixture
def setup(tmp_path: Path, openai: OpenAIServer, receiver: RecordingReceiver) -> Setup:
    return Setup(tmp_path, openai.url, receiver.url)


@pytest.fixture
async def daemon(setup: Setup) -> AsyncIterator[Daemon]:
    built, close = setup.build()
    try:
        async with built.running():
            yield built
    finally:
        close()


async def runs(daemon: Daemon, setup: Setup, n: int) -> list[Run]:
    """`n` scheduled runs an hour apart; all runs so far, oldest first."""
    for _ in range(n):
        setup.clock.advance(3600)
        await fire("monitor", "m", "ep")
        await daemon.wait_idle()
    return daemon.store.list_runs()[::-1]


def cli(*args: str) -> str:
    """`monitor ARGS` as a user runs it; its standard output (exit code 0 asserted)."""
    done = subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class TestFingerprint:
    async def test_stored_with_what_was_configured_and_served(
        self, daemon: Daemon, setup: Setup, openai: OpenAIServer
    ) -> None:
        """Type, host, model, parameters, version, scorers; served model and fingerprint."""
        (run,) = await runs(daemon, setup, 1)
        fp = run.fingerprint
        assert fp is not None
        assert (fp.endpoint_type, fp.endpoint_host) == ("openai-chat", openai.url[7:])
        assert (fp.model, dict(fp.params)) == ("gpt-x", {"temperature": 0, "max_tokens": 8})
        assert fp.benchmark_version == run.benchmark_version
        assert fp.scorers == ("exact_match=exact_match",)
        assert fp.monitor_version == __version__
        assert dict(fp.served_models) == {"gpt-x-2024-08-06": N}
        assert dict(fp.system_fingerprints) == {"fp_a": N}
        assert run.events == ()
        assert sample(daemon, "monitor_served_model_changed", monitor="m", endpoint="ep") == 0
        labels = {"endpoint": "ep", "model": "gpt-x-2024-08-06", "fingerprint": "fp_a"}
        assert sample(daemon, "monitor_endpoint_model_info", **labels) == 1

    async def test_a_fingerprint_change_is_an_event_a_metric_and_a_flag(
        self,
        daemon: Daemon,
        setup: Setup,
        openai: OpenAIServer,
    ) -> None:
        """The provider swaps the backend behind the same model name after 4 runs."""
        before = await runs(daemon, setup, 4)
        assert all(r.events == () for r in before)
        openai.fingerprint = "fp_b"
        *_, last, changed = await runs(daemon, setup, 1)
        event = {
            "kind": "served_model_changed",
            "field": "system_fingerprint",
            "before": ["fp_a"],
            "after": "fp_b",
        }
        assert [dict(e) for e in changed.events] == [event]
        verdicts = daemon.store.run_verdicts([changed.id])[changed.id]
        note = "Note: served system_fingerprint changed: baseline fp_a, this run fp_b."
        assert verdicts
        assert all(note in v.detail for v in verdicts)  # every check of the run says so
        assert sample(daemon, "monitor_served_model_changed", monitor="m", endpoint="ep") == 1
        labels = {"endpoint": "ep", "model": "gpt-x-2024-08-06", "fingerprint": "fp_b"}
        assert sample(daemon, "monitor_endpoint_model_info", **labels) == 1
        # the two runs are comparable (same configuration), and the change is reported
        report = compare_runs(daemon.store, last, changed)
        assert report["comparable"] is True
        assert report["served_change"] == event
        out = cli("compare", str(last.id), str(changed.id), "--config", str(setup.config))
        assert 'served system_fingerprint changed: run 4 "fp_a", run 5 "fp_b"' in out
        table = cli("runs", "--config", str(setup.config))
        lines = table.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith(f"│ {changed.id} "))
        row = " ".join(lines[start : start + 3])  # a long cell wraps onto the next lines
        assert "(fp_b)" in row
        assert "changed" in row
        # the next run's baseline still holds fp_a runs: it says so again
        (*_, later) = await runs(daemon, setup, 1)
        assert [dict(e) for e in later.events] == [{**event, "before": ["fp_a", "fp_b"]}]

    async def test_rebaseline_judges_only_against_runs_served_alike(
        self, daemon: Daemon, setup: Setup, openai: OpenAIServer
    ) -> None:
        """With on_model_change: rebaseline the changed run has no baseline left."""
        setup.write(on_change="rebaseline")
        assert (await daemon.reload())[0]
        await runs(daemon, setup, 4)
        openai.model = "gpt-x-2024-11-20"
        (*_, changed) = await runs(daemon, setup, 1)
        assert changed.events[0]["field"] == "model"
        (verdict,) = [
            v
            for v in daemon.store.run_verdicts([changed.id])[changed.id]
            if v.scorer == "exact_match"
        ]
        assert verdict.verdict.value == "no_baseline"
        assert "3 run(s) served otherwise left out" in verdict.baseline

    async def test_a_changed_temperature_makes_runs_not_comparable(
        self, daemon: Daemon, setup: Setup
    ) -> None:
        """`monitor compare` names the parameter that differs, in text and JSON."""
        (first,) = await runs(daemon, setup, 1)
        setup.write(temperature=0.7)
        assert (await daemon.reload())[0]
        (_, second) = await runs(daemon, setup, 1)
        config = ["--config", str(setup.config)]
        out = cli("compare", str(first.id), str(second.id), *config)
        assert f"runs {first.id} and {second.id} are NOT comparable" in out
        assert "  params.temperature: 0 -> 0.7" in out
        report = json.loads(
            cli("compare", str(first.id), str(second.id), *config, "--format", "json")
        )
        assert report["comparable"] is False
        assert report["differences"] == [{"field": "params.temperature", "a": 0, "b": 0.7}]


class TestCost:
    async def test_tokens_and_cost_from_a_configured_price(
        self, daemon: Daemon, setup: Setup
    ) -> None:
        """40 answers of 9 prompt + 1 completion tokens at $2.50/M and $10/M: $0.0013."""
        setup.write(pricing=PRICED)
        assert (await daemon.reload())[0]
        (run,) = await runs(daemon, setup, 1)
        assert run.usage is not None
        assert run.usage.tokens == TokenTotals(prompt=360, completion=40, answers=N)
        assert run.usage.dollars == pytest.approx((360 * 2.5 + 40 * 10) / 1e6)
        assert run.usage.basis == "configured price since 2026-01-01"
        assert sample(daemon, "monitor_run_cost_dollars", endpoint="ep") == pytest.approx(0.0013)
        assert sample(daemon, "monitor_tokens_total", endpoint="ep", kind="prompt") == 360
        assert sample(daemon, "monitor_cost_dollars_total", endpoint="ep") == pytest.approx(0.0013)
        assert "$0.0013" in cli("runs", "--config", str(setup.config))

    async def test_a_model_without_a_price_costs_unknown_not_zero(
        self, daemon: Daemon, setup: Setup
    ) -> None:
        """gpt-x on 127.0.0.1 is in no price table: the cost is unknown everywhere."""
        (run,) = await runs(daemon, setup, 1)
        assert run.usage is not None
        assert run.usage.dollars is None
        assert run.usage.basis == "unknown: no price for 'gpt-x-2024-08-06' in the price table"
        assert sample(daemon, "monitor_run_cost_dollars", endpoint="ep") is None
        assert sample(daemon, "monitor_run_tokens", endpoint="ep", kind="completion") == N
        as_json = json.loads(cli("runs", "--config", str(setup.config), "--format", "json"))
        assert as_json["runs"][0]["usage"]["cost_dollars"] is None
        assert "unknown" in cli("runs", "--config", str(setup.config))


class TestBudget:
    async def test_a_run_budget_stops_the_run_within_one_batch(
        self, daemon: Daemon, setup: Setup, openai: OpenAIServer, receiver: RecordingReceiver
    ) -> None:
        """$0.0005 is spent by the 16th of 40 answers (40%): no request starts after it, the
        3 in flight (concurrency 4) finish, and every stored answer is kept."""
        setup.write(pricing=PRICED, budget="{run_dollars: 0.0005}")
        assert (await daemon.reload())[0]
        (run,) = await runs(daemon, setup, 1)
        assert (run.status.value, run.status_reason) == ("aborted", "budget")
        assert 16 <= run.n_items <= 16 + 3
        assert openai.requests == run.n_items  # nothing was sent that is not stored
        stored = daemon.store.item_results(run.id)
        assert len(stored) == run.n_items
        assert all(r.output == "yes" and r.error is None for r in stored)
        assert run.usage is not None
        assert run.usage.dollars == pytest.approx(run.n_items * ITEM_DOLLARS)
        assert daemon.store.run_verdicts([run.id]).get(run.id, []) == []  # not judged
        (posted,) = receiver.on("/hook")
        body = json.loads(posted.body)
        assert (body["alert"]["name"], body["status"]) == ("MonitorBudgetExceeded", "firing")
        assert "reached the monitor's per-run budget" in body["description"]
        # a run within the budget clears the alert
        setup.write(pricing=PRICED)
        assert (await daemon.reload())[0]
        await runs(daemon, setup, 1)
        assert json.loads(receiver.on("/hook")[-1].body)["status"] == "resolved"

    async def test_a_token_budget_without_a_price(self, daemon: Daemon, setup: Setup) -> None:
        """No price known: a token limit still stops the run (100 tokens: 10 answers)."""
        setup.write(budget="{run_tokens: 100, run_dollars: 1}")
        assert (await daemon.reload())[0]
        (run,) = await runs(daemon, setup, 1)
        assert run.status_reason == "budget"
        assert 10 <= run.n_items <= 13

    async def test_a_spent_day_budget_skips_the_next_scheduled_run(
        self,
        daemon: Daemon,
        setup: Setup,
        openai: OpenAIServer,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """One full run costs $0.0013 against a day budget of $0.001: the next one waits."""
        setup.write(pricing=PRICED, budget="{day_dollars: 0.001}")
        assert (await daemon.reload())[0]
        (first,) = await runs(daemon, setup, 1)
        assert first.status.value == "succeeded"
        sent = openai.requests
        capsys.readouterr()
        assert await runs(daemon, setup, 1) == [first]  # no second run was recorded
        assert openai.requests == sent
        out = capsys.readouterr().out
        assert "run_skipped_budget" in out
        assert "today reached the daily budget of $0.001" in out


class TestDryRun:
    async def test_estimates_without_a_request(
        self, daemon: Daemon, setup: Setup, openai: OpenAIServer
    ) -> None:
        """From the prompts before any run; from the last run of the version after one."""
        setup.write(pricing=PRICED)
        assert (await daemon.reload())[0]
        config = ["--config", str(setup.config)]
        before = json.loads(cli("run", "m", "--dry-run", "--format", "json", *config))
        assert openai.requests == 0  # counted by the server: nothing was sent
        (first,) = before["estimates"]
        prompt = -(-sum(len(f"q{k}") for k in range(N)) // 4)  # 110 characters: 28 tokens
        assert first["usage"]["tokens"]["prompt"] == prompt
        assert first["usage"]["tokens"]["completion"] == 8 * N  # params.max_tokens
        assert first["usage"]["cost_dollars"] == pytest.approx((prompt * 2.5 + 320 * 10) / 1e6)
        (run,) = await runs(daemon, setup, 1)
        sent = openai.requests
        text = cli("run", "m", "--dry-run", *config)
        assert openai.requests == sent
        assert f"from run {run.id} of this benchmark version" in text
        assert "~360 prompt + ~40 completion tokens, estimated cost $0.0013" in text


class TestVerbosity:
    async def test_twice_the_completion_tokens_is_a_drift_warning(
        self, daemon: Daemon, setup: Setup, openai: OpenAIServer
    ) -> None:
        """Same answers, same scores, but the model now writes twice as many tokens."""
        openai.completion = lambda n: 10 + n % 7
        before = await runs(daemon, setup, 4)
        openai.completion = lambda n: 2 * (10 + n % 7)
        (*_, wordy) = await runs(daemon, setup, 1)
        by_check = {v.scorer: v for v in daemon.store.run_verdicts([wordy.id])[wordy.id]}
        assert by_check["exact_match"].verdict.value not in {"regressed", "warn"}
        tokens = by_check["completion_tokens"]
        assert tokens.verdict.value == "warn"
        assert tokens.effect is not None
        assert tokens.effect > 5  # the median answer grew by ~13 tokens
        calm = daemon.store.run_verdicts([before[-1].id])[before[-1].id]
        calm_tokens = {v.scorer: v for v in calm}["completion_tokens"]
        assert calm_tokens.verdict.value == "ok", calm_tokens.detail
