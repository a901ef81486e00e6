"""Test inferences and deployments on a Kubernetes cluster: where they may be served (the refusals,
naming the field), the cluster kept on the record and handed to the model servers, and the routing of
each endpoint to the model servers of where it is served."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
import yaml
from serving_fakes import FakeServers, fake_world
from shipyard_serving.adapters import endpoint_servers
from shipyard_serving.adapters.endpoint_servers import ClusterOpener, EndpointServers
from shipyard_serving.adapters.kserve_servers import KServeModelServers
from shipyard_serving.app.ports import Endpoint, ModelServers
from shipyard_serving.bootstrap import cluster_opener, cluster_storage_missing, storage_for
from shipyard_serving.domain.serving import ModelPin, Observation, ServingSpec, ServingStatus
from shipyard_serving.settings import ServingSettings

from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.kit import grpcio
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.s3 import S3BlobStore
from shipyard.kit.caller import Caller
from shipyard.kit.clients.clusters import ClusterClient, ClusterRecord
from shipyard.kit.clients.credentials import CredentialClient
from shipyard.kit.errors import FailedPrecondition, PermissionDenied, Unavailable
from shipyard.kit.testing import ALICE
from shipyard.kit.testing.clusters import FakeClusterClient
from shipyard.kit.testing.credentials import FakeCredentialClient

ERIN = Caller("erin", frozenset({"ml-engineer"}))
PAT = Caller("pat", frozenset({"production-engineer"}))
K8S = ClusterRecord("k8s-prod", "kubernetes", "olga", "ml", "kube", service_account="kserve-s3")
_CONTEXT = cast(grpc.aio.ServicerContext, None)  # what these calls read of a context: nothing


def run_svc() -> FakeClusterClient:
    """run-svc's clusters: a Kubernetes cluster, a Slurm one, and a Kubernetes one each user signs in to."""
    clusters = FakeClusterClient()
    clusters.add(K8S)
    clusters.add(ClusterRecord("hpc", "slurm", "olga"))
    clusters.add(ClusterRecord("k8s-own", "kubernetes", "olga", "ml", "kube", login_required=True))
    return clusters


class _Unisolated(FakeServers):
    def isolation_missing(self) -> str:
        return "bubblewrap is not installed"


async def test_an_inference_on_a_cluster_keeps_its_cluster_and_its_servers_are_told() -> None:
    world = await fake_world(clusters=run_svc())
    made = await world.inferences.create(ALICE, "mnist-test", ModelPin("mnist"), ServingSpec(),
                                         cluster="k8s-prod")
    assert made.cluster == "k8s-prod"
    assert world.servers.running["mnist-test"].cluster == "k8s-prod"
    assert (await world.inferences.get("mnist-test")).cluster == "k8s-prod"
    [created] = world.events(events_pb2.InferenceCreated)
    assert created.inference.cluster == "k8s-prod"
    await world.inferences.delete(ALICE, "mnist-test")
    assert world.servers.removed_on == {"mnist-test": "k8s-prod"}


async def test_here_is_the_default_and_local_names_it() -> None:
    world = await fake_world(clusters=run_svc())
    made = await world.inferences.create(ALICE, "t", ModelPin("mnist"), ServingSpec(), cluster="local")
    assert made.cluster == "" and world.servers.running["t"].cluster == ""


@pytest.mark.parametrize(("cluster", "storage_missing", "said"), [
    ("nowhere", "", "no cluster named 'nowhere'"),
    ("hpc", "", "is a slurm cluster; test inferences and deployments run here or on a Kubernetes cluster"),
    ("k8s-own", "", "needs each user's own login"),
    ("k8s-prod", "serving-svc's blob store is local files",
     "cannot serve models from here: serving-svc's blob"),
])
async def test_a_cluster_that_cannot_serve_models_is_refused_naming_the_field(
        cluster: str, storage_missing: str, said: str) -> None:
    world = await fake_world(clusters=run_svc(), storage_missing=storage_missing)
    with pytest.raises(FailedPrecondition) as refused:
        await world.inferences.create(ALICE, "t", ModelPin("mnist"), ServingSpec(), cluster=cluster)
    assert refused.value.field == "inference.cluster" and said in refused.value.problem
    await world.catalog.publish(ERIN, "mnist-v3", ModelPin("mnist", 3), ServingSpec())
    with pytest.raises(FailedPrecondition) as refused:
        await world.deployments.create(PAT, "live", "mnist-v3", ServingSpec(), frozenset(), cluster=cluster)
    assert refused.value.field == "deployment.cluster" and said in refused.value.problem
    assert (world.servers.running, await world.stored_inferences(), await world.stored_deployments()) == (
        {}, [], [])


