"""Attack on the V2 gRPC inference edge (``inference.GRPCInferenceService`` on the gateway's gRPC port):
no token, a made-up token, and a data scientist, whom the API does not let see deployments, calling a
production deployment's model. Each is refused exactly as the REST path ``/serving/<name>/v2/…`` refuses
it (the same code and message); the data scientist's own test inference still answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.client import transfer
from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.inference import grpc_predict_v2_pb2 as v2
from shipyard.contracts.inference import grpc_predict_v2_pb2_grpc as v2_grpc
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.local.harness import Stack, wait_for

ROW = [5.1, 3.5, 1.4, 0.2]


def _running(get: object) -> bool:
    return bool(getattr(get, "status", None) == pb.SERVING_STATUS_RUNNING)


@pytest.fixture(scope="module")
def mallory(stack: Stack, admin: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Model ``guarded`` deployed by the operator as ``guarded-live``; a data scientist's token."""
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="guarded", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    data = load_iris()
    folder = tmp_path_factory.mktemp("guarded")
    joblib.dump(LogisticRegression(max_iter=500).fit(data.data, data.target), folder / "model.joblib")
    transfer.push(admin, repos_pb2.REPO_KIND_MODEL, "guarded", folder, transfer.scan_tree(folder))
    admin.call(admin.serving.PublishModel, pb.PublishModelRequest(entry=pb.CatalogEntry(
        name="guarded-v2", model=pb.ModelRef(model="guarded", version=2))))
    admin.call(admin.serving.CreateDeployment, pb.CreateDeploymentRequest(
        deployment=pb.Deployment(name="guarded-live", catalog_entry="guarded-v2")))
    wait_for(lambda: _running(admin.call(admin.serving.GetDeployment,
                                         pb.GetDeploymentRequest(name="guarded-live"))), 120,
             "the deployment to run")
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name="grpc-mallory", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    return made.token


@pytest.fixture(scope="module")
def stub(stack: Stack) -> Iterator[v2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(stack.grpc_address) as channel:
        yield v2_grpc.GRPCInferenceServiceStub(channel)


def _grpc(stub: v2_grpc.GRPCInferenceServiceStub, name: str,
          token: str | None) -> tuple[grpc.StatusCode, str]:
    request = v2.ModelInferRequest(model_name=name, inputs=[v2.ModelInferRequest.InferInputTensor(
        name="input-0", datatype="FP64", shape=[1, 4], contents=v2.InferTensorContents(fp64_contents=ROW))])
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
    try:
        stub.ModelInfer(request, metadata=metadata, timeout=30)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def _rest(stack: Stack, name: str, token: str | None) -> tuple[int, str]:
    body = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]})
    request = urllib.request.Request(f"{stack.http_url}/serving/{name}/v2/models/guarded/infer",
                                     data=body.encode(), headers={"Content-Type": "application/json"})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["error"]


def test_without_a_valid_token_no_model_answers(stack: Stack, mallory: str,
                                                stub: v2_grpc.GRPCInferenceServiceStub) -> None:
    assert _grpc(stub, "guarded-live", stack.admin_token())[0] == grpc.StatusCode.OK  # it does answer
    for token in (None, "syt_not-a-token"):
        code, message = _grpc(stub, "guarded-live", token)
        assert code == grpc.StatusCode.UNAUTHENTICATED, message
        assert _rest(stack, "guarded-live", token)[0] == 401
    for method, request in (("ServerLive", v2.ServerLiveRequest()),
                            ("ModelMetadata", v2.ModelMetadataRequest(name="guarded-live"))):
        with pytest.raises(grpc.RpcError) as refused:
            getattr(stub, method)(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, method


def test_a_data_scientist_cannot_call_a_deployments_model(stack: Stack, mallory: str,
                                                          stub: v2_grpc.GRPCInferenceServiceStub) -> None:
    code, message = _grpc(stub, "guarded-live", mallory)
    status, rest_message = _rest(stack, "guarded-live", mallory)
    assert (code, status) == (grpc.StatusCode.PERMISSION_DENIED, 403), message
    assert message == rest_message and "GetDeployment" in message
    with pytest.raises(grpc.RpcError) as refused:  # nor read its metadata or readiness
        stub.ModelMetadata(v2.ModelMetadataRequest(name="guarded-live"),
                           metadata=(("authorization", f"Bearer {mallory}"),), timeout=30)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_data_scientists_own_test_inference_still_answers(stack: Stack, mallory: str,
                                                            stub: v2_grpc.GRPCInferenceServiceStub) -> None:
    as_mallory = stack.client(mallory)
    try:
        as_mallory.call(as_mallory.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
            name="grpc-mallory-test", model=pb.ModelRef(model="guarded", version=2))))
        wait_for(lambda: _running(as_mallory.call(as_mallory.serving.GetInference,
                                                  pb.GetInferenceRequest(name="grpc-mallory-test"))), 120,
                 "the test inference to run")
    finally:
        as_mallory.close()
    reply = stub.ModelInfer(v2.ModelInferRequest(model_name="grpc-mallory-test", inputs=[
        v2.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP32", shape=[1, 4])],
        raw_input_contents=[np.array([ROW], dtype="<f4").tobytes()]),
        metadata=(("authorization", f"Bearer {mallory}"),), timeout=30)
    assert np.frombuffer(reply.raw_output_contents[0], dtype="<i8").tolist() == [0]
