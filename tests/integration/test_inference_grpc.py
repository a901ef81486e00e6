"""The V2 inference protocol over gRPC through the whole stack: a scikit-learn model version served as a
test inference, called on the gateway's gRPC port with a plain stub generated from
proto/inference/grpc_predict_v2.proto (typed contents and raw bytes) and with tritonclient.grpc, a stock
client, each answering as the REST path does; an unknown model, a bad tensor and the model server's own
refusal come back as gRPC statuses."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.client import transfer
from shipyard.client.connection import Client
from shipyard.contracts.inference import grpc_predict_v2_pb2 as v2
from shipyard.contracts.inference import grpc_predict_v2_pb2_grpc as v2_grpc
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.local.harness import Stack, wait_for

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]  # a setosa and a virginica
NAME = "iris-grpc"


@pytest.fixture(scope="module")
def served(stack: Stack, admin: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Model ``iris`` version 2 (its first pushed) served as the test inference ``iris-grpc``; its name."""
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="iris", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    data = load_iris()
    folder = tmp_path_factory.mktemp("iris")
    joblib.dump(LogisticRegression(max_iter=500).fit(data.data, data.target), folder / "model.joblib")
    transfer.push(admin, repos_pb2.REPO_KIND_MODEL, "iris", folder, transfer.scan_tree(folder))
    admin.call(admin.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
        name=NAME, model=pb.ModelRef(model="iris", version=2))))

    def running() -> bool:
        found = admin.call(admin.serving.GetInference, pb.GetInferenceRequest(name=NAME))
        assert found.status not in (pb.SERVING_STATUS_FAILED, pb.SERVING_STATUS_ERROR), found.status_reason
        return found.status == pb.SERVING_STATUS_RUNNING

    wait_for(running, 120, "the test inference to run")
    return NAME


@pytest.fixture(scope="module")
def stub(stack: Stack) -> Iterator[v2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(stack.grpc_address) as channel:
        yield v2_grpc.GRPCInferenceServiceStub(channel)


def _auth(stack: Stack) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {stack.admin_token()}"),)


def _rest_output(stack: Stack, name: str) -> dict[str, Any]:
    """The one output of the REST path's answer to ROWS."""
    body = json.dumps({"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": ROWS}]})
    request = urllib.request.Request(f"{stack.http_url}/serving/{name}/v2/models/iris/infer",
                                     data=body.encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {stack.admin_token()}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        [output] = json.loads(reply.read())["outputs"]
    return dict(output)


def test_the_server_and_the_model_answer_the_v2_grpc_methods(
        stack: Stack, served: str, stub: v2_grpc.GRPCInferenceServiceStub) -> None:
    auth = _auth(stack)
    assert stub.ServerLive(v2.ServerLiveRequest(), metadata=auth).live
    assert stub.ServerReady(v2.ServerReadyRequest(), metadata=auth).ready
    assert stub.ServerMetadata(v2.ServerMetadataRequest(), metadata=auth).name == "shipyard"
    assert stub.ModelReady(v2.ModelReadyRequest(name=served), metadata=auth).ready
    metadata = stub.ModelMetadata(v2.ModelMetadataRequest(name=served), metadata=auth)
    assert metadata.name == served
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("input-0", "FP64", [-1, 4])]


def test_model_infer_answers_as_the_rest_path_does(
        stack: Stack, served: str, stub: v2_grpc.GRPCInferenceServiceStub) -> None:
    rest_output = _rest_output(stack, served)
    assert rest_output["data"] == [0, 2]
    typed = stub.ModelInfer(v2.ModelInferRequest(model_name=served, id="typed", inputs=[
        v2.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP64", shape=[2, 4],
                                              contents=v2.InferTensorContents(fp64_contents=np.ravel(ROWS)))]),
        metadata=_auth(stack))
    [output] = typed.outputs
    assert (typed.model_name, typed.id) == (served, "typed")
    assert (output.name, output.datatype, list(output.shape)) == (
        rest_output["name"], rest_output["datatype"], rest_output["shape"])
    assert list(output.contents.int64_contents) == rest_output["data"]

    raw = stub.ModelInfer(v2.ModelInferRequest(
        model_name=served, inputs=[v2.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP32",
                                                                         shape=[2, 4])],
        raw_input_contents=[np.array(ROWS, dtype="<f4").tobytes()]), metadata=_auth(stack))
    assert np.frombuffer(raw.raw_output_contents[0], dtype="<i8").tolist() == rest_output["data"]


def test_refusals_are_grpc_statuses_naming_what_is_wrong(
        stack: Stack, served: str, stub: v2_grpc.GRPCInferenceServiceStub) -> None:
    def refused(request: v2.ModelInferRequest) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request, metadata=_auth(stack))
        return caught.value

    def rows(name: str, raw: bytes) -> v2.ModelInferRequest:
        return v2.ModelInferRequest(model_name=name, raw_input_contents=[raw], inputs=[
            v2.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP32", shape=[2, 4])])

    unknown = refused(rows("no-such-model", np.zeros(8, dtype="<f4").tobytes()))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND, unknown.details()
    short = refused(rows(served, np.zeros(7, dtype="<f4").tobytes()))
    assert short.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input 'input-0'" in (short.details() or "") and "28 bytes" in (short.details() or "")
    other = refused(v2.ModelInferRequest(model_name=served, inputs=[v2.ModelInferRequest.InferInputTensor(
        name="petals", datatype="FP64", shape=[1], contents=v2.InferTensorContents(fp64_contents=[1.0]))]))
    assert other.code() == grpc.StatusCode.INVALID_ARGUMENT  # the model server's own 400, its message
    assert "petals" in (other.details() or "")


TRITON = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tritonclient.grpc as triton

    address, token, name = sys.argv[1:]
    client = triton.InferenceServerClient(url=address)
    rows = triton.InferInput("input-0", [2, 4], "FP64")
    rows.set_data_from_numpy(np.array(%r, dtype=np.float64))
    result = client.infer(name, [rows], headers={"authorization": f"Bearer {token}"})
    print(json.dumps({o.name: result.as_numpy(o.name).tolist() for o in result.get_response().outputs}))
""") % (ROWS,)


def test_tritonclient_calls_it_unchanged(stack: Stack, served: str) -> None:
    """A stock client, in a process of its own: its proto defines the same messages as ours, and protobuf
    keeps one definition of each name per process."""
    if importlib.util.find_spec("tritonclient") is None:  # not imported here: see above
        pytest.skip("tritonclient is not installed")
    done = subprocess.run([sys.executable, "-c", TRITON, stack.grpc_address, stack.admin_token(), served],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rest_output = _rest_output(stack, served)
    assert json.loads(done.stdout) == {rest_output["name"]: rest_output["data"]}
