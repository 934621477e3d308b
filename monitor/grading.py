"""LLM-judge scorers: grade a model's answer by asking a judge endpoint.

`JudgeScorer` renders the judge's prompt (sandboxed templates, monitor/templating.py),
sends it through the judge endpoint's own client, so its concurrency, rate limit and
retries apply, and reads the answer with `monitor.core.judging.parse_judgment`. It never
raises for what a judge does: a judge that times out, errs or answers something
unreadable gives a `Graded` with `error` set, which the runner records as an item error of
the `judge` kind (availability, never a wrong answer).

`monitor.service.RunService` builds one per judge scorer of a plan, with a client whose
parameters are `JudgeSpec.request_params` (temperature 0 and a fixed seed by default).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.core.judging import (
    CalibrationSpec,
    Graded,
    JudgeSpec,
    JudgmentError,
    Rescored,
    combine_votes,
    parse_judgment,
    quote_untrusted,
)
from monitor.core.model import ChatMessage, Item, Usage
from monitor.errors import BenchmarkError
from monitor.ports import EndpointClient
from monitor.templating import Template, TemplateLimits

__all__ = ["CalibrationItem", "CalibrationSet", "JudgeScorer"]


@dataclass(frozen=True, slots=True)
class CalibrationItem:
    """One frozen (input, output) pair of a calibration set with its human label."""

    key: str
    input: str
    output: str
    label: float  # the label as a score on the judge's scale
    reference: str = ""  # llm_reference: what the output is judged against


@dataclass(frozen=True, slots=True)
class CalibrationSet:
    """The judge-drift sentinel's set, loaded with the benchmark loaders."""

    spec: CalibrationSpec
    version: str  # content version of the loaded file
    items: tuple[CalibrationItem, ...]

    @property
    def labels(self) -> dict[str, float]:
        return {c.key: c.label for c in self.items}


def _reference_text(reference: object) -> str:
    if reference is None:
        return ""
    if isinstance(reference, list | tuple):
        return " | ".join(str(r) for r in reference)
    return str(reference)


def _add_usage(total: Usage | None, more: Usage | None) -> Usage | None:
    if more is None:
        return total
    if total is None:
        return more

    def plus(a: int | None, b: int | None) -> int | None:
        return None if a is None and b is None else (a or 0) + (b or 0)

    return Usage(
        prompt_tokens=plus(total.prompt_tokens, more.prompt_tokens),
        completion_tokens=plus(total.completion_tokens, more.completion_tokens),
        cached_tokens=plus(total.cached_tokens, more.cached_tokens),
        reasoning_tokens=plus(total.reasoning_tokens, more.reasoning_tokens),
    )


