"""Attack: bubblewrap goes away while a data scientist's test inference exists, and Shipyard restarts
(SHIPYARD_FAILPOINTS=serving.sandbox=unavailable acts as a machine without it). Her model server is
not started again unsandboxed, which would run her model's code as the platform: the inference is
``error``, its reason naming bubblewrap, and no server runs for it. Once Shipyard starts with bubblewrap
again, it serves again.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from shipyard.client import transfer
from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.local.harness import Stack, wait_for

PLAIN = {"SHIPYARD_PATH_IMPORT_ROOTS": ""}
UNAVAILABLE = {**PLAIN, "SHIPYARD_FAILPOINTS": "serving.sandbox=unavailable"}
REQUEST = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}).encode()
ECHO = '''import numpy as np


class Echo:
    def load(self, model_dir):
        pass

    def predict(self, inputs, parameters):
        return np.asarray([1.0])
'''


def _infer(stack: Stack, token: str) -> int:
    request = urllib.request.Request(f"{stack.http_url}/serving/eve-test/v2/models/echo/infer", data=REQUEST,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _inference(client: Client) -> pb.Inference:
    return client.call(client.serving.GetInference, pb.GetInferenceRequest(name="eve-test"))


def _serves_eves_model(stack: Stack, folder: Path) -> str:
    """Eve (a data scientist) with her test inference eve-test running; her token."""
    admin = stack.client()
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(
        user=gateway_pb2.User(name="eve", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    eve = stack.client(made.token)
    eve.call(eve.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="echo", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    folder.mkdir(parents=True)
    (folder / "echo.py").write_text(ECHO)
    transfer.push(eve, repos_pb2.REPO_KIND_MODEL, "echo", folder, transfer.scan_tree(folder))
    eve.call(eve.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
        name="eve-test", model=pb.ModelRef(model="echo"),
        spec=pb.ServingSpec(framework="custom", predictor="echo:Echo"))))
    wait_for(lambda: _inference(eve).status == pb.SERVING_STATUS_RUNNING, 120, "her inference to run")
    return made.token


def test_an_inference_is_never_served_unsandboxed_after_bubblewrap_went_away(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Stack(data, env=PLAIN) as stack:
        token = _serves_eves_model(stack, tmp_path / "echo")
        assert _infer(stack, token) == 200

    with Stack(data, env=UNAVAILABLE) as stack:
        eve = stack.client(token)
        held = wait_for(lambda: (i := _inference(eve)).status == pb.SERVING_STATUS_ERROR and i, 60,
                        "her inference to be held in error")
        assert "not started again" in held.status_reason and "bubblewrap" in held.status_reason
        assert list(held.replicas) == []
        assert _infer(stack, token) != 200

    with Stack(data, env=PLAIN) as stack:
        eve = stack.client(token)
        wait_for(lambda: _inference(eve).status == pb.SERVING_STATUS_RUNNING, 120,
                 "her inference to run again")
        assert _infer(stack, token) == 200
