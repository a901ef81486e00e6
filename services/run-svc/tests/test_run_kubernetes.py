"""The Kubernetes executor against recorded API answers.

No Kubernetes API server can run here. A small aiohttp server stands in for one: it answers with the
JSON the real API server returns (``kubernetes_api/``: a Job list with a succeeded, a failed and an
active Job; a pod list with a container that exited 3, one OOMKilled, one stuck in ImagePullBackOff, an
init container that failed; Status objects for 409 AlreadyExists, 404 and 403; a pod's log; distributed
runs' Indexed Jobs and their pods in ``*_distributed.json``), so that the real ``kubernetes`` client is
exercised over HTTP, with the kubeconfig an operator would store.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import json
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from shipyard_run.adapters.clusters import RemoteClusters
from shipyard_run.adapters.kubernetes import KubernetesExecutor, api_client
from shipyard_run.app.ports import Job, JobEnvironment, JobInput, JobState
from shipyard_run.domain.clusters import Cluster, ClusterKind
from shipyard_run.domain.runs import Distribution

from shipyard.kit.blob.checkout import read_manifest
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.s3 import S3BlobStore, StagedPart
from shipyard.kit.blob.tree import BlobTree
from shipyard.kit.errors import FailedPrecondition
from shipyard.kit.testing.credentials import FakeCredentialClient

RECORDED = Path(__file__).parent / "kubernetes_api"
CLUSTER = Cluster("k8s-prod", ClusterKind.KUBERNETES, namespace="ml", kubeconfig_credential="kube", gpus=8)
SELECTOR = "app.kubernetes.io/managed-by=shipyard,shipyard.io/run-id"
IMAGE_URL = "registry.example/ml/sklearn:1.5"
TOKEN = "syr_run7new.t0ken"
LOG = (RECORDED / "pod_log_run5live.txt").read_bytes()


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


@dataclass
class FakeApiServer:
    """Answers as kube-apiserver would, from the recorded lists; keeps every request it got."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    refuse_jobs: bool = False  # answer job creates 403 (an account without the right)
    hide_jobs: set[str] = field(default_factory=set)  # exist, but lists do not show them yet
    url: str = ""

    def calls(self, method: str, path_part: str) -> list[tuple[str, str, dict[str, str], Any]]:
        return [r for r in self.requests if r[0] == method and path_part in r[1]]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        jobs, secrets = "/apis/batch/v1/namespaces/ml/jobs", "/api/v1/namespaces/ml/secrets"
        app.router.add_get(jobs, self._list_jobs)
        app.router.add_post(jobs, self._create_job)
        app.router.add_delete(jobs + "/{name}", self._delete_job)
        app.router.add_get("/api/v1/namespaces/ml/pods", self._list_pods)
        app.router.add_get("/api/v1/namespaces/ml/pods/{name}/log", self._log)
        app.router.add_post(secrets, self._create_secret)
        app.router.add_put(secrets + "/{name}", self._replace_secret)
        app.router.add_patch(secrets + "/{name}", self._patch_secret)
        app.router.add_delete(secrets + "/{name}", self._delete_secret)
        services = "/api/v1/namespaces/ml/services"
        app.router.add_post(services, self._create_service)
        app.router.add_patch(services + "/{name}", self._patch_service)
        app.router.add_delete(services + "/{name}", self._delete_service)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, dict(request.query), body))
        return await handler(request)

    async def _list_jobs(self, request: web.Request) -> web.Response:
        listing = recorded("jobs.json")
        listing["items"] = [job for name, job in self.jobs.items() if name not in self.hide_jobs]
        return web.json_response(listing)

    async def _list_pods(self, request: web.Request) -> web.Response:
        return web.json_response(recorded("pods.json") | {"items": self.pods})

    async def _create_job(self, request: web.Request) -> web.Response:
        if self.refuse_jobs:
            return web.json_response(recorded("status_forbidden.json"), status=403)
        job = await request.json()
        name = job["metadata"]["name"]
        if name in self.jobs:
            already = recorded("status_already_exists.json")
            already["message"] = f'jobs.batch "{name}" already exists'
            return web.json_response(already, status=409)
        job["metadata"] |= {"uid": f"uid-of-{name}", "resourceVersion": "49001",
                            "creationTimestamp": "2026-12-07T11:00:00Z"}
        job["status"] = {}
        self.jobs[name] = job
        return web.json_response(job, status=201)

    async def _delete_job(self, request: web.Request) -> web.Response:
        if self.jobs.pop(request.match_info["name"], None) is None:
            return web.json_response(recorded("status_not_found.json"), status=404)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})

    async def _log(self, request: web.Request) -> web.Response:
        pod, container = request.match_info["name"], request.query.get("container")
        if pod == "shipyard-run5live-x7k2p" and container == "run":
            return web.Response(body=LOG, content_type="text/plain")
        if pod == "shipyard-run6fetch-x7k2p" and container == "fetch-inputs":
            return web.Response(text="shipyard: the run's code and inputs could not be fetched: "
                                     "HTTPError: HTTP Error 403: Forbidden\n", content_type="text/plain")
        if pod == "shipyard-run11live-0-x7k2p" and container == "run":
            return web.Response(text="master: epoch=1 loss=0.4\n", content_type="text/plain")
        if pod == "shipyard-run11live-1-x7k2p":
            return web.Response(text="worker: epoch=1 loss=9.9\n", content_type="text/plain")
        if pod == "shipyard-run6fetch-x7k2p":
            return web.json_response(recorded("status_waiting_to_start.json"), status=400)
        return web.Response(text="", content_type="text/plain")

    async def _create_secret(self, request: web.Request) -> web.Response:
        secret = await request.json()
        name = secret["metadata"]["name"]
        if name in self.secrets:
            return web.json_response(recorded("status_already_exists.json"), status=409)
        self.secrets[name] = secret
        return web.json_response(secret, status=201)

    async def _replace_secret(self, request: web.Request) -> web.Response:
        self.secrets[request.match_info["name"]] = await request.json()
        return web.json_response(self.secrets[request.match_info["name"]])

    async def _patch_secret(self, request: web.Request) -> web.Response:
        secret = self.secrets[request.match_info["name"]]
        secret["metadata"] |= (await request.json())["metadata"]
        return web.json_response(secret)

    async def _delete_secret(self, request: web.Request) -> web.Response:
        if self.secrets.pop(request.match_info["name"], None) is None:
            return web.json_response(recorded("status_not_found.json"), status=404)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})

    async def _create_service(self, request: web.Request) -> web.Response:
        service = await request.json()
        name = service["metadata"]["name"]
        if name in self.services:
            return web.json_response(recorded("status_already_exists.json"), status=409)
        service["metadata"] |= {"uid": f"uid-of-service-{name}", "resourceVersion": "49002"}
        service["spec"] |= {"clusterIPs": ["None"], "type": "ClusterIP", "sessionAffinity": "None"}
        self.services[name] = service
        return web.json_response(service, status=201)

    async def _patch_service(self, request: web.Request) -> web.Response:
        service = self.services[request.match_info["name"]]
        service["metadata"] |= (await request.json())["metadata"]
        return web.json_response(service)

    async def _delete_service(self, request: web.Request) -> web.Response:
        service = self.services.pop(request.match_info["name"], None)
        if service is None:
            return web.json_response(recorded("status_not_found.json"), status=404)
        return web.json_response(service)  # a Service's delete answers with the Service, not a Status


