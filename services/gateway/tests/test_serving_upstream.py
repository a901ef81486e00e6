"""The serving proxy's path and answers for model servers that name the model otherwise (KServe's own
runtimes answer at the InferenceService's name): what the caller sends and reads names the model."""

from __future__ import annotations

import json

from shipyard_gateway.entrypoints.serving_http import renamed_answer, upstream_tail

from shipyard.contracts.serving.v1 import serving_pb2 as pb

KSERVE = pb.Routes(name="sk-k8s", model="iris", upstream_model="sk-k8s", base_url="http://sk.ml.example")


def test_the_models_segment_is_put_in_the_upstreams_name() -> None:
    assert upstream_tail("v2/models/iris/infer", KSERVE) == "v2/models/sk-k8s/infer"
    assert upstream_tail("v2/models/iris", KSERVE) == "v2/models/sk-k8s"  # the model's metadata
    assert upstream_tail("v2/models/iris/versions/3/infer", KSERVE) == "v2/models/sk-k8s/versions/3/infer"
    assert upstream_tail("v2/models/iris2/infer", KSERVE) == "v2/models/iris2/infer"  # another model
    assert upstream_tail("v2/health/ready", KSERVE) == "v2/health/ready"


def test_routes_without_an_upstream_name_pass_the_path_as_it_came() -> None:
    here = pb.Routes(name="t", model="iris", addresses=["127.0.0.1:9000"])
    assert upstream_tail("v2/models/iris/infer", here) == "v2/models/iris/infer"


def test_the_answers_name_the_model_as_the_caller_did() -> None:
    metadata = json.dumps({"name": "sk-k8s", "versions": ["1"], "platform": "sklearn"}).encode()
    assert json.loads(renamed_answer(metadata, "application/json", KSERVE))["name"] == "iris"
    answer = json.dumps({"model_name": "sk-k8s", "outputs": [{"name": "output-0", "data": [0]}]}).encode()
    assert json.loads(renamed_answer(answer, "application/json", KSERVE)) == {
        "model_name": "iris", "outputs": [{"name": "output-0", "data": [0]}]}
    error = json.dumps({"error": "boom"}).encode()
    assert renamed_answer(error, "application/json", KSERVE) == error
    assert renamed_answer(b"not json", "application/json", KSERVE) == b"not json"
    assert renamed_answer(b"\x00binary", "application/octet-stream", KSERVE) == b"\x00binary"
