"""Tests for notification delivery: retries and failure classes against a real loopback
receiver, and the webhook, Slack and Alertmanager payloads."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import UrlReceiver, WebhookReceiver
from monitor.core.alerts import Action
from monitor.errors import NotifyError
from monitor.notify import (
    AlertmanagerChannel,
    Notifier,
    RetryPolicy,
    SlackChannel,
    WebhookChannel,
    alertmanager_payload,
    slack_payload,
    webhook_payload,
)
from monitor.notify.base import parse_retry_after
from tests.fakes import RecordingReceiver, RecordingSleep
from tests.notify.conftest import (
    T0,
    firing_message,
    resolved_message,
)

LATER = T0 + timedelta(hours=1)


async def post(notifier: Notifier, url: str) -> int:
    return await notifier.post_json(receiver="oncall", channel="webhook", url=url, payload={"a": 1})


class TestRetries:
    """`Notifier.post_json`: which failures are retried, how long it waits, what it raises."""

    async def test_success_takes_one_attempt(
        self, notifier: Notifier, receiver: RecordingReceiver, sleeps: RecordingSleep
    ) -> None:
        """A 2xx answer is one attempt and no wait; the body is JSON with a User-Agent."""
        assert await post(notifier, f"{receiver.url}/hook") == 1
        (got,) = receiver.posts
        assert got.json() == {"a": 1}
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["User-Agent"].startswith("monitor/")
        assert sleeps.calls == []

    async def test_5xx_is_retried_with_exponential_backoff(
        self, notifier: Notifier, receiver: RecordingReceiver, sleeps: RecordingSleep
    ) -> None:
        """503, 503, 200: three attempts, waits of about 1 s and 2 s (jitter shortens them)."""
        receiver.respond(503)
        receiver.respond(503)
        receiver.respond(200)
        assert await post(notifier, receiver.url) == 3
        assert len(receiver.posts) == 3
        assert len(sleeps.calls) == 2
        assert 0.5 <= sleeps.calls[0] <= 1.0
        assert 1.0 <= sleeps.calls[1] <= 2.0

    async def test_429_honours_retry_after(
        self, notifier: Notifier, receiver: RecordingReceiver, sleeps: RecordingSleep
    ) -> None:
        """A 429 with Retry-After waits exactly that long before the retry."""
        receiver.respond(429, headers={"Retry-After": "7"})
        receiver.respond(200)
        assert await post(notifier, receiver.url) == 2
        assert sleeps.calls == [7.0]

    async def test_retry_after_is_capped(
        self, receiver: RecordingReceiver, sleeps: RecordingSleep
    ) -> None:
        """A Retry-After beyond max_delay waits max_delay."""
        receiver.respond(503, headers={"Retry-After": "3600"})
        receiver.respond(200)
        async with Notifier(retry=RetryPolicy(max_delay=30.0), sleep=sleeps) as client:
            await post(client, receiver.url)
        assert sleeps.calls == [30.0]

    async def test_400_is_permanent_and_not_retried(
        self, notifier: Notifier, receiver: RecordingReceiver, sleeps: RecordingSleep
    ) -> None:
        """A 400 raises a permanent NotifyError after exactly one request."""
        receiver.respond(400, body=b'{"error": "invalid payload"}')
        with pytest.raises(NotifyError) as caught:
            await post(notifier, receiver.url)
        assert caught.value.permanent
        assert caught.value.receiver == "oncall"
        assert "HTTP 400" in str(caught.value)
        assert "invalid payload" in str(caught.value)
        assert len(receiver.posts) == 1
        assert sleeps.calls == []

    async def test_redirect_is_permanent_and_not_followed(
        self, notifier: Notifier, receiver: RecordingReceiver
    ) -> None:
        """A 3xx is not followed (it could carry the payload elsewhere) and not retried."""
        receiver.respond(302, headers={"Location": "http://127.0.0.1:1/elsewhere"})
        with pytest.raises(NotifyError) as caught:
            await post(notifier, receiver.url)
        assert caught.value.permanent
        assert len(receiver.posts) == 1

    async def test_persistent_5xx_gives_up_transient(
        self, notifier: Notifier, receiver: RecordingReceiver, sleeps: RecordingSleep
    ) -> None:
        """After 1 + 3 attempts of 500 the error is transient (retry next run)."""
        receiver.respond(500)
        with pytest.raises(NotifyError) as caught:
            await post(notifier, receiver.url)
        assert not caught.value.permanent
        assert "gave up after 4 attempts" in str(caught.value)
        assert len(receiver.posts) == 4
        assert len(sleeps.calls) == 3

    async def test_connection_refused_is_transient(
        self, notifier: Notifier, closed_port: int, sleeps: RecordingSleep
    ) -> None:
        """Nothing listening is retried, then reported as transient."""
        with pytest.raises(NotifyError) as caught:
            await post(notifier, f"http://127.0.0.1:{closed_port}/hook")
        assert not caught.value.permanent
        assert "cannot connect" in str(caught.value)
        assert len(sleeps.calls) == 3

    async def test_timeout_is_transient(
        self, receiver: RecordingReceiver, sleeps: RecordingSleep
    ) -> None:
        """A receiver slower than the timeout counts as a transient failure per attempt."""
        receiver.respond(200, delay=5.0)
        async with Notifier(retry=RetryPolicy(retries=1), timeout=0.2, sleep=sleeps) as client:
            with pytest.raises(NotifyError) as caught:
                await asyncio.wait_for(post(client, receiver.url), timeout=10)
        assert not caught.value.permanent
        assert "no answer within 0.2s" in str(caught.value)
        assert len(receiver.posts) == 2

    async def test_invalid_url_is_permanent(self, notifier: Notifier) -> None:
        """A URL that cannot be requested is a permanent failure, without quoting it."""
        with pytest.raises(NotifyError) as caught:
            await post(notifier, "not a url/secret-token")
        assert caught.value.permanent
        assert "secret-token" not in str(caught.value)

    async def test_error_messages_never_contain_the_url(
        self, notifier: Notifier, receiver: RecordingReceiver
    ) -> None:
        """A Slack URL is a secret: failures name the receiver and channel, not the URL."""
        receiver.respond(404)
        with pytest.raises(NotifyError) as caught:
            await notifier.post_json(
                receiver="chat",
                channel="slack",
                url=f"{receiver.url}/services/T000/B000/SECRETTOKEN",
                payload={},
            )
        text = str(caught.value)
        assert "SECRETTOKEN" not in text
        assert "'chat'" in text
        assert "slack" in text

    async def test_closed_notifier_refuses_to_send(self, receiver: RecordingReceiver) -> None:
        """A closed notifier raises instead of silently opening a new session."""
        client = Notifier()
        await client.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await post(client, receiver.url)


class TestRetryPolicy:
    """The backoff schedule and Retry-After parsing."""

    def test_backoff_doubles_up_to_the_cap(self) -> None:
        """Without jitter the waits are 1, 2, 4, 8 ... capped at max_delay."""
        policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.0)
        rng = random.Random(1)
        assert [policy.delay(n, None, rng) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]

    def test_jitter_only_shortens(self) -> None:
        """Jitter takes up to its fraction off the wait, never adds to it."""
        policy = RetryPolicy(base_delay=2.0, jitter=0.5)
        rng = random.Random(3)
        waits = [policy.delay(1, None, rng) for _ in range(200)]
        assert all(1.0 <= w <= 2.0 for w in waits)
        assert len(set(waits)) > 100

    def test_invalid_policies_are_rejected(self) -> None:
        """Negative numbers and a jitter outside [0, 1] are programming errors."""
        with pytest.raises(ValueError, match="negative"):
            RetryPolicy(retries=-1)
        with pytest.raises(ValueError, match="jitter"):
            RetryPolicy(jitter=1.5)

    @pytest.mark.parametrize(
        ("header", "seconds"),
        [
            ("12", 12.0),
            ("0.5", 0.5),
            ("-3", 0.0),
            ("Mon, 02 Mar 2026 08:31:00 GMT", 60.0),
            ("Mon, 02 Mar 2026 08:00:00 GMT", 0.0),
            ("soon", None),
            ("", None),
            (None, None),
            ("nan", None),
        ],
    )
    def test_parse_retry_after(self, header: str | None, seconds: float | None) -> None:
        """Delta-seconds and HTTP-dates are understood; anything else is ignored."""
        now = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
        assert parse_retry_after(header, now) == seconds


class TestWebhookPayload:
    """The generic webhook's JSON document."""

    async def test_firing_payload_is_delivered(
        self, notifier: Notifier, receiver: RecordingReceiver
    ) -> None:
        """The webhook channel posts the document with the receiver's extra headers."""
        channel = WebhookChannel(
            "oncall", WebhookReceiver(url=f"{receiver.url}/hook", headers={"X-Token": "t0k"})
        )
        await channel.send(notifier, firing_message())
        (got,) = receiver.on("/hook")
        assert got.headers["X-Token"] == "t0k"
        body = got.json()
        assert body["version"] == "1"
        assert body["status"] == "firing"
        assert body["receiver"] == "oncall"

    def test_firing_payload_content(self) -> None:
        """Status, alert fields, figures, run link, dashboard link and changed items."""
        body = webhook_payload(firing_message(), receiver="oncall")
        assert body["notification"] == "firing"
        assert body["sent_at"] == "2026-03-02T08:30:00+00:00"
        alert = body["alert"]
        assert alert["name"] == "MonitorRegression"
        assert alert["state"] == "firing"
        assert alert["starts_at"] == "2026-03-02T08:30:00+00:00"
        assert alert["ends_at"] is None
        assert alert["labels"]["scorer"] == "exact_match"
        assert len(alert["fingerprint"]) == 16
        assert (body["monitor"], body["endpoint"], body["benchmark"], body["scorer"]) == (
            "intents-prod",
            "chat-prod",
            "support-intents",
            "exact_match",
        )
        assert body["severity"] == "critical"
        assert body["summary"].startswith("intents-prod on chat-prod: exact_match dropped 4.2")
        assert body["run"] == {
            "id": 17,
            "url": "http://monitor.test:9464/api/v1/runs/17",
            "changed_items_url": "http://monitor.test:9464/api/v1/runs/17/items?changed=true",
            "page_url": "http://monitor.test:9464/ui/runs/17",
            "changed_items_page_url": "http://monitor.test:9464/ui/runs/17#flipped",
            "n_items": None,
            "n_errors": None,
        }
        assert body["trend_url"] == "http://monitor.test:9464/ui/monitors/intents-prod/chat-prod"
        assert body["dashboard_url"].startswith("https://grafana.example/d/monitor-detail/")
        result = body["result"]
        assert result["verdict"] == "regressed"
        assert result["baseline_score"] == 0.912
        assert result["current_score"] == pytest.approx(0.87)
        assert result["effect"] == -0.042
        assert result["effect_ci"] == [-0.059, -0.025]
        assert result["p_value"] == 0.0003
        assert result["p_adjusted"] == 0.0012
        assert body["changed_items"] == {
            "pass_to_fail": [f"item-{i}" for i in range(5)],
            "pass_to_fail_count": 7,
            "fail_to_pass": ["item-99"],
            "fail_to_pass_count": 1,
        }
        json.dumps(body, allow_nan=False)  # plain JSON

    def test_repeat_and_resolved_payloads(self) -> None:
        """A repeat says so; a resolution has status resolved and an end time."""
        repeat = webhook_payload(firing_message(Action.NOTIFY_REPEAT), receiver="r")
        assert (repeat["status"], repeat["notification"]) == ("firing", "repeat")
        body = webhook_payload(resolved_message(LATER), receiver="r")
        assert (body["status"], body["notification"]) == ("resolved", "resolved")
        assert body["alert"]["ends_at"] == LATER.isoformat()
        assert body["summary"] == "recovered"


