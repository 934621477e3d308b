"""Any JSON API: the request body is a template, the prediction a path into the response.

``body`` is a sandboxed Jinja2 template rendered over the item's fields plus ``prompt``
(the item's rendered prompt, when the benchmark has one); the result is POSTed to ``url``
as is. ``response`` is a JSONPath subset (``$.result.label``, ``$.predictions[0]``,
``$[0].x``) compiled once; a non-string value is recorded through `render_value`.

When things do not fit:

- a template that does not parse, or a path that does not compile: ValueError from
  `build_endpoint`, i.e. at start-up or reload, before any request;
- an item the template cannot render (missing field, sandbox violation), or a rendering
  that is not valid JSON: BenchmarkError from ``predict``. Nothing is sent: it is a data or
  template problem that would fail the same way on any endpoint, so it must not be counted
  against the endpoint's availability;
- a response without the path: an ``invalid_response`` item error, not retried.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from monitor.core.model import Item
from monitor.endpoints.http import (
    HttpClient,
    JsonEndpoint,
    JsonPath,
    Prediction,
    RetryPolicy,
    render_value,
)
from monitor.errors import BenchmarkError
from monitor.templating import Template

if TYPE_CHECKING:
    from monitor.config import EndpointSettings

__all__ = ["HttpJsonEndpoint"]


class HttpJsonEndpoint(JsonEndpoint):
    """A JSON API described by a body template and a response path."""

    def __init__(self, settings: EndpointSettings, http: HttpClient, retry: RetryPolicy) -> None:
        where = f"endpoint {settings.name!r}"
        if settings.body is None or settings.response is None:
            raise ValueError(f"{where}: type http-json requires `body` and `response`")
        if settings.params:
            raise ValueError(f"{where}: http-json builds its request from `body`; drop `params`")
        try:
            self.template = Template(settings.body, settings.template_limits)
        except ValueError as exc:
            raise ValueError(f"{where}: body: {exc}") from None
        try:
            self.path = JsonPath(settings.response)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        super().__init__(settings, http, retry, settings.url)

    def encode(self, item: Item) -> bytes:
        context = dict(item.fields)
        if item.prompt is not None:
            context["prompt"] = item.prompt
        missing = self.template.missing_fields(context)
        if missing:
            raise BenchmarkError(
                f"item {item.key!r}: endpoint {self.name!r} body needs field(s) "
                f"{', '.join(map(repr, missing))}"
            )
        try:
            text = self.template.render(context)
        except (ValueError, TypeError) as exc:  # TypeError: a filter given an undefined value
            raise BenchmarkError(f"item {item.key!r}: endpoint {self.name!r} body: {exc}") from None
        try:
            json.loads(text)
        except ValueError as exc:
            raise BenchmarkError(
                f"item {item.key!r}: endpoint {self.name!r} body is not valid JSON ({exc}); "
                "use the tojson filter for values, e.g. {{ text | tojson }}"
            ) from None
        return text.encode()

    def decode(self, payload: Any) -> Prediction:
        return Prediction(render_value(self.path.extract(payload), self.path.source))