async def test_a_cluster_isolates_model_servers_where_this_machine_cannot() -> None:
    servers = _Unisolated()
    world = await fake_world(servers, clusters=run_svc())
    with pytest.raises(FailedPrecondition, match="cannot be isolated"):
        await world.inferences.create(ALICE, "here", ModelPin("mnist"), ServingSpec())
    await world.inferences.create(ALICE, "there", ModelPin("mnist"), ServingSpec(), cluster="k8s-prod")
    assert list(servers.running) == ["there"]


async def test_a_deployment_stays_on_its_cluster_through_swaps_and_restarts() -> None:
    world = await fake_world(_Unisolated(), clusters=run_svc())
    for version in (2, 3):
        await world.catalog.publish(ERIN, f"mnist-v{version}", ModelPin("mnist", version), ServingSpec())
    made = await world.deployments.create(PAT, "live", "mnist-v2", ServingSpec(), frozenset(),
                                          cluster="k8s-prod")
    assert made.cluster == "k8s-prod"
    await world.servers.report("live", Observation(ready=1, serving="mnist@2", url="http://live.ml.example"))
    swapped = await world.deployments.update(PAT, "live", "mnist-v3", None, ServingSpec(), frozenset())
    assert swapped.cluster == "k8s-prod" and world.servers.running["live"].cluster == "k8s-prod"
    after = FakeServers()
    await world.restarted(after).recover()
    assert after.running["live"] == Endpoint("live", swapped.model, swapped.spec, "k8s-prod")
    await world.deployments.delete(PAT, "live")
    assert world.servers.removed_on == {"live": "k8s-prod"}


async def test_what_the_cluster_waits_for_is_the_status_reason() -> None:
    world = await fake_world(clusters=run_svc())
    await world.inferences.create(ALICE, "t", ModelPin("mnist"), ServingSpec(), cluster="k8s-prod")
    waiting = "KServe: PredictorReady is Unknown (RevisionMissing: …)"
    await world.servers.report("t", Observation(ready=0, waiting=waiting))
    found = await world.inferences.get("t")
    assert (found.status, found.status_reason) == (ServingStatus.STARTING, waiting)
    await world.catalog.publish(ERIN, "mnist-v3", ModelPin("mnist", 3), ServingSpec())
    await world.deployments.create(PAT, "live", "mnist-v3", ServingSpec(), frozenset(), cluster="k8s-prod")
    await world.servers.report("live", Observation(ready=0, waiting=waiting))
    live = await world.deployments.get("live")
    assert (live.status, live.status_reason) == (ServingStatus.STARTING, waiting)


async def test_a_failed_swap_goes_back_to_what_served_before_and_asks_the_cluster_for_it_again() -> None:
    world = await fake_world(clusters=run_svc())
    for version in (2, 3):
        await world.catalog.publish(ERIN, f"mnist-v{version}", ModelPin("mnist", version), ServingSpec())
    made = await world.deployments.create(PAT, "live", "mnist-v2", ServingSpec(), frozenset(),
                                          cluster="k8s-prod")
    await world.servers.report("live", Observation(ready=1, serving="mnist@2", url="http://live.ml.example"))
    await world.deployments.update(PAT, "live", "mnist-v3", None, ServingSpec(max_concurrency=4),
                                   frozenset({"max_concurrency"}))
    assert world.servers.running["live"].model.version == 3
    await world.servers.report("live", Observation(ready=1, serving="mnist@2", url="http://live.ml.example",
                                                   failure="the model could not be loaded on the cluster"))
    failed = await world.deployments.get("live")
    assert (failed.status, failed.model, failed.spec, failed.catalog_entry) == (
        ServingStatus.FAILED, made.model, made.spec, "mnist-v2")
    assert "mnist@2 still serves" in failed.status_reason
    # The InferenceService is asked for the previous spec again: KServe stops rolling the failing one out.
    assert world.servers.running["live"] == Endpoint("live", made.model, made.spec, "k8s-prod")


