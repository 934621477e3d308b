"""Open Inference Protocol (KServe v2): KServe, MLServer, Triton, Seldon.

POST ``{url}/v2/models/{model}/infer`` with one input tensor::

    {"inputs": [{"name": input.tensor, "shape": [1, n], "datatype": input.datatype,
                 "data": [...]}]}

``input.field`` is one item field (a vector: shape ``[1, len]``; a nested rectangular list:
shape ``[1, d1, d2, ...]`` with the data flattened row-major as the protocol specifies; a
scalar: shape ``[1, 1]``) or a list of fields (one scalar each: shape ``[1, n_fields]``).
Non-empty ``params`` are sent as the request's ``"parameters"``.

The prediction is element 0 of the output tensor named ``output`` (or of the first output
when ``output`` is not set). Integer tensors (``INT*``, ``UINT*``) render integral values
without a trailing ``.0`` even when the server encodes them as JSON floats. The model id is
``model_name``, plus ``:model_version`` when the server reports one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from monitor.core.model import Item
from monitor.endpoints.http import (
    HttpClient,
    JsonEndpoint,
    Prediction,
    RetryPolicy,
    invalid_response,
    item_field,
    render_value,
)
from monitor.errors import BenchmarkError

if TYPE_CHECKING:
    from monitor.config import EndpointSettings

__all__ = ["KServeV2Endpoint"]


class KServeV2Endpoint(JsonEndpoint):
    """A model served over the Open Inference Protocol's REST binding."""

    def __init__(self, settings: EndpointSettings, http: HttpClient, retry: RetryPolicy) -> None:
        where = f"endpoint {settings.name!r}"
        if not settings.model or settings.input is None:
            raise ValueError(f"{where}: type kserve-v2 requires `model` and `input`")
        fields = settings.input.field
        self.fields: tuple[str, ...] = (fields,) if isinstance(fields, str) else tuple(fields)
        if not self.fields:
            raise ValueError(f"{where}: input.field names no field")
        self.single = isinstance(fields, str)
        self.tensor = settings.input.tensor
        self.datatype = settings.input.datatype.upper()
        self.output = settings.output
        self._params = dict(settings.params)
        url = f"{settings.url}/v2/models/{quote(settings.model, safe='')}/infer"
        super().__init__(settings, http, retry, url)

    def encode(self, item: Item) -> bytes:
        if self.single:
            shape, data = _shape_and_data(item_field(item, self.fields[0], self.name))
            if shape is None:
                raise BenchmarkError(
                    f"item {item.key!r}: field {self.fields[0]!r} is a ragged nested list; "
                    f"endpoint {self.name!r} needs a rectangular tensor"
                )
        else:
            data = [item_field(item, name, self.name) for name in self.fields]
            shape = [1, len(data)]
        request: dict[str, Any] = {
            "inputs": [
                {"name": self.tensor, "shape": shape, "datatype": self.datatype, "data": data}
            ]
        }
        if self._params:
            request["parameters"] = self._params
        return json.dumps(request).encode()

    def decode(self, payload: Any) -> Prediction:
        outputs = payload.get("outputs") if isinstance(payload, dict) else None
        if not isinstance(outputs, list) or not outputs:
            raise invalid_response("response has no `outputs` list")
        if self.output is None:
            tensor = outputs[0]
        else:
            tensor = next(
                (t for t in outputs if isinstance(t, dict) and t.get("name") == self.output),
                None,
            )
            if tensor is None:
                names = (
                    ", ".join(str(t.get("name")) for t in outputs if isinstance(t, dict))
                    or "(none)"
                )
                raise invalid_response(f"no output tensor {self.output!r} (got: {names[:80]})")
        if not isinstance(tensor, dict):
            raise invalid_response("output tensor is not an object")
        value: Any = tensor.get("data")
        while isinstance(value, list):  # some servers nest data by shape
            if not value:
                raise invalid_response(f"output tensor {tensor.get('name')!r} has no data")
            value = value[0]
        if value is None and "data" not in tensor:
            raise invalid_response(f"output tensor {tensor.get('name')!r} has no data")
        datatype = str(tensor.get("datatype", "")).upper()
        if datatype.startswith(("INT", "UINT")) and isinstance(value, float) and value.is_integer():
            value = int(value)
        return Prediction(render_value(value, "output"), model_id=_model_id(payload))


def _model_id(payload: dict[str, Any]) -> str | None:
    name = payload.get("model_name")
    if not isinstance(name, str) or not name:
        return None
    version = payload.get("model_version")
    return f"{name}:{version}" if version not in (None, "") else name


def _shape_and_data(value: Any) -> tuple[list[int] | None, list[Any]]:
    """Shape ``[1, ...]`` and row-major flat data of a field value; shape None if ragged."""
    if not isinstance(value, list):
        return [1, 1], [value]
    if not any(isinstance(v, list) for v in value):
        return [1, len(value)], value
    dims: list[int] = []
    probe: Any = value
    while isinstance(probe, list):
        dims.append(len(probe))
        probe = probe[0] if probe else None
    flat: list[Any] = []
    if not _flatten_into(value, dims, flat):
        return None, flat
    return [1, *dims], flat


def _flatten_into(value: list[Any], dims: list[int], out: list[Any]) -> bool:
    if len(value) != dims[0]:
        return False
    if len(dims) == 1:
        if any(isinstance(v, list) for v in value):
            return False
        out.extend(value)
        return True
    return all(isinstance(v, list) and _flatten_into(v, dims[1:], out) for v in value)
