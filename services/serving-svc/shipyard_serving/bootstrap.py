"""serving-svc's composition root: the store, repo-svc's models, run-svc's clusters, the model servers
(here, and KServe on Kubernetes clusters), the gRPC API.

``build_adapters`` opens what the service runs on (each closed by the runtime when it stops);
``compose`` (pure) builds the use cases, connects them to the model servers as they run and builds
the servicer; ``wire`` does both and registers them. The unit tests call the same ``compose`` with
their own adapters, so what they test is how production is wired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shipyard.contracts.serving.v1 import serving_pb2, serving_pb2_grpc
from shipyard.kit.blob.factory import open_blob_store
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.s3 import S3BlobStore
from shipyard.kit.bubblewrap import isolation
from shipyard.kit.caller import Caller
from shipyard.kit.clients.clusters import ClusterClient
from shipyard.kit.clients.credentials import CredentialClient
from shipyard.kit.clients.repos import RepoClient
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import FailedPrecondition
from shipyard.kit.service import Runtime
from shipyard_serving.adapters.endpoint_servers import ClusterOpener, EndpointServers
from shipyard_serving.adapters.local_servers import LocalModelServers
from shipyard_serving.adapters.store import COLLECTIONS, unit_of_work_factory
from shipyard_serving.app.deployments import Catalog, Deployments
from shipyard_serving.app.endpoints import Placement
from shipyard_serving.app.inferences import Inferences
from shipyard_serving.app.ports import ModelServers, RepoReader, Units
from shipyard_serving.domain.events import SYSTEM
from shipyard_serving.entrypoints.grpc_api import ServingServicer
from shipyard_serving.settings import ServingSettings

SERVICE_NAMES = [serving_pb2.DESCRIPTOR.services_by_name["ServingService"].full_name]
# SHIPYARD_FAILPOINTS=serving.sandbox=unavailable: act as on a machine without bubblewrap (tests).
SANDBOX_FAILPOINT = "serving.sandbox"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapters:
    """What serving-svc's use cases run on."""

    uow: Units
    repos: RepoReader
    servers: ModelServers
    clock: Clock = utc_now
    placement: Placement = field(default_factory=Placement)  # where endpoints may be served


@dataclass(frozen=True)
class Composed:
    """serving-svc, built: its use cases and its servicer."""

    inferences: Inferences
    catalog: Catalog
    deployments: Deployments
    servicer: ServingServicer

    async def recover(self) -> None:
        """After a restart: start the model servers of every live inference and deployment."""
        await self.inferences.recover()
        await self.deployments.recover()


def storage_for(blob_url: str) -> Callable[[str], str]:
    """Where a cluster's KServe finds a version's files: beside the blobs on S3, or the data volume
    serving-svc lays versions out on."""
    parts = urlsplit(blob_url)
    if parts.scheme == "s3":
        bucket_and_prefix = parts.path.strip("/")
        return lambda digest: f"s3://{bucket_and_prefix}/serving/models/{digest}/"
    return lambda digest: f"pvc://shipyard-data/serving/models/{digest}/"


def compose(adapters: Adapters, settings: ServingSettings) -> Composed:
    """Build the use cases on ``adapters`` and connect them as serving-svc runs them: what the model
    servers do moves the status of their inference or deployment."""
    uow, servers, clock = adapters.uow, adapters.servers, adapters.clock
    inferences = Inferences(uow, adapters.repos, servers, clock=clock, single_user=settings.single_user,
                            placement=adapters.placement)
    catalog = Catalog(uow, adapters.repos, clock=clock)
    deployments = Deployments(uow, servers, clock=clock, single_user=settings.single_user,
                              placement=adapters.placement)
    servers.watch(inferences.follow)
    servers.watch(deployments.follow)
    servicer = ServingServicer(inferences, catalog, deployments, storage_for(settings.default_blob_url()),
                               adapters.placement)
    return Composed(inferences, catalog, deployments, servicer)