async def test_routes_to_kserves_own_runtime_name_the_model_it_answers_at() -> None:
    world = await fake_world(clusters=run_svc())
    await world.inferences.create(ALICE, "sk", ModelPin("mnist"), ServingSpec(framework="sklearn"),
                                  cluster="k8s-prod")
    await world.inferences.create(ALICE, "builtin", ModelPin("mnist"), ServingSpec(), cluster="k8s-prod")
    for name in ("sk", "builtin"):
        await world.servers.report(name, Observation(ready=1, serving="mnist@3", url=f"http://{name}.ml"))
    servicer = world.service.servicer
    sk = await servicer.GetRoutes(pb.GetRoutesRequest(name="sk"), _CONTEXT)
    assert (sk.model, sk.upstream_model, sk.base_url) == ("mnist", "sk", "http://sk.ml")
    builtin = await servicer.GetRoutes(pb.GetRoutesRequest(name="builtin"), _CONTEXT)
    assert (builtin.model, builtin.upstream_model) == ("mnist", "")  # Shipyard's server: the model's name


async def test_the_manifest_of_an_endpoint_on_a_cluster_is_what_is_applied_there() -> None:
    world = await fake_world(clusters=run_svc())
    await world.inferences.create(ALICE, "there", ModelPin("mnist"), ServingSpec(), cluster="k8s-prod")
    await world.inferences.create(ALICE, "here", ModelPin("mnist"), ServingSpec())
    servicer = world.service.servicer

    async def manifest(name: str, namespace: str = "") -> dict[str, Any]:
        token = grpcio._CALLER.set(ALICE)  # as the server's Authentication sets it for a verified call
        try:
            found = await servicer.GetKubernetesManifest(
                pb.GetKubernetesManifestRequest(kind="inference", name=name, namespace=namespace), _CONTEXT)
        finally:
            grpcio._CALLER.reset(token)
        return cast(dict[str, Any], yaml.safe_load(found.yaml))

    there = await manifest("there")
    assert there["metadata"]["namespace"] == "ml"  # the cluster's namespace and ServiceAccount
    assert there["spec"]["predictor"]["serviceAccountName"] == "kserve-s3"
    [container] = there["spec"]["predictor"]["containers"]
    [uri] = [e["value"] for e in container["env"] if e["name"] == "STORAGE_URI"]
    assert uri == storage_for(world.settings.default_blob_url())("sha256:mnist-3")  # where files are laid out
    assert (await manifest("there", "other"))["metadata"]["namespace"] == "other"  # asked for: it wins
    here = await manifest("here")
    assert here["metadata"]["namespace"] == "shipyard"
    assert "serviceAccountName" not in here["spec"]["predictor"]


async def test_run_svc_alone_hears_what_a_cluster_serves_before_deleting_it() -> None:
    world = await fake_world(clusters=run_svc())
    await world.inferences.create(ALICE, "t", ModelPin("mnist"), ServingSpec(), cluster="k8s-prod")
    await world.inferences.create(ALICE, "here", ModelPin("mnist"), ServingSpec())
    await world.catalog.publish(ERIN, "mnist-v3", ModelPin("mnist", 3), ServingSpec())
    await world.deployments.create(PAT, "live", "mnist-v3", ServingSpec(), frozenset(), cluster="k8s-prod")
    await world.servers.report("live", Observation(ready=0, failure="the model could not be loaded"))
    servicer = world.service.servicer

    async def served_on(caller: Caller, cluster: str) -> pb.ClusterEndpoints:
        token = grpcio._CALLER.set(caller)
        try:
            request = pb.ListClusterEndpointsRequest(cluster=cluster)
            return await servicer.ListClusterEndpoints(request, _CONTEXT)
        finally:
            grpcio._CALLER.reset(token)

    run_svc_caller = Caller("olga", frozenset({"operator"}), via="run-svc")
    found = await served_on(run_svc_caller, "k8s-prod")
    assert (list(found.inferences), list(found.deployments)) == (["t"], ["live"])  # a failed one too
    assert (await world.deployments.get("live")).status is ServingStatus.FAILED
    empty = await served_on(run_svc_caller, "k8s-other")
    assert (list(empty.inferences), list(empty.deployments)) == ([], [])
    with pytest.raises(PermissionDenied, match="only run-svc"):
        await served_on(Caller("olga", frozenset({"operator"}), via="gateway"), "k8s-prod")


