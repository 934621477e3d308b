"""OpenAI-compatible chat and completions endpoints against a real loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.benchmarks import load_benchmark
from monitor.config import BenchmarkSettings, load_settings
from monitor.core.model import ErrorKind, Item, ScorerSpec, Usage
from monitor.core.scoring import build_scorer
from monitor.demo.simulator import build_app, demo_model
from monitor.endpoints import build_endpoint
from monitor.errors import BenchmarkError

ITEM = Item(key="i1", fields={"text": "where is my money"}, prompt="Classify: where is my money")


def chat_reply(content: object, **extra: object) -> dict[str, object]:
    return {
        "id": "c1",
        "model": "our-model-2024-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
        **extra,
    }


class TestOpenAIChat:
    async def test_request_path_and_body(self, server, make_endpoint) -> None:
        """The prompt is one user message next to the model and the configured params."""
        server.respond(json=chat_reply("refund"))
        endpoint = make_endpoint(
            url=server.url + "/v1", model="our-model", params={"temperature": 0, "max_tokens": 8}
        )
        await endpoint.predict(ITEM)
        request = server.requests[0]
        assert request.method == "POST"
        assert request.path == "/v1/chat/completions"
        assert request.json() == {
            "model": "our-model",
            "messages": [{"role": "user", "content": "Classify: where is my money"}],
            "temperature": 0,
            "max_tokens": 8,
        }

    async def test_output_model_id_and_usage(self, server, make_endpoint) -> None:
        """The answer's content, model and token usage are captured."""
        server.respond(
            json=chat_reply("refund", usage={"prompt_tokens": 12, "completion_tokens": 2})
        )
        response = await make_endpoint().predict(ITEM)
        assert response.error is None
        assert response.output == "refund"
        assert response.model_id == "our-model-2024-06"
        assert response.usage == Usage(prompt_tokens=12, completion_tokens=2)
        assert response.attempts == 1

    async def test_cached_and_reasoning_tokens(self, server, make_endpoint) -> None:
        """OpenAI's token details give the cached and reasoning parts; junk is dropped."""
        usage = {
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 256},
        }
        server.respond(json=chat_reply("refund", usage=usage))
        server.respond(
            json=chat_reply(
                "refund",
                usage={"prompt_tokens": -3, "completion_tokens": True, "prompt_tokens_details": 7},
            )
        )
        endpoint = make_endpoint()
        first, second = [await endpoint.predict(ITEM) for _ in range(2)]
        assert first.usage == Usage(1200, 300, cached_tokens=1024, reasoning_tokens=256)
        assert second.usage is None  # nothing usable was reported

    async def test_system_fingerprint_is_captured(self, server, make_endpoint) -> None:
        """OpenAI's `system_fingerprint` is kept; null or absent gives None."""
        server.respond(json=chat_reply("refund", system_fingerprint="fp_44709d6fcb"))
        server.respond(json=chat_reply("refund", system_fingerprint=None))
        server.respond(json=chat_reply("refund"))
        endpoint = make_endpoint()
        answers = [await endpoint.predict(ITEM) for _ in range(3)]
        assert [a.system_fingerprint for a in answers] == ["fp_44709d6fcb", None, None]

    async def test_missing_usage_and_model_are_none(self, server, make_endpoint) -> None:
        """Servers that report neither model nor usage still give an output."""
        server.respond(json={"choices": [{"message": {"content": "ok"}}]})
        response = await make_endpoint().predict(ITEM)
        assert response.output == "ok"
        assert response.model_id is None
        assert response.usage is None

    async def test_null_content_is_empty_output(self, server, make_endpoint) -> None:
        """A null content (content filter, tool call) is an empty answer, not an error."""
        server.respond(json=chat_reply(None))
        response = await make_endpoint().predict(ITEM)
        assert response.error is None
        assert response.output == ""

    async def test_content_parts_are_joined(self, server, make_endpoint) -> None:
        """A list of text content parts becomes one string."""
        parts = [{"type": "text", "text": "ref"}, {"type": "text", "text": "und"}]
        server.respond(json=chat_reply(parts))
        response = await make_endpoint().predict(ITEM)
        assert response.output == "refund"

    @pytest.mark.parametrize(
        "payload",
        [
            {"choices": []},
            {"choices": [{"text": "x"}]},
            {"choices": [{"message": {"content": 3}}]},
            [1, 2],
            {"error": {"message": "upstream overloaded"}},
        ],
    )
    async def test_wrong_shape_is_invalid_response(self, server, make_endpoint, payload) -> None:
        """Answers without choices[0].message.content are invalid responses."""
        server.respond(json=payload)
        response = await make_endpoint().predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.attempts == 1

    async def test_error_payload_is_quoted_in_the_detail(self, server, make_endpoint) -> None:
        """A 200 carrying an error object says what the error was."""
        server.respond(json={"error": {"message": "upstream overloaded"}})
        response = await make_endpoint().predict(ITEM)
        assert response.error_detail is not None
        assert "upstream overloaded" in response.error_detail

    async def test_item_without_prompt_is_a_benchmark_error(self, server, make_endpoint) -> None:
        """Chat needs a rendered prompt; an item without one is the benchmark's problem."""
        with pytest.raises(BenchmarkError, match="needs a prompt"):
            await make_endpoint().predict(Item(key="k", fields={"text": "x"}))
        assert server.requests == []

    def test_params_may_not_replace_the_messages(self, make_endpoint) -> None:
        """Setting `messages` in params is rejected when the endpoint is built."""
        with pytest.raises(ValueError, match="messages"):
            make_endpoint(params={"messages": []})

    def test_streaming_is_rejected(self, make_endpoint) -> None:
        """stream: true would return server-sent events, which are not parsed."""
        with pytest.raises(ValueError, match="streaming"):
            make_endpoint(params={"stream": True})


