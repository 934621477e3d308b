"""`AlertService`: from a judged run to delivered notifications and saved alert state.

For each finished run the service

1. reads the firing alerts from the `AlertStore` (to clear alerts of vanished scorers),
2. builds the desired alerts of the run (`monitor.core.alerts.alerts_from_verdicts`),
3. loads their previous state, advances each one through the state machine,
4. delivers the notifications to every channel of the monitor's receivers, concurrently,
5. saves the new states, and refreshes the count behind ``monitor_alerts_firing``.

Failures never reach the caller. A notification counts as delivered when every channel
accepted it or failed *permanently* (a 4xx: retrying cannot help; logged as an error).
When any channel failed transiently (after `Notifier`'s own retries) the alert is saved
as not notified (`monitor.core.alerts.undelivered`) and the next run of the same
(monitor, endpoint) sends it again, to every channel: receivers may see a duplicate,
never a gap. A storage failure is logged and the run's alerts are skipped.

The state lives in the store, so a restarted daemon neither re-sends what it already
sent nor forgets what is firing.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.config import Settings
from monitor.core.alerts import (
    Action,
    Alert,
    AlertState,
    advance,
    alerts_from_verdicts,
    undelivered,
)
from monitor.core.model import Run, ScoreSummary, Verdict
from monitor.errors import ConfigError, NotifyError, StorageError
from monitor.log import get_logger
from monitor.notify.alertmanager import AlertmanagerChannel
from monitor.notify.base import Channel, Message, Notifier
from monitor.notify.slack import SlackChannel
from monitor.notify.webhook import WebhookChannel
from monitor.ports import AlertStore

__all__ = ["AlertService", "AlertStore", "Outcome", "channels_for"]

log = get_logger("notify")

# Alertmanager forgets a firing alert at its endsAt unless it is posted again: keep it
# for two repeat intervals (each repeat moves it), and never less than this.
_MIN_ALERTMANAGER_TTL = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one alert of a run: its saved state, the notification asked
    for, and whether it was delivered (True when there was nothing to send)."""

    alert: Alert
    action: Action
    delivered: bool
    errors: tuple[str, ...] = ()