class TestSlackPayload:
    """The Slack incoming-webhook body."""

    def test_shape(self) -> None:
        """Fallback text plus blocks: headline, figures as fields, changed items, links."""
        body = slack_payload(firing_message())
        assert body["text"].startswith("FIRING: MonitorRegression: intents-prod on chat-prod")
        blocks = body["blocks"]
        assert blocks[0]["type"] == "section"
        assert ":rotating_light: *FIRING: MonitorRegression*" in blocks[0]["text"]["text"]
        fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in blocks[1]["fields"]}
        assert fields["*Monitor*"] == "intents-prod"
        assert fields["*Baseline → current*"] == "0.912 → 0.870"
        assert fields["*Change*"] == "-0.042 (CI -0.059 to -0.025)"
        assert fields["*p-value*"] == "0.0003 (poisson_binomial)"
        assert len(blocks[1]["fields"]) <= 10
        assert "*7 pass → fail:* `item-0`" in blocks[2]["text"]["text"]
        assert "and 2 more" in blocks[2]["text"]["text"]
        context = blocks[3]["elements"][0]["text"]
        # a person clicks these: the web pages, not the API's JSON
        assert "<http://monitor.test:9464/ui/runs/17|Run 17>" in context
        assert "<http://monitor.test:9464/ui/runs/17#flipped|Changed items>" in context
        assert "<http://monitor.test:9464/ui/monitors/intents-prod/chat-prod|Trend>" in context
        assert "|Dashboard>" in context

    def test_mrkdwn_is_escaped(self) -> None:
        """&, < and > in alert text cannot inject Slack links or mentions."""
        message = firing_message()
        notes = {**message.alert.annotations, "summary": "<!channel> a & b"}
        evil = replace(message, alert=replace(message.alert, annotations=notes))
        body = slack_payload(evil)
        assert "&lt;!channel&gt; a &amp; b" in body["blocks"][0]["text"]["text"]

    def test_resolved(self) -> None:
        """A resolution is titled RESOLVED and lists no changed items."""
        body = slack_payload(resolved_message(LATER))
        assert body["text"] == "RESOLVED: MonitorRegression: recovered"
        assert all("pass → fail" not in json.dumps(b) for b in body["blocks"])

    async def test_delivered_to_the_slack_url(
        self, notifier: Notifier, receiver: RecordingReceiver
    ) -> None:
        """The Slack channel posts the body to its URL."""
        await SlackChannel("chat", UrlReceiver(url=f"{receiver.url}/services/x")).send(
            notifier, firing_message()
        )
        (got,) = receiver.on("/services/x")
        assert set(got.json()) == {"text", "blocks"}