class JudgeScorer:
    """One judge scorer of a plan, bound to its judge endpoint's client."""

    def __init__(
        self,
        name: str,
        spec: JudgeSpec,
        client: EndpointClient,
        *,
        chat: bool,
        limits: TemplateLimits,
        calibration: CalibrationSet | None = None,
        identity: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.kind = spec.kind
        self.binary = spec.binary
        self.spec = spec
        self.client = client
        self.calibration = calibration
        self.identity: Mapping[str, Any] = dict(identity or {})
        self._chat = chat  # openai-chat takes a system message; others get one prompt
        self._system = Template(spec.system, limits)
        self._user = Template(spec.template, limits)

    def __repr__(self) -> str:
        return f"JudgeScorer({self.name!r}, judge={self.spec.endpoint!r})"

    def _request(self, key: str, context: Mapping[str, Any], vote: int) -> Item:
        system = self._system.render(context)
        user = self._user.render(context)
        # Votes differ in their seed only: at temperature 0 with one seed, k calls would
        # be k copies of one verdict.
        seed = self.spec.request_params({}).get("seed")
        params = {"seed": seed + vote} if isinstance(seed, int) and vote else {}
        if self._chat:
            messages = (ChatMessage("system", system), ChatMessage("user", user))
            return Item(key=key, fields={}, prompt=user, messages=messages, request_params=params)
        return Item(key=key, fields={}, prompt=f"{system}\n\n{user}", request_params=params)

    async def grade(self, item: Item, output: str) -> Graded:
        """Grade `output`, the model's answer to `item`; never raises for the judge."""
        context = {
            "input": quote_untrusted(item.prompt or ""),
            "output": quote_untrusted(output),
            "reference": quote_untrusted(_reference_text(item.reference)),
            "rubric": self.spec.rubric or "",
            "fields": dict(item.fields),
            "scale": self.spec.scale.ask,
        }
        return await self._grade(item.key, context)

    async def grade_calibration(self, case: CalibrationItem) -> Graded:
        """Grade one frozen pair of the calibration set (the sentinel's re-score)."""
        context = {
            "input": quote_untrusted(case.input),
            "output": quote_untrusted(case.output),
            "reference": quote_untrusted(case.reference),
            "rubric": self.spec.rubric or "",
            "fields": {"input": case.input, "output": case.output, "reference": case.reference},
            "scale": self.spec.scale.ask,
        }
        return await self._grade(case.key, context)

    @property
    def sentinel(self) -> str:
        """The key of this judge's sentinel history: judge identity, prompt and calibration
        content; a change to any of them starts a new history."""
        version = self.calibration.version if self.calibration is not None else ""
        text = json.dumps([self.name, dict(self.identity), version], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    async def rescore(self) -> Rescored:
        """Re-score the calibration set; the judge's own limits bound the calls in flight."""
        if self.calibration is None:
            raise ValueError(f"judge scorer {self.name!r} has no calibration set")
        cases = self.calibration.items
        graded = await asyncio.gather(*(self.grade_calibration(c) for c in cases))
        usage: Usage | None = None
        for g in graded:
            usage = _add_usage(usage, g.usage)
        pairs = list(zip(cases, graded, strict=True))
        return Rescored(
            scorer=self.name,
            sentinel=self.sentinel,
            scores={c.key: g.score for c, g in pairs if g.score is not None},
            labels=self.calibration.labels,
            errors=sum(g.score is None for g in graded),
            reasons={c.key: g.reason for c, g in pairs if g.reason},
            usage=usage,
        )

    async def _grade(self, key: str, context: Mapping[str, Any]) -> Graded:
        votes: list[float] = []
        reasons: list[str] = []
        usage: Usage | None = None
        model_id = fingerprint = None
        calls = 0
        for vote in range(self.spec.votes):
            try:
                request = self._request(key, context, vote)
            except ValueError as exc:  # a template over its limits, a missing field
                return Graded(None, error=f"judge prompt: {exc}", calls=calls)
            try:
                response = await self.client.predict(request)
            except BenchmarkError as exc:
                return Graded(None, error=f"judge request: {exc}", calls=calls)
            calls += 1
            usage = _add_usage(usage, response.usage)
            model_id = response.model_id or model_id
            fingerprint = response.system_fingerprint or fingerprint
            if response.error is not None or response.output is None:
                kind = response.error.value if response.error is not None else "no output"
                detail = f": {response.error_detail}" if response.error_detail else ""
                return Graded(
                    None,
                    error=f"judge {kind}{detail}",
                    model_id=model_id,
                    system_fingerprint=fingerprint,
                    usage=usage,
                    calls=calls,
                )
            try:
                judgment = parse_judgment(response.output, self.spec.scale)
            except JudgmentError as exc:
                return Graded(
                    None,
                    error=f"judge answer unreadable: {exc}",
                    model_id=model_id,
                    system_fingerprint=fingerprint,
                    usage=usage,
                    calls=calls,
                )
            votes.append(judgment.score)
            reasons.append(judgment.reason)
        score = combine_votes(votes, self.spec.scale)
        # the reason of a vote that agrees with the outcome (the first such vote)
        reason = next((r for v, r in zip(votes, reasons, strict=True) if v == score), reasons[0])
        return Graded(
            score,
            reason=reason,
            model_id=model_id,
            system_fingerprint=fingerprint,
            usage=usage,
            calls=calls,
            votes=tuple(votes),
        )
