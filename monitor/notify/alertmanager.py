"""Alertmanager receiver: ``POST {url}/api/v2/alerts`` so built-in alerts join its routing,
grouping, inhibition and silences.

Alertmanager treats an alert whose ``endsAt`` has passed as resolved, and one posted
without ``endsAt`` as resolved after its ``resolve_timeout`` (5 minutes by default) unless
it is posted again, which is what Prometheus does every evaluation. The built-in notifier
posts only when it notifies, so a firing alert carries ``endsAt = now + ttl``: the service
uses twice the repeat interval (at least an hour), and every repeat notification moves it
forward. If the daemon stops, Alertmanager resolves the alert by itself after that time.
A resolution is posted with ``endsAt`` = the time the alert resolved.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.config import UrlReceiver
from monitor.core.alerts import AlertState
from monitor.notify.base import HttpChannel, Message

__all__ = ["DEFAULT_TTL", "AlertmanagerChannel", "alertmanager_payload"]

DEFAULT_TTL = timedelta(hours=8)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alertmanager_payload(message: Message, *, ttl: timedelta = DEFAULT_TTL) -> list[dict[str, Any]]:
    """The ``postableAlerts`` body (a list of one alert) for `message`."""
    alert = message.alert
    if alert.state is AlertState.RESOLVED:
        ends_at = alert.resolved_at or message.now
    else:
        ends_at = message.now + ttl
    ends_at = max(ends_at, alert.since)  # Alertmanager rejects an end before the start
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": _rfc3339(alert.since),
        "endsAt": _rfc3339(ends_at),
    }
    generator = alert.annotations.get("run_page_url") or alert.annotations.get("run_url")
    if generator:
        body["generatorURL"] = generator
    return [body]


class AlertmanagerChannel(HttpChannel):
    """POSTs `alertmanager_payload` to ``{alertmanager.url}/api/v2/alerts``."""

    kind = "alertmanager"

    def __init__(
        self, receiver: str, settings: UrlReceiver, *, ttl: timedelta = DEFAULT_TTL
    ) -> None:
        super().__init__(receiver, f"{settings.url.rstrip('/')}/api/v2/alerts")
        self.ttl = ttl

    def payload(self, message: Message) -> list[dict[str, Any]]:
        """The ``postableAlerts`` body for `message`, ending `ttl` from now while firing."""
        return alertmanager_payload(message, ttl=self.ttl)
