"""Notify adapter: the built-in notifier's delivery to webhooks, Slack and Alertmanager.

The state machine and alert content are pure (`monitor.core.alerts`); this package owns
the HTTP delivery (`base.Notifier`, one aiohttp session with retries), one module per
receiver format (each a `base.HttpChannel` subclass: its URL and its JSON body), and
`service.AlertService`, which ties a judged run to notifications and saved state. It
imports `monitor.core`, `monitor.config` and `monitor.errors`, never another adapter: the
alert store comes in through the `AlertStore` Protocol.
"""

from monitor.notify.alertmanager import AlertmanagerChannel, alertmanager_payload
from monitor.notify.base import Channel, HttpChannel, Message, Notifier, RetryPolicy
from monitor.notify.service import AlertService, AlertStore, Outcome, channels_for
from monitor.notify.slack import SlackChannel, slack_payload
from monitor.notify.webhook import WebhookChannel, webhook_payload

__all__ = [
    "AlertService",
    "AlertStore",
    "AlertmanagerChannel",
    "Channel",
    "HttpChannel",
    "Message",
    "Notifier",
    "Outcome",
    "RetryPolicy",
    "SlackChannel",
    "WebhookChannel",
    "alertmanager_payload",
    "channels_for",
    "slack_payload",
    "webhook_payload",
]
