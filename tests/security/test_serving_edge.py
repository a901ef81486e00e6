"""Attack on the serving edge: a data scientist, whom the API does not let see deployments, sends
requests to a production deployment through ``/serving/<name>/``. Refused; their own test
inference still answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.client import transfer
from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.local.harness import Stack, wait_for

REQUEST = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                                  "data": [[5.1, 3.5, 1.4, 0.2]]}]}).encode()


def _infer(stack: Stack, name: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(f"{stack.http_url}/serving/{name}/v2/models/guarded/infer", data=REQUEST,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _running(get: object) -> bool:
    return bool(getattr(get, "status", None) == pb.SERVING_STATUS_RUNNING)


@pytest.fixture(scope="module")
def served(stack: Stack, admin: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Model ``guarded`` version 1, published and deployed by the operator as ``guarded-live``; a data
    scientist's token."""
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="guarded", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    data = load_iris()
    folder: Path = tmp_path_factory.mktemp("guarded")
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
        name="serving-mallory", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    return made.token


def test_a_data_scientist_cannot_send_requests_to_a_deployment(stack: Stack, admin: Client,
                                                                served: str) -> None:
    assert _infer(stack, "guarded-live", stack.admin_token())[0] == 200  # it does answer

    status, body = _infer(stack, "guarded-live", served)

    assert status == 403, body
    assert "GetDeployment" in json.loads(body)["error"]


def test_a_data_scientists_own_test_inference_still_answers(stack: Stack, served: str) -> None:
    as_mallory = stack.client(served)
    as_mallory.call(as_mallory.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
        name="mallory-test", model=pb.ModelRef(model="guarded", version=2))))
    wait_for(lambda: _running(as_mallory.call(as_mallory.serving.GetInference,
                                              pb.GetInferenceRequest(name="mallory-test"))), 120,
             "the test inference to run")

    status, body = _infer(stack, "mallory-test", served)

    assert status == 200, body
    assert json.loads(body)["outputs"]
    as_mallory.close()