@dataclass
class FakeStaging:
    """The S3 store's staging area, in memory, with URLs that only look presigned."""

    objects: dict[str, bytes] = field(default_factory=dict)

    async def presign_get(self, name: str, expires: timedelta) -> str:
        return f"https://s3.example/staging/{name}?X-Amz-Expires={int(expires.total_seconds())}&X-Amz-Signature=g"

    async def presign_put(self, name: str, expires: timedelta) -> str:
        return f"https://s3.example/staging/{name}?X-Amz-Expires={int(expires.total_seconds())}&X-Amz-Signature=p"

    async def put_staged(self, name: str, source: Path) -> None:
        self.objects[name] = await asyncio.to_thread(source.read_bytes)

    async def get_staged(self, name: str, target: Path) -> None:
        if name not in self.objects:
            raise FileNotFoundError(name)
        await asyncio.to_thread(target.write_bytes, self.objects[name])

    async def read_staged(self, name: str, offset: int, max_bytes: int) -> StagedPart:
        if name not in self.objects:
            raise FileNotFoundError(name)
        return StagedPart(self.objects[name][offset:offset + max_bytes], len(self.objects[name]))

    async def delete_staged(self, folder: str) -> None:
        for name in [name for name in self.objects if name.startswith(folder)]:
            del self.objects[name]