class TestAlertmanagerPayload:
    """The Alertmanager v2 ``postableAlerts`` body."""

    def test_firing(self) -> None:
        """A firing alert has labels, string annotations, startsAt and a future endsAt."""
        (body,) = alertmanager_payload(firing_message(now=LATER), ttl=timedelta(hours=8))
        assert body["labels"]["alertname"] == "MonitorRegression"
        assert all(isinstance(v, str) for v in body["annotations"].values())
        assert body["startsAt"] == "2026-03-02T08:30:00Z"
        assert body["endsAt"] == "2026-03-02T17:30:00Z"
        assert body["generatorURL"] == "http://monitor.test:9464/ui/runs/17"

    def test_resolved(self) -> None:
        """A resolution ends at the time the alert resolved."""
        (body,) = alertmanager_payload(resolved_message(LATER))
        assert body["endsAt"] == "2026-03-02T09:30:00Z"
        assert "generatorURL" not in body  # the resolving annotations had no run link

    async def test_posted_to_the_v2_api(
        self, notifier: Notifier, receiver: RecordingReceiver
    ) -> None:
        """The channel posts a list of alerts to {url}/api/v2/alerts."""
        channel = AlertmanagerChannel("am", UrlReceiver(url=f"{receiver.url}/"))
        await channel.send(notifier, firing_message())
        (got,) = receiver.on("/api/v2/alerts")
        assert isinstance(got.json(), list)
