"""Test inferences through the whole stack: a scikit-learn model version served by serving-svc's
model servers, called through the gateway with the Open Inference Protocol (KServe V2); bad
requests, an unloadable model, a killed model server, deletion, replicas scaled by load, binary
tensors."""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
import yaml
from conftest import cli
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.local.harness import Stack, wait_for

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]  # a setosa and a virginica


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"SHIPYARD_PATH_IMPORT_ROOTS": "", "SHIPYARD_SERVING_SCALE_DOWN_DELAY_S": "3"}
    running = Stack(tmp_path_factory.mktemp("stack") / "data", env=env).start()
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
    """Model iris: versions 2 and 4 fitted LogisticRegressions (joblib); version 3 a broken file."""
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="iris", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    data = load_iris()
    fitted = LogisticRegression(max_iter=500).fit(data.data, data.target)
    model_dir = tmp_path_factory.mktemp("iris-2")
    joblib.dump(fitted, model_dir / "model.joblib")
    transfer.push(admin, repos_pb2.REPO_KIND_MODEL, "iris", model_dir, transfer.scan_tree(model_dir))
    _push_model(admin, "iris", {"model.joblib": b"this is not a pickle"}, tmp_path_factory.mktemp("iris-3"))
    other = tmp_path_factory.mktemp("iris-4")
    joblib.dump(LogisticRegression(max_iter=500, C=0.5).fit(data.data, data.target), other / "model.joblib")
    transfer.push(admin, repos_pb2.REPO_KIND_MODEL, "iris", other, transfer.scan_tree(other))


