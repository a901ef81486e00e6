"""A test inference on a Kubernetes cluster's KServe, through the whole stack, on S3 (SeaweedFS).

No Kubernetes nor KServe runs here. A stand-in API server answers as one with KServe installed would, for
InferenceServices only: it keeps what serving-svc applies and, for each, does what KServe's storage
initializer and predictor would — downloads the objects under the InferenceService's ``STORAGE_URI``
from S3 and runs the predictor container's own command and arguments (Shipyard's built-in model server)
as a local process — and reports the InferenceService Ready at that process's URL once it answers
``/v2/health/ready``. The operator adds the cluster with the stand-in's kubeconfig, stored as a
credential that repo-svc lends to serving-svc; a user runs ``shipyard inference create --cluster``.

What it proves: the records, the refusals' absence on a valid cluster, the kubeconfig read from the
operator's credential, the model files laid out on S3 where the InferenceService says, the
InferenceService applied and its status followed to RUNNING, the gateway's proxy reaching the
cluster's URL with the caller's token checked in front, and the delete. What it does not: KServe's own
reconciliation, Knative, the storage initializer's S3 credentials (the ServiceAccount's), an ingress.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import joblib
import pytest
from aiohttp import web
from conftest import cli
from minio import Minio
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import credentials_pb2 as credpb
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from tests.support.seaweed import S3Server, SeaweedS3
from tests.support.users import signed_in

BUCKET = "shipyard-kserve"
ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]  # a setosa and a virginica


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class StandInCluster:
    """An API server with KServe, as far as InferenceServices go; it runs their predictors here."""

    s3: S3Server
    root: Path
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: list[tuple[str, str]] = field(default_factory=list)  # (method, name) of each write
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = field(default_factory=dict)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(ISVCS, self._list)
        app.router.add_post(ISVCS, self._create)
        app.router.add_get(ISVCS + "/{name}", self._get)
        app.router.add_put(ISVCS + "/{name}", self._replace)
        app.router.add_delete(ISVCS + "/{name}", self._delete)
        app.router.add_get("/api/v1/namespaces/ml/pods", self._pods)
        return app

    def _run_predictor(self, service: dict[str, Any]) -> None:
        """The storage initializer and the predictor container, as local work. A ``model`` predictor
        (KServe's own runtime for its format) is Shipyard's model server for the format, answering at
        the InferenceService's name as KServe's runtimes do."""
        name = service["metadata"]["name"]
        predictor = service["spec"]["predictor"]
        if "model" in predictor:
            served = predictor["model"]
            container = {"command": ["python", "-m", "shipyard_model_server"],
                         "args": ["--model-dir", "/mnt/models", "--model-name", name, "--host", "",
                                  "--port", "", "--framework", served["modelFormat"]["name"]]}
            storage = served["storageUri"]
        else:
            [container] = predictor["containers"]
            storage = next(e["value"] for e in container["env"] if e["name"] == "STORAGE_URI")
        parts = urlsplit(storage)
        models = self.root / name / "models"
        client = Minio(self.s3.endpoint, access_key=self.s3.access_key, secret_key=self.s3.secret_key,
                       secure=False)
        prefix = parts.path.lstrip("/")
        for found in client.list_objects(parts.netloc, prefix=prefix, recursive=True):
            assert found.object_name is not None
            target = models / found.object_name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.fget_object(parts.netloc, found.object_name, str(target))
        port = _free_port()
        args = [str(models) if a == "/mnt/models" else a for a in container["args"]]
        args[args.index("--host") + 1], args[args.index("--port") + 1] = "127.0.0.1", str(port)
        command = [sys.executable if part == "python" else part for part in container["command"]]
        log = (self.root / name / "server.log").open("wb")
        process = subprocess.Popen([*command, *args], stdout=log, stderr=subprocess.STDOUT)
        self._stop(name)
        self.servers[name] = (process, f"http://127.0.0.1:{port}")

    def _stop(self, name: str) -> None:
        running = self.servers.pop(name, None)
        if running is not None:
            running[0].terminate()
            running[0].wait(timeout=20)

    def stop_all(self) -> None:
        for name in list(self.servers):
            self._stop(name)

    def _with_status(self, service: dict[str, Any]) -> dict[str, Any]:
        """KServe's status now: Ready at the predictor's URL once it answers, else waiting for it."""
        name = service["metadata"]["name"]
        process, url = self.servers.get(name, (None, ""))
        ready = False
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/v2/health/ready",
                                                                      timeout=1) as reply:
                ready = reply.status == 200
        if ready:
            conditions = [{"type": kind, "status": "True"}
                          for kind in ("IngressReady", "PredictorReady", "Ready")]
            status = {"url": url, "conditions": conditions,
                      "modelStatus": {"states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                                      "transitionStatus": "UpToDate"}}
        else:
            waiting = {"status": "Unknown", "reason": "RevisionMissing",
                       "message": f'Configuration "{name}-predictor" is waiting for a Revision to become '
                                  'ready.'}
            status = {"conditions": [{"type": "PredictorReady", **waiting}, {"type": "Ready", **waiting}]}
        status["observedGeneration"] = service["metadata"]["generation"]
        return {**service, "status": status}

    async def _list(self, request: web.Request) -> web.Response:
        assert request.query.get("labelSelector") == "app.kubernetes.io/managed-by=shipyard"
        with self._lock:
            items = [await asyncio.to_thread(self._with_status, s) for s in list(self.services.values())]
        return web.json_response({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceServiceList",
                                  "metadata": {"resourceVersion": "1"}, "items": items})

    async def _create(self, request: web.Request) -> web.Response:
        service = await request.json()
        name = service["metadata"]["name"]
        service["metadata"] |= {"generation": 1, "resourceVersion": "1", "uid": f"uid-{name}"}
        with self._lock:
            self.services[name] = service
            self.applied.append(("create", name))
        await asyncio.to_thread(self._run_predictor, service)
        return web.json_response(service, status=201)

    async def _get(self, request: web.Request) -> web.Response:
        found = self.services.get(request.match_info["name"])
        if found is None:
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
        return web.json_response(found)

    async def _replace(self, request: web.Request) -> web.Response:
        service = await request.json()
        name = request.match_info["name"]
        generation = self.services[name]["metadata"]["generation"] + 1
        service["metadata"] |= {"generation": generation, "resourceVersion": str(generation)}
        with self._lock:
            self.services[name] = service
            self.applied.append(("replace", name))
        await asyncio.to_thread(self._run_predictor, service)
        return web.json_response(service)

    async def _delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        with self._lock:
            found = self.services.pop(name, None)
            self.applied.append(("delete", name))
        await asyncio.to_thread(self._stop, name)
        if found is None:
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})

    async def _pods(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []})


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    weed = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    try:
        yield weed.start()
    finally:
        weed.stop()


@pytest.fixture(scope="module")
def stack(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    blob_url = f"s3://{s3.access_key}:{s3.secret_key}@{s3.endpoint}/{BUCKET}"
    env = {"SHIPYARD_PATH_IMPORT_ROOTS": "", "SHIPYARD_BLOB_URL": blob_url}
    running = Stack(tmp_path_factory.mktemp("stack") / "data", env=env).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def cluster(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInCluster]:
    """The stand-in API server, on a loop of its own in a thread."""
    stand_in = StandInCluster(s3, tmp_path_factory.mktemp("cluster"))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(stand_in.app())
    port = _free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    stand_in.url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()
        stand_in.stop_all()


@pytest.fixture(scope="module")
def k8s(admin: Client, cluster: StandInCluster) -> str:
    """The operator's cluster: the kubeconfig stored as a kubeconfig credential, as kubectl writes it."""
    kubeconfig = f"""apiVersion: v1
kind: Config
current-context: stand-in
clusters:
- name: stand-in
  cluster:
    server: {cluster.url}
users:
- name: shipyard
  user:
    token: stand-in-token
contexts:
- name: stand-in
  context:
    cluster: stand-in
    user: shipyard
"""
    admin.call(admin.saved_credentials.SaveCredential, credpb.SaveCredentialRequest(
        credential=credpb.Credential(name="kube", type=credpb.CREDENTIAL_TYPE_KUBECONFIG, host="k8s.example"),
        secret=kubeconfig))
    admin.call(admin.clusters.AddCluster, cpb.AddClusterRequest(cluster=cpb.Cluster(
        name="k8s-prod", kind=cpb.CLUSTER_KIND_KUBERNETES, namespace="ml", kubeconfig_credential="kube",
        service_account="kserve-s3")))
    return "k8s-prod"


@pytest.fixture(scope="module")
def iris(admin: Client, tmp_path_factory: pytest.TempPathFactory) -> None:
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="iris", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    data = load_iris()
    model_dir = tmp_path_factory.mktemp("iris")
    joblib.dump(LogisticRegression(max_iter=500).fit(data.data, data.target), model_dir / "model.joblib")
    transfer.push(admin, repos_pb2.REPO_KIND_MODEL, "iris", model_dir, transfer.scan_tree(model_dir))


def _infer(stack: Stack, name: str, token: str | None, path: str = "v2/models/iris/infer"
           ) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
                                   "data": ROWS}]}).encode()
    request = urllib.request.Request(f"{stack.http_url}/serving/{name}/{path}",
                                     data=body if path.endswith("/infer") else None,
                                     headers={"Content-Type": "application/json"})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_an_inference_on_a_cluster_is_applied_followed_served_and_deleted(
        stack: Stack, admin: Client, home: Path, iris: None, k8s: str, cluster: StandInCluster) -> None:
    made = cli(stack, home, "inference", "create", "on-k8s", "--model", "iris", "--cluster", k8s, "--no-wait")
    assert "on cluster k8s-prod" in made.stdout
    service = wait_for(lambda: cluster.services.get("on-k8s"), 60, "the InferenceService applied")
    predictor = service["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "kserve-s3"
    assert service["metadata"]["labels"]["shipyard.io/model"] == "iris"

    def running() -> pb.Inference | None:
        found = admin.call(admin.serving.GetInference, pb.GetInferenceRequest(name="on-k8s"))
        assert found.status not in (pb.SERVING_STATUS_FAILED, pb.SERVING_STATUS_ERROR), found.status_reason
        return found if found.status == pb.SERVING_STATUS_RUNNING else None

    found = wait_for(running, 90, "the inference running on the cluster")
    assert (found.cluster, found.endpoint) == ("k8s-prod", "/serving/on-k8s/v2/models/iris")
    status, answer = _infer(stack, "on-k8s", stack.admin_token())
    assert status == 200, answer
    [output] = answer["outputs"]
    assert output["data"] == [0, 2]  # setosa, virginica: the stand-in's model server, through the gateway
    assert _infer(stack, "on-k8s", None)[0] == 401  # the caller's token is still checked in front
    assert _infer(stack, "on-k8s", "syt_not-a-token")[0] == 401
    alice = signed_in(stack, admin, "alice")
    try:  # what a user reads of it holds nothing of the operator's kubeconfig
        read = str(alice.call(alice.serving.GetInference, pb.GetInferenceRequest(name="on-k8s")))
        read += str(alice.call(alice.serving.ListInferences, pb.ListInferencesRequest()))
    finally:
        alice.close()
    assert "stand-in-token" not in read and cluster.url not in read and "k8s-prod" in read
    with pytest.raises(ClientError) as refused:  # the cluster serves it: run-svc asks serving-svc
        admin.call(admin.clusters.DeleteCluster, cpb.DeleteClusterRequest(name=k8s))
    assert refused.value.code == "FAILED_PRECONDITION" and "test inference on-k8s" in refused.value.message
    cli(stack, home, "inference", "delete", "on-k8s", "--yes")
    assert "on-k8s" not in cluster.services and ("delete", "on-k8s") in cluster.applied
    assert cluster.applied.count(("create", "on-k8s")) == 1


def test_a_format_kserves_runtime_serves_answers_at_the_models_name_through_the_gateway(
        stack: Stack, admin: Client, home: Path, iris: None, k8s: str, cluster: StandInCluster) -> None:
    cli(stack, home, "inference", "create", "sk-k8s", "--model", "iris", "--framework", "sklearn",
        "--cluster", k8s, "--no-wait")
    service = wait_for(lambda: cluster.services.get("sk-k8s"), 60, "the InferenceService applied")
    assert service["spec"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}

    def running() -> pb.Inference | None:
        found = admin.call(admin.serving.GetInference, pb.GetInferenceRequest(name="sk-k8s"))
        assert found.status not in (pb.SERVING_STATUS_FAILED, pb.SERVING_STATUS_ERROR), found.status_reason
        return found if found.status == pb.SERVING_STATUS_RUNNING else None

    found = wait_for(running, 90, "the inference running on the cluster")
    assert found.endpoint == "/serving/sk-k8s/v2/models/iris"  # the model's name, as here
    status, answer = _infer(stack, "sk-k8s", stack.admin_token())
    assert status == 200, answer  # KServe's runtime answers at /v2/models/sk-k8s/: the gateway asks there
    assert (answer["model_name"], answer["outputs"][0]["data"]) == ("iris", [0, 2])
    status, metadata = _infer(stack, "sk-k8s", stack.admin_token(), "v2/models/iris")
    assert (status, metadata["name"]) == (200, "iris")
    cli(stack, home, "inference", "delete", "sk-k8s", "--yes")
