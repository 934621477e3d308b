"""KServe v2 / Open Inference Protocol endpoints."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from monitor.core.model import ErrorKind, Item
from monitor.errors import BenchmarkError

PIXELS = [0.0, 0.5, 1.0, 0.25]
ITEM = Item(key="d1", fields={"pixels": PIXELS, "a": 1.5, "b": 2})


def infer_reply(*outputs: Mapping[str, object], **extra: object) -> dict[str, object]:
    return {"model_name": "digits", "outputs": list(outputs), **extra}


PREDICT = {"name": "predict", "shape": [1], "datatype": "INT64", "data": [7]}
PROBA = {"name": "proba", "shape": [1, 2], "datatype": "FP32", "data": [0.1, 0.9]}


class TestRequest:
    async def test_infer_path_and_tensor(self, server, make_endpoint) -> None:
        """A vector field is one [1, n] tensor posted to /v2/models/{model}/infer."""
        server.respond(json=infer_reply(PREDICT))
        endpoint = make_endpoint(
            "kserve-v2",
            model="digits",
            input={"tensor": "pixels", "datatype": "FP64", "field": "pixels"},
        )
        await endpoint.predict(ITEM)
        request = server.requests[0]
        assert request.path == "/v2/models/digits/infer"
        assert request.json() == {
            "inputs": [{"name": "pixels", "shape": [1, 4], "datatype": "FP64", "data": PIXELS}]
        }

    async def test_several_fields_make_one_row(self, server, make_endpoint) -> None:
        """A list of fields becomes one [1, n_fields] tensor in that order."""
        server.respond(json=infer_reply(PREDICT))
        await make_endpoint("kserve-v2", input={"field": ["b", "a"]}).predict(ITEM)
        (tensor,) = server.requests[0].json()["inputs"]
        assert tensor == {"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [2, 1.5]}

    async def test_nested_field_is_flattened_with_its_shape(self, server, make_endpoint) -> None:
        """A rectangular nested list is sent row-major with shape [1, rows, cols]."""
        server.respond(json=infer_reply(PREDICT))
        item = Item(key="m", fields={"x": [[1, 2, 3], [4, 5, 6]]})
        await make_endpoint("kserve-v2", input={"field": "x", "datatype": "INT32"}).predict(item)
        (tensor,) = server.requests[0].json()["inputs"]
        assert tensor["shape"] == [1, 2, 3]
        assert tensor["data"] == [1, 2, 3, 4, 5, 6]

    async def test_scalar_field_is_a_one_by_one_tensor(self, server, make_endpoint) -> None:
        """A scalar field is shape [1, 1]."""
        server.respond(json=infer_reply(PREDICT))
        await make_endpoint("kserve-v2", input={"field": "a"}).predict(ITEM)
        (tensor,) = server.requests[0].json()["inputs"]
        assert (tensor["shape"], tensor["data"]) == ([1, 1], [1.5])

    async def test_ragged_field_is_a_benchmark_error(self, server, make_endpoint) -> None:
        """A ragged nested list cannot be a tensor and fails before sending."""
        item = Item(key="r", fields={"x": [[1, 2], [3]]})
        with pytest.raises(BenchmarkError, match="ragged"):
            await make_endpoint("kserve-v2", input={"field": "x"}).predict(item)
        assert server.requests == []

    async def test_params_are_sent_as_parameters(self, server, make_endpoint) -> None:
        """Configured params travel as the request's `parameters`."""
        server.respond(json=infer_reply(PREDICT))
        endpoint = make_endpoint("kserve-v2", input={"field": "a"}, params={"top_k": 1})
        await endpoint.predict(ITEM)
        assert server.requests[0].json()["parameters"] == {"top_k": 1}

    async def test_model_name_is_url_quoted(self, server, make_endpoint) -> None:
        """A model name with a slash stays one path segment."""
        server.respond(json=infer_reply(PREDICT))
        await make_endpoint("kserve-v2", model="team/digits", input={"field": "a"}).predict(ITEM)
        assert server.requests[0].raw_path == "/v2/models/team%2Fdigits/infer"


class TestResponse:
    async def test_named_output_tensor_is_picked(self, server, make_endpoint) -> None:
        """`output` selects the tensor by name, whatever its position."""
        server.respond(json=infer_reply(PROBA, PREDICT, model_version="3"))
        endpoint = make_endpoint("kserve-v2", input={"field": "pixels"}, output="predict")
        response = await endpoint.predict(ITEM)
        assert response.error is None
        assert response.output == "7"
        assert response.model_id == "digits:3"

    async def test_first_output_without_a_name(self, server, make_endpoint) -> None:
        """Without `output`, the first tensor's first element is the prediction."""
        server.respond(json=infer_reply(PROBA, PREDICT))
        response = await make_endpoint("kserve-v2", input={"field": "pixels"}).predict(ITEM)
        assert response.output == "0.1"
        assert response.model_id == "digits"

    @pytest.mark.parametrize(
        ("datatype", "value", "output"),
        [
            ("INT64", 7.0, "7"),
            ("UINT8", 3, "3"),
            ("FP32", 7.0, "7.0"),
            ("INT32", 2.5, "2.5"),
            ("BYTES", "cat", "cat"),
            ("BOOL", True, "True"),
        ],
    )
    async def test_integer_tensors_render_without_decimal_point(
        self, server, make_endpoint, datatype, value, output
    ) -> None:
        """Integral values of INT*/UINT* tensors render as integers; others as they are."""
        tensor = {"name": "y", "shape": [1], "datatype": datatype, "data": [value]}
        server.respond(json=infer_reply(tensor))
        response = await make_endpoint("kserve-v2", input={"field": "a"}).predict(ITEM)
        assert response.output == output

    async def test_nested_output_data_is_unwrapped(self, server, make_endpoint) -> None:
        """Servers that nest data by shape still yield the first element."""
        tensor = {"name": "y", "shape": [1, 1], "datatype": "INT64", "data": [[4]]}
        server.respond(json=infer_reply(tensor))
        response = await make_endpoint("kserve-v2", input={"field": "a"}).predict(ITEM)
        assert response.output == "4"

    @pytest.mark.parametrize(
        "payload",
        [
            {"model_name": "digits"},
            {"outputs": []},
            {"outputs": [{"name": "y", "datatype": "INT64", "data": []}]},
            {"outputs": [{"name": "y", "datatype": "INT64"}]},
            {"outputs": ["y"]},
        ],
    )
    async def test_wrong_shape_is_invalid_response(self, server, make_endpoint, payload) -> None:
        """Responses without a usable first output element are invalid responses."""
        server.respond(json=payload)
        response = await make_endpoint("kserve-v2", input={"field": "a"}).predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.attempts == 1

    async def test_missing_named_output_lists_the_available_ones(
        self, server, make_endpoint
    ) -> None:
        """Asking for an output tensor the model lacks names the ones it has."""
        server.respond(json=infer_reply(PROBA))
        endpoint = make_endpoint("kserve-v2", input={"field": "a"}, output="predict")
        response = await endpoint.predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.error_detail is not None
        assert "proba" in response.error_detail
