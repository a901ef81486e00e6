"""The model server's HTTP API, run in-process with aiohttp's test server."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from shipyard_model_server.adapters.predictors import Predictor, load_predictor, load_transformer
from shipyard_model_server.domain.tensors import TensorSpec
from shipyard_model_server.entrypoints.http import ModelServer, ServerConfig

from shipyard.kit.replica_load import ReplicaLoad, parse_load
from tests.support.iris import IRIS_CLASSES, IRIS_ROWS, iris_request, train_iris, write_module

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    directory = tmp_path_factory.mktemp("iris")
    train_iris(directory)
    return load_predictor(directory)


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Starts a model server app on a loopback port and returns a client for it."""
    clients: list[Client] = []

    async def make(server: ModelServer) -> Client:
        client: Client = TestClient(TestServer(server.app()))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def json_of(response: Any) -> Any:
    return json.loads(await response.read())


class Gate:
    """A predictor that blocks in predict until released (run it in a thread)."""

    framework = platform = "custom"
    artifact = "gate"
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict(self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], outputs: Any) -> Any:
        self.entered.set()
        if not self.release.wait(60):
            raise TimeoutError("the test never released the gate")
        return {"y": np.array([1])}


class Failing:
    framework = platform = "custom"
    artifact = "failing"
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    def predict(self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], outputs: Any) -> Any:
        raise RuntimeError("CUDA out of memory")


async def test_health_and_metadata(make_client: MakeClient, iris: Predictor) -> None:
    client = await make_client(ModelServer(ServerConfig("iris", "3"), iris))
    live = await client.get("/v2/health/live")
    assert live.status == 200 and await json_of(live) == {"live": True}
    ready = await client.get("/v2/health/ready")
    assert ready.status == 200 and await json_of(ready) == {"ready": True}
    server = await json_of(await client.get("/v2"))
    assert server["name"] == "shipyard-model-server" and "binary_tensor_data" in server["extensions"]
    for path in ("/v2/models/iris", "/v2/models/iris/versions/3"):
        response = await client.get(path)
        assert response.status == 200
        metadata = await json_of(response)
        assert (
            metadata["name"] == "iris" and metadata["versions"] == ["3"] and metadata["platform"] == "sklearn"
        )
        assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
        assert {"name": "predict", "datatype": "INT64", "shape": [-1]} in metadata["outputs"]
        model_ready = await client.get(path + "/ready")
        assert model_ready.status == 200 and await json_of(model_ready) == {"name": "iris", "ready": True}


async def test_infer(make_client: MakeClient, iris: Predictor) -> None:
    client = await make_client(ModelServer(ServerConfig("iris", "3"), iris))
    for path in ("/v2/models/iris/infer", "/v2/models/iris/versions/3/infer"):
        response = await client.post(path, json=iris_request(id="req-7"))
        assert response.status == 200, await response.text()
        assert response.content_type == "application/json"
        assert await json_of(response) == {
            "model_name": "iris",
            "model_version": "3",
            "id": "req-7",
            "outputs": [{"name": "predict", "datatype": "INT64", "shape": [2], "data": IRIS_CLASSES}],
        }
    proba = await json_of(
        await client.post("/v2/models/iris/infer", json=iris_request(outputs=[{"name": "predict_proba"}]))
    )
    (output,) = proba["outputs"]
    assert output["name"] == "predict_proba" and output["shape"] == [2, 3]
    assert np.array(output["data"]).reshape(2, 3).argmax(axis=1).tolist() == IRIS_CLASSES
    nested_fp32 = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                               "data": [IRIS_ROWS[1]]}]}
    by_parameter = await client.post(
        "/v2/models/iris/infer", json={**nested_fp32, "parameters": {"predict_proba": True}}
    )
    assert (await json_of(by_parameter))["outputs"][0]["name"] == "predict_proba"


async def test_bad_requests_are_400_with_a_clear_message(make_client: MakeClient, iris: Predictor) -> None:
    client = await make_client(ModelServer(ServerConfig("iris"), iris))

    async def error(body: Any, status: int = 400) -> str:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await client.post("/v2/models/iris/infer", data=data)
        assert response.status == status
        return str((await json_of(response))["error"])

    wrong_shape = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]}
    assert await error(wrong_shape) == "input 'x': shape [2, 3] needs 6 elements, got 5"
    wrong_type = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP33", "data": [1, 2, 3, 4]}]}
    assert await error(wrong_type) == "input 'x': datatype FP33 is not a V2 datatype"
    bad_value = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, "abc"]}]}
    assert await error(bad_value) == "input 'x': expected FP32 values, got 'abc'"
    assert (await error(b"{not json")).startswith("the request body is not valid JSON")
    three_features = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    assert "expecting 4 features" in await error(three_features)  # scikit-learn's own message
    assert "output 'nope' is not an output" in await error(iris_request(outputs=[{"name": "nope"}]))


