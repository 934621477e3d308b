"""Fixtures for the notifier tests: a recording receiver on 127.0.0.1, instant retry
waits, an in-memory alert store, fresh databases, and run / verdict / settings factories.

``receiver.respond(...)`` queues answers; each request takes the next one and the last
keeps repeating (200 with an empty JSON object when nothing is queued). Every request is
recorded with its path, headers and parsed JSON body.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.config import Settings
from monitor.core.alerts import Action, Alert, AlertState, alerts_from_verdicts, fingerprint
from monitor.core.model import ChangedItems, Run, RunStatus, Verdict, VerdictKind
from monitor.notify import Message, Notifier, RetryPolicy
from tests.fakes import MemoryAlertStore, RecordingSleep

T0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
MAINTENANCE_DSN = os.environ.get("MONITOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
async def notifier(sleeps: RecordingSleep) -> AsyncIterator[Notifier]:
    """A notifier with 3 retries, instant recorded waits, a seeded jitter and a 2 s timeout."""
    async with Notifier(
        retry=RetryPolicy(retries=3, base_delay=1.0, max_delay=30.0, jitter=0.5),
        timeout=2.0,
        sleep=sleeps,
        rng=random.Random(7),
    ) as client:
        yield client


# ---------------------------------------------------------------- alert stores


@pytest.fixture
def memory_store() -> MemoryAlertStore:
    """An empty in-memory alert store."""
    return MemoryAlertStore()


# ---------------------------------------------------------------- domain factories


def make_run(run_id: int = 17, **fields: Any) -> Run:
    """A succeeded run of intents-prod on chat-prod."""
    values: dict[str, Any] = {
        "id": run_id,
        "monitor": "intents-prod",
        "endpoint": "chat-prod",
        "benchmark": "support-intents",
        "benchmark_version": "v1",
        "trigger": "schedule",
        "status": RunStatus.SUCCEEDED,
        "started_at": T0,
        "finished_at": T0 + timedelta(minutes=2),
        "n_items": 200,
        "n_errors": 1,
    }
    values.update(fields)
    return Run(**values)


def make_verdict(kind: VerdictKind = VerdictKind.REGRESSED, **fields: Any) -> Verdict:
    """An exact_match verdict; regressed by default, with flipped items."""
    values: dict[str, Any] = {
        "scorer": "exact_match",
        "verdict": kind,
        "test": "poisson_binomial",
        "baseline": "rolling:5 (runs 12-16)",
        "p_value": 0.0003 if kind is VerdictKind.REGRESSED else 0.41,
        "p_adjusted": 0.0012 if kind is VerdictKind.REGRESSED else 0.8,
        "effect": -0.042 if kind is VerdictKind.REGRESSED else -0.003,
        "effect_ci": (-0.059, -0.025) if kind is VerdictKind.REGRESSED else (-0.02, 0.014),
        "baseline_score": 0.912,
        "changed": ChangedItems(
            pass_to_fail=tuple(f"item-{i}" for i in range(7))
            if kind is VerdictKind.REGRESSED
            else (),
            fail_to_pass=("item-99",),
        ),
    }
    values.update(fields)
    return Verdict(**values)


def make_settings(
    receivers: Sequence[Mapping[str, Any]] = (),
    *,
    alert: Sequence[str] | None = None,
    repeat_interval: str = "4h",
    dashboard_url: str | None = "https://grafana.example",
) -> Settings:
    """Settings with one monitor (intents-prod on chat-prod) alerting `receivers`."""
    names = [r["name"] for r in receivers] if alert is None else list(alert)
    return Settings.model_validate(
        {
            "server": {"listen": "127.0.0.1:9464", "dashboard_url": dashboard_url},
            "endpoints": [
                {"name": "chat-prod", "type": "openai-chat", "url": "http://x", "model": "m"}
            ],
            "benchmarks": [
                {"name": "support-intents", "data": "d.jsonl", "scorers": ["exact_match"]}
            ],
            "monitors": [
                {
                    "name": "intents-prod",
                    "benchmark": "support-intents",
                    "endpoints": ["chat-prod"],
                    "alert": names,
                }
            ],
            "alerting": {"receivers": list(receivers), "repeat_interval": repeat_interval},
        }
    )


def firing_message(action: Action = Action.NOTIFY_FIRING, now: datetime = T0) -> Message:
    """A notification for the regression alert of `make_run` / `make_verdict`."""
    desired = alerts_from_verdicts(
        make_run(),
        [make_verdict()],
        api_base="http://monitor.test:9464",
        dashboard_url="https://grafana.example",
    )[0]
    alert = Alert(
        fingerprint=desired.fingerprint,
        name=desired.name,
        labels=desired.labels,
        annotations={**desired.annotations, "since": T0.isoformat()},
        state=AlertState.FIRING,
        since=T0,
        last_notified=now,
    )
    return Message(alert, action, now)


def resolved_message(now: datetime) -> Message:
    """The resolution of `firing_message`'s alert at `now`."""
    fired = firing_message().alert
    alert = Alert(
        fingerprint=fired.fingerprint,
        name=fired.name,
        labels=fired.labels,
        annotations={"summary": "recovered", "since": T0.isoformat()},
        state=AlertState.RESOLVED,
        since=T0,
        last_notified=now,
        resolved_at=now,
    )
    return Message(alert, Action.NOTIFY_RESOLVED, now)


REGRESSION_FP = fingerprint(
    {
        "alertname": "MonitorRegression",
        "monitor": "intents-prod",
        "endpoint": "chat-prod",
        "scorer": "exact_match",
    }
)
