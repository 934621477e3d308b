"""A simulated OpenAI-compatible model on loopback, with a scripted regression.

Each known request has a probability of being answered correctly, drawn once from
the item's hash: most items are stable (right or wrong every time), some are flaky,
like a real LLM. After `regress_after` requests a fixed set of stable items starts
failing: the quiet kind of regression a provider's silent model update causes.
Requests it has not memorised are classified by keywords (the quick start's items); after
`regress_after` requests, a fixed `regress_fraction` of those get a wrong label too.
Other prompts get an echo, which makes the server usable as a latency-only stub.

It also acts as a judge (docs/judges.md): a prompt holding an ``<answer>`` tag, as the
default judge templates of monitor/core/judging.py do, gets a JSON verdict, from model
`JUDGE_MODEL_ID`: with a ``<reference>``, pass when the answer contains it as a word; with
a ``<rubric>`` only, pass when the answer is one of the demo's labels. Judge requests do not
count towards `regress_after`.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from monitor.demo.data import generate_items

MODEL_ID = "sim-intents-2024-06"
JUDGE_MODEL_ID = "sim-judge-2024-06"
_LABELS = ("refund", "billing", "other")
_JUDGE_TAG = re.compile(r"<(answer|reference|rubric)>\s*(.*?)\s*</\1>", re.DOTALL)
_ORDINAL = re.compile(r"an integer from 1 to (\d+)")


def judge_verdict(prompt: str) -> str | None:
    """The simulated judge's JSON answer to a judge prompt; None for any other prompt."""
    tags = {name: html.unescape(text) for name, text in _JUDGE_TAG.findall(prompt)}
    if "answer" not in tags:
        return None
    answer = tags["answer"].strip().lower()
    if "reference" in tags:
        reference = tags["reference"].strip().lower()
        good = bool(reference) and re.search(rf"\b{re.escape(reference)}\b", answer) is not None
        reason = "the answer states the reference" if good else "the answer misses the reference"
    else:
        good = answer in _LABELS
        reason = "the answer is one label" if good else "the answer is not one of the labels"
    ordinal = _ORDINAL.search(prompt)
    if ordinal:
        return json.dumps({"reason": reason, "score": int(ordinal.group(1)) if good else 1})
    return json.dumps({"reason": reason, "verdict": "pass" if good else "fail"})


@dataclass(slots=True)
class SimulatedModel:
    """Answers prompts about known items with per-item correctness probabilities."""

    items: Mapping[str, str]  # request text -> correct label
    regress_after: int = 0  # requests before the regression starts; 0 = never
    regress_fraction: float = 0.05
    seed: int = 7
    requests: int = 0
    _p_correct: dict[str, float] = field(default_factory=dict)
    _regressed: frozenset[str] = frozenset()
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        stable = []
        for text in self.items:
            u = _unit(f"{self.seed}:{text}")
            if u < 0.75:
                p = 0.998
                stable.append(text)
            elif u < 0.88:
                p = 0.01
            else:
                p = 0.3 + 0.5 * (u - 0.88) / 0.12  # flaky: 0.3 .. 0.8
            self._p_correct[text] = p
        pick = random.Random(self.seed + 1)
        k = round(self.regress_fraction * len(self.items))
        self._regressed = frozenset(pick.sample(sorted(stable), min(k, len(stable))))

    @property
    def regressed(self) -> bool:
        return 0 < self.regress_after <= self.requests

    def answer(self, prompt: str) -> str:
        self.requests += 1
        text = prompt.rsplit("Request: ", 1)[-1].strip()
        label = self.items.get(text)
        if label is None:
            if "Request: " not in prompt:
                return prompt[:200]
            guess = _keyword_label(text)
            if self.regressed and _unit(f"{self.seed}:regress:{text}") < self.regress_fraction:
                return next(x for x in _LABELS if x != guess)  # deterministic: a stable break
            return guess
        p = self._p_correct[text]
        if self.regressed and text in self._regressed:
            p = 0.05
        if self._rng.random() < p:
            return label
        return self._rng.choice([x for x in _LABELS if x != label])


def _unit(key: str) -> float:
    """A number in [0, 1) fixed by `key`."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


_KEYWORDS = (
    ("refund", ("refund", "money back", "reimburs", "return")),
    ("billing", ("charge", "invoice", "bill", "payment", "card", "price")),
)


def _keyword_label(text: str) -> str:
    """A crude but plausible classifier for requests the simulator has not memorised."""
    lowered = text.lower()
    for label, words in _KEYWORDS:
        if any(w in lowered for w in words):
            return label
    return "other"


def demo_model(
    regress_after: int = 0,
    items: Iterable[Mapping[str, str]] | None = None,
    *,
    regress_fraction: float = 0.05,
) -> SimulatedModel:
    """The model that answers the generated demo benchmark."""
    rows = generate_items() if items is None else items
    return SimulatedModel(
        {r["text"]: r["label"] for r in rows},
        regress_after=regress_after,
        regress_fraction=regress_fraction,
    )


def build_app(model: SimulatedModel, *, latency: float = 0.0) -> web.Application:
    """An aiohttp app speaking the OpenAI chat and completions protocols."""

    async def reply(prompt: str, kind: str) -> web.Response:
        if latency:
            await asyncio.sleep(latency)
        verdict = judge_verdict(prompt)
        text = model.answer(prompt) if verdict is None else verdict
        choice: dict[str, object] = (
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            if kind == "chat"
            else {"index": 0, "text": text, "finish_reason": "stop"}
        )
        body = {
            "id": f"sim-{model.requests}",
            "object": "chat.completion" if kind == "chat" else "text_completion",
            "created": int(time.time()),
            "model": MODEL_ID if verdict is None else JUDGE_MODEL_ID,
            "choices": [choice],
            "usage": {
                "prompt_tokens": len(prompt) // 4,
                "completion_tokens": 1,
                "total_tokens": len(prompt) // 4 + 1,
            },
        }
        return web.Response(body=json.dumps(body), content_type="application/json")

    async def chat(request: web.Request) -> web.Response:
        payload = await request.json()
        messages = payload.get("messages") or [{}]
        return await reply(str(messages[-1].get("content", "")), "chat")

    async def completions(request: web.Request) -> web.Response:
        payload = await request.json()
        return await reply(str(payload.get("prompt", "")), "completions")

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL_ID, "object": "model"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    return app


async def start_simulator(
    model: SimulatedModel, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0
) -> tuple[web.AppRunner, int]:
    """Start serving in the current loop; returns the runner (to clean up) and the port."""
    runner = web.AppRunner(build_app(model, latency=latency), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)


async def serve_forever(
    host: str,
    port: int,
    *,
    regress_after: int = 0,
    regress_fraction: float = 0.05,
    latency: float = 0.0,
) -> None:
    """Serve the demo model until cancelled (Ctrl-C)."""
    model = demo_model(regress_after, regress_fraction=regress_fraction)
    runner, bound = await start_simulator(model, host, port, latency=latency)
    print(  # noqa: T201 - the command's one line of output
        f"simulated OpenAI-compatible model on http://{host}:{bound}/v1 (model {MODEL_ID})",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