def kubeconfig(server: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "prod", "cluster": {"server": server}}],
        "users": [{"name": "shipyard", "user": {"token": "sa-token"}}],
        "contexts": [{"name": "prod",
                      "context": {"cluster": "prod", "user": "shipyard", "namespace": "other"}}],
    })


@dataclass
class Setup:
    api: FakeApiServer
    staging: FakeStaging
    blobs: LocalBlobStore
    root: Path
    executor: KubernetesExecutor

    def again(self, **options: Any) -> KubernetesExecutor:
        """A new executor on the same cluster and directory: run-svc after a restart."""
        return KubernetesExecutor(CLUSTER, self._kubeconfig, self.blobs, self.staging, self.root, **options)

    async def _kubeconfig(self) -> str:
        return kubeconfig(self.api.url)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    api = FakeApiServer()
    api.jobs = {job["metadata"]["name"]: job for job in recorded("jobs.json")["items"]}
    api.pods = recorded("pods.json")["items"]
    runner = web.AppRunner(api.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    api.url = f"http://127.0.0.1:{port}"
    blobs = LocalBlobStore(tmp_path / "blobs")
    await blobs.open()
    staging = FakeStaging()

    async def config() -> str:
        return kubeconfig(api.url)

    executor = KubernetesExecutor(CLUSTER, config, blobs, staging, tmp_path / "k8s-prod")
    try:
        yield Setup(api, staging, blobs, tmp_path / "k8s-prod", executor)
    finally:
        await executor.close()
        await runner.cleanup()


def with_distributed_runs(api: FakeApiServer) -> None:
    """The recorded Indexed Jobs of distributed runs, and their pods, beside the others."""
    api.jobs |= {job["metadata"]["name"]: job for job in recorded("jobs_distributed.json")["items"]}
    api.pods += recorded("pods_distributed.json")["items"]


async def a_job(setup: Setup, tmp_path: Path, run_id: str = "run7new", url: str = IMAGE_URL) -> Job:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "train.py").write_text("print('epoch=1 loss=0.5')\n")
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "rows.csv").write_text("a,b\n")
    tree = BlobTree(setup.blobs)
    environment = JobEnvironment("sklearn-1.5", "3.11", (), "d" * 64, url=url)
    return Job(run_id, "churn train", "python train.py", api_token=TOKEN, api_url="https://gw.example",
               code_manifest=(await tree.store_tree(code)).digest,
               inputs=(JobInput("/data", (await tree.store_tree(data)).digest),), output_paths=("", "/model"),
               environment=environment, gpu_count=2)


# --- status --------------------------------------------------------------------------------------------


async def test_statuses_map_from_the_jobs_and_their_pods(setup: Setup) -> None:
    executor = setup.executor
    ok, exit3, oom = [await executor.status(run) for run in ("run1ok", "run2exit3", "run3oom")]
    assert (ok.state, ok.exit_code) == (JobState.EXITED, 0)
    assert (exit3.state, exit3.exit_code) == (JobState.EXITED, 3)
    assert (oom.state, oom.exit_code) == (JobState.KILLED, 137)
    assert "ran out of memory" in oom.detail
    live = await executor.status("run5live")
    assert live.state is JobState.RUNNING and "Running" in live.detail
    fetch = await executor.status("run6fetch")
    assert fetch.state is JobState.GONE and "could not be fetched" in fetch.detail
    assert (await executor.status("run8never")).state is JobState.NOT_STARTED
    lists = [(method, path, query) for method, path, query, _ in setup.api.requests if method == "GET"]
    assert lists and all(query == {"labelSelector": SELECTOR} for _, _, query in lists)
    assert {path for _, path, _ in lists} == {"/apis/batch/v1/namespaces/ml/jobs",
                                              "/api/v1/namespaces/ml/pods"}


