"""check_endpoints: adapter-level settings fail at check time, with file and line."""

from __future__ import annotations

import pytest

from monitor.config import parse_settings
from monitor.endpoints import check_endpoints
from monitor.errors import ConfigError


class TestCheckEndpoints:
    def test_bad_response_path_is_a_config_error(self) -> None:
        """A response path the adapter cannot compile names the endpoint entry."""
        settings = parse_settings(
            "endpoints:\n"
            '  - {name: ok, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}\n'
            '  - {name: x, type: http-json, url: "http://127.0.0.1:1/p", body: "{}",\n'
            '     response: "$.[[["}\n',
            source="m.yaml",
        )
        with pytest.raises(ConfigError, match=r"^m\.yaml:3: endpoints\[1\]: endpoint 'x'"):
            check_endpoints(settings)

    def test_valid_endpoints_pass(self) -> None:
        """Valid settings build without sending anything."""
        settings = parse_settings(
            'endpoints: [{name: ok, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}]'
        )
        check_endpoints(settings)
