"""Hostile endpoints: every fault of the fault server through the `monitor run` code path,
and a `monitor serve` daemon that keeps going next to a hostile endpoint.

Runs use 20 items, timeout 1 s, 2 retries, 50 ms backoff and concurrency 20, so every item
is in flight at once and a run's wall time is one item's: attempts x timeout + back-off
(+ any Retry-After the server asked for).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.config import EndpointSettings
from monitor.core.model import ErrorKind, Item, RunStatus
from monitor.demo.data import PROMPT, write_items
from monitor.endpoints import HttpClient, build_endpoint
from tests.daemon.harness import Daemon, Simulator, free_port
from tests.hardening.conftest import (
    BACKOFF_S,
    ITEMS,
    RETRIES,
    TIMEOUT_S,
    HostileBench,
    RssSampler,
)
from tests.hardening.faults import MIX, FaultProcess, FaultServer, closed_port

ALL_ATTEMPTS = RETRIES + 1
T, C, H4, H5, INV = (
    ErrorKind.TIMEOUT,
    ErrorKind.CONNECT,
    ErrorKind.HTTP_4XX,
    ErrorKind.HTTP_5XX,
    ErrorKind.INVALID_RESPONSE,
)


@dataclass(frozen=True, slots=True)
class Case:
    """What one fault must do to a run."""

    fault: str
    kind: ErrorKind | None  # every item's error kind (None: every item answered)
    attempts: int  # every item's attempts
    server_wait_s: float = 0.0  # most the server may make one item wait (Retry-After)

    @property
    def status(self) -> RunStatus:
        return RunStatus.SUCCEEDED if self.kind is None else RunStatus.DEGRADED

    @property
    def deadline_s(self) -> float:
        """attempts x timeout + back-off + server-requested waits, with a generous factor."""
        backoff = sum(BACKOFF_S * 2.0**i for i in range(self.attempts - 1))
        per_item = self.attempts * TIMEOUT_S + backoff + self.server_wait_s
        return 1.5 * per_item + 3.0  # + store, judge and connection set-up


CASES = [
    Case("ok", None, 1),
    Case("refused", C, ALL_ATTEMPTS),
    Case("slow", T, ALL_ATTEMPTS),
    Case("drip", T, ALL_ATTEMPTS),
    Case("drip-headers", T, ALL_ATTEMPTS),
    Case("reset", C, ALL_ATTEMPTS),
    Case("hangup", C, ALL_ATTEMPTS),
    Case("500", H5, ALL_ATTEMPTS),
    Case("502", H5, ALL_ATTEMPTS),
    Case("503", H5, ALL_ATTEMPTS),
    Case("flaky-503", None, ALL_ATTEMPTS),
    Case("429", H4, ALL_ATTEMPTS),
    Case("retry-after", H4, ALL_ATTEMPTS, server_wait_s=RETRIES * 1.0),
    Case("retry-after-date", H4, ALL_ATTEMPTS, server_wait_s=RETRIES * 2.0),
    Case("400", H4, 1),
    Case("404", H4, 1),
    Case("invalid-json", INV, 1),
    Case("wrong-shape", INV, 1),
    Case("deep-json", INV, 1),
    Case("huge", INV, 1),
    Case("huge-length", INV, 1),
    Case("gzip-bomb", INV, 1),
    Case("corrupt-gzip", INV, 1),
    Case("bad-chunk", INV, 1),
    Case("header-flood", INV, 1),
    Case("garbage", INV, 1),
    Case("redirect", INV, 1),
]


def refused_url() -> str:
    return f"http://127.0.0.1:{closed_port()}/v1"


class TestFaultTable:
    @pytest.mark.parametrize("case", CASES, ids=[c.fault for c in CASES])
    async def test_fault_gives_right_kind_attempts_and_status_in_time(
        self, case: Case, bench: HostileBench
    ) -> None:
        """Each fault ends the run in time with the right error kind, attempts and status."""
        url = refused_url() if case.fault == "refused" else None
        run = await bench.run(case.fault, url=url)
        print(
            f"\nFAULT {case.fault:17s} kind={sorted(map(str, run.kinds))} "
            f"attempts={sorted(run.attempts)} status={run.outcome.run.status.value} "
            f"wall={run.wall_s:.2f}s deadline={case.deadline_s:.1f}s"
        )
        assert run.wall_s < case.deadline_s
        assert len(run.results) == ITEMS
        assert run.kinds == {None if case.kind is None else case.kind.value}
        assert run.attempts == {case.attempts}
        assert run.outcome.run.status is case.status
        assert run.outcome.run.n_items == ITEMS
        assert run.outcome.run.n_errors == (0 if case.kind is None else ITEMS)
        if case.fault != "refused":  # the server saw exactly the attempts the store records
            assert run.counts == {case.fault: ITEMS * case.attempts}
        if case.kind is not None:
            assert all(r.error_detail for r in run.results)
            assert all(r.output is None and not r.scores for r in run.results)


class TestRetryPolicy:
    async def test_429_without_retry_after_uses_short_backoff(self, bench: HostileBench) -> None:
        """Without Retry-After the retries wait only the configured backoff."""
        run = await bench.run("429")
        assert run.wall_s < 1.0
        assert run.counts == {"429": ITEMS * ALL_ATTEMPTS}

    async def test_retry_after_seconds_is_honoured(self, bench: HostileBench) -> None:
        """`Retry-After: 1` makes each of the two retries wait a full second."""
        run = await bench.run("retry-after")
        assert run.wall_s >= RETRIES * 1.0
        assert all(r.latency_s >= RETRIES * 1.0 for r in run.results)

    async def test_retry_after_http_date_is_honoured(self, bench: HostileBench) -> None:
        """An HTTP-date ~2 s ahead (1 s resolution) makes each retry wait more than a second."""
        run = await bench.run("retry-after-date")
        assert all(r.latency_s > RETRIES * 0.9 for r in run.results)
        assert run.wall_s < RETRIES * 2.0 + 3.0

    async def test_no_retries_configured_means_one_attempt(self, bench: HostileBench) -> None:
        """With retries 0 a retryable fault is tried exactly once."""
        run = await bench.run("503", retries=0)
        assert run.attempts == {1}
        assert run.counts == {"503": ITEMS}

    async def test_timeouts_hold_with_fewer_workers_than_items(self, bench: HostileBench) -> None:
        """Items queued behind a concurrency of 5 still each get their own full timeouts."""
        run = await bench.run("slow", concurrency=5, retries=1)
        waves = math.ceil(ITEMS / 5)
        assert run.kinds == {"timeout"}
        assert run.attempts == {2}
        assert waves * 2 * TIMEOUT_S * 0.9 <= run.wall_s < waves * 2 * TIMEOUT_S * 1.5 + 2.0


class TestRedirect:
    async def test_redirect_to_another_host_is_not_followed(
        self, bench: HostileBench, faults: FaultServer
    ) -> None:
        """A 302 to 127.0.0.2 is reported with its Location and nothing reaches that host."""
        run = await bench.run("redirect")
        assert run.kinds == {"invalid_response"}
        assert run.counts.get("redirect-target", 0) == 0
        detail = run.results[0].error_detail or ""
        assert faults.redirect_url in detail
        assert "not followed" in detail


class TestDeeplyNestedJson:
    async def test_deep_json_is_an_item_error_not_a_failed_run(self, bench: HostileBench) -> None:
        """Regression: 100 000 nested arrays raised RecursionError out of predict and failed the
        whole run; now each item is invalid_response and the run is degraded."""
        run = await bench.run("deep-json")
        assert run.outcome.run.status is RunStatus.DEGRADED
        assert run.kinds == {"invalid_response"}
        assert all("nested too deeply" in (r.error_detail or "") for r in run.results)

    async def test_deep_json_through_the_endpoint_returns_a_response(
        self, faults: FaultServer
    ) -> None:
        """`predict` returns a Response for a too-deep body instead of raising."""
        settings = EndpointSettings.model_validate(
            {"name": "deep", "type": "openai-chat", "url": faults.url_for("deep-json")}
            | {"model": "m", "retries": 2}
        )
        async with HttpClient() as http:
            response = await build_endpoint(settings, http).predict(
                Item(key="a", fields={}, prompt="hi")
            )
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.attempts == 1


class TestUndecodableBody:
    async def test_corrupt_gzip_is_invalid_response_not_retried(self, bench: HostileBench) -> None:
        """Regression: a body that does not gunzip was reported as a lost connection (connect)
        and retried twice; the same bytes would come again, so it is invalid_response."""
        run = await bench.run("corrupt-gzip")
        assert run.kinds == {"invalid_response"}
        assert run.attempts == {1}
        assert run.counts == {"corrupt-gzip": ITEMS}
        assert all("undecodable" in (r.error_detail or "") for r in run.results)


class TestMemory:
    @pytest.mark.parametrize("fault", ["huge", "huge-length", "gzip-bomb", "header-flood"])
    async def test_big_bodies_keep_rss_bounded(self, fault: str, bench: HostileBench) -> None:
        """50 MB answers to 20 items, 8 at a time (the default concurrency), grow RSS by under
        20 MiB, peak included: memory is bounded by concurrency x max_response_bytes (1 MiB)."""
        await bench.run("ok", concurrency=8)  # warm-up: imports, judge, store, connections
        with RssSampler() as rss:  # the first big run: no freed heap yet to hide a spike in
            run = await bench.run(fault, concurrency=8)
        print(
            f"\nRSS {fault}: before {rss.before / 1024:.1f} MiB, peak +{rss.peak_growth_mib:.1f}"
            f" MiB, after {rss.growth_mib:+.1f} MiB; traced peak {rss.traced_peak_mib:.1f} MiB"
        )
        assert run.kinds == {"invalid_response"}
        assert rss.peak_growth_mib < 20.0
        assert rss.growth_mib < 20.0
        assert rss.traced_peak_mib < 20.0


class TestIsolation:
    async def test_hostile_endpoint_does_not_disturb_a_healthy_one(
        self, bench: HostileBench
    ) -> None:
        """A mix of faults and a healthy endpoint on the same server and client, run at once:
        the healthy run succeeds with no error while the hostile one is degraded."""
        hostile, healthy = await bench.run_many(
            {"mixed": bench.faults.url_for("mix"), "healthy": bench.faults.url_for("ok")}
        )
        assert healthy.outcome.run.status is RunStatus.SUCCEEDED
        assert healthy.kinds == {None}
        assert hostile.outcome.run.status is RunStatus.DEGRADED
        assert None not in hostile.kinds
        assert len(hostile.kinds) >= 3
        assert hostile.wall_s < 1.5 * (ALL_ATTEMPTS * TIMEOUT_S + 3 * BACKOFF_S) + 2.0


DAEMON_CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:{port}"}}
endpoints:
  - {{name: healthy, type: openai-chat, url: "{sim}", model: sim, timeout: 5s, retries: 1}}
  - name: hostile
    type: openai-chat
    url: "{hostile}"
    model: sim
    timeout: 500ms
    retries: 1
    backoff: 50ms
    concurrency: 20
benchmarks:
  - {{name: intents, data: items.jsonl, prompt: {prompt}, reference: label, scorers: [exact_match]}}
monitors:
  - name: watch
    benchmark: intents
    endpoints: [healthy, hostile]
    schedule: {{every: 1s}}
"""


def proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.slow
class TestDaemon:
    def test_daemon_survives_a_hostile_endpoint(
        self,
        tmp_path: Path,
        simulator: Simulator,
        fault_process: FaultProcess,
        daemons: list[Daemon],
    ) -> None:
        """`monitor serve` with a healthy and a hostile endpoint every 1 s: after 10+ runs it is
        up, healthy runs succeeded, hostile runs degraded, errors counted by kind."""
        write_items(tmp_path / "items.jsonl", ITEMS)
        port = free_port()
        config = tmp_path / "monitor.yaml"
        config.write_text(
            DAEMON_CONFIG.format(
                db=tmp_path / "monitor.db",
                port=port,
                sim=simulator.url,
                hostile=fault_process.url_for("mix"),
                prompt=json.dumps(PROMPT),
            )
        )
        d = Daemon(config, port)
        daemons.append(d)
        d.wait_ready()

        def finished(endpoint: str) -> list[dict[str, object]]:
            return [r for r in d.runs() if r["endpoint"] == endpoint and r["finished_at"]]

        d.wait_for(lambda: len(finished("hostile")) >= 2, timeout=60, what="2 hostile runs")
        warm_rss, warm_fds = proc_rss_kib(d.proc.pid), len(os.listdir(f"/proc/{d.proc.pid}/fd"))
        d.wait_for(
            lambda: len(finished("healthy")) >= 10 and len(finished("hostile")) >= 10,
            timeout=120,
            what="10 runs per endpoint",
        )
        time.sleep(0.5)
        end_rss, end_fds = proc_rss_kib(d.proc.pid), len(os.listdir(f"/proc/{d.proc.pid}/fd"))

        assert d.proc.poll() is None
        assert d.request("GET", "/healthz")[0] == 200
        log = d.log_text()
        assert "run_failed" not in log
        assert "Traceback" not in log
        healthy, hostile = finished("healthy"), finished("hostile")
        assert {r["status"] for r in healthy} == {"succeeded"}
        assert {r["status"] for r in hostile} == {"degraded"}
        assert all(r["n_errors"] == ITEMS for r in hostile)
        errors = {
            s.labels["kind"]: s.value
            for s in d.metrics()["monitor_endpoint_errors_total"]
            if s.labels["endpoint"] == "hostile"
        }
        assert set(errors) <= {k.value for k in ErrorKind}
        assert len([k for k, v in errors.items() if v > 0]) >= 3, errors
        assert sum(errors.values()) >= ITEMS * len(hostile)
        healthy_errors = [
            s.value
            for s in d.metrics()["monitor_endpoint_errors_total"]
            if s.labels["endpoint"] == "healthy"
        ]
        assert sum(healthy_errors) == 0
        counts = fault_process.counts()
        assert set(counts) <= set(MIX)
        assert "redirect-target" not in counts
        print(
            f"\nDAEMON runs healthy={len(healthy)} hostile={len(hostile)} errors={errors} "
            f"RSS {warm_rss / 1024:.1f} -> {end_rss / 1024:.1f} MiB, fds {warm_fds} -> {end_fds}"
        )
        assert (end_rss - warm_rss) / 1024 < 50.0
        assert end_fds - warm_fds < 20
