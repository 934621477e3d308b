"""Tests for AlertService (state machine + delivery + persistence) with a real loopback
receiver, an in-memory store and SqlAlertStore on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from monitor.config import Settings
from monitor.core.alerts import Action, Alert, AlertState
from monitor.core.model import RunStatus, VerdictKind
from monitor.errors import StorageError
from monitor.notify import AlertService, Notifier, RetryPolicy
from monitor.storage import open_store
from monitor.storage import tables as t
from monitor.storage.alerts import STREAK_KEY, SqlAlertStore
from monitor.storage.engine import create_engine
from tests.fakes import MemoryAlertStore, RecordingReceiver
from tests.notify.conftest import (
    REGRESSION_FP,
    T0,
    make_run,
    make_settings,
    make_verdict,
)

HOUR = timedelta(hours=1)
REGRESSED = VerdictKind.REGRESSED
OK = VerdictKind.OK


def webhook(receiver: RecordingReceiver, name: str = "oncall") -> dict[str, Any]:
    return {"name": name, "webhook": {"url": f"{receiver.url}/hook"}}


def statuses(receiver: RecordingReceiver, path: str = "/hook") -> list[tuple[str, str]]:
    """(alert name, notification) of every webhook post, in order."""
    return [(p.json()["alert"]["name"], p.json()["notification"]) for p in receiver.on(path)]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database's engine (the schema comes from `open_store`)."""
    open_store(database_url).close()
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


def service(
    store: Any,
    notifier: Notifier,
    settings: Settings,
    **kwargs: Any,
) -> AlertService:
    return AlertService(store, notifier, lambda: settings, api_base="http://monitor.test", **kwargs)


