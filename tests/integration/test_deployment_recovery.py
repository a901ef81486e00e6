"""A deployment left failed by a swap whose model could not load goes on serving its previous version
across a serving-svc restart: recovery starts that version's model servers again (never the version that
failed), and the gateway routes to them."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.client import transfer
from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.local.harness import Stack, wait_for

NAME = "recovering"
ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def iris(admin: Client, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Model iris: version 2 a fitted LogisticRegression, version 3 a file that is not a model; both in
    the catalog (iris-v2, iris-v3)."""
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="iris", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    data = load_iris()
    good = tmp_path_factory.mktemp("iris-2")
    joblib.dump(LogisticRegression(max_iter=500).fit(data.data, data.target), good / "model.joblib")
    transfer.push(admin, repos_pb2.REPO_KIND_MODEL, "iris", good, transfer.scan_tree(good))
    broken = tmp_path_factory.mktemp("iris-3")
    (broken / "model.joblib").write_bytes(b"this is not a pickle")
    transfer.push(admin, repos_pb2.REPO_KIND_MODEL, "iris", broken, transfer.scan_tree(broken))
    for version in (2, 3):
        admin.call(admin.serving.PublishModel, pb.PublishModelRequest(entry=pb.CatalogEntry(
            name=f"iris-v{version}", model=pb.ModelRef(model="iris", version=version))))


def _infer(stack: Stack) -> int:
    body = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [ROW]}]})
    request = urllib.request.Request(f"{stack.http_url}/serving/{NAME}/v2/models/iris/infer",
                                     data=body.encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {stack.admin_token()}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _get(admin: Client) -> pb.Deployment:
    return admin.call(admin.serving.GetDeployment, pb.GetDeploymentRequest(name=NAME))


@pytest.mark.usefixtures("iris")
def test_a_failed_swap_still_serves_the_previous_version_after_a_serving_svc_restart(
        stack: Stack, admin: Client) -> None:
    admin.call(admin.serving.CreateDeployment, pb.CreateDeploymentRequest(
        deployment=pb.Deployment(name=NAME, catalog_entry="iris-v2")))
    wait_for(lambda: _get(admin).status == pb.SERVING_STATUS_RUNNING, 120, "the deployment to run")
    admin.call(admin.serving.UpdateDeployment, pb.UpdateDeploymentRequest(name=NAME, catalog_entry="iris-v3"))
    failed = wait_for(lambda: (d := _get(admin)).status == pb.SERVING_STATUS_FAILED and d, 120,
                      "the swap to fail")
    assert failed.model.version == 2 and "iris@2 still serves" in failed.status_reason
    assert _infer(stack) == 200

    stack.wait_restarted("serving-svc", stack.kill("serving-svc", signal.SIGKILL))

    wait_for(lambda: _infer(stack) == 200, 90, "the previous version to answer again after the restart")
    after = _get(admin)
    assert (after.status, after.model.version, after.catalog_entry) == (
        pb.SERVING_STATUS_FAILED, 2, "iris-v2")
