"""KServe on a Kubernetes cluster, against an API server standing in over HTTP.

No Kubernetes API server (nor KServe) can run here. A small aiohttp server stands in for one: it keeps
the InferenceServices it is sent as kube-apiserver does (resourceVersion and generation on each write,
409 for a stale replace, Status objects for 404 and 403) and answers with KServe's status shapes
(``kserve_api/``: a Ready InferenceService with its URL, one waiting for its first revision, one whose
model failed to load; the predictor's pods, one restarted after an OOM kill), so that the real
``kubernetes`` client is exercised over HTTP with the kubeconfig an operator would store.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from shipyard_serving.adapters import kserve_servers
from shipyard_serving.adapters.kserve_servers import ANNOTATION_FINGERPRINT, KServeModelServers
from shipyard_serving.app.ports import Endpoint
from shipyard_serving.domain.serving import ModelPin, Observation, ServingSpec

from shipyard.kit.clients.clusters import ClusterRecord

RECORDED = Path(__file__).parent / "kserve_api"
ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices"
CLUSTER = ClusterRecord("k8s-prod", "kubernetes", "olga", "ml", "kube", service_account="kserve-s3")
MNIST_3 = ModelPin("mnist", 3, "id-mnist", "sha256:mnist-3")
MNIST_2 = ModelPin("mnist", 2, "id-mnist", "sha256:mnist-2")
URL = "http://mnist-test.ml.example.com"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


@dataclass
class FakeKServeApi:
    """Answers as kube-apiserver with KServe installed would; keeps every request it got."""

    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    forbid_pods: bool = False
    token: str = "sa-token"  # the bearer token it takes; any other is refused (401)
    version: int = 73000
    url: str = ""

    def calls(self, method: str, path: str = ISVCS) -> list[tuple[str, str, dict[str, str], Any]]:
        return [r for r in self.requests if r[0] == method and r[1].startswith(path)]

    def set_status(self, name: str, fixture: str, **changes: Any) -> None:
        """KServe reconciled ``name``: its status as recorded, for the generation it has now."""
        status = recorded(fixture) | changes
        status["observedGeneration"] = self.services[name]["metadata"]["generation"]
        self.services[name]["status"] = status

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get(ISVCS, self._list)
        app.router.add_post(ISVCS, self._create)
        app.router.add_get(ISVCS + "/{name}", self._get)
        app.router.add_put(ISVCS + "/{name}", self._replace)
        app.router.add_delete(ISVCS + "/{name}", self._delete)
        app.router.add_get("/api/v1/namespaces/ml/pods", self._pods)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, dict(request.query), copy.deepcopy(body)))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "message": "Unauthorized", "reason": "Unauthorized", "code": 401},
                                     status=401)
        return await handler(request)

    def _next_version(self) -> str:
        self.version += 1
        return str(self.version)

    async def _list(self, request: web.Request) -> web.Response:
        key, _, value = request.query.get("labelSelector", "").partition("=")
        items = [s for s in self.services.values() if not key or s["metadata"]["labels"].get(key) == value]
        return web.json_response(recorded("isvc_list.json") | {"items": items})

    async def _create(self, request: web.Request) -> web.Response:
        service = await request.json()
        name = service["metadata"]["name"]
        if name in self.services:
            return web.json_response({"kind": "Status", "code": 409, "reason": "AlreadyExists"}, status=409)
        service["metadata"] |= {"uid": f"uid-{name}", "generation": 1,
                                "resourceVersion": self._next_version(),
                                "creationTimestamp": "2026-12-07T11:00:40Z"}
        self.services[name] = service
        return web.json_response(service, status=201)

    async def _get(self, request: web.Request) -> web.Response:
        found = self.services.get(request.match_info["name"])
        if found is None:
            return web.json_response(recorded("status_not_found.json"), status=404)
        return web.json_response(found)

    async def _replace(self, request: web.Request) -> web.Response:
        name, service = request.match_info["name"], await request.json()
        current = self.services.get(name)
        if current is None:
            return web.json_response(recorded("status_not_found.json"), status=404)
        if service["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            return web.json_response({"kind": "Status", "code": 409, "reason": "Conflict",
                                      "message": "the object has been modified"}, status=409)
        service["metadata"] |= {"uid": current["metadata"]["uid"], "resourceVersion": self._next_version(),
                                "generation": current["metadata"]["generation"] + 1}
        service["status"] = current.get("status", {})
        self.services[name] = service
        return web.json_response(service)

    async def _delete(self, request: web.Request) -> web.Response:
        if self.services.pop(request.match_info["name"], None) is None:
            return web.json_response(recorded("status_not_found.json"), status=404)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})

    async def _pods(self, request: web.Request) -> web.Response:
        if self.forbid_pods:
            return web.json_response(recorded("status_forbidden.json"), status=403)
        return web.json_response(recorded("pods.json") | {"items": self.pods})


@dataclass
class FakeModelFiles:
    """Lays nothing out: says where each manifest's files would be, and remembers being asked."""

    laid_out: list[str] = field(default_factory=list)

    async def lay_out(self, manifest_digest: str) -> str:
        self.laid_out.append(manifest_digest)
        return f"s3://shipyard/serving/models/{manifest_digest}/"