class TestLifecycle:
    """One regression from first page to resolution, through the service."""

    async def test_fire_stay_quiet_repeat_resolve(
        self, notifier: Notifier, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """Regressed runs page once, repeat after repeat_interval, and resolve once."""
        svc = service(memory_store, notifier, make_settings([webhook(receiver)]))
        runs: list[tuple[VerdictKind, datetime]] = [
            (REGRESSED, T0),
            (REGRESSED, T0 + HOUR),  # within 4h: quiet
            (REGRESSED, T0 + 4 * HOUR),  # 4h after the page: repeat
            (REGRESSED, T0 + 5 * HOUR),
            (OK, T0 + 6 * HOUR),  # resolved
            (OK, T0 + 7 * HOUR),  # nothing more
        ]
        for run_id, (kind, now) in enumerate(runs, start=1):
            await svc.handle_run(make_run(run_id), [make_verdict(kind)], now=now)
        assert statuses(receiver) == [
            ("MonitorRegression", "firing"),
            ("MonitorRegression", "repeat"),
            ("MonitorRegression", "resolved"),
        ]
        first, repeat, resolved = (p.json() for p in receiver.on("/hook"))
        assert first["alert"]["starts_at"] == T0.isoformat()
        assert repeat["run"]["id"] == 3
        assert resolved["alert"]["ends_at"] == (T0 + 6 * HOUR).isoformat()
        stored = memory_store.rows[REGRESSION_FP]
        assert stored.state is AlertState.RESOLVED
        assert stored.last_notified == T0 + 6 * HOUR

    async def test_outcomes_report_actions(
        self, notifier: Notifier, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """handle_run returns one outcome per alert with its action and delivery."""
        svc = service(memory_store, notifier, make_settings([webhook(receiver)]))
        outcomes = await svc.handle_run(make_run(), [make_verdict()], now=T0)
        by_name = {o.alert.name: o for o in outcomes}
        assert by_name["MonitorRegression"].action is Action.NOTIFY_FIRING
        assert by_name["MonitorRegression"].delivered
        assert "MonitorDegraded" not in by_name  # inactive and never seen: nothing stored

    async def test_degraded_run_raises_a_warning_and_keeps_the_regression(
        self, notifier: Notifier, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """A degraded run pages MonitorDegraded and neither fires nor clears the regression."""
        svc = service(memory_store, notifier, make_settings([webhook(receiver)]))
        await svc.handle_run(make_run(1), [make_verdict()], now=T0)
        degraded_run = make_run(2, status=RunStatus.DEGRADED, n_errors=40)
        await svc.handle_run(degraded_run, [make_verdict(VerdictKind.DEGRADED)], now=T0 + HOUR)
        await svc.handle_run(make_run(3), [make_verdict(OK)], now=T0 + 2 * HOUR)
        assert statuses(receiver) == [
            ("MonitorRegression", "firing"),
            ("MonitorDegraded", "firing"),
            ("MonitorRegression", "resolved"),
            ("MonitorDegraded", "resolved"),
        ]

    async def test_pending_runs_delays_the_page(
        self, notifier: Notifier, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """With pending_runs=2 the first regressed run is pending, the second pages."""
        svc = service(memory_store, notifier, make_settings([webhook(receiver)]), pending_runs=2)
        await svc.handle_run(make_run(1), [make_verdict()], now=T0)
        assert receiver.posts == []
        assert memory_store.rows[REGRESSION_FP].state is AlertState.PENDING
        await svc.handle_run(make_run(2), [make_verdict()], now=T0 + HOUR)
        assert statuses(receiver) == [("MonitorRegression", "firing")]
        assert receiver.on("/hook")[0].json()["alert"]["starts_at"] == T0.isoformat()

    async def test_unjudged_runs_change_nothing(
        self, notifier: Notifier, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """insufficient_data and failed runs neither resolve nor re-send a firing alert."""
        svc = service(memory_store, notifier, make_settings([webhook(receiver)]))
        await svc.handle_run(make_run(1), [make_verdict()], now=T0)
        await svc.handle_run(
            make_run(2), [make_verdict(VerdictKind.INSUFFICIENT_DATA)], now=T0 + HOUR
        )
        await svc.handle_run(make_run(3, status=RunStatus.FAILED), [], now=T0 + 2 * HOUR)
        assert statuses(receiver) == [("MonitorRegression", "firing")]
        assert memory_store.rows[REGRESSION_FP].state is AlertState.FIRING

    async def test_every_channel_of_every_receiver(
        self, notifier: Notifier, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """Webhook, Slack and Alertmanager channels of two receivers all get the page."""
        receivers = [
            {
                "name": "oncall",
                "webhook": {"url": f"{receiver.url}/hook"},
                "alertmanager": {"url": receiver.url},
            },
            {"name": "chat", "slack": {"url": f"{receiver.url}/slack"}},
        ]
        svc = service(memory_store, notifier, make_settings(receivers))
        await svc.handle_run(make_run(), [make_verdict()], now=T0)
        assert len(receiver.on("/hook")) == 1
        assert len(receiver.on("/slack")) == 1
        (am,) = receiver.on("/api/v2/alerts")
        ends = datetime.fromisoformat(am.json()[0]["endsAt"])
        assert ends - T0 == timedelta(hours=8)  # two repeat intervals of 4h

    async def test_monitor_without_receivers_still_tracks_state(
        self, notifier: Notifier, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """No receivers: nothing is posted, the alert is still stored and counted."""
        svc = service(memory_store, notifier, make_settings([webhook(receiver)], alert=[]))
        await svc.handle_run(make_run(), [make_verdict()], now=T0)
        assert receiver.posts == []
        assert svc.firing_count() == 1

    async def test_reload_applies_to_the_next_run(
        self, notifier: Notifier, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """The settings callable is read per run: a shorter repeat_interval applies at once."""
        current = {"settings": make_settings([webhook(receiver)])}
        svc = AlertService(memory_store, notifier, lambda: current["settings"])
        await svc.handle_run(make_run(1), [make_verdict()], now=T0)
        current["settings"] = make_settings([webhook(receiver)], repeat_interval="30m")
        await svc.handle_run(make_run(2), [make_verdict()], now=T0 + HOUR)
        assert statuses(receiver) == [
            ("MonitorRegression", "firing"),
            ("MonitorRegression", "repeat"),
        ]
        assert receiver.on("/hook")[0].json()["run"]["url"] == "http://127.0.0.1:9464/api/v1/runs/1"


class TestDeliveryFailures:
    """A failed delivery is logged, never raised, and retried at the next run."""

    async def test_transient_failure_is_retried_next_run(
        self, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """A 503 leaves the alert owed; the next run sends the firing notification."""
        receiver.respond(503)
        async with Notifier(retry=RetryPolicy(retries=0)) as notifier:
            svc = service(memory_store, notifier, make_settings([webhook(receiver)]))
            with structlog.testing.capture_logs() as logs:
                outcomes = await svc.handle_run(make_run(1), [make_verdict()], now=T0)
            (regression,) = [o for o in outcomes if o.alert.name == "MonitorRegression"]
            assert not regression.delivered
            assert regression.alert.state is AlertState.FIRING
            assert regression.alert.last_notified is None
            failure = next(e for e in logs if e["event"] == "alert_delivery_failed")
            assert failure["retry_next_run"] is True
            assert failure["log_level"] == "warning"
            receiver.always(200)
            await svc.handle_run(make_run(2), [make_verdict()], now=T0 + HOUR)
        assert statuses(receiver) == [
            ("MonitorRegression", "firing"),
            ("MonitorRegression", "firing"),
        ]
        retried = receiver.on("/hook")[1].json()
        assert retried["alert"]["starts_at"] == T0.isoformat()  # since survives the failure
        assert memory_store.rows[REGRESSION_FP].last_notified == T0 + HOUR

    async def test_failed_resolution_is_retried(
        self, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """A resolution that could not be delivered is sent at the next clear run."""
        async with Notifier(retry=RetryPolicy(retries=0)) as notifier:
            svc = service(memory_store, notifier, make_settings([webhook(receiver)]))
            await svc.handle_run(make_run(1), [make_verdict()], now=T0)
            receiver.always(500)
            await svc.handle_run(make_run(2), [make_verdict(OK)], now=T0 + HOUR)
            assert memory_store.rows[REGRESSION_FP].owes_resolution
            assert svc.firing_count() == 0  # resolved, even though not yet told
            receiver.always(200)
            await svc.handle_run(make_run(3), [make_verdict(OK)], now=T0 + 2 * HOUR)
        assert statuses(receiver) == [
            ("MonitorRegression", "firing"),
            ("MonitorRegression", "resolved"),
            ("MonitorRegression", "resolved"),
        ]
        assert receiver.on("/hook")[2].json()["alert"]["ends_at"] == (T0 + HOUR).isoformat()

    async def test_permanent_failure_is_not_retried(
        self, notifier: Notifier, receiver: RecordingReceiver, memory_store: MemoryAlertStore
    ) -> None:
        """A 400 is logged as an error and counted as done: retrying cannot help."""
        receiver.respond(400)
        svc = service(memory_store, notifier, make_settings([webhook(receiver)]))
        with structlog.testing.capture_logs() as logs:
            await svc.handle_run(make_run(1), [make_verdict()], now=T0)
        failure = next(e for e in logs if e["event"] == "alert_delivery_failed")
        assert (failure["log_level"], failure["permanent"]) == ("error", True)
        await svc.handle_run(make_run(2), [make_verdict()], now=T0 + HOUR)
        assert len(receiver.posts) == 1

    async def test_one_failing_channel_does_not_block_the_others(
        self, receiver: RecordingReceiver, memory_store: MemoryAlertStore, closed_port: int
    ) -> None:
        """A dead receiver fails alone; the working one is notified (and again on retry)."""
        receivers = [
            webhook(receiver),
            {"name": "dead", "webhook": {"url": f"http://127.0.0.1:{closed_port}/hook"}},
        ]
        async with Notifier(retry=RetryPolicy(retries=0)) as notifier:
            svc = service(memory_store, notifier, make_settings(receivers))
            (regression,) = [
                o
                for o in await svc.handle_run(make_run(), [make_verdict()], now=T0)
                if o.alert.name == "MonitorRegression"
            ]
        assert not regression.delivered
        assert "'dead'" in regression.errors[0]
        assert len(receiver.on("/hook")) == 1

    async def test_storage_failure_is_logged_not_raised(
        self, notifier: Notifier, receiver: RecordingReceiver
    ) -> None:
        """A store that cannot be read skips the run's alerts with an error log."""

        class BrokenStore(MemoryAlertStore):
            def firing(self) -> list[Alert]:
                raise StorageError("could not read firing alerts: database is locked")

        svc = service(BrokenStore(), notifier, make_settings([webhook(receiver)]))
        with structlog.testing.capture_logs() as logs:
            assert await svc.handle_run(make_run(), [make_verdict()], now=T0) == []
        assert any(e["event"] == "alert_state_unavailable" for e in logs)
        assert svc.firing_count() == 0
        assert receiver.posts == []


class TestPersistence:
    """SqlAlertStore keeps state across restarts (a new service over the same database)."""

    async def test_restart_neither_resends_nor_forgets(
        self, notifier: Notifier, receiver: RecordingReceiver, engine: Engine
    ) -> None:
        """After a restart a still-regressed run is quiet, repeat and resolution still come."""
        settings = make_settings([webhook(receiver)])
        first = service(SqlAlertStore(engine), notifier, settings)
        await first.handle_run(make_run(1), [make_verdict()], now=T0)
        assert first.firing_count() == 1

        restarted = service(SqlAlertStore(engine), notifier, settings)
        assert await restarted.refresh() == 1
        await restarted.handle_run(make_run(2), [make_verdict()], now=T0 + HOUR)
        assert statuses(receiver) == [("MonitorRegression", "firing")]
        await restarted.handle_run(make_run(3), [make_verdict()], now=T0 + 4 * HOUR)
        await restarted.handle_run(make_run(4), [make_verdict(OK)], now=T0 + 5 * HOUR)
        assert statuses(receiver) == [
            ("MonitorRegression", "firing"),
            ("MonitorRegression", "repeat"),
            ("MonitorRegression", "resolved"),
        ]
        assert restarted.firing_count() == 0

        again = service(SqlAlertStore(engine), notifier, settings)
        assert again.firing_count() == 0
        await again.handle_run(make_run(5), [make_verdict(OK)], now=T0 + 6 * HOUR)
        assert len(receiver.posts) == 3

    async def test_owed_notification_survives_a_restart(
        self, receiver: RecordingReceiver, engine: Engine
    ) -> None:
        """A page that failed before a restart is sent by the restarted service."""
        settings = make_settings([webhook(receiver)])
        receiver.respond(503)
        async with Notifier(retry=RetryPolicy(retries=0)) as notifier:
            await service(SqlAlertStore(engine), notifier, settings).handle_run(
                make_run(1), [make_verdict()], now=T0
            )
        receiver.always(200)
        async with Notifier(retry=RetryPolicy(retries=0)) as notifier:
            await service(SqlAlertStore(engine), notifier, settings).handle_run(
                make_run(2), [make_verdict()], now=T0 + HOUR
            )
        assert statuses(receiver) == [
            ("MonitorRegression", "firing"),
            ("MonitorRegression", "firing"),
        ]


class TestSqlAlertStore:
    """The SQL adapter on its own: round trips, upserts, the firing query."""

    def make(self, state: AlertState, fp: str = "a" * 16, **fields: Any) -> Alert:
        values: dict[str, Any] = {
            "fingerprint": fp,
            "name": "MonitorRegression",
            "labels": {"alertname": "MonitorRegression", "monitor": "m", "scorer": "é"},
            "annotations": {"summary": "dropped → 4 points", "pass_to_fail": '["a"]'},
            "state": state,
            "since": T0,
        }
        values.update(fields)
        return Alert(**values)

    def test_round_trip(self, engine: Engine) -> None:
        """Every field comes back equal, with aware UTC datetimes."""
        store = SqlAlertStore(engine)
        alert = self.make(AlertState.FIRING, last_notified=T0 + HOUR)
        store.save([alert], T0 + HOUR)
        assert store.load([alert.fingerprint]) == {alert.fingerprint: alert}
        loaded = store.load([alert.fingerprint])[alert.fingerprint]
        assert loaded.since.utcoffset() == timedelta(0)

    def test_upsert_replaces(self, engine: Engine) -> None:
        """Saving the same fingerprint again replaces the row."""
        store = SqlAlertStore(engine)
        store.save([self.make(AlertState.FIRING, last_notified=T0)], T0)
        resolved = self.make(AlertState.RESOLVED, last_notified=T0 + HOUR, resolved_at=T0 + HOUR)
        store.save([resolved], T0 + HOUR)
        assert store.load(["a" * 16]) == {"a" * 16: resolved}
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(t.alert)).scalar() == 1

    def test_pending_streak_is_kept(self, engine: Engine) -> None:
        """A pending alert's run count survives (in the annotations, hidden on load)."""
        store = SqlAlertStore(engine)
        pending = self.make(AlertState.PENDING, streak=2)
        store.save([pending], T0)
        loaded = store.load([pending.fingerprint])[pending.fingerprint]
        assert loaded.streak == 2
        assert STREAK_KEY not in loaded.annotations
        assert loaded == pending

    def test_firing_lists_only_firing_alerts(self, engine: Engine) -> None:
        """firing() returns firing alerts, oldest first."""
        store = SqlAlertStore(engine)
        store.save(
            [
                self.make(AlertState.FIRING, "b" * 16, since=T0 + HOUR),
                self.make(AlertState.FIRING, "c" * 16, since=T0),
                self.make(AlertState.PENDING, "d" * 16, streak=1),
                self.make(AlertState.RESOLVED, "e" * 16, resolved_at=T0),
            ],
            T0,
        )
        assert [a.fingerprint for a in store.firing()] == ["c" * 16, "b" * 16]

    def test_load_of_unknown_and_many_fingerprints(self, engine: Engine) -> None:
        """Unknown fingerprints are absent; long lists are read in chunks."""
        store = SqlAlertStore(engine)
        alerts = [self.make(AlertState.FIRING, f"{i:016x}") for i in range(1200)]
        store.save(alerts, T0)
        found = store.load([a.fingerprint for a in alerts] + ["f" * 16])
        assert len(found) == 1200
        assert store.load([]) == {}

    def test_database_errors_become_storage_errors(self, tmp_path: Any) -> None:
        """A database without the schema raises StorageError, not SQLAlchemy's error."""
        eng = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        try:
            with pytest.raises(StorageError, match="could not read firing alerts"):
                SqlAlertStore(eng).firing()
        finally:
            eng.dispose()