def cluster_storage_missing(blobs: BlobStore) -> str:
    """Why a cluster's KServe cannot read model files from this blob store; "" when it can (S3)."""
    if isinstance(blobs, S3BlobStore):
        return ""
    return ("KServe reads the model files from the S3 blob store, and serving-svc's blob store is local "
            "files (SHIPYARD_BLOB_URL s3://…)")


def cluster_opener(clusters: ClusterClient, credentials: CredentialClient, blobs: BlobStore,
                   settings: ServingSettings) -> ClusterOpener:
    """Opens a Kubernetes cluster's KServe model servers from its record at run-svc: its kubeconfig is
    its operator's stored credential (repo-svc lends it to serving-svc), read, with the record again, when
    serving-svc connects and reconnects (an operator may replace either)."""
    async def open_cluster(name: str) -> ModelServers:
        if refusal := cluster_storage_missing(blobs):
            raise FailedPrecondition(refusal)
        assert isinstance(blobs, S3BlobStore)
        record = await clusters.get(SYSTEM, name)
        # Imported here: the kubernetes client is slow to import, and most serving-svcs serve no cluster.
        from shipyard_serving.adapters.kserve_servers import KServeModelServers
        from shipyard_serving.adapters.model_files import S3ModelFiles

        async def kubeconfig() -> str:
            current = await clusters.get(SYSTEM, name)
            owner = Caller(current.owner, frozenset())
            return (await credentials.open(owner, current.owner, current.kubeconfig_credential)).secret

        files = S3ModelFiles(blobs, storage_for(settings.default_blob_url()))
        root = settings.service_dir().resolve() / "clusters" / name
        return KServeModelServers(record, kubeconfig, files, root)

    return open_cluster


async def build_adapters(runtime: Runtime) -> Adapters:
    """The real adapters: units of work over the runtime's store, repo-svc's and run-svc's clients, the
    blob store, the local model servers on it and KServe on the clusters; the runtime closes them
    (servers first) when it stops."""
    settings = runtime.settings_as(ServingSettings)
    blobs = open_blob_store(settings.default_blob_url())
    await blobs.open()
    runtime.close_on_stop(blobs.close)
    repos = RepoClient(settings.repo_addr, runtime.assertions)
    runtime.close_on_stop(repos.close)
    clusters = ClusterClient(settings.run_addr, runtime.assertions)
    runtime.close_on_stop(clusters.close)
    credentials = CredentialClient(settings.repo_addr, runtime.assertions)
    runtime.close_on_stop(credentials.close)
    local = LocalModelServers(blobs, settings.service_dir().resolve(), isolation(settings, SANDBOX_FAILPOINT),
                              scale_down_delay_s=settings.serving_scale_down_delay_s)
    servers = EndpointServers(local, cluster_opener(clusters, credentials, blobs, settings))
    runtime.close_on_stop(servers.close)
    if missing := servers.isolation_missing():
        whose = "anyone's (single-user mode)" if settings.single_user else "only operators'"
        log.warning("model servers cannot be isolated here: %s; %s start, sharing the machine",
                    missing, whose)
    uow = unit_of_work_factory(runtime.store, runtime.relay)
    return Adapters(uow, repos, servers, placement=Placement(clusters, cluster_storage_missing(blobs)))


async def wire(runtime: Runtime) -> None:
    """Build serving-svc on the runtime; register ServingService and start the model servers of live
    inferences and deployments."""
    serving = compose(await build_adapters(runtime), runtime.settings_as(ServingSettings))
    serving_pb2_grpc.add_ServingServiceServicer_to_server(serving.servicer, runtime.server)
    runtime.service_names.extend(SERVICE_NAMES)
    runtime.tasks.append(serving.recover)


__all__ = ["COLLECTIONS", "Adapters", "Composed", "build_adapters", "compose", "wire"]
