"""Attack: a data scientist's model acts as the platform. Her custom predictor — code shipped in
the model version's files, run by the model server of her test inference — reads the admin
token, the internal key and the NATS passwords from the data directory, serving-svc's and the
gateway's environments under /proc, signals the gateway, writes its own model file (a hard link
to a shared blob), and reports what it got in the inference's answer. Every attempt fails: the
model server runs in a sandbox of its own, as an unprivileged user. The inference still answers.

Where model servers cannot be isolated (SHIPYARD_FAILPOINTS=serving.sandbox=unavailable acts as a
machine without bubblewrap), a data scientist's inference is refused, naming why; an operator's
starts and answers; in single-user mode (SHIPYARD_SINGLE_USER=true) anyone's does.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.local.harness import Stack, wait_for

ATTEMPTS = ("read admin-token", "read internal.key", "read nats-passwords.json",
            "read serving-svc environ", "read gateway environ", "signal the gateway", "write its model file",
            "settings in its environment")
UNAVAILABLE = {"SHIPYARD_FAILPOINTS": "serving.sandbox=unavailable", "SHIPYARD_PATH_IMPORT_ROOTS": ""}
REQUEST = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}).encode()

EVIL = '''import os

import numpy as np


def _tried(attempt):
    try:
        return 1.0 if attempt() else 0.0
    except Exception:
        return 0.0


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _kill(pid):
    os.kill(pid, 0)
    return True


def _write(path):
    os.chmod(path, 0o644)
    with open(path, "a") as f:
        f.write("# owned")
    return True


class Evil:
    def load(self, model_dir):
        self.model_file = os.path.join(model_dir, "evil.py")

    def predict(self, inputs, parameters):
        return np.asarray([_tried(attempt) for attempt in (
            lambda: _read("{data}/admin-token"),
            lambda: _read("{data}/internal.key"),
            lambda: _read("{data}/nats-passwords.json"),
            lambda: b"SHIPYARD" in _read("/proc/{serving}/environ"),
            lambda: b"SHIPYARD" in _read("/proc/{gateway}/environ"),
            lambda: _kill({gateway}),
            lambda: _write(self.model_file),
            lambda: any(name.startswith("SHIPYARD_") for name in os.environ),
        )])
'''


def _infer(stack: Stack, name: str, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"{stack.http_url}/serving/{name}/v2/models/evil/infer", data=REQUEST,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _scientist(stack: Stack, admin: Client, name: str) -> tuple[Client, str]:
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(
        user=gateway_pb2.User(name=name, roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    return stack.client(made.token), made.token


def _push_evil(stack: Stack, client: Client, folder: Path) -> None:
    client.call(client.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="evil", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    folder.mkdir(parents=True, exist_ok=True)
    source = EVIL.replace("{data}", str(stack.data_dir.resolve()))
    for name, service in (("{serving}", "serving-svc"), ("{gateway}", "gateway")):
        source = source.replace(name, str(stack.pid(service)))
    (folder / "evil.py").write_text(source)
    transfer.push(client, repos_pb2.REPO_KIND_MODEL, "evil", folder, transfer.scan_tree(folder))


def _create(client: Client, name: str) -> None:
    client.call(client.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
        name=name, model=pb.ModelRef(model="evil", version=2),
        spec=pb.ServingSpec(framework="custom", predictor="evil:Evil"))))


def _running(client: Client, name: str) -> bool:
    found = client.call(client.serving.GetInference, pb.GetInferenceRequest(name=name))
    assert found.status != pb.SERVING_STATUS_FAILED, found.status_reason
    return found.status == pb.SERVING_STATUS_RUNNING


def test_a_custom_predictor_cannot_reach_the_platforms_secrets_processes_or_blobs(
        stack: Stack, admin: Client, tmp_path: Path) -> None:
    eve, token = _scientist(stack, admin, "serving-eve")
    _push_evil(stack, eve, tmp_path / "evil")
    _create(eve, "evil-test")
    wait_for(lambda: _running(eve, "evil-test"), 120, "the test inference to run")

    status, reply = _infer(stack, "evil-test", token)

    assert status == 200, reply  # the inference itself answers
    outputs = reply["outputs"]
    assert isinstance(outputs, list)
    got = dict(zip(ATTEMPTS, outputs[0]["data"], strict=True))
    assert got == dict.fromkeys(ATTEMPTS, 0.0), f"attacks that succeeded: {[a for a, v in got.items() if v]}"
    eve.close()


def test_without_isolation_only_an_operators_inference_starts(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data", env=UNAVAILABLE).start()
    try:
        admin = stack.client()
        _push_evil(stack, admin, tmp_path / "evil")
        eve, _ = _scientist(stack, admin, "serving-eve")
        with pytest.raises(ClientError) as refused:
            _create(eve, "eve-test")
        assert refused.value.code == "FAILED_PRECONDITION"
        assert "cannot be isolated" in refused.value.message
        assert "SHIPYARD_SINGLE_USER" in refused.value.message
        _create(admin, "operators-test")
        wait_for(lambda: _running(admin, "operators-test"), 120, "the operator's inference to run")
        assert _infer(stack, "operators-test", stack.admin_token())[0] == 200
    finally:
        stack.stop()


def test_in_single_user_mode_anyones_inference_starts_without_isolation(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data", env={**UNAVAILABLE, "SHIPYARD_SINGLE_USER": "true"}).start()
    try:
        eve, token = _scientist(stack, stack.client(), "serving-eve")
        _push_evil(stack, eve, tmp_path / "evil")
        _create(eve, "eve-test")
        wait_for(lambda: _running(eve, "eve-test"), 120, "her inference to run")
        assert _infer(stack, "eve-test", token)[0] == 200
    finally:
        stack.stop()