def channels_for(settings: Settings, monitor: str, *, alertmanager_ttl: timedelta) -> list[Channel]:
    """Every channel of every receiver the monitor alerts (`monitors[].alert`)."""
    try:
        names = settings.monitor(monitor).alert
    except ConfigError:
        return []  # the monitor left the configuration (reload) while its run finished
    receivers = {r.name: r for r in settings.alerting.receivers}
    channels: list[Channel] = []
    for name in names:
        receiver = receivers.get(name)
        if receiver is None:
            continue  # config validation rejects this; keep going on a partial reload
        if receiver.webhook is not None:
            channels.append(WebhookChannel(name, receiver.webhook))
        if receiver.slack is not None:
            channels.append(SlackChannel(name, receiver.slack))
        if receiver.alertmanager is not None:
            channels.append(AlertmanagerChannel(name, receiver.alertmanager, ttl=alertmanager_ttl))
    return channels


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AlertService:
    """The built-in notifier: alert state machine, delivery and persistence.

    `settings` is called for every run so a configuration reload (receivers,
    `repeat_interval`, `dashboard_url`) applies to the next run. `api_base` is the URL the
    alerts link to (``http://monitor.internal:9464``); by default the ``server.listen``
    address. `pending_runs` is how many consecutive regressed runs make an alert fire.
    """

    def __init__(
        self,
        store: AlertStore,
        notifier: Notifier,
        settings: Callable[[], Settings],
        *,
        api_base: str | None = None,
        pending_runs: int = 1,
        ci_level: float = 0.95,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if pending_runs < 1:
            raise ValueError(f"pending_runs must be at least 1, got {pending_runs}")
        self._store = store
        self._notifier = notifier
        self._settings = settings
        self._api_base = api_base
        self._pending_runs = pending_runs
        self._ci_level = ci_level
        self._clock = clock
        self._locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._firing: int | None = None

    # ------------------------------------------------------------ public

    def firing_count(self) -> int:
        """Alerts firing now (for the ``monitor_alerts_firing`` gauge).

        Kept up to date by `handle_run` and `refresh`; the first call before either reads
        the store (blocking), and 0 is returned if the store cannot be read.
        """
        if self._firing is None:
            try:
                self._firing = len(self._store.firing())
            except StorageError as exc:
                log.exception("alert_state_unavailable", error=str(exc))
                return 0
        return self._firing

    async def refresh(self) -> int:
        """Re-read the firing count from the store (call at start-up); return it."""
        try:
            alerts = await asyncio.to_thread(self._store.firing)
        except StorageError as exc:
            log.exception("alert_state_unavailable", error=str(exc))
            return self._firing or 0
        self._firing = len(alerts)
        return self._firing

    async def handle_run(
        self,
        run: Run,
        verdicts: Sequence[Verdict],
        *,
        scores: Iterable[ScoreSummary] = (),
        now: datetime | None = None,
    ) -> list[Outcome]:
        """Advance, deliver and save the alerts of one finished run; never raises
        `MonitorError` (failures are logged). Returns one `Outcome` per alert touched."""
        async with self._locks[(run.monitor, run.endpoint)]:
            try:
                return await self._handle(run, verdicts, scores, now or self._clock())
            except StorageError as exc:
                log.exception(
                    "alert_state_unavailable",
                    monitor=run.monitor,
                    endpoint=run.endpoint,
                    run_id=run.id,
                    error=str(exc),
                )
                return []

    # ------------------------------------------------------------ internals

    def _base_url(self, settings: Settings) -> str:
        if self._api_base:
            return self._api_base
        return settings.server.base_url

    async def _handle(
        self,
        run: Run,
        verdicts: Sequence[Verdict],
        scores: Iterable[ScoreSummary],
        now: datetime,
    ) -> list[Outcome]:
        settings = self._settings()
        open_alerts = await asyncio.to_thread(self._store.firing)
        self._firing = len(open_alerts)
        desired = alerts_from_verdicts(
            run,
            verdicts,
            api_base=self._base_url(settings),
            dashboard_url=settings.server.dashboard_url,
            scores=scores,
            open_alerts=open_alerts,
            ci_level=self._ci_level,
        )
        if not desired:
            return []
        previous = await asyncio.to_thread(self._store.load, [d.fingerprint for d in desired])
        repeat = timedelta(seconds=settings.alerting.repeat_interval)
        channels = channels_for(
            settings, run.monitor, alertmanager_ttl=max(2 * repeat, _MIN_ALERTMANAGER_TTL)
        )
        steps: list[tuple[Alert | None, Alert, Action]] = []
        for wanted in desired:
            before = previous.get(wanted.fingerprint)
            after, action = advance(
                before, wanted, now, repeat_interval=repeat, pending_runs=self._pending_runs
            )
            if after is not None:
                steps.append((before, after, action))
        results = await asyncio.gather(
            *(self._deliver(channels, Message(after, action, now)) for _, after, action in steps)
        )
        outcomes: list[Outcome] = []
        changed: list[Alert] = []
        for (before, after, action), failures in zip(steps, results, strict=True):
            delivered = not any(not f.permanent for f in failures)
            saved = after if delivered else undelivered(before, after, action)
            if saved != before:
                changed.append(saved)
            outcomes.append(Outcome(saved, action, delivered, tuple(str(f) for f in failures)))
        if changed:
            await asyncio.to_thread(self._store.save, changed, now)
        self._firing = await asyncio.to_thread(self._count_firing)
        return outcomes

    def _count_firing(self) -> int:
        return sum(1 for alert in self._store.firing() if alert.state is AlertState.FIRING)

    async def _deliver(self, channels: Sequence[Channel], message: Message) -> list[NotifyError]:
        """Send `message` on every channel; the failures (empty when all delivered)."""
        if message.action is Action.NONE or not channels:
            return []
        results = await asyncio.gather(*(self._send(ch, message) for ch in channels))
        failures = [r for r in results if r is not None]
        alert = message.alert
        context = {
            "alertname": alert.name,
            "fingerprint": alert.fingerprint,
            "monitor": alert.labels.get("monitor"),
            "endpoint": alert.labels.get("endpoint"),
            "scorer": alert.labels.get("scorer"),
            "notification": message.notification,
        }
        delivered = [
            f"{ch.receiver}/{ch.kind}" for ch, r in zip(channels, results, strict=True) if r is None
        ]
        if delivered:
            log.info("alert_notified", channels=delivered, **context)
        for failure in failures:
            retried = not failure.permanent
            log_method = log.warning if retried else log.error
            log_method(
                "alert_delivery_failed",
                receiver=failure.receiver,
                permanent=failure.permanent,
                retry_next_run=retried,
                error=str(failure),
                **context,
            )
        return failures

    async def _send(self, channel: Channel, message: Message) -> NotifyError | None:
        try:
            await channel.send(self._notifier, message)
        except NotifyError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - a bug in one channel must not stop the others
            return NotifyError(
                channel.receiver, f"{channel.kind}: {type(exc).__name__}: {exc}", permanent=False
            )
        return None
