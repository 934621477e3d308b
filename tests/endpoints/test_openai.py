"""OpenAI-compatible chat and completions endpoints against a real loopback server."""

from __future__ import annotations

import pytest

from monitor.core.model import ErrorKind, Item, Usage
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
