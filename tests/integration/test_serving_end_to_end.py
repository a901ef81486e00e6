"""Test inferences through the whole stack: a scikit-learn model version served by serving-svc's
model servers, called through the gateway with the Open Inference Protocol (KServe V2); bad
requests, an unloadable model, a killed model server, deletion."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
from conftest import cli
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.local.harness import Stack, wait_for

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]  # a setosa and a virginica


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("stack") / "data", env={"SHIPYARD_PATH_IMPORT_ROOTS": ""}).start()
    try:
        yield running
    finally:
        running.stop()


def _push_model(admin: Client, name: str, files: dict[str, bytes], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        (root / path).write_bytes(data)
    transfer.push(admin, repos_pb2.REPO_KIND_MODEL, name, root, transfer.scan_tree(root))


@pytest.fixture(scope="module")
def iris(admin: Client, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Model iris: version 2 a fitted LogisticRegression (joblib); version 3 a broken file."""
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="iris", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    data = load_iris()
    fitted = LogisticRegression(max_iter=500).fit(data.data, data.target)
    model_dir = tmp_path_factory.mktemp("iris-2")
    joblib.dump(fitted, model_dir / "model.joblib")
    transfer.push(admin, repos_pb2.REPO_KIND_MODEL, "iris", model_dir, transfer.scan_tree(model_dir))
    _push_model(admin, "iris", {"model.joblib": b"this is not a pickle"}, tmp_path_factory.mktemp("iris-3"))


def _infer(stack: Stack, name: str, body: bytes, token: str | None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{stack.http_url}/serving/{name}/v2/models/iris/infer", data=body,
                                     headers={"Content-Type": "application/json"})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _rows(rows: list[list[float]]) -> bytes:
    return json.dumps({"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP32",
                                   "data": rows}]}).encode()


def _get(admin: Client, name: str) -> pb.Inference:
    return admin.call(admin.serving.GetInference, pb.GetInferenceRequest(name=name))


@pytest.mark.usefixtures("iris")
def test_a_test_inference_answers_v2_requests_through_the_gateway(stack: Stack, home: Path) -> None:
    out = cli(stack, home, "inference", "create", "iris-test", "--model", "iris@2",
              "--max-concurrency", "8").stdout
    assert "Running" in out and "/serving/iris-test/v2/models/iris" in out and "curl" in out
    status, reply = _infer(stack, "iris-test", _rows(ROWS), stack.admin_token())
    assert status == 200, reply
    (output,) = reply["outputs"]
    assert (output["shape"], output["data"]) == ([2], [0, 2])
    assert reply["model_name"] == "iris"
    listed = cli(stack, home, "inference", "list").stdout
    assert "iris-test" in listed and "running" in listed


@pytest.mark.usefixtures("iris")
def test_bad_requests_get_v2_errors(stack: Stack, admin: Client) -> None:
    admin.call(admin.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
        name="iris-errors", model=pb.ModelRef(model="iris", version=2))))
    wait_for(lambda: _get(admin, "iris-errors").status == pb.SERVING_STATUS_RUNNING, 60, "iris-errors to run")
    status, reply = _infer(stack, "iris-errors", _rows(ROWS), None)
    assert status == 401 and "Bearer" in reply["error"]
    wrong_shape = json.dumps({"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
                                          "data": [1.0, 2.0, 3.0]}]}).encode()
    status, reply = _infer(stack, "iris-errors", wrong_shape, stack.admin_token())
    assert status == 400 and "input-0" in reply["error"] and "8" in reply["error"]
    wrong_type = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP33",
                                         "data": [1, 2, 3, 4]}]}).encode()
    status, reply = _infer(stack, "iris-errors", wrong_type, stack.admin_token())
    assert status == 400 and "FP33" in reply["error"]
    status, reply = _infer(stack, "iris-errors", b"x" * (17 * 1024 * 1024), stack.admin_token())
    assert status == 413
    status, reply = _infer(stack, "no-such-inference", _rows(ROWS), stack.admin_token())
    assert status == 404 and "no-such-inference" in reply["error"]


@pytest.mark.usefixtures("iris")
def test_a_model_that_cannot_load_fails_with_the_loaders_error(stack: Stack, home: Path,
                                                               admin: Client) -> None:
    failed = cli(stack, home, "inference", "create", "iris-broken", "--model", "iris@3", check=False)
    assert failed.returncode == 1 and "failed" in failed.stderr
    found = _get(admin, "iris-broken")
    assert found.status == pb.SERVING_STATUS_FAILED and "could not start" in found.status_reason


def _pid_listening_on(port: int) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"shipyard_serving.model_server" in argv and b"--port" in argv \
                and argv[argv.index(b"--port") + 1] == str(port).encode():
            return int(entry.name)
    raise AssertionError(f"no model server on port {port}")


@pytest.mark.usefixtures("iris")
def test_a_killed_model_server_is_restarted_and_the_endpoint_recovers(stack: Stack, admin: Client) -> None:
    admin.call(admin.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
        name="iris-kill", model=pb.ModelRef(model="iris", version=2))))
    wait_for(lambda: _get(admin, "iris-kill").status == pb.SERVING_STATUS_RUNNING, 60, "iris-kill to run")
    (replica,) = _get(admin, "iris-kill").replicas
    os.kill(_pid_listening_on(int(replica.address.rsplit(":", 1)[1])), signal.SIGKILL)

    def recovered() -> bool:
        found = _get(admin, "iris-kill")
        return found.status == pb.SERVING_STATUS_RUNNING and found.replicas[0].restarts == 1
    wait_for(recovered, 60, "the model server to be restarted")
    assert _get(admin, "iris-kill").replicas[0].last_exit == "killed by signal 9"
    wait_for(lambda: _infer(stack, "iris-kill", _rows(ROWS), stack.admin_token())[0] == 200, 30,
             "the endpoint to answer again")


@pytest.mark.usefixtures("iris")
def test_bad_input_creates_nothing_and_delete_stops_serving(stack: Stack, home: Path, admin: Client) -> None:
    bad = cli(stack, home, "inference", "create", "iris-bad", "--model", "iris@2", "--min-replicas", "0",
              "--max-replicas", "1", "--framework", "tensorflow", check=False)
    assert bad.returncode == 1 and "spec.framework" in bad.stderr
    with pytest.raises(ClientError) as caught:
        admin.call(admin.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
            name="iris-none", model=pb.ModelRef(model="iris", version=99))))
    assert caught.value.code == "NOT_FOUND" and "version 99" in caught.value.message
    names = [i.name for i in admin.call(admin.serving.ListInferences, pb.ListInferencesRequest()).inferences]
    assert "iris-bad" not in names and "iris-none" not in names
    cli(stack, home, "inference", "delete", "iris-test", "--yes")
    status, reply = _infer(stack, "iris-test", _rows(ROWS), stack.admin_token())
    assert status == 404 and "iris-test" in reply["error"]
