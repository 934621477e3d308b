"""Slack-compatible incoming webhook: ``{"text": ..., "blocks": [...]}``.

``text`` is the plain fallback (phone notifications, clients without blocks); the blocks
show the summary, the figures as fields, the first changed items and the links. Text is
escaped for Slack's mrkdwn (``&``, ``<``, ``>``) and cut to Slack's block limits.
Mattermost, Rocket.Chat and Discord's ``/slack`` endpoints accept the same body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.config import UrlReceiver
from monitor.core.alerts import REGRESSION_ALERT
from monitor.notify.base import (
    HttpChannel,
    Message,
    annotation_int,
    annotation_items,
    annotation_number,
)

__all__ = ["SlackChannel", "slack_payload"]

_SECTION_CHARS = 3000  # Slack's limit for a section's text
_FIELD_CHARS = 2000  # and for one field

_ICONS = {"firing": ":rotating_light:", "repeat": ":repeat:", "resolved": ":white_check_mark:"}
_TITLES = {"firing": "FIRING", "repeat": "STILL FIRING", "resolved": "RESOLVED"}


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(url: str, label: str) -> str:
    return f"<{url.replace('|', '%7C').replace('>', '%3E')}|{escape(label)}>"


def slack_payload(message: Message) -> dict[str, Any]:
    """The body posted to a Slack incoming webhook for `message`."""
    alert = message.alert
    notes, labels = alert.annotations, alert.labels
    kind = message.notification
    summary = notes.get("summary", alert.name)
    title = f"{_TITLES.get(kind, kind.upper())}: {alert.name}"
    headline = f"{_ICONS.get(kind, '')} *{title}*\n{escape(summary)}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(headline, _SECTION_CHARS),
            },
        }
    ]
    fields = [
        (name, labels[key])
        for name, key in (
            ("Monitor", "monitor"),
            ("Endpoint", "endpoint"),
            ("Benchmark", "benchmark"),
            ("Scorer", "scorer"),
        )
        if key in labels
    ]
    if alert.name == REGRESSION_ALERT:
        fields.extend(_figures(notes))
    if fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": _cut(f"*{name}*\n{escape(value)}", _FIELD_CHARS),
                    }
                    for name, value in fields[:10]  # Slack allows 10 fields per section
                ],
            }
        )
    changed = _changed(notes)
    if changed and kind != "resolved":
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(changed, _SECTION_CHARS)}}
        )
    # the web pages when the alert has them (a person clicks these), else the API's JSON
    links = [
        _link(url, label)
        for keys, label in (
            (("run_page_url", "run_url"), f"Run {notes.get('run_id', '')}".strip()),
            (("items_page_url", "items_url"), "Changed items"),
            (("trend_url",), "Trend"),
            (("dashboard_url",), "Dashboard"),
        )
        if (url := next((notes[k] for k in keys if notes.get(k)), None))
    ]
    context = [f"Since {notes['since']}"] if "since" in notes else []
    if links:
        context.append(" · ".join(links))
    if context:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _cut(" | ".join(context), _FIELD_CHARS)}],
            }
        )
    return {"text": _cut(f"{title}: {summary}", _SECTION_CHARS), "blocks": blocks}


def _figures(notes: Mapping[str, str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    baseline = annotation_number(notes, "baseline_score")
    current = annotation_number(notes, "current_score")
    if baseline is not None and current is not None:
        out.append(("Baseline → current", f"{baseline:.3f} → {current:.3f}"))
    effect = annotation_number(notes, "effect")
    if effect is not None:
        text = f"{effect:+.3f}"
        lo = annotation_number(notes, "effect_ci_lower")
        hi = annotation_number(notes, "effect_ci_upper")
        if lo is not None and hi is not None:
            text += f" (CI {lo:+.3f} to {hi:+.3f})"
        out.append(("Change", text))
    p_value = annotation_number(notes, "p_value")
    if p_value is not None:
        out.append(("p-value", f"{p_value:.2g} ({notes.get('test', 'test')})"))
    if "baseline" in notes:
        out.append(("Baseline", notes["baseline"]))
    return out


def _changed(notes: Mapping[str, str]) -> str:
    lines: list[str] = []
    for key, what in (("pass_to_fail", "pass → fail"), ("fail_to_pass", "fail → pass")):
        shown = annotation_items(notes, key)
        total = annotation_int(notes, f"{key}_count") or len(shown)
        if total:
            keys = ", ".join(f"`{escape(k)}`" for k in shown)
            more = f" and {total - len(shown)} more" if total > len(shown) else ""
            lines.append(f"*{total} {what}:* {keys}{more}")
    return "\n".join(lines)


class SlackChannel(HttpChannel):
    """POSTs `slack_payload` to a receiver's ``slack.url``."""

    kind = "slack"

    def __init__(self, receiver: str, settings: UrlReceiver) -> None:
        super().__init__(receiver, settings.url)

    def payload(self, message: Message) -> dict[str, Any]:
        """The Slack body for `message`."""
        return slack_payload(message)
