"""The request the CLI suggests for a served model comes from the model's V2 metadata (input names,
datatypes, shapes): ``inference create`` and the demo send what the model server accepts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from shipyard.cli import context, demo
from shipyard.cli.example_request import example_body
from shipyard.cli.main import app
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb

ENDPOINT = "/serving/try/v2/models/digits-model"
METADATA = {"name": "digits-model", "platform": "sklearn",
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 64]}],
            "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}]}


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[str]]]:
    """An HTTP side of the gateway that answers the model's metadata; the tokens it was sent."""
    tokens: list[str] = []

    class Metadata(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            tokens.append(self.headers.get("Authorization", ""))
            body = json.dumps(METADATA).encode() if self.path == ENDPOINT else b"{}"
            self.send_response(200 if self.path == ENDPOINT else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None: ...

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tokens
    server.shutdown()
    server.server_close()


def test_inference_create_suggests_the_models_own_inputs(replies: dict[str, Any],
                                                         gateway: tuple[str, list[str]]) -> None:
    base, tokens = gateway
    replies["GetStatus"] = gateway_pb2.GetStatusResponse(blob_url=f"{base}/api/blobs")
    replies["CreateInference"] = pb.Inference(name="try", model=pb.ModelRef(model="digits-model", version=2),
                                              status=pb.SERVING_STATUS_RUNNING, endpoint=ENDPOINT)

    result = CliRunner().invoke(app, ["inference", "create", "try", "--model", "digits-model@2"])

    assert result.exit_code == 0, result.output
    (curl,) = [line.strip() for line in result.output.splitlines() if line.strip().startswith("curl ")]
    assert curl.startswith(f'curl -s -H "Authorization: Bearer $SHIPYARD_TOKEN" {base}{ENDPOINT}/infer -d ')
    body = json.loads(curl.split(" -d ", 1)[1].strip("'"))
    assert body == {"inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "FP64", "data": [0.0] * 64}]}
    assert tokens == ["Bearer the-token"]


def test_without_metadata_the_hint_says_where_the_inputs_are_described(replies: dict[str, Any]) -> None:
    replies["GetStatus"] = gateway_pb2.GetStatusResponse(blob_url="http://127.0.0.1:9/api/blobs")
    replies["CreateInference"] = pb.Inference(name="try", status=pb.SERVING_STATUS_RUNNING, endpoint=ENDPOINT)

    result = CliRunner().invoke(app, ["inference", "create", "try", "--model", "digits-model"])

    assert result.exit_code == 0, result.output
    assert f"http://127.0.0.1:9{ENDPOINT}   # the model's inputs" in result.output
    assert "5.1, 3.5" not in result.output  # no made-up example for a model it knows nothing of


def test_the_demos_digit_fills_the_models_input() -> None:
    pixels = [float(n) for n in range(64)]
    assert example_body(METADATA, pixels) == {
        "inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "FP64", "data": pixels}]}
    several = {"inputs": [{"name": "a", "datatype": "INT32", "shape": [2]},
                          {"name": "b", "datatype": "BYTES", "shape": [-1]}]}
    assert example_body(several) == {"inputs": [
        {"name": "a", "shape": [2], "datatype": "INT32", "data": [0, 0]},
        {"name": "b", "shape": [1], "datatype": "BYTES", "data": [""]}]}


def test_each_demo_replaces_the_test_inference_the_last_demo_left(replies: dict[str, Any],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def made(name: str, version: int, description: str = demo.MADE_BY) -> pb.Inference:
        return pb.Inference(name=name, description=description,
                            model=pb.ModelRef(model="digits-model", version=version))

    replies["ListInferences"] = pb.ListInferencesResponse(inferences=[
        made("digits-test-1a2b3c", 1), made("digits-test", 2), made("digits-test-mine", 1, "not the demo's")])
    replies["DeleteInference"] = pb.DeleteInferenceResponse()
    replies["CreateInference"] = lambda request: request.inference

    connection = context.Client(context.resolve_credentials())  # the canned one (conftest)
    test = demo.replace_test_inference(connection, pb.ModelRef(model="digits-model", version=3))
    said = capsys.readouterr().out

    calls = getattr(connection, "calls")  # noqa: B009 (the canned connection's record, not Client's)
    deleted = [request.name for method, request in calls if method == "DeleteInference"]
    assert deleted == ["digits-test-1a2b3c", "digits-test"]
    assert (test.name, test.model.version) == ("digits-test", 3)
    assert "Removed the previous demo's test inference digits-test-1a2b3c (digits-model@1)" in said
