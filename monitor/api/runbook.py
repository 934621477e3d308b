"""The alert runbook (docs/alerts.md) as a page under `/ui/alerts`.

Alert annotations link here (deploy/prometheus/rules/monitor.rules.yml): the daemon is the
one host every installation has, so the runbook travels with it. The package holds the
document as `monitor/api/docs/alerts.md`, a link to docs/alerts.md, so there is one text.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore

__all__ = ["RUNBOOK", "heading_id", "render_runbook"]

RUNBOOK = Path(__file__).parent / "docs" / "alerts.md"


def heading_id(text: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.

    The rules link ``…/ui/alerts#monitorregressiondetected``; the same anchors work on
    GitHub's rendering of docs/alerts.md.
    """
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _anchor_headings(state: StateCore) -> None:
    tokens = state.tokens
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            token.attrSet("id", heading_id(tokens[i + 1].content))


@cache
def render_runbook() -> tuple[str, str]:
    """The runbook's title and HTML body (raw HTML in the Markdown is escaped, not passed)."""
    text = RUNBOOK.read_text(encoding="utf-8")
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.core.ruler.push("heading_ids", _anchor_headings)
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), "")
    return title, md.render(text)
