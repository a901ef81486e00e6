"""Wires serving-svc: the store, repo-svc's models, the local model servers, the gRPC API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from shipyard.contracts.serving.v1 import serving_pb2, serving_pb2_grpc
from shipyard.kit.blob.factory import open_blob_store
from shipyard.kit.bubblewrap import isolation
from shipyard.kit.service import Runtime
from shipyard_serving.adapters.local_servers import LocalModelServers
from shipyard_serving.adapters.repos import GrpcModelReader
from shipyard_serving.adapters.store import COLLECTIONS, unit_of_work_factory
from shipyard_serving.app.deployments import Catalog, Deployments
from shipyard_serving.app.inferences import Inferences
from shipyard_serving.entrypoints.grpc_api import ServingServicer

SERVICE_NAMES = [serving_pb2.DESCRIPTOR.services_by_name["ServingService"].full_name]
# SHIPYARD_FAILPOINTS=serving.sandbox=unavailable: act as on a machine without bubblewrap (tests).
SANDBOX_FAILPOINT = "serving.sandbox"
log = logging.getLogger(__name__)



def storage_for(blob_url: str) -> Callable[[str], str]:
    """Where a cluster's KServe finds a version's files: beside the blobs on S3, or the data volume
    serving-svc lays versions out on."""
    parts = urlsplit(blob_url)
    if parts.scheme == "s3":
        bucket_and_prefix = parts.path.strip("/")
        return lambda digest: f"s3://{bucket_and_prefix}/serving/models/{digest}/"
    return lambda digest: f"pvc://shipyard-data/serving/models/{digest}/"


async def wire(runtime: Runtime) -> None:
    """Register the ServingService servicer; start the model servers of live inferences and
    deployments."""
    settings = runtime.settings
    blobs = open_blob_store(settings.default_blob_url())
    await blobs.open()
    servers = LocalModelServers(blobs, (settings.data_dir / "serving").resolve(),
                                isolation(settings, SANDBOX_FAILPOINT),
                                scale_down_delay_s=settings.serving_scale_down_delay_s)
    if missing := servers.isolation_missing():
        whose = "anyone's (single-user mode)" if settings.single_user else "only operators'"
        log.warning("model servers cannot be isolated here: %s; %s start, sharing the machine",
                    missing, whose)
    uow = unit_of_work_factory(runtime.store, runtime.relay)
    models = GrpcModelReader(settings.repo_addr, runtime.assertions)
    inferences = Inferences(uow, models, servers, single_user=settings.single_user)
    deployments = Deployments(uow, servers, single_user=settings.single_user)
    servers.watch(inferences.follow)
    servers.watch(deployments.follow)
    servicer = ServingServicer(
        inferences, Catalog(uow, models), deployments, storage_for(settings.default_blob_url())
    )
    serving_pb2_grpc.add_ServingServiceServicer_to_server(servicer, runtime.server)
    runtime.service_names.extend(SERVICE_NAMES)

    async def serve_models() -> None:
        await inferences.recover()
        await deployments.recover()
        try:
            await asyncio.Event().wait()
        finally:
            await servers.close()
            await blobs.close()

    runtime.tasks.append(serve_models)


__all__ = ["COLLECTIONS", "wire"]
