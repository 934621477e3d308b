"""http-json bodies render within the `templates` limits: over a cap is an item error."""

from __future__ import annotations

import time

import pytest

from monitor.config import parse_settings
from monitor.core.model import Item
from monitor.endpoints import HttpClient, build_endpoint
from monitor.errors import BenchmarkError

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"


class TestBodyLimits:
    """A runaway body fails one item quickly and sends nothing."""

    async def test_runaway_body_is_an_item_error_and_sends_nothing(
        self, server, make_endpoint
    ) -> None:
        """Nested loops in a body fail with a BenchmarkError naming the limit, in < 2 s."""
        endpoint = make_endpoint("http-json", body=NESTED)
        start = time.process_time()
        with pytest.raises(BenchmarkError, match=r"templates\.max_operations"):
            await endpoint.predict(Item(key="k", fields={"text": "t"}))
        assert time.process_time() - start < 2.0
        assert server.requests == []

    async def test_configured_limits_reach_the_endpoint(self, server, http: HttpClient) -> None:
        """A body within the defaults fails under the config's smaller `max_output`."""
        config = f"""\
endpoints:
  - name: api
    type: http-json
    url: {server.url}
    body: '{{"t": "{{{{ text * 600 }}}}"}}'
    response: $.label
templates: {{max_output: 1000}}
"""
        settings = parse_settings(config, environ={})
        endpoint = build_endpoint(settings.endpoints[0], http)
        with pytest.raises(BenchmarkError, match=r"templates\.max_output"):
            await endpoint.predict(Item(key="k", fields={"text": "ab"}))
        assert server.requests == []
