"""Generic webhook receiver: one JSON document per notification (docs/alerts.md).

The document is versioned (``"version": "1"``); fields are only ever added within a
version. Numbers that were stored as annotation strings are sent as JSON numbers, changed
item keys as arrays, absent values as null.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from monitor.config import WebhookReceiver
from monitor.core.alerts import REGRESSION_ALERT, AlertState
from monitor.notify.base import (
    HttpChannel,
    Message,
    annotation_int,
    annotation_items,
    annotation_number,
)

__all__ = ["PAYLOAD_VERSION", "WebhookChannel", "webhook_payload"]

PAYLOAD_VERSION = "1"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _pair(annotations: Mapping[str, str], lower: str, upper: str) -> list[float] | None:
    lo, hi = annotation_number(annotations, lower), annotation_number(annotations, upper)
    return None if lo is None or hi is None else [lo, hi]


def webhook_payload(message: Message, *, receiver: str) -> dict[str, Any]:
    """The JSON document the generic webhook receives for `message`."""
    alert = message.alert
    notes = alert.annotations
    labels = alert.labels
    ends_at = alert.resolved_at if alert.state is AlertState.RESOLVED else None
    result: dict[str, Any] | None = None
    changed: dict[str, Any] | None = None
    if alert.name == REGRESSION_ALERT:
        result = {
            "verdict": notes.get("verdict"),
            "test": notes.get("test"),
            "baseline": notes.get("baseline"),
            "baseline_score": annotation_number(notes, "baseline_score"),
            "current_score": annotation_number(notes, "current_score"),
            "current_ci": _pair(notes, "current_ci_lower", "current_ci_upper"),
            "effect": annotation_number(notes, "effect"),
            "effect_ci": _pair(notes, "effect_ci_lower", "effect_ci_upper"),
            "p_value": annotation_number(notes, "p_value"),
            "p_adjusted": annotation_number(notes, "p_adjusted"),
        }
        changed = {
            "pass_to_fail": annotation_items(notes, "pass_to_fail"),
            "pass_to_fail_count": annotation_int(notes, "pass_to_fail_count") or 0,
            "fail_to_pass": annotation_items(notes, "fail_to_pass"),
            "fail_to_pass_count": annotation_int(notes, "fail_to_pass_count") or 0,
        }
    return {
        "version": PAYLOAD_VERSION,
        "receiver": receiver,
        "status": message.status,
        "notification": message.notification,
        "sent_at": _iso(message.now),
        "alert": {
            "name": alert.name,
            "fingerprint": alert.fingerprint,
            "state": alert.state.value,
            "labels": dict(labels),
            "annotations": dict(notes),
            "starts_at": _iso(alert.since),
            "ends_at": _iso(ends_at),
        },
        "monitor": labels.get("monitor"),
        "endpoint": labels.get("endpoint"),
        "benchmark": labels.get("benchmark"),
        "scorer": labels.get("scorer"),
        "severity": labels.get("severity"),
        "summary": notes.get("summary", ""),
        "description": notes.get("description", ""),
        "run": {
            "id": annotation_int(notes, "run_id"),
            "url": notes.get("run_url"),
            "changed_items_url": notes.get("items_url"),
            "page_url": notes.get("run_page_url"),
            "changed_items_page_url": notes.get("items_page_url"),
            "n_items": annotation_int(notes, "n_items"),
            "n_errors": annotation_int(notes, "n_errors"),
        },
        "trend_url": notes.get("trend_url"),
        "dashboard_url": notes.get("dashboard_url"),
        "result": result,
        "changed_items": changed,
    }


class WebhookChannel(HttpChannel):
    """POSTs `webhook_payload` to a receiver's ``webhook.url`` with its headers."""

    kind = "webhook"

    def __init__(self, receiver: str, settings: WebhookReceiver) -> None:
        super().__init__(receiver, settings.url, settings.headers)

    def payload(self, message: Message) -> dict[str, Any]:
        """The versioned webhook document for `message`."""
        return webhook_payload(message, receiver=self.receiver)
