"""A deterministic, generated support-intents benchmark (no data file to ship or lose)."""

from __future__ import annotations

import json
import random
from pathlib import Path

_PHRASES = {
    "refund": [
        "I want my money back for {thing}",
        "please refund the {thing} I returned last week",
        "the {thing} arrived broken, I need a refund",
        "how do I get reimbursed for the {thing}",
        "cancel my {thing} order and return the payment",
    ],
    "billing": [
        "why was I charged twice for {thing}",
        "my invoice for {thing} shows the wrong amount",
        "update the credit card used for {thing}",
        "I don't recognise a charge for {thing} on my statement",
        "can I get a copy of the bill for {thing}",
    ],
    "other": [
        "what are your opening hours for {thing} support",
        "how do I reset my password before buying {thing}",
        "is the {thing} available in blue",
        "do you ship {thing} to Canada",
        "where can I read the manual for the {thing}",
    ],
}
_THINGS = [
    "headphones",
    "subscription",
    "blender",
    "laptop stand",
    "gift card",
    "annual plan",
    "camera",
    "desk lamp",
    "phone case",
    "premium tier",
    "coffee grinder",
    "monitor arm",
    "keyboard",
    "e-book",
    "backpack",
    "training course",
    "router",
    "smart watch",
]

PROMPT = (
    "Classify the customer request as refund, billing or other. "
    "Answer with one word.\nRequest: {{ text }}"
)


def generate_items(n: int = 400, seed: int = 11) -> list[dict[str, str]]:
    """`n` labelled requests with stable ids; a tenth are marked private for the split."""
    rng = random.Random(seed)
    labels = sorted(_PHRASES)
    items = []
    for i in range(n):
        label = labels[i % len(labels)]
        text = rng.choice(_PHRASES[label]).format(thing=rng.choice(_THINGS))
        visibility = "private" if i % 10 == 9 else "public"
        items.append(
            {"id": f"q{i:04d}", "text": f"{text} (#{i})", "label": label, "visibility": visibility}
        )
    return items


def write_items(path: Path, n: int = 400, seed: int = 11) -> Path:
    """Write the generated benchmark as JSON lines."""
    with path.open("w", encoding="utf-8") as f:
        for item in generate_items(n, seed):
            f.write(json.dumps(item) + "\n")
    return path