async def test_a_pod_that_cannot_pull_its_image_is_given_up_after_the_grace(setup: Setup) -> None:
    patient = await setup.executor.status("run4pull")
    assert patient.state is JobState.RUNNING and "ImagePullBackOff" in patient.detail
    impatient = await setup.again(image_pull_grace_s=0).status("run4pull")
    assert impatient.state is JobState.GONE
    assert f"its image {IMAGE_URL} could not be pulled (ImagePullBackOff" in impatient.detail


async def test_a_job_deleted_behind_shipyards_back_is_gone_once_it_was_submitted(setup: Setup,
                                                                                 tmp_path: Path) -> None:
    job = await a_job(setup, tmp_path)
    await setup.executor.submit(job)
    del setup.api.jobs["shipyard-run7new"]
    gone = await setup.again().status("run7new")
    assert gone.state is JobState.GONE and "not through Shipyard" in gone.detail


# --- submit ------------------------------------------------------------------------------------------


async def test_a_trials_pod_sends_its_studys_files_and_run_svc_reads_what_it_sent(setup: Setup,
                                                                                 tmp_path: Path) -> None:
    job = dataclasses.replace(await a_job(setup, tmp_path), collector_path="/log/metrics.log")
    await setup.executor.submit(job)
    secret = setup.api.secrets["shipyard-run7new"]
    assert secret["stringData"]["collected-url"] == (
        "https://s3.example/staging/runs/run7new/collected.json?X-Amz-Expires=604800&X-Amz-Signature=p")
    assert await setup.executor.read_run_files("run7new", "/log/metrics.log", 1 << 20) == {}  # none sent yet
    setup.staging.objects["runs/run7new/collected.json"] = json.dumps(
        {"/log/metrics.log": base64.b64encode(b"accuracy=0.5\n").decode()}).encode()
    assert await setup.executor.read_run_files("run7new", "/log/metrics.log", 1 << 20) == {
        "/log/metrics.log": b"accuracy=0.5\n"}
    # The trial can write anything there: what is not files as the pod sends them is not read.
    setup.staging.objects["runs/run7new/collected.json"] = b"[" * 100_000
    assert await setup.executor.read_run_files("run7new", "/log/metrics.log", 1 << 20) == {}
    await setup.executor.cleanup("run7new")
    assert "runs/run7new/collected.json" not in setup.staging.objects


