"""MLflow scoring servers (``mlflow models serve``, MLflow images on KServe / SageMaker).

POST ``{url}/invocations`` with one of the payloads MLflow accepts, chosen by
``input.format``; ``input.field`` is one item field or a list of fields:

- ``inputs``: ``{"inputs": [value]}`` for one field (a feature vector, a scalar or a text),
  ``{"inputs": [[v1, v2, ...]]}`` for a list of fields;
- ``dataframe_records``: ``{"dataframe_records": [{field: value, ...}]}``;
- ``dataframe_split``: ``{"dataframe_split": {"columns": [fields], "data": [[values]]}}``.

Non-empty ``params`` are sent as MLflow's inference ``"params"``. The prediction is the
first element of ``predictions`` (or of a bare list), unless ``response`` gives a path.
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
    invalid_response,
    item_field,
    render_value,
)

if TYPE_CHECKING:
    from monitor.config import EndpointSettings

__all__ = ["MlflowEndpoint"]


class MlflowEndpoint(JsonEndpoint):
    """An MLflow model server's ``/invocations`` route."""

    def __init__(self, settings: EndpointSettings, http: HttpClient, retry: RetryPolicy) -> None:
        if settings.input is None:
            raise ValueError(f"endpoint {settings.name!r}: type mlflow requires `input`")
        fields = settings.input.field
        self.fields: tuple[str, ...] = (fields,) if isinstance(fields, str) else tuple(fields)
        if not self.fields:
            raise ValueError(f"endpoint {settings.name!r}: input.field names no field")
        self.single = isinstance(fields, str)
        self.format = settings.input.format
        try:
            self.path = JsonPath(settings.response) if settings.response else None
        except ValueError as exc:
            raise ValueError(f"endpoint {settings.name!r}: {exc}") from None
        self._params = dict(settings.params)
        super().__init__(settings, http, retry, settings.url + "/invocations")

    def encode(self, item: Item) -> bytes:
        values = [item_field(item, name, self.name) for name in self.fields]
        payload: dict[str, Any]
        if self.format == "inputs":
            payload = {"inputs": [values[0] if self.single else values]}
        elif self.format == "dataframe_records":
            payload = {"dataframe_records": [dict(zip(self.fields, values, strict=True))]}
        else:
            payload = {"dataframe_split": {"columns": list(self.fields), "data": [values]}}
        if self._params:
            payload["params"] = self._params
        return json.dumps(payload).encode()

    def decode(self, payload: Any) -> Prediction:
        if self.path is not None:
            return Prediction(render_value(self.path.extract(payload), self.path.source))
        predictions = payload.get("predictions") if isinstance(payload, dict) else payload
        if not isinstance(predictions, list) or not predictions:
            shape = (
                "keys " + ", ".join(map(str, payload))[:80]
                if isinstance(payload, dict)
                else type(payload).__name__
            )
            raise invalid_response(
                f"expected a non-empty `predictions` list or a bare list, got {shape}"
            )
        return Prediction(render_value(predictions[0], "predictions[0]"))