async def test_inputs_are_held_to_the_models_metadata(make_client: MakeClient, iris: Predictor) -> None:
    client = await make_client(ModelServer(ServerConfig("iris"), iris))
    metadata = await json_of(await client.get("/v2/models/iris"))
    # What the metadata says is what is accepted: a request built from it alone.
    [spec] = metadata["inputs"]
    from_metadata = {"inputs": [{"name": spec["name"], "datatype": spec["datatype"],
                                 "shape": [1, spec["shape"][1]], "data": IRIS_ROWS[0]}]}
    assert (await client.post("/v2/models/iris/infer", json=from_metadata)).status == 200

    async def error(inputs: list[dict[str, Any]]) -> str:
        response = await client.post("/v2/models/iris/infer", json={"inputs": inputs})
        assert response.status == 400
        return str((await json_of(response))["error"])

    pixels = {"name": "pixels", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROWS[0]}
    assert await error([pixels]) == ("input 'pixels' is not an input of this model: it takes input-0 (FP64) "
                                     "(the model's metadata, GET /v2/models/<name>, lists them)")
    # Two inputs were once stacked into one matrix of their columns together.
    second = {"name": "input-1", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROWS[1]}
    both = [{**pixels, "name": "input-0"}, second]
    assert "input 'input-1' is not an input of this model" in await error(both)
    text = {"name": "input-0", "shape": [1], "datatype": "BYTES", "data": ["5.1 3.5 1.4 0.2"]}
    assert await error([text]) == "input 'input-0' is BYTES, but the model takes FP64"


async def test_unknown_models_versions_and_paths_are_404(make_client: MakeClient, iris: Predictor) -> None:
    client = await make_client(ModelServer(ServerConfig("iris", "3"), iris))
    response = await client.post("/v2/models/wine/infer", json=iris_request())
    assert response.status == 404
    assert (await json_of(response))["error"] == "model 'wine' is not served here (this server serves 'iris')"
    response = await client.get("/v2/models/iris/versions/4")
    assert response.status == 404
    assert (await json_of(response))[
        "error"
    ] == "model 'iris' has no version '4' here (it serves version '3')"
    assert (await client.get("/v2/models/wine/ready")).status == 404
    response = await client.get("/v1/models/iris")
    assert response.status == 404 and "no such endpoint" in (await json_of(response))["error"]


async def test_bodies_over_the_limit_are_413(make_client: MakeClient, iris: Predictor) -> None:
    client = await make_client(ModelServer(ServerConfig("iris", max_body_bytes=1000), iris))
    big = json.dumps(iris_request([IRIS_ROWS[0]] * 100)).encode()
    assert len(big) > 1000
    by_length = await client.post("/v2/models/iris/infer", data=big)
    assert by_length.status == 413
    assert (await json_of(by_length))[
        "error"
    ] == f"request body of {len(big)} bytes is over the limit of 1000 bytes"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused while reading
        for start in range(0, len(big), 100):
            yield big[start : start + 100]

    while_reading = await client.post("/v2/models/iris/infer", data=chunks())
    assert while_reading.status == 413
    assert "over the limit of 1000 bytes" in (await json_of(while_reading))["error"]
    small = await client.post("/v2/models/iris/infer", json=iris_request())
    assert small.status == 200


async def test_over_max_concurrency_is_429_at_once(make_client: MakeClient) -> None:
    gate = Gate()
    server = ModelServer(ServerConfig("gate", max_concurrency=1, predict_in_thread="always"), gate)
    client = await make_client(server)
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}
    first = asyncio.ensure_future(client.post("/v2/models/gate/infer", json=body))
    try:
        assert await asyncio.to_thread(gate.entered.wait, 30), "the request never reached predict"
        assert server.in_flight == 1
        refused = await client.post("/v2/models/gate/infer", json=body)
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "1"
        assert (await json_of(refused))["error"] == "too many requests in flight (limit 1)"
        busy = await client.get("/metrics")
        assert parse_load(await busy.text()) == ReplicaLoad(in_flight=1, accepted=1, rejected=1)
    finally:
        gate.release.set()
    response = await first
    assert response.status == 200 and (await json_of(response))["outputs"][0]["data"] == [1]
    assert server.in_flight == 0
    assert (await client.post("/v2/models/gate/infer", json=body)).status == 200
    idle = await client.get("/metrics")
    assert idle.content_type == "text/plain"
    assert parse_load(await idle.text()) == ReplicaLoad(in_flight=0, accepted=2, rejected=1)