async def test_submit_stages_the_inputs_then_creates_the_secret_then_the_job(setup: Setup,
                                                                            tmp_path: Path) -> None:
    job = await a_job(setup, tmp_path)
    notes = await setup.executor.submit(job)
    assert "shipyard-run7new in namespace ml of cluster k8s-prod, image registry.example" in notes[0]
    posts = [path for method, path, _, _ in setup.api.requests if method in ("POST", "PATCH")]
    assert posts == ["/api/v1/namespaces/ml/secrets", "/apis/batch/v1/namespaces/ml/jobs",
                     "/api/v1/namespaces/ml/secrets/shipyard-run7new"]
    secret = setup.api.secrets["shipyard-run7new"]
    assert secret["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "shipyard-run7new",
         "uid": "uid-of-shipyard-run7new"}]
    assert secret["stringData"]["SHIPYARD_TOKEN"] == TOKEN
    assert json.loads(secret["stringData"]["output-urls"]) == [
        "https://s3.example/staging/runs/run7new/outputs/0.tar?X-Amz-Expires=604800&X-Amz-Signature=p",
        "https://s3.example/staging/runs/run7new/outputs/1.tar?X-Amz-Expires=604800&X-Amz-Signature=p"]
    created = setup.api.jobs["shipyard-run7new"]
    assert TOKEN not in json.dumps(created) and "X-Amz-Signature" not in json.dumps(created)
    [run] = created["spec"]["template"]["spec"]["containers"]
    assert run["image"] == IMAGE_URL and run["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    with tarfile.open(fileobj=io.BytesIO(setup.staging.objects["runs/run7new/inputs.tar"])) as tar:
        names = set(tar.getnames())
    assert {"shipyard/code/train.py", "input-0/rows.csv", "shipyard/sdk/shipyard/sdk.py",
            "shipyard/hyperparameters.json"} <= names
    assert (await setup.executor.status("run7new")).state is JobState.RUNNING


async def test_a_job_is_created_once_however_often_it_is_submitted(setup: Setup, tmp_path: Path) -> None:
    job = await a_job(setup, tmp_path)
    await setup.executor.submit(job)
    await setup.again().submit(job)  # run-svc restarted while starting it: the list shows the Job
    setup.api.hide_jobs.add("shipyard-run7new")  # a list that does not show it yet: the create says 409
    await setup.again().submit(job)
    creates = setup.api.calls("POST", "/jobs")
    assert len(creates) == 2 and len(setup.api.jobs) == 7  # the second create was refused as AlreadyExists
    assert len(setup.api.calls("PUT", "/secrets/shipyard-run7new")) == 1  # its Secret was there: replaced
    assert (await setup.again().status("run7new")).state is not JobState.NOT_STARTED


async def test_a_refused_job_leaves_nothing_behind(setup: Setup, tmp_path: Path) -> None:
    setup.api.refuse_jobs = True
    job = await a_job(setup, tmp_path)
    with pytest.raises(FailedPrecondition, match=r"did not take job shipyard-run7new: .*403 Forbidden: "
                                                 r"jobs.batch is forbidden"):
        await setup.executor.submit(job)
    assert setup.api.secrets == {} and setup.staging.objects == {}
    assert (await setup.executor.status("run7new")).state is JobState.NOT_STARTED


async def test_a_run_without_an_image_url_is_refused_before_anything_is_made(setup: Setup,
                                                                            tmp_path: Path) -> None:
    job = await a_job(setup, tmp_path, url="")
    with pytest.raises(FailedPrecondition, match="names no image with a URL"):
        await setup.executor.submit(job)
    assert setup.api.requests == [] and setup.staging.objects == {}


async def test_a_kubeconfig_that_is_no_kubeconfig_is_refused_naming_the_credential(tmp_path: Path) -> None:
    async def broken() -> str:
        return "just: [a, list]"

    executor = KubernetesExecutor(CLUSTER, broken, LocalBlobStore(tmp_path), FakeStaging(), tmp_path)
    with pytest.raises(FailedPrecondition, match=r"kubeconfig of cluster 'k8s-prod' \(credential 'kube'\) "
                                                 r"does not work: it is not a kubeconfig"):
        await executor.status("r1")


def test_the_client_is_its_own_not_the_process_wide_one(tmp_path: Path) -> None:
    from kubernetes.client import Configuration

    before = Configuration.get_default_copy().host
    client = api_client(kubeconfig("http://127.0.0.1:1"), tmp_path)
    assert client.configuration.host == "http://127.0.0.1:1"
    assert Configuration.get_default_copy().host == before


# --- stop, logs, metrics, outputs, cleanup -----------------------------------------------------------


async def test_stop_deletes_the_job_with_its_pods_in_the_foreground(setup: Setup) -> None:
    await setup.executor.stop("run5live")
    [(_, path, query, _)] = setup.api.calls("DELETE", "/jobs/")
    assert (path, query["propagationPolicy"]) == ("/apis/batch/v1/namespaces/ml/jobs/shipyard-run5live",
                                                  "Foreground")
    await setup.executor.stop("run5live")  # gone already: nothing to do


async def test_logs_come_from_the_pod_with_offsets_and_metrics_from_their_lines(setup: Setup) -> None:
    assert await setup.executor.read_logs("run5live", 0, 1 << 20) == LOG
    assert await setup.executor.read_logs("run5live", 10, 14) == LOG[10:24]
    points = await setup.executor.new_metrics("run5live")
    assert [(p.name, p.value, p.step) for p in points] == [
        ("epoch", 1.0, 1), ("loss", 0.9131, 1), ("accuracy", 0.61, 1),
        ("epoch", 2.0, 2), ("loss", 0.512, 2), ("accuracy", 0.83, 2)]
    await setup.executor.status("run5live")
    assert await setup.again().new_metrics("run5live") == []  # the cursor survives a restart


async def test_a_failed_init_containers_log_heads_the_runs(setup: Setup) -> None:
    log = await setup.executor.read_logs("run6fetch", 0, 1 << 20)
    assert log.startswith(b"shipyard: the run's code and inputs could not be fetched")


async def test_outputs_come_home_from_their_tars_as_manifests(setup: Setup, tmp_path: Path) -> None:
    job = await a_job(setup, tmp_path)
    await setup.executor.submit(job)
    for index, files in enumerate(({"./metrics.txt": b"acc=1\n"}, {"./w/weights.bin": b"\x00w"})):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        setup.staging.objects[f"runs/run7new/outputs/{index}.tar"] = buffer.getvalue()
    staged = await setup.again().stage_outputs("run7new")
    model = await read_manifest(setup.blobs, staged["/model"])
    assert [entry.path for entry in model.entries] == ["w/weights.bin"]
    assert [e.path for e in (await read_manifest(setup.blobs, staged[""])).entries] == ["metrics.txt"]


async def test_an_output_that_never_came_back_is_an_error_naming_it(setup: Setup, tmp_path: Path) -> None:
    await setup.executor.submit(await a_job(setup, tmp_path))
    with pytest.raises(FileNotFoundError, match="output at SHIPYARD_OUTPUT did not come back from the pod"):
        await setup.executor.stage_outputs("run7new")


async def test_cleanup_brings_the_log_home_and_removes_job_secret_and_staged_files(setup: Setup,
                                                                                   tmp_path: Path) -> None:
    setup.staging.objects["runs/run5live/inputs.tar"] = b"staged at submit"
    setup.api.secrets["shipyard-run5live"] = {"metadata": {"name": "shipyard-run5live"}}
    await setup.executor.cleanup("run5live")
    assert (setup.root / "run5live/log").read_bytes() == LOG
    [(_, _, query, _)] = setup.api.calls("DELETE", "/jobs/shipyard-run5live")
    assert query["propagationPolicy"] == "Background"
    assert setup.api.calls("DELETE", "/secrets/shipyard-run5live")
    assert setup.api.secrets == {} and setup.staging.objects == {}
    assert "shipyard-run5live" not in setup.api.jobs
    after = await setup.again().status("run5live")
    assert after.state is JobState.GONE
    assert await setup.again().read_logs("run5live", 0, 1 << 20) == LOG
    await setup.executor.remove("run5live")
    assert not (setup.root / "run5live").exists()


async def test_tensorboard_is_not_served_for_cluster_runs(setup: Setup) -> None:
    with pytest.raises(FailedPrecondition, match="local runs only"):
        await setup.executor.start_tensorboard("run5live", "t5")
    assert await setup.executor.tensorboard_address("run5live") is None


# --- distributed runs: a master and its workers, one Indexed Job ------------------------------------


async def a_distributed_job(setup: Setup, tmp_path: Path) -> Job:
    return dataclasses.replace(await a_job(setup, tmp_path), distribution=Distribution.MANUAL, workers=2)


async def test_a_distributed_run_fails_with_the_exit_code_of_the_pod_that_failed(setup: Setup) -> None:
    with_distributed_runs(setup.api)
    # Index 1 exited 1; Kubernetes then stopped the master (143): the worker's code is the run's.
    worker = await setup.executor.status("run9dist")
    assert (worker.state, worker.exit_code) == (JobState.EXITED, 1)
    # Both failed on their own: the master's code is the run's.
    both = await setup.executor.status("run10both")
    assert (both.state, both.exit_code) == (JobState.EXITED, 2)


async def test_a_distributed_run_runs_until_every_pod_succeeded(setup: Setup) -> None:
    with_distributed_runs(setup.api)
    half = await setup.executor.status("run11live")  # the master is done, its worker runs
    assert half.state is JobState.RUNNING
    assert half.detail == "Kubernetes job shipyard-run11live: pods 0 Succeeded, 1 Running"


async def test_a_distributed_runs_logs_and_metrics_are_its_masters(setup: Setup) -> None:
    with_distributed_runs(setup.api)
    assert await setup.executor.read_logs("run11live", 0, 1 << 20) == b"master: epoch=1 loss=0.4\n"
    assert [(p.name, p.value) for p in await setup.executor.new_metrics("run11live")] == [
        ("epoch", 1.0), ("loss", 0.4)]
    assert not setup.api.calls("GET", "/pods/shipyard-run11live-1-x7k2p/log")


async def test_a_distributed_run_has_a_headless_service_owned_by_its_job(setup: Setup,
                                                                         tmp_path: Path) -> None:
    await setup.executor.submit(await a_distributed_job(setup, tmp_path))
    posts = [path for method, path, _, _ in setup.api.requests if method in ("POST", "PATCH")]
    assert posts == ["/api/v1/namespaces/ml/secrets", "/api/v1/namespaces/ml/services",
                     "/apis/batch/v1/namespaces/ml/jobs", "/api/v1/namespaces/ml/secrets/shipyard-run7new",
                     "/api/v1/namespaces/ml/services/shipyard-run7new"]
    service = setup.api.services["shipyard-run7new"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "shipyard-run7new",
         "uid": "uid-of-shipyard-run7new"}]
    created = setup.api.jobs["shipyard-run7new"]["spec"]
    assert (created["completionMode"], created["completions"], created["parallelism"]) == ("Indexed", 3, 3)
    assert created["template"]["spec"]["subdomain"] == "shipyard-run7new"


