"""`SqlAlertStore`: the built-in notifier's alert state in the ``alert`` table.

It satisfies `monitor.notify.service.AlertStore` structurally (storage does not import
notify). One row per fingerprint; `save` upserts. Like `SqlStore`, every method is one
transaction or one read and raises `StorageError` when the database refuses.

The table has no column for a pending alert's run count (`Alert.streak`, used only when
``pending_runs > 1``); it is kept in the annotations JSON under `STREAK_KEY` while the
alert is pending and removed from the annotations on the way out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping

from monitor.core.alerts import Alert, AlertState
from monitor.errors import StorageError
from monitor.storage import tables as t
from monitor.storage.access import EngineAccess

__all__ = ["STREAK_KEY", "SqlAlertStore"]

STREAK_KEY = "_pending_runs"

_IN_CHUNK = 500


def _row(alert: Alert, now: datetime) -> dict[str, Any]:
    annotations = {str(k): str(v) for k, v in alert.annotations.items() if k != STREAK_KEY}
    if alert.state is AlertState.PENDING and alert.streak:
        annotations[STREAK_KEY] = str(alert.streak)
    return {
        "fingerprint": alert.fingerprint,
        "labels": {str(k): str(v) for k, v in alert.labels.items()},
        "annotations": annotations,
        "state": alert.state.value,
        "since": alert.since,
        "last_notified": alert.last_notified,
        "resolved_at": alert.resolved_at,
        "updated_at": now,
    }


def _alert_from(row: RowMapping) -> Alert:
    labels = dict(row["labels"] or {})
    annotations = dict(row["annotations"] or {})
    streak_text = annotations.pop(STREAK_KEY, "0")
    try:
        state = AlertState(row["state"])
        streak = int(streak_text)
    except ValueError as exc:
        raise StorageError(f"alert {row['fingerprint']!r} has an invalid state: {exc}") from exc
    return Alert(
        fingerprint=row["fingerprint"],
        name=str(labels.get("alertname", "")),
        labels=labels,
        annotations=annotations,
        state=state,
        since=row["since"],
        last_notified=row["last_notified"],
        resolved_at=row["resolved_at"],
        streak=streak if state is AlertState.PENDING else 0,
    )


class SqlAlertStore(EngineAccess):
    """Alert state on the database of `engine` (SQLite or PostgreSQL, schema migrated)."""

    def __init__(self, engine: Engine) -> None:
        """Use `engine`; the caller owns it (and disposes of it)."""
        super().__init__(engine)

    def load(self, fingerprints: Collection[str]) -> dict[str, Alert]:
        """The stored alerts among `fingerprints`, by fingerprint."""
        wanted = list(dict.fromkeys(fingerprints))
        found: dict[str, Alert] = {}
        with self._read("read alert state") as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                rows = conn.execute(
                    sa.select(t.alert).where(t.alert.c.fingerprint.in_(chunk))
                ).mappings()
                for row in rows:
                    found[row["fingerprint"]] = _alert_from(row)
        return found

    def save(self, alerts: Sequence[Alert], now: datetime) -> None:
        """Insert or replace `alerts` (by fingerprint) in one transaction."""
        if not alerts:
            return
        latest = {alert.fingerprint: alert for alert in alerts}  # one row each, last wins
        rows = [_row(alert, now) for alert in latest.values()]
        stmt = self._insert(t.alert)
        stmt = stmt.on_conflict_do_update(
            index_elements=["fingerprint"],
            set_={
                column: stmt.excluded[column]
                for column in (
                    "labels",
                    "annotations",
                    "state",
                    "since",
                    "last_notified",
                    "resolved_at",
                    "updated_at",
                )
            },
        )
        with self._write(f"save {len(rows)} alerts") as conn:
            conn.execute(stmt, rows)

    def firing(self) -> list[Alert]:
        """Every alert in state firing, oldest first."""
        query = (
            sa.select(t.alert)
            .where(t.alert.c.state == AlertState.FIRING.value)
            .order_by(t.alert.c.since, t.alert.c.fingerprint)
        )
        with self._read("read firing alerts") as conn:
            rows = conn.execute(query).mappings().all()
        return [_alert_from(row) for row in rows]