class TestOpenAICompletions:
    async def test_request_path_and_body(self, server, make_endpoint) -> None:
        """The prompt is sent as `prompt` to /completions with the params."""
        server.respond(json={"model": "m", "choices": [{"text": " refund"}]})
        endpoint = make_endpoint("openai-completions", model="m", params={"max_tokens": 4})
        await endpoint.predict(ITEM)
        request = server.requests[0]
        assert request.path == "/completions"
        assert request.json() == {
            "model": "m",
            "prompt": "Classify: where is my money",
            "max_tokens": 4,
        }

    async def test_output_and_usage(self, server, make_endpoint) -> None:
        """choices[0].text is the output, unstripped; usage is captured."""
        server.respond(
            json={
                "model": "m-v2",
                "choices": [{"text": " refund"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            }
        )
        response = await make_endpoint("openai-completions").predict(ITEM)
        assert response.output == " refund"
        assert response.model_id == "m-v2"
        assert response.usage == Usage(prompt_tokens=5, completion_tokens=1)

    async def test_missing_text_is_invalid_response(self, server, make_endpoint) -> None:
        """A completion without a text string is an invalid response."""
        server.respond(json={"choices": [{"message": {"content": "x"}}]})
        response = await make_endpoint("openai-completions").predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE


def chat_items(tmp_path: Path, rows: list[dict[str, Any]], **chat: Any) -> list[Item]:
    """Items of a chat-structured benchmark, loaded by the real loader from a JSON lines file."""
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    settings = BenchmarkSettings(
        name="chat", data=str(data), scorers=[ScorerSpec("exact_match", "exact_match")], **chat
    )
    return list(load_benchmark(settings).items)


class TestChatStructure:
    """System prompts, few-shot messages and conversations arrive as the `messages` array."""

    async def test_system_prompt_then_user_prompt(self, tmp_path, server, make_endpoint) -> None:
        """A system template becomes the first message, the prompt the user's turn."""
        server.respond(json=chat_reply("refund"))
        [item] = chat_items(
            tmp_path,
            [{"id": "a", "text": "where is my money", "product": "Acme Pay"}],
            system="You triage tickets for {{ product }}. Answer with one word.",
            prompt="Ticket: {{ text }}",
        )
        await make_endpoint(params={"temperature": 0}).predict(item)
        assert server.requests[0].json() == {
            "model": "m1",
            "messages": [
                {
                    "role": "system",
                    "content": "You triage tickets for Acme Pay. Answer with one word.",
                },
                {"role": "user", "content": "Ticket: where is my money"},
            ],
            "temperature": 0,
        }

    async def test_few_shot_messages_come_before_the_prompt(
        self, tmp_path, server, make_endpoint
    ) -> None:
        """Few-shot messages, templated over the item's fields, sit between system and prompt."""
        server.respond(json=chat_reply("billing"))
        [item] = chat_items(
            tmp_path,
            [{"id": "a", "text": "charged twice", "example": "I want a refund"}],
            system="Classify support tickets.",
            few_shot=[
                {"role": "user", "content": "{{ example }}"},
                {"role": "assistant", "content": "refund"},
                {"role": "user", "content": "my invoice is wrong"},
                {"role": "assistant", "content": "billing"},
            ],
            prompt="{{ text }}",
        )
        await make_endpoint().predict(item)
        assert server.requests[0].json()["messages"] == [
            {"role": "system", "content": "Classify support tickets."},
            {"role": "user", "content": "I want a refund"},
            {"role": "assistant", "content": "refund"},
            {"role": "user", "content": "my invoice is wrong"},
            {"role": "assistant", "content": "billing"},
            {"role": "user", "content": "charged twice"},
        ]

    async def test_multi_turn_conversation_from_an_item_field(
        self, tmp_path, server, make_endpoint
    ) -> None:
        """An item's conversation is sent turn by turn, verbatim, after the system message."""
        turns = [
            {"role": "user", "content": "My card was declined."},
            {"role": "assistant", "content": "Which card: debit or credit?"},
            {"role": "user", "content": 'Debit, ending {{ 7*7 }}.\n"quoted" \u00e9'},
        ]
        server.respond(json=chat_reply("refund"))
        [item] = chat_items(
            tmp_path,
            [{"id": "a", "turns": turns}],
            system="Be brief.",
            conversation="turns",
        )
        await make_endpoint().predict(item)
        # item text is data, not a template: "{{ 7*7 }}" arrives as written
        assert server.requests[0].json()["messages"] == [
            {"role": "system", "content": "Be brief."},
            *turns,
        ]

    async def test_conversation_followed_by_the_prompt(
        self, tmp_path, server, make_endpoint
    ) -> None:
        """With both, the conversation's turns come first and the prompt is the last turn."""
        history = [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
        ]
        server.respond(json=chat_reply("other"))
        [item] = chat_items(
            tmp_path,
            [{"id": "a", "history": history, "text": "what's the weather?"}],
            conversation="history",
            prompt="Classify: {{ text }}",
        )
        response = await make_endpoint().predict(item)
        assert response.output == "other"
        assert server.requests[0].json()["messages"] == [
            *history,
            {"role": "user", "content": "Classify: what's the weather?"},
        ]

    async def test_completions_refuses_a_chat_item(self, tmp_path, server, make_endpoint) -> None:
        """A completions endpoint would drop the system message, so it refuses chat items."""
        [item] = chat_items(
            tmp_path, [{"id": "a", "text": "x"}], system="Be brief.", prompt="{{ text }}"
        )
        with pytest.raises(BenchmarkError, match="sends one prompt, but the benchmark is a chat"):
            await make_endpoint("openai-completions").predict(item)
        assert server.requests == []


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class TestChatExample:
    async def test_example_runs_against_the_simulated_model(self, http) -> None:
        """examples/support-chat.yaml sends chats the demo model answers, every one right."""
        settings = load_settings(EXAMPLES / "support-chat.yaml", environ={})
        bench = load_benchmark(settings.benchmarks[0])
        runner = web.AppRunner(build_app(demo_model(items=[])))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
            endpoint = build_endpoint(settings.endpoints[0].model_copy(update={"url": url}), http)
            scorer = build_scorer(bench.scorers[0])
            responses = [await endpoint.predict(item) for item in bench.items]
        finally:
            await runner.cleanup()
        assert [r.error for r in responses] == [None] * len(bench.items)
        scores = [
            scorer(r.output or "", i.reference) for r, i in zip(responses, bench.items, strict=True)
        ]
        assert scores == [1.0] * len(bench.items)
        assert any(len(i.messages) > 6 for i in bench.items)  # multi-turn items are included