async def test_stop_deletes_a_distributed_runs_job_and_service(setup: Setup, tmp_path: Path) -> None:
    await setup.executor.submit(await a_distributed_job(setup, tmp_path))
    await setup.again().stop("run7new")  # after a restart too
    assert [path for method, path, _, _ in setup.api.requests if method == "DELETE"] == [
        "/apis/batch/v1/namespaces/ml/jobs/shipyard-run7new",
        "/api/v1/namespaces/ml/services/shipyard-run7new"]
    assert setup.api.services == {} and "shipyard-run7new" not in setup.api.jobs
    await setup.executor.cleanup("run7new")  # both gone already: nothing to do
    assert setup.api.secrets == {} and setup.staging.objects == {}


async def test_a_refused_distributed_job_leaves_no_service_behind(setup: Setup, tmp_path: Path) -> None:
    setup.api.refuse_jobs = True
    with pytest.raises(FailedPrecondition, match="did not take job shipyard-run7new"):
        await setup.executor.submit(await a_distributed_job(setup, tmp_path))
    assert setup.api.services == {} and setup.api.secrets == {}


async def test_a_one_pod_run_never_touches_services(setup: Setup, tmp_path: Path) -> None:
    await setup.executor.submit(await a_job(setup, tmp_path))
    await setup.executor.stop("run7new")
    await setup.executor.cleanup("run7new")
    assert not [path for _, path, _, _ in setup.api.requests if "/services" in path]