async def test_not_ready_until_the_model_is_loaded(make_client: MakeClient, iris: Predictor) -> None:
    server = ModelServer(ServerConfig("iris"))
    client = await make_client(server)
    assert (await client.get("/v2/health/live")).status == 200
    ready = await client.get("/v2/health/ready")
    assert ready.status == 503 and await json_of(ready) == {"ready": False}
    assert (await client.get("/v2/models/iris/ready")).status == 503
    infer = await client.post("/v2/models/iris/infer", json=iris_request())
    assert infer.status == 503 and "not ready" in (await json_of(infer))["error"]
    assert infer.headers["Retry-After"] == "1"
    server.set_ready(iris)
    assert (await client.get("/v2/health/ready")).status == 200
    assert (await client.post("/v2/models/iris/infer", json=iris_request())).status == 200
    server.draining = True  # after SIGTERM: not ready, but requests still in flight are answered
    assert (await client.get("/v2/health/ready")).status == 503
    assert (await client.get("/v2/models/iris/ready")).status == 503
    assert (await client.post("/v2/models/iris/infer", json=iris_request())).status == 200


async def test_transformer_pre_and_postprocess(
    make_client: MakeClient, iris: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    write_module(
        tmp_path,
        "transform",
        """
        NAMES = ["setosa", "versicolor", "virginica"]

        def preprocess(request):
            if "instances" not in request:
                raise ValueError("expected {'instances': [[...], ...]}")
            rows = request["instances"]
            tensor = {"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}
            return {"inputs": [tensor]}

        def postprocess(response):
            labels = [NAMES[i] for i in response["outputs"][0]["data"]]
            return {"predictions": labels, "model": response["model_name"]}
        """,
    )
    transformer = load_transformer(tmp_path, "transform.py")
    client = await make_client(ModelServer(ServerConfig("iris"), iris, transformer))
    response = await client.post("/v2/models/iris/infer", json={"instances": IRIS_ROWS})
    assert response.status == 200
    assert await json_of(response) == {"predictions": ["setosa", "virginica"], "model": "iris"}
    refused = await client.post("/v2/models/iris/infer", json={"rows": []})
    assert refused.status == 400
    assert (await json_of(refused))["error"] == "preprocess failed: expected {'instances': [[...], ...]}"


async def test_a_failing_predict_is_500_with_its_message(make_client: MakeClient) -> None:
    client = await make_client(ModelServer(ServerConfig("failing"), Failing()))
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}
    response = await client.post("/v2/models/failing/infer", json=body)
    assert response.status == 500
    assert (await json_of(response))["error"] == "prediction failed: RuntimeError: CUDA out of memory"


async def test_predict_in_threads_and_binary_tensors(make_client: MakeClient, iris: Predictor) -> None:
    client = await make_client(ModelServer(ServerConfig("iris", predict_in_thread="always"), iris))
    rows = np.array(IRIS_ROWS, dtype=np.float32)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        }
    ).encode()
    response = await client.post(
        "/v2/models/iris/infer",
        data=header + rows.tobytes(),
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status == 200
    body = await response.read()
    json_length = int(response.headers["Inference-Header-Content-Length"])
    head = json.loads(body[:json_length])
    assert head["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [2], "parameters": {"binary_data_size": 16}}
    ]
    assert np.frombuffer(body[json_length:], dtype="<i8").tolist() == IRIS_CLASSES


class WhereAmI:
    """Answers with whether predict ran on the event loop's thread."""

    framework = platform = "custom"
    artifact = "where"
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    def __init__(self) -> None:
        self.loop_thread = threading.get_ident()

    def predict(self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], outputs: Any) -> Any:
        return {"inline": np.array([threading.get_ident() == self.loop_thread])}


@pytest.mark.parametrize(("budget_ms", "later_inline"), [(0.0, False), (1e9, True)])
async def test_auto_runs_cheap_predicts_inline_and_dear_ones_in_threads(
    make_client: MakeClient, budget_ms: float, later_inline: bool
) -> None:
    """A budget of 0 ms makes every predict "dear" after the first one is timed; a huge one never."""
    server = ModelServer(ServerConfig("where", inline_budget_ms=budget_ms), WhereAmI())
    client = await make_client(server)
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}
    answers = []
    for _ in range(3):
        response = await client.post("/v2/models/where/infer", json=body)
        answers.append((await json_of(response))["outputs"][0]["data"][0])
    assert answers == [True, later_inline, later_inline]


@pytest.mark.parametrize("use_orjson", [True, False])
def test_json_codec_with_and_without_orjson(monkeypatch: pytest.MonkeyPatch, use_orjson: bool) -> None:
    from shipyard_model_server.entrypoints import http as model_server

    if not use_orjson:
        monkeypatch.setattr(model_server, "orjson", None)
    value = {"data": np.arange(3, dtype=np.int64), "f": np.float32(0.5), "t": np.arange(4).reshape(2, 2).T}
    assert json.loads(model_server.dumps(value)) == {"data": [0, 1, 2], "f": 0.5, "t": [[0, 2], [1, 3]]}
    assert model_server.loads(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    with pytest.raises(ValueError):
        model_server.loads(b"{nope")
    with pytest.raises(TypeError):
        model_server.dumps({"x": object()})