async def test_a_clusters_kubeconfig_is_read_from_its_record_as_it_is_now(tmp_path: Path) -> None:
    clusters, credentials = run_svc(), FakeCredentialClient()
    credentials.add("olga", "kube", "first: kubeconfig", type="token")
    credentials.add("olga", "kube-2", "second: kubeconfig", type="token")
    blobs = S3BlobStore("127.0.0.1:9", "key", "secret", "shipyard")
    open_cluster = cluster_opener(cast(ClusterClient, clusters), cast(CredentialClient, credentials), blobs,
                                  ServingSettings(data_dir=tmp_path))
    servers = await open_cluster("k8s-prod")
    assert isinstance(servers, KServeModelServers)
    assert await servers._kubeconfig() == "first: kubeconfig"  # what it connects with, and reconnects with:
    clusters.add(replace(K8S, kubeconfig_credential="kube-2"))  # the operator points the cluster elsewhere
    assert await servers._kubeconfig() == "second: kubeconfig"
    assert credentials.calls == [("olga", "olga", "kube"), ("olga", "olga", "kube-2")]


# --- routing: each endpoint to the model servers of where it is served --------------------------------


class _Told(FakeServers):
    """Says (``ensured``) when it was first asked to serve an endpoint."""

    def __init__(self, ensured: asyncio.Event) -> None:
        super().__init__()
        self.ensured = ensured

    async def ensure(self, endpoint: Endpoint) -> None:
        await super().ensure(endpoint)
        self.ensured.set()


def opener(opened: dict[str, _Told], fails: list[str] | None = None,
           ensured: asyncio.Event | None = None) -> ClusterOpener:
    async def open_cluster(name: str) -> ModelServers:
        if fails:
            raise Unavailable(fails.pop(0))
        opened[name] = _Told(ensured or asyncio.Event())
        return opened[name]

    return open_cluster


async def test_endpoints_go_here_or_to_their_clusters_servers_opened_once() -> None:
    local, opened = FakeServers(), dict[str, _Told]()
    servers = EndpointServers(local, opener(opened))
    heard: list[tuple[str, Observation]] = []

    async def observer(name: str, seen: Observation) -> None:
        heard.append((name, seen))

    servers.watch(observer)
    spec = ServingSpec().checked()
    await servers.ensure(Endpoint("here", ModelPin("mnist", 3), spec))
    await servers.ensure(Endpoint("there", ModelPin("mnist", 3), spec, "k8s-prod"))
    await servers.ensure(Endpoint("also-there", ModelPin("mnist", 2), spec, "k8s-prod"))
    assert list(local.running) == ["here"]
    assert list(opened) == ["k8s-prod"] and sorted(opened["k8s-prod"].running) == ["also-there", "there"]
    at_cluster = Observation(ready=1, serving="mnist@3", url="http://there.ml.example")
    await opened["k8s-prod"].report("there", at_cluster)  # the cluster's servers tell the same observers
    assert heard == [("there", at_cluster)] and servers.observe("there") == at_cluster
    assert servers.observe("here") == Observation(ready=0)
    await servers.remove("there", "k8s-prod")
    assert opened["k8s-prod"].removed == ["there"] and local.removed == []
    await servers.close()


async def test_a_cluster_out_of_reach_is_waited_for_and_opened_later(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint_servers, "RETRY_S", (0.01,))
    local, opened = FakeServers(), dict[str, _Told]()
    ensured = asyncio.Event()
    servers = EndpointServers(local, opener(opened, fails=["run-svc is restarting"], ensured=ensured))
    endpoint = Endpoint("there", ModelPin("mnist", 3), ServingSpec().checked(), "k8s-prod")
    await servers.ensure(endpoint)
    assert "cluster 'k8s-prod' cannot be reached: run-svc is restarting" in servers.observe("there").waiting
    async with asyncio.timeout(10):
        await ensured.wait()
    assert list(opened["k8s-prod"].running) == ["there"]
    assert servers.observe("there") == Observation(ready=0)
    await servers.close()


async def test_the_isolation_rule_is_this_machines() -> None:
    servers = EndpointServers(_Unisolated(), opener({}))
    assert servers.isolation_missing() == "bubblewrap is not installed"


def test_only_an_s3_blob_store_lets_a_clusters_kserve_read_the_model_files(tmp_path: Path) -> None:
    assert "SHIPYARD_BLOB_URL s3://" in cluster_storage_missing(LocalBlobStore(tmp_path))
    assert cluster_storage_missing(S3BlobStore("127.0.0.1:9", "key", "secret", "shipyard")) == ""