# --- how run-svc opens a Kubernetes cluster's executor ----------------------------------------------


async def no_pin(cluster: str, key: str) -> None:
    raise AssertionError("a Kubernetes cluster has no host key")


async def test_kubernetes_clusters_take_runs_only_with_an_s3_blob_store(tmp_path: Path) -> None:
    local = RemoteClusters(tmp_path, LocalBlobStore(tmp_path / "blobs"), FakeCredentialClient(), no_pin)
    assert "through the S3 blob store, and run-svc's blob store is local files" in local.unsupported(CLUSTER)
    with pytest.raises(FailedPrecondition, match="S3 blob store"):
        local.open(CLUSTER)
    s3 = S3BlobStore("127.0.0.1:9", "ak", "sk", "shipyard")  # nothing is asked of it here
    assert RemoteClusters(tmp_path, s3, FakeCredentialClient(), no_pin).unsupported(CLUSTER) == ""


async def test_the_executor_connects_with_the_kubeconfig_the_operator_stored(setup: Setup,
                                                                            tmp_path: Path) -> None:
    credentials = FakeCredentialClient()
    blobs = S3BlobStore("127.0.0.1:9", "ak", "sk", "shipyard")
    clusters = RemoteClusters(tmp_path, blobs, credentials, no_pin)
    owned = Cluster("k8s-prod", ClusterKind.KUBERNETES, owner="ops", namespace="ml",
                    kubeconfig_credential="kube")
    executor = clusters.open(owned)
    assert isinstance(executor, KubernetesExecutor) and executor.name == "kubernetes:k8s-prod"
    with pytest.raises(FailedPrecondition, match="credential 'kube' of ops, which is gone"):
        await executor.status("run1ok")
    credentials.add("ops", "kube", kubeconfig(setup.api.url), type="token")
    assert (await executor.status("run1ok")).state is JobState.EXITED
    assert credentials.calls[-1] == ("ops", "ops", "kube")
    await executor.close()