def kubeconfig(server: str, token: str = "sa-token") -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "prod", "cluster": {"server": server}}],
        "users": [{"name": "shipyard", "user": {"token": token}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "shipyard"}}],
    })


@dataclass
class Setup:
    api: FakeKServeApi
    files: FakeModelFiles
    root: Path
    servers: KServeModelServers
    seen: list[tuple[str, Observation]]

    def again(self) -> KServeModelServers:
        """serving-svc after a restart: new model servers of the same cluster."""
        async def config() -> str:
            return kubeconfig(self.api.url)

        return KServeModelServers(CLUSTER, config, self.files, self.root, poll_s=3600)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    api = FakeKServeApi()
    runner = web.AppRunner(api.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    files = FakeModelFiles()

    async def config() -> str:
        return kubeconfig(api.url)

    seen: list[tuple[str, Observation]] = []

    async def observer(name: str, observation: Observation) -> None:
        seen.append((name, observation))

    servers = KServeModelServers(CLUSTER, config, files, tmp_path / "k8s-prod", poll_s=3600)
    servers.watch(observer)
    try:
        yield Setup(api, files, tmp_path / "k8s-prod", servers, seen)
    finally:
        await servers.close()
        await runner.cleanup()


def endpoint(model: ModelPin = MNIST_3, **spec: Any) -> Endpoint:
    return Endpoint("mnist-test", model, ServingSpec(**spec), "k8s-prod")


async def test_ensure_lays_the_files_out_and_creates_the_inference_service(setup: Setup) -> None:
    await setup.servers.ensure(endpoint())
    assert setup.files.laid_out == ["sha256:mnist-3"]
    [(_, path, _, created)] = setup.api.calls("POST")
    assert path == ISVCS
    assert created["metadata"]["namespace"] == "ml"
    assert created["metadata"]["labels"]["shipyard.io/model-version"] == "3"
    assert ANNOTATION_FINGERPRINT in created["metadata"]["annotations"]
    predictor = created["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "kserve-s3"
    assert {"name": "STORAGE_URI", "value": "s3://shipyard/serving/models/sha256:mnist-3/"} in \
        predictor["containers"][0]["env"]
    assert setup.servers.observe("mnist-test") == Observation(
        ready=0, waiting="KServe has not reported on it yet")


async def test_kserves_ready_status_makes_it_serve_at_its_url_with_its_pods_as_replicas(setup: Setup) -> None:
    await setup.servers.ensure(endpoint())
    setup.api.set_status("mnist-test", "status_ready.json")
    setup.api.pods = recorded("pods.json")["items"]
    await setup.servers.poll()
    seen = setup.servers.observe("mnist-test")
    assert (seen.ready, seen.url, seen.serving, seen.failure) == (1, URL, "mnist@3", "")
    restarted, starting = seen.replicas
    assert restarted.address == "predictor/mnist-test-predictor-00001-deployment-7d9f8c6b5d-x2k9q"
    assert (restarted.ready, restarted.restarts, restarted.model) == (True, 1, "mnist@3")
    assert restarted.last_exit == "exited with code 137 (OOMKilled)"
    assert (starting.ready, starting.restarts) == (False, 0)
    assert setup.seen[-1] == ("mnist-test", seen)


async def test_an_account_that_may_not_list_pods_still_sees_kserves_word(setup: Setup) -> None:
    await setup.servers.ensure(endpoint(min_replicas=2))
    setup.api.set_status("mnist-test", "status_ready.json")
    setup.api.forbid_pods = True
    await setup.servers.poll()
    seen = setup.servers.observe("mnist-test")
    assert (seen.ready, seen.url, seen.replicas) == (2, URL, [])


async def test_not_ready_says_what_kserve_waits_for(setup: Setup) -> None:
    await setup.servers.ensure(endpoint())
    setup.api.set_status("mnist-test", "status_waiting.json")
    await setup.servers.poll()
    seen = setup.servers.observe("mnist-test")
    assert (seen.ready, seen.url, seen.failure) == (0, "", "")
    assert seen.waiting == ('KServe: PredictorReady is Unknown (RevisionMissing: Configuration '
                            '"mnist-test-predictor" is waiting for a Revision to become ready.)')


async def test_a_model_that_fails_to_load_fails_the_endpoint_with_kserves_message(setup: Setup) -> None:
    await setup.servers.ensure(endpoint())
    setup.api.set_status("mnist-test", "status_failed_load.json")
    await setup.servers.poll()
    seen = setup.servers.observe("mnist-test")
    assert seen.failure == ("the model could not be loaded on the cluster (ModelLoadFailed: Container failed "
                            "with: ValueError: the pickle is not a model.)")
    assert (seen.ready, seen.url) == (0, "")


async def test_a_swap_replaces_it_at_its_resource_version_and_the_old_version_serves_until_ready(
        setup: Setup) -> None:
    await setup.servers.ensure(endpoint(MNIST_2))
    setup.api.set_status("mnist-test", "status_ready.json")
    await setup.servers.poll()
    assert setup.servers.observe("mnist-test").serving == "mnist@2"
    before = setup.api.services["mnist-test"]["metadata"]["resourceVersion"]
    await setup.servers.ensure(endpoint(MNIST_3))
    [(_, path, _, replaced)] = setup.api.calls("PUT")
    assert path == f"{ISVCS}/mnist-test"
    assert replaced["metadata"]["resourceVersion"] == before
    assert replaced["metadata"]["labels"]["shipyard.io/model-version"] == "3"
    rolling = setup.servers.observe("mnist-test")  # KServe's status is still the last generation's
    assert (rolling.serving, rolling.url) == ("mnist@2", URL)
    setup.api.set_status("mnist-test", "status_failed_load.json", url=URL)
    await setup.servers.poll()
    failed = setup.servers.observe("mnist-test")
    assert (failed.serving, failed.url) == ("mnist@2", URL) and "could not be loaded" in failed.failure
    setup.api.set_status("mnist-test", "status_ready.json")
    await setup.servers.poll()
    assert setup.servers.observe("mnist-test").serving == "mnist@3"


async def test_a_failed_swap_asked_back_from_an_observer_puts_the_previous_spec_back(setup: Setup) -> None:
    await setup.servers.ensure(endpoint(MNIST_2))
    setup.api.set_status("mnist-test", "status_ready.json")
    await setup.servers.poll()
    await setup.servers.ensure(endpoint(MNIST_3))

    async def go_back(name: str, seen: Observation) -> None:  # as Deployments.follow does on a failed swap
        if seen.failure:
            await setup.servers.ensure(endpoint(MNIST_2))

    setup.servers.watch(go_back)
    setup.api.set_status("mnist-test", "status_failed_load.json", url=URL)
    async with asyncio.timeout(30):  # an ensure from within the poll must not wait for the poll
        await setup.servers.poll()
    back = setup.api.services["mnist-test"]
    assert back["metadata"]["labels"]["shipyard.io/model-version"] == "2"
    assert len(setup.api.calls("PUT")) == 2  # to mnist@3, and back
    setup.api.set_status("mnist-test", "status_ready.json")
    await setup.servers.poll()
    assert setup.servers.observe("mnist-test").serving == "mnist@2"


@dataclass
class StoredKubeconfig:
    """The operator's credential as repo-svc lends it: replaced by ``token``; ``reads`` counts the reads."""

    server: str
    token: str = "sa-token"
    reads: int = 0

    async def __call__(self) -> str:
        self.reads += 1
        return kubeconfig(self.server, self.token)


async def test_a_refused_kubeconfig_is_read_again_and_the_operators_new_one_used(setup: Setup) -> None:
    stored = StoredKubeconfig(setup.api.url)
    servers = KServeModelServers(CLUSTER, stored, setup.files, setup.root, poll_s=3600)
    try:
        await servers.ensure(endpoint())
        assert stored.reads == 1 and len(setup.api.calls("POST")) == 1
        setup.api.token = stored.token = "rotated-token"  # the operator replaced the kubeconfig
        await servers.remove("mnist-test")
        assert stored.reads == 2  # refused (401): read again, and the delete made with the new one
        assert setup.api.services == {}
        setup.api.token = "revoked-everywhere"
        await servers.ensure(endpoint())  # refused again so soon: not read again, and it says why
        assert stored.reads == 2
        assert "answered 401 Unauthorized" in servers.observe("mnist-test").failure
    finally:
        await servers.close()


async def test_the_kubeconfig_is_read_again_every_few_minutes(setup: Setup,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    stored = StoredKubeconfig(setup.api.url)
    servers = KServeModelServers(CLUSTER, stored, setup.files, setup.root, poll_s=3600)
    try:
        await servers.ensure(endpoint())
        await servers.poll()
        assert stored.reads == 1  # within REREAD_S: the client made of it goes on
        monkeypatch.setattr(kserve_servers, "REREAD_S", 0.0)
        await servers.poll()
        assert stored.reads > 1  # past it: read again (before each call to the API server, here)
    finally:
        await servers.close()


async def test_after_a_restart_the_same_spec_is_left_alone(setup: Setup) -> None:
    await setup.servers.ensure(endpoint())
    setup.api.set_status("mnist-test", "status_ready.json")
    restarted = setup.again()
    try:
        await restarted.ensure(endpoint())
        assert [m for m, *_ in setup.api.requests if m in ("POST", "PUT")] == ["POST"]  # no rollout
        assert restarted.observe("mnist-test").url == URL
        await restarted.ensure(endpoint(max_concurrency=4))  # a changed spec is applied
        assert len(setup.api.calls("PUT")) == 1
    finally:
        await restarted.close()


async def test_an_inference_service_shipyard_did_not_make_is_never_replaced(setup: Setup) -> None:
    setup.api.services["mnist-test"] = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                                        "metadata": {"name": "mnist-test", "namespace": "ml", "labels": {},
                                                     "resourceVersion": "5", "generation": 1}, "spec": {}}
    await setup.servers.ensure(endpoint())
    assert setup.api.calls("PUT") == []
    assert "Shipyard did not make it" in setup.servers.observe("mnist-test").failure


async def test_remove_deletes_it_and_a_gone_one_is_no_error(setup: Setup) -> None:
    await setup.servers.ensure(endpoint())
    await setup.servers.remove("mnist-test")
    assert [p for _, p, _, _ in setup.api.calls("DELETE")] == [f"{ISVCS}/mnist-test"]
    assert setup.api.services == {}
    await setup.servers.remove("mnist-test")
    assert setup.servers.observe("mnist-test") == Observation(ready=0)


async def test_an_api_server_out_of_reach_fails_the_endpoint_saying_so(tmp_path: Path) -> None:
    seen: list[Observation] = []

    async def observer(name: str, observation: Observation) -> None:
        seen.append(observation)

    async def config() -> str:
        return kubeconfig("http://127.0.0.1:9")  # nothing listens on the discard port

    servers = KServeModelServers(CLUSTER, config, FakeModelFiles(), tmp_path, poll_s=3600)
    servers.watch(observer)
    try:
        await servers.ensure(endpoint())
    finally:
        await servers.close()
    assert "the API server of cluster 'k8s-prod' could not be reached" in seen[-1].failure


async def test_a_kubeconfig_that_is_not_one_says_so(tmp_path: Path) -> None:
    async def config() -> str:
        return "just: text"

    servers = KServeModelServers(CLUSTER, config, FakeModelFiles(), tmp_path, poll_s=3600)
    try:
        await servers.ensure(endpoint())
    finally:
        await servers.close()
    assert "the kubeconfig of cluster 'k8s-prod' (credential 'kube') does not work" in \
        servers.observe("mnist-test").failure
