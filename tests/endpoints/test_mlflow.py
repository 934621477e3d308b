"""MLflow scoring server endpoints: the three payload formats and prediction parsing."""

from __future__ import annotations

import pytest

from monitor.core.model import ErrorKind, Item
from monitor.errors import BenchmarkError

ITEM = Item(key="i1", fields={"features": [0.5, 1.0, 2.0], "age": 41, "income": 3.5e4})


class TestRequest:
    async def test_inputs_with_a_vector_field(self, server, make_endpoint) -> None:
        """format inputs sends the field's vector as a batch of one to /invocations."""
        server.respond(json={"predictions": [1]})
        await make_endpoint("mlflow", input={"format": "inputs", "field": "features"}).predict(ITEM)
        request = server.requests[0]
        assert request.path == "/invocations"
        assert request.json() == {"inputs": [[0.5, 1.0, 2.0]]}

    async def test_inputs_with_a_scalar_field(self, server, make_endpoint) -> None:
        """A scalar field (a text, a number) is a batch of one scalar."""
        server.respond(json={"predictions": ["pos"]})
        item = Item(key="t", fields={"text": "great"})
        await make_endpoint("mlflow", input={"field": "text"}).predict(item)
        assert server.requests[0].json() == {"inputs": ["great"]}

    async def test_inputs_with_several_fields(self, server, make_endpoint) -> None:
        """A list of fields becomes one vector in that order."""
        server.respond(json={"predictions": [0]})
        await make_endpoint("mlflow", input={"field": ["income", "age"]}).predict(ITEM)
        assert server.requests[0].json() == {"inputs": [[3.5e4, 41]]}

    async def test_dataframe_records(self, server, make_endpoint) -> None:
        """format dataframe_records sends one record keyed by field name."""
        server.respond(json={"predictions": [0]})
        endpoint = make_endpoint(
            "mlflow", input={"format": "dataframe_records", "field": ["age", "income"]}
        )
        await endpoint.predict(ITEM)
        assert server.requests[0].json() == {"dataframe_records": [{"age": 41, "income": 3.5e4}]}

    async def test_dataframe_split(self, server, make_endpoint) -> None:
        """format dataframe_split sends columns and one row of data."""
        server.respond(json={"predictions": [0]})
        endpoint = make_endpoint(
            "mlflow", input={"format": "dataframe_split", "field": ["age", "income"]}
        )
        await endpoint.predict(ITEM)
        assert server.requests[0].json() == {
            "dataframe_split": {"columns": ["age", "income"], "data": [[41, 3.5e4]]}
        }

    async def test_params_are_sent_as_inference_params(self, server, make_endpoint) -> None:
        """Configured params travel in MLflow's `params` key."""
        server.respond(json={"predictions": [0]})
        endpoint = make_endpoint("mlflow", input={"field": "age"}, params={"threshold": 0.3})
        await endpoint.predict(ITEM)
        assert server.requests[0].json() == {"inputs": [41], "params": {"threshold": 0.3}}

    async def test_missing_field_is_a_benchmark_error(self, server, make_endpoint) -> None:
        """An item without the input field fails before sending, naming the field."""
        endpoint = make_endpoint("mlflow", input={"field": "pixels"})
        with pytest.raises(BenchmarkError, match="'pixels'"):
            await endpoint.predict(ITEM)
        assert server.requests == []


class TestResponse:
    @pytest.mark.parametrize(
        ("payload", "output"),
        [
            ({"predictions": [3, 1]}, "3"),
            ({"predictions": ["fraud"]}, "fraud"),
            ([0.75], "0.75"),
            ({"predictions": [[0.1, 0.9]]}, "[0.1, 0.9]"),
            ({"predictions": [{"label": "a"}]}, '{"label": "a"}'),
        ],
    )
    async def test_first_prediction_is_the_output(
        self, server, make_endpoint, payload, output
    ) -> None:
        """The first prediction of `predictions` or of a bare list is the output."""
        server.respond(json=payload)
        response = await make_endpoint("mlflow", input={"field": "age"}).predict(ITEM)
        assert response.error is None
        assert response.output == output

    async def test_response_path_overrides(self, server, make_endpoint) -> None:
        """A configured response path picks the prediction instead."""
        server.respond(json={"predictions": [{"label": "b", "score": 0.9}]})
        endpoint = make_endpoint(
            "mlflow", input={"field": "age"}, response="$.predictions[0].label"
        )
        response = await endpoint.predict(ITEM)
        assert response.output == "b"

    @pytest.mark.parametrize("payload", [{"predictions": []}, {"outputs": [1]}, {}, 3, []])
    async def test_wrong_shape_is_invalid_response(self, server, make_endpoint, payload) -> None:
        """Anything but a non-empty prediction list is an invalid response."""
        server.respond(json=payload)
        response = await make_endpoint("mlflow", input={"field": "age"}).predict(ITEM)
        assert response.error is ErrorKind.INVALID_RESPONSE
        assert response.attempts == 1

    def test_bad_response_path_is_a_value_error(self, make_endpoint) -> None:
        """A response path that does not compile fails when the endpoint is built."""
        with pytest.raises(ValueError, match="invalid response path"):
            make_endpoint("mlflow", input={"field": "age"}, response="predictions")
