"""OpenAI-compatible endpoints (OpenAI, vLLM, TGI, LiteLLM, most gateways).

``openai-chat``: POST ``{url}/chat/completions`` with ``{"model", "messages", **params}``;
``messages`` is the item's chat (system message, few-shot messages, the item's conversation
and the prompt as the user's turn, see monitor/benchmarks/loader.py) or, for a benchmark
without chat structure, ``[{"role": "user", "content": prompt}]``. The output is
``choices[0].message.content`` (null content, as after a content filter, is the empty text;
a list of content parts is joined).
``openai-completions``: POST ``{url}/completions`` with ``{"model", "prompt", **params}``;
the output is ``choices[0].text``. It refuses chat-structured items: sending their prompt
alone would silently drop the system and few-shot messages.
Both record the response's ``model`` and ``usage.prompt_tokens / completion_tokens``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from monitor.core.model import Item, Usage
from monitor.endpoints.http import (
    HttpClient,
    JsonEndpoint,
    Prediction,
    RetryPolicy,
    invalid_response,
)
from monitor.errors import BenchmarkError

if TYPE_CHECKING:
    from monitor.config import EndpointSettings

__all__ = ["OpenAIChatEndpoint", "OpenAICompletionsEndpoint"]


class _OpenAIEndpoint(JsonEndpoint):
    path = ""
    prompt_key = ""

    def __init__(self, settings: EndpointSettings, http: HttpClient, retry: RetryPolicy) -> None:
        if not settings.model:
            raise ValueError(f"endpoint {settings.name!r}: type {settings.type} requires `model`")
        if self.prompt_key in settings.params:
            raise ValueError(
                f"endpoint {settings.name!r}: params must not set {self.prompt_key!r}: "
                "it is built from the benchmark's prompt"
            )
        if settings.params.get("stream"):
            raise ValueError(f"endpoint {settings.name!r}: streaming responses are not supported")
        super().__init__(settings, http, retry, settings.url + self.path)
        self.model = settings.model
        self._static: dict[str, Any] = {"model": settings.model, **settings.params}

    def _prompt(self, item: Item) -> str:
        if item.prompt is None:
            raise BenchmarkError(
                f"item {item.key!r}: endpoint {self.name!r} ({self.path.lstrip('/')}) needs a "
                "prompt; give the benchmark a `prompt` template"
                + (" or a `conversation` field" if self.prompt_key == "messages" else "")
            )
        return item.prompt

    def decode(self, payload: Any) -> Prediction:
        if not isinstance(payload, dict):
            raise invalid_response(f"expected a JSON object, got {type(payload).__name__}")
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            error = payload.get("error")
            hint = f" (error: {json.dumps(error)[:120]})" if error is not None else ""
            raise invalid_response(f"response has no choices[0]{hint}")
        model = payload.get("model")
        # which backend configuration answered (OpenAI; null or absent elsewhere): a change
        # behind a fixed model name shows here (monitor/core/fingerprint.py)
        fingerprint = payload.get("system_fingerprint")
        return Prediction(
            output=self._output(choices[0]),
            model_id=model if isinstance(model, str) and model else None,
            usage=_usage(payload.get("usage")),
            system_fingerprint=fingerprint[:200]
            if isinstance(fingerprint, str) and fingerprint
            else None,
        )

    def _output(self, choice: dict[str, Any]) -> str:
        raise NotImplementedError


class OpenAIChatEndpoint(_OpenAIEndpoint):
    """An OpenAI-compatible chat completions endpoint: the item's chat, or its prompt as
    one user message."""

    path = "/chat/completions"
    prompt_key = "messages"

    def encode(self, item: Item) -> bytes:
        if item.messages:
            messages = [{"role": m.role, "content": m.content} for m in item.messages]
        else:
            messages = [{"role": "user", "content": self._prompt(item)}]
        return json.dumps({**self._static, **item.request_params, "messages": messages}).encode()

    def _output(self, choice: dict[str, Any]) -> str:
        message = choice.get("message")
        if not isinstance(message, dict) or "content" not in message:
            raise invalid_response("response has no choices[0].message.content")
        content = message["content"]
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
            texts = [p.get("text") for p in content if isinstance(p, dict)]
            return "".join(t for t in texts if isinstance(t, str))
        raise invalid_response(f"choices[0].message.content is a {type(content).__name__}")


class OpenAICompletionsEndpoint(_OpenAIEndpoint):
    """An OpenAI-compatible (legacy) text completions endpoint."""

    path = "/completions"
    prompt_key = "prompt"

    def encode(self, item: Item) -> bytes:
        if item.messages:
            raise BenchmarkError(
                f"item {item.key!r}: endpoint {self.name!r} (completions) sends one prompt, "
                "but the benchmark is a chat (system, few_shot or conversation); use an "
                "openai-chat endpoint"
            )
        body = {**self._static, **item.request_params, "prompt": self._prompt(item)}
        return json.dumps(body).encode()

    def _output(self, choice: dict[str, Any]) -> str:
        text = choice.get("text")
        if not isinstance(text, str):
            raise invalid_response("response has no choices[0].text string")
        return text


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    prompt_details = value.get("prompt_tokens_details")
    completion_details = value.get("completion_tokens_details")
    return Usage.of(
        prompt_tokens=_count(value.get("prompt_tokens")),
        completion_tokens=_count(value.get("completion_tokens")),
        cached_tokens=_count(prompt_details.get("cached_tokens"))
        if isinstance(prompt_details, dict)
        else None,
        reasoning_tokens=_count(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else None,
    )
