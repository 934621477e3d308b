"""Schemathesis against the live daemon's OpenAPI document: no 5xx, no schema violations.

One `monitor serve` child process (SQLite, a simulated model, two stored runs) serves the
module. Every operation of its /openapi.json is fuzzed with valid and with invalid data,
with the bearer token, and the mutating ones again without it; each answer must have a
documented status code and a body matching the documented schema, and none may be a 5xx.

Schemathesis is used as a library (`APIOperation.as_strategy` under Hypothesis' `given`):
its lazy pytest loader (`schemathesis.pytest.from_fixture`) does not run on pytest 9.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.daemon.harness import TOKEN, Daemon, Simulator, free_port, write_config

pytestmark = pytest.mark.slow

EXAMPLES = 30  # per operation and pass: the module stays well under 90 s
OPERATIONS = {
    "GET /healthz",
    "GET /readyz",
    "GET /api/v1/benchmarks",
    "GET /api/v1/endpoints",
    "GET /api/v1/monitors",
    "GET /api/v1/alerts",
    "GET /api/v1/runs",
    "GET /api/v1/runs/{run_id}",
    "GET /api/v1/runs/{run_id}/items",
    "GET /api/v1/runs/{run_id}/rescores",
    "GET /api/v1/compare",
    "GET /api/v1/compare/runs",
    "GET /api/v1/leaderboard",
    "POST /api/v1/monitors/{name}/run",
    "POST /api/v1/baselines",
    "POST /api/v1/rescores",
    "POST /-/reload",
}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Bodies whose validity the schema cannot express: the rescore route takes a scorer as
# free-form YAML or JSON, checked like the config's (422 names what is wrong), so a
# schema-valid body may rightly be refused; every other check still applies to it.
FREE_FORM = frozenset({"POST /api/v1/rescores"})


def _succeeded(d: Daemon, n: int) -> list[dict[str, Any]]:
    runs = [r for r in d.runs() if r["status"] == "succeeded"]
    return runs if len(runs) >= n else []


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon with two stored runs, shared by the module."""
    sim = Simulator()
    port = free_port()
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    d = Daemon(write_config(folder, sim.url, port=port, every=3600, items=20), port)
    try:
        d.wait_ready()
        for n in (1, 2):
            assert d.request("POST", "/api/v1/monitors/fast/run", token=TOKEN)[0] == 202
            d.wait_for(lambda n=n: _succeeded(d, n), what=f"{n} runs")
        yield d
    finally:
        d.kill()
        sim.stop()


@pytest.fixture(scope="module")
def api_schema(live: Daemon) -> Any:
    """The daemon's published OpenAPI document, loaded by schemathesis."""
    return schemathesis.openapi.from_url(f"{live.base}/openapi.json")


def _fuzz(
    api_schema: Any,
    live: Daemon,
    mode: GenerationMode,
    *,
    headers: dict[str, str] | None,
    methods: frozenset[str] = frozenset({"GET", "POST"}),
    expect: frozenset[int] | None = None,
    fixed: dict[str, dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Fuzz every matching operation; the first failure of each, by operation label.

    `expect` narrows the acceptable status codes; `fixed` pins parts of the generated
    requests per operation (``path_parameters``, ``body``...), and then only those run.
    """
    failures: dict[str, str] = {}
    seen = set()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        seen.add(label)
        if operation.method.upper() not in methods or (fixed is not None and label not in fixed):
            continue

        excluded = [positive_data_acceptance] if label in FREE_FORM else []

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        @given(case=operation.as_strategy(mode, **(fixed or {}).get(label, {})))
        def check(case: Any) -> None:
            if headers is None and case.headers:
                case.headers.pop("Authorization", None)
            # check() runs within this iteration: the loop variable is the current one
            response = case.call_and_validate(headers=headers, excluded_checks=excluded)  # noqa: B023
            assert response.status_code < 500, response.text
            assert expect is None or response.status_code in expect, response.text

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, label  # nothing to make invalid
        except (Exception, BaseExceptionGroup) as exc:  # reported per operation below
            failures[label] = f"{type(exc).__name__}: {exc}"[:3000]
    assert seen == OPERATIONS, "the published operations changed: update OPERATIONS"
    assert live.proc.poll() is None, live.log_text()[-3000:]
    return failures


def _report(failures: dict[str, str]) -> str:
    return "\n\n".join(f"{label}:\n{failure}" for label, failure in failures.items())


class TestOpenApi:
    def test_valid_requests_with_token(self, api_schema: Any, live: Daemon) -> None:
        """Schema-valid requests with the token get documented, conforming, non-5xx answers."""
        t0 = time.monotonic()
        failures = _fuzz(api_schema, live, GenerationMode.POSITIVE, headers=AUTH)
        print(f"positive fuzzing with token: {time.monotonic() - t0:.1f}s")
        assert not failures, _report(failures)

    def test_mutating_requests_on_known_names_succeed(self, api_schema: Any, live: Daemon) -> None:
        """Triggering and pinning the daemon's own monitor and runs succeed and conform."""
        fixed: dict[str, dict[str, Any]] = {
            "POST /api/v1/monitors/{name}/run": {
                "path_parameters": {"name": "fast"},
                "query": {"endpoint": "sim"},
            },
            "POST /api/v1/baselines": {
                "body": {"monitor": "fast", "endpoint": "sim", "run_ids": [1, 2]}
            },
            "POST /api/v1/rescores": {"body": {"run_ids": [1, 2], "scorer": "exact_match"}},
            "POST /-/reload": {},
        }
        failures = _fuzz(
            api_schema,
            live,
            GenerationMode.POSITIVE,
            headers=AUTH,
            expect=frozenset({200, 201, 202}),
            fixed=fixed,
        )
        assert not failures, _report(failures)

    def test_invalid_requests_with_token(self, api_schema: Any, live: Daemon) -> None:
        """Schema-invalid requests are rejected with a documented 4xx, never a 5xx."""
        t0 = time.monotonic()
        failures = _fuzz(api_schema, live, GenerationMode.NEGATIVE, headers=AUTH)
        print(f"negative fuzzing with token: {time.monotonic() - t0:.1f}s")
        assert not failures, _report(failures)

    def test_mutating_requests_without_token(self, api_schema: Any, live: Daemon) -> None:
        """Without the token every schema-valid mutating request is refused with 401."""
        t0 = time.monotonic()
        failures = _fuzz(
            api_schema,
            live,
            GenerationMode.POSITIVE,
            headers=None,
            methods=frozenset({"POST"}),
            expect=frozenset({401}),
        )
        print(f"positive fuzzing without token: {time.monotonic() - t0:.1f}s")
        assert not failures, _report(failures)