def _infer(stack: Stack, name: str, body: bytes, token: str | None,
           model: str = "iris") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{stack.http_url}/serving/{name}/v2/models/{model}/infer", data=body,
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
    """The model server's own process (in its sandbox: not the bwrap processes around it, whose
    command lines hold the server's)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]).startswith(b"python") and b"shipyard_model_server" in argv \
                and b"--port" in argv and argv[argv.index(b"--port") + 1] == str(port).encode():
            return int(entry.name)
    raise AssertionError(f"no model server on port {port}")


def _in_a_pid_namespace_of_its_own(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    return len(next(line for line in status.splitlines() if line.startswith("NSpid:")).split()) > 2


@pytest.mark.usefixtures("iris")
def test_a_killed_model_server_is_restarted_and_the_endpoint_recovers(stack: Stack, admin: Client) -> None:
    admin.call(admin.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
        name="iris-kill", model=pb.ModelRef(model="iris", version=2))))
    wait_for(lambda: _get(admin, "iris-kill").status == pb.SERVING_STATUS_RUNNING, 60, "iris-kill to run")
    (replica,) = _get(admin, "iris-kill").replicas
    server = _pid_listening_on(int(replica.address.rsplit(":", 1)[1]))
    assert _in_a_pid_namespace_of_its_own(server)  # sandboxed where bwrap is installed (as for the tests)
    os.kill(server, signal.SIGKILL)

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


class Load:
    """Requests sent one after another from a few threads until stopped; every answer counted."""

    def __init__(self, stack: Stack, name: str, threads: int = 3) -> None:
        self._stack, self._name = stack, name
        self._stop = threading.Event()
        self.answers: list[tuple[int, str]] = []  # (HTTP status, model version)
        self._threads = [threading.Thread(target=self._send, daemon=True) for _ in range(threads)]

    def _send(self) -> None:
        while not self._stop.is_set():
            status, reply = _infer(self._stack, self._name, _rows(ROWS), self._stack.admin_token())
            self.answers.append((status, str(reply.get("model_version", reply.get("error", "")))))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def served(self, version: str) -> int:
        return sum(1 for status, got in self.answers if status == 200 and got == version)


@pytest.mark.usefixtures("iris")
def test_publish_deploy_and_swap_the_model_without_a_failed_request(stack: Stack, home: Path,
                                                                     admin: Client) -> None:
    for version in (2, 3, 4):
        cli(stack, home, "model", "publish", f"iris@{version}", "--name", f"iris-v{version}",
            "--max-concurrency", "16")
    assert "iris-v4" in cli(stack, home, "catalog", "list").stdout
    deployed = cli(stack, home, "deploy", "iris-live", "--from-catalog", "iris-v2").stdout
    assert "Running" in deployed and "/serving/iris-live/v2/models/iris" in deployed
    with Load(stack, "iris-live") as load:
        wait_for(lambda: load.served("2") >= 20, 60, "requests to the first version")
        swapped = cli(stack, home, "deployment", "edit", "iris-live", "--model", "iris@4").stdout
        assert "Running" in swapped and "iris@4" in swapped
        wait_for(lambda: load.served("4") >= 20, 60, "requests to the new version")
    failed = [a for a in load.answers if a[0] != 200]
    assert failed == [], f"{len(failed)} of {len(load.answers)} requests failed in the swap: {failed[:5]}"
    found = admin.call(admin.serving.GetDeployment, pb.GetDeploymentRequest(name="iris-live"))
    assert (found.model.version, found.previous_model.version, found.catalog_entry) == (4, 2, "iris-v4")


@pytest.mark.usefixtures("iris")
def test_a_swap_to_a_model_that_cannot_load_leaves_the_previous_one_serving(
        stack: Stack, home: Path, admin: Client) -> None:
    with Load(stack, "iris-live", threads=2) as load:
        bad = cli(stack, home, "deployment", "edit", "iris-live", "--from-catalog", "iris-v3", check=False)
        assert bad.returncode == 1 and "failed" in bad.stderr
        wait_for(lambda: load.served("4") >= 10, 30, "requests still answered by the previous version")
    assert [a for a in load.answers if a[0] != 200] == []
    found = admin.call(admin.serving.GetDeployment, pb.GetDeploymentRequest(name="iris-live"))
    assert found.status == pb.SERVING_STATUS_FAILED and found.model.version == 4
    assert "iris@3 could not be served" in found.status_reason
    assert "iris@4 still serves" in found.status_reason


def test_roles_guard_the_catalog_and_deployments(stack: Stack, admin: Client) -> None:
    dana = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name="serving-dana", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    as_dana = stack.client(dana.token)
    for call in (lambda: as_dana.call(as_dana.serving.ListCatalog, pb.ListCatalogRequest()),
                 lambda: as_dana.call(as_dana.serving.PublishModel, pb.PublishModelRequest(
                     entry=pb.CatalogEntry(name="x", model=pb.ModelRef(model="iris", version=2)))),
                 lambda: as_dana.call(as_dana.serving.CreateDeployment, pb.CreateDeploymentRequest(
                     deployment=pb.Deployment(name="x", catalog_entry="iris-v2")))):
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.code == "PERMISSION_DENIED"


@pytest.mark.usefixtures("iris")
def test_a_deployment_is_downstream_of_its_model_version_in_lineage(stack: Stack, admin: Client) -> None:
    def deployed() -> bool:
        graph = admin.call(admin.lineage.GetLineage, lineage_pb2.GetLineageRequest(
            kind="model", name="iris@4", direction=lineage_pb2.DIRECTION_DOWNSTREAM))
        return "iris-live" in {n.label for n in graph.nodes}
    wait_for(deployed, 30, "lineage-svc to show iris-live downstream of iris@4")


@pytest.mark.usefixtures("iris")
def test_the_kubernetes_form_of_a_deployment(stack: Stack, home: Path) -> None:
    text = cli(stack, home, "deployment", "manifest", "iris-live", "--namespace", "ml").stdout
    (document,) = list(yaml.safe_load_all(text))
    assert (document["apiVersion"], document["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert (document["metadata"]["name"], document["metadata"]["namespace"]) == ("iris-live", "ml")
    assert document["metadata"]["labels"]["shipyard.io/model-version"] == "4"


def _pid_of_replica(address: str) -> int:
    return _pid_listening_on(int(address.rsplit(":", 1)[1]))


def _deployment(admin: Client, name: str) -> pb.Deployment:
    return admin.call(admin.serving.GetDeployment, pb.GetDeploymentRequest(name=name))


@pytest.mark.usefixtures("iris")
def test_a_killed_model_server_of_a_deployment_is_restarted_and_it_answers_again(
        stack: Stack, home: Path, admin: Client) -> None:
    cli(stack, home, "model", "publish", "iris@2", "--name", "iris-kill-v2")
    cli(stack, home, "deploy", "iris-kill-live", "--from-catalog", "iris-kill-v2")
    (replica,) = _deployment(admin, "iris-kill-live").replicas
    os.kill(_pid_of_replica(replica.address), signal.SIGKILL)

    def recovered() -> bool:
        found = _deployment(admin, "iris-kill-live")
        return found.status == pb.SERVING_STATUS_RUNNING and [r.restarts for r in found.replicas] == [1]
    wait_for(recovered, 60, "the deployment's model server to be restarted")
    (replica,) = _deployment(admin, "iris-kill-live").replicas
    assert replica.last_exit == "killed by signal 9" and replica.ready
    wait_for(lambda: _infer(stack, "iris-kill-live", _rows(ROWS), stack.admin_token())[0] == 200, 30,
             "the deployment to answer again")
    shown = cli(stack, home, "deployment", "get", "iris-kill-live").stdout
    assert "killed by signal 9" in shown


SLOW_MODEL = b'''import time

import numpy as np


class Slow:
    """Takes 50 ms a request, so that requests pile up."""

    def predict(self, inputs, parameters):
        time.sleep(0.05)
        return np.asarray([1.0])
'''


def _post_until_stopped(stack: Stack, stop: threading.Event, statuses: list[int]) -> None:
    body = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}).encode()
    while not stop.is_set():
        status, _ = _infer(stack, "slow-test", body, stack.admin_token(), model="slow")
        statuses.append(status)
        if status == 429:
            stop.wait(0.05)  # as Retry-After asks, but sooner: the test wants pressure


def test_replicas_scale_up_under_load_and_back_to_the_minimum_when_idle(
        stack: Stack, admin: Client, tmp_path: Path) -> None:
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="slow", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    _push_model(admin, "slow", {"slow.py": SLOW_MODEL}, tmp_path / "slow")
    admin.call(admin.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
        name="slow-test", model=pb.ModelRef(model="slow", version=2),
        spec=pb.ServingSpec(framework="custom", predictor="slow:Slow", min_replicas=1, max_replicas=3,
                            max_concurrency=2))))
    wait_for(lambda: _get(admin, "slow-test").status == pb.SERVING_STATUS_RUNNING, 60, "slow-test to run")
    assert len(_get(admin, "slow-test").replicas) == 1
    stop, statuses = threading.Event(), []
    senders = [threading.Thread(target=_post_until_stopped, args=(stack, stop, statuses), daemon=True)
               for _ in range(8)]
    for sender in senders:
        sender.start()
    try:
        wait_for(lambda: sum(r.ready for r in _get(admin, "slow-test").replicas) == 3, 90,
                 "three ready replicas under load")
        answered = statuses.count(200)
        wait_for(lambda: statuses.count(200) >= answered + 50, 60, "requests answered by the replicas")
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=60)
    assert set(statuses) <= {200, 429}, f"answers other than 200 or 429: {set(statuses)}"
    wait_for(lambda: len(_get(admin, "slow-test").replicas) == 1, 60, "back to one replica when idle")
    found = _get(admin, "slow-test")
    assert found.status == pb.SERVING_STATUS_RUNNING and found.replicas[0].ready
    assert _infer(stack, "slow-test", json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                                                              "data": [1.0]}]}).encode(),
                  stack.admin_token(), model="slow")[0] == 200


@pytest.mark.usefixtures("iris")
def test_binary_tensors_pass_through_the_gateway(stack: Stack, admin: Client) -> None:
    """The V2 binary tensor extension (tritonclient's request and response bodies): the gateway
    passes the Inference-Header-Content-Length header both ways."""
    import numpy as np
    import tritonclient.http as triton

    admin.call(admin.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
        name="iris-binary", model=pb.ModelRef(model="iris", version=2))))
    wait_for(lambda: _get(admin, "iris-binary").status == pb.SERVING_STATUS_RUNNING, 60, "iris-binary to run")
    tensor = triton.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(np.asarray(ROWS, dtype=np.float32), binary_data=True)
    wanted = triton.InferRequestedOutput("predict", binary_data=True)
    body, json_size = triton.InferenceServerClient.generate_request_body([tensor], outputs=[wanted])
    request = urllib.request.Request(
        f"{stack.http_url}/serving/iris-binary/v2/models/iris/infer", data=body,
        headers={"Content-Type": "application/octet-stream",
                 "Inference-Header-Content-Length": str(json_size),
                 "Authorization": f"Bearer {stack.admin_token()}"})
    try:
        reply = urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"HTTP {exc.code}: {exc.read()!r}") from None
    with reply:
        header_length = reply.headers["Inference-Header-Content-Length"]
        result = triton.InferenceServerClient.parse_response_body(
            reply.read(), header_length=int(header_length) if header_length else None)
    assert header_length is not None
    assert result.as_numpy("predict").tolist() == [0, 2]
