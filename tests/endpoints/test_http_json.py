"""http-json endpoints: a Jinja2 body template and a response path."""

from __future__ import annotations

import pytest

from monitor.core.model import ErrorKind, Item
from monitor.errors import BenchmarkError

ITEM = Item(key="i1", fields={"text": 'say "hi" <b>', "lang": "en"}, prompt="Classify: hi")


class TestRequest:
    async def test_body_is_the_rendered_template(self, server, make_endpoint) -> None:
        """Item fields and the prompt render into the body, JSON-escaped by tojson."""
        server.respond(json={"label": "greeting"})
        endpoint = make_endpoint(
            "http-json",
            url=server.url + "/predict",
            body='{"text": {{ text | tojson }}, "lang": "{{ lang }}", "p": {{ prompt | tojson }}}',
        )
        await endpoint.predict(ITEM)
        request = server.requests[0]
        assert request.path == "/predict"
        assert request.json() == {"text": 'say "hi" <b>', "lang": "en", "p": "Classify: hi"}
        assert request.headers["Content-Type"] == "application/json"

    async def test_item_without_prompt_can_still_render_fields(self, server, make_endpoint) -> None:
        """Benchmarks without a prompt template render their raw fields."""
        server.respond(json={"label": "x"})
        await make_endpoint("http-json").predict(Item(key="k", fields={"text": "t"}))
        assert server.requests[0].json() == {"text": "t"}

    async def test_missing_field_is_a_benchmark_error_and_sends_nothing(
        self, server, make_endpoint
    ) -> None:
        """An item lacking a template field fails as a data problem before any request."""
        with pytest.raises(BenchmarkError, match="'k'"):
            await make_endpoint("http-json").predict(Item(key="k", fields={"other": 1}))
        assert server.requests == []

    async def test_missing_nested_value_is_a_benchmark_error(self, server, make_endpoint) -> None:
        """A nested value the item lacks fails as a data problem, even through tojson."""
        endpoint = make_endpoint("http-json", body='{"lang": {{ meta.lang | tojson }}}')
        with pytest.raises(BenchmarkError, match="'k'"):
            await endpoint.predict(Item(key="k", fields={"meta": {}}))
        assert server.requests == []

    async def test_rendering_that_is_not_json_is_a_benchmark_error(
        self, server, make_endpoint
    ) -> None:
        """A template that renders invalid JSON for an item fails before sending."""
        endpoint = make_endpoint("http-json", body='{"text": {{ text }}}')
        with pytest.raises(BenchmarkError, match="not valid JSON"):
            await endpoint.predict(ITEM)
        assert server.requests == []

    async def test_sandbox_blocks_attribute_escapes(self, server, make_endpoint) -> None:
        """Template code cannot reach Python internals."""
        endpoint = make_endpoint("http-json", body="{{ text.__class__.__mro__ }}")
        with pytest.raises(BenchmarkError):
            await endpoint.predict(ITEM)
        assert server.requests == []


class TestBuild:
    def test_unparseable_template_is_a_value_error(self, make_endpoint) -> None:
        """A body template with a syntax error fails when the endpoint is built."""
        with pytest.raises(ValueError, match="body: invalid template"):
            make_endpoint("http-json", body='{"text": {{ text }')

    def test_bad_response_path_is_a_value_error(self, make_endpoint) -> None:
        """A response path that does not compile fails when the endpoint is built."""
        with pytest.raises(ValueError, match="invalid response path"):
            make_endpoint("http-json", response="result.label")

    def test_params_are_rejected(self, make_endpoint) -> None:
        """params would be silently ignored, so they are refused."""
        with pytest.raises(ValueError, match="params"):
            make_endpoint("http-json", params={"k": 1})


class TestResponse:
    @pytest.mark.parametrize(
        ("path", "payload", "output"),
        [
            ("$.result.label", {"result": {"label": "spam"}}, "spam"),
            ("$.predictions[0]", {"predictions": [7, 1]}, "7"),
            ("$[0].x", [{"x": 0.25}], "0.25"),
            ("$.ok", {"ok": True}, "True"),
            ("$.scores", {"scores": {"a": 1}}, '{"a": 1}'),
        ],
    )
    async def test_value_at_path_is_the_output(
        self, server, make_endpoint, path, payload, output
    ) -> None:
        """The value at the path is the output; non-strings are rendered as text."""
        server.respond(json=payload)
        response = await make_endpoint("http-json", response=path).predict(ITEM)
        assert response.error is None
        assert response.output == output

    async def test_missing_path_is_invalid_response(self, server, make_endpoint) -> None:
        """A response without the path is invalid_response naming the path."""
        server.respond(json={"result": {}})
        response = await make_endpoint("http-json", response="$.result.label").predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.attempts == 1
        assert response.error_detail is not None
        assert "$.result.label" in response.error_detail

    async def test_null_value_is_invalid_response(self, server, make_endpoint) -> None:
        """A null prediction is no usable output."""
        server.respond(json={"label": None})
        response = await make_endpoint("http-json").predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
