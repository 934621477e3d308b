"""Model endpoints: one module per protocol over one shared async HTTP client.

``build_endpoint(settings, http)`` returns an `EndpointClient` whose ``predict(item)``
returns a `Response` value for every endpoint outcome (see `monitor.endpoints.http`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.endpoints.http import HttpClient, RetryPolicy
from monitor.endpoints.http_json import HttpJsonEndpoint
from monitor.endpoints.kserve_v2 import KServeV2Endpoint
from monitor.endpoints.mlflow import MlflowEndpoint
from monitor.endpoints.openai import OpenAIChatEndpoint, OpenAICompletionsEndpoint
from monitor.errors import ConfigError
from monitor.ports import EndpointClient

if TYPE_CHECKING:
    from monitor.config import EndpointSettings, Settings

__all__ = ["EndpointClient", "HttpClient", "RetryPolicy", "build_endpoint", "check_endpoints"]

_PROTOCOLS: dict[str, Callable[[EndpointSettings, HttpClient, RetryPolicy], EndpointClient]] = {
    "openai-chat": OpenAIChatEndpoint,
    "openai-completions": OpenAICompletionsEndpoint,
    "http-json": HttpJsonEndpoint,
    "mlflow": MlflowEndpoint,
    "kserve-v2": KServeV2Endpoint,
}


def build_endpoint(
    settings: EndpointSettings, http: HttpClient, *, retry: RetryPolicy | None = None
) -> EndpointClient:
    """The client for one configured endpoint, sharing ``http``'s connection pool.

    ``retry`` defaults to ``settings.retries`` retries starting at ``settings.backoff``
    seconds. Raises ValueError with the endpoint's name for settings that cannot work
    (an http-json template that does not parse, a bad response path, an unreadable
    ca_bundle); nothing is sent before the first ``predict``.
    """
    try:
        protocol = _PROTOCOLS[settings.type]
    except KeyError:
        known = ", ".join(sorted(_PROTOCOLS))
        raise ValueError(
            f"endpoint {settings.name!r}: unknown type {settings.type!r} (known: {known})"
        ) from None
    if retry is None:
        retry = RetryPolicy(
            retries=settings.retries,
            base_delay=settings.backoff,
            max_delay=max(RetryPolicy().max_delay, settings.backoff),
        )
    return protocol(settings, http, retry)


def check_endpoints(settings: Settings) -> None:
    """Build every endpoint client once (no request is sent), so settings that only the
    adapter can judge (response paths, CA bundles, params) fail at check time."""
    http = HttpClient()  # opens its session lazily: nothing to close here
    problems = []
    for i, ep in enumerate(settings.endpoints):
        try:
            build_endpoint(ep, http)
        except ValueError as exc:
            problems.append(f"{settings.where(('endpoints', i))}: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
