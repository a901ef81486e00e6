"""The client of run-svc's clusters (it owns them), for serving-svc: a cluster's record, read to serve
test inferences and deployments on a Kubernetes cluster's KServe."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from shipyard.contracts.run.v1 import clusters_pb2, clusters_pb2_grpc
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import error_of

RUN_SVC = "run-svc"  # its one name: the audience of the caller assertions this client signs
TIMEOUT_S = 10.0
KINDS = {
    clusters_pb2.CLUSTER_KIND_SLURM: "slurm",
    clusters_pb2.CLUSTER_KIND_KUBERNETES: "kubernetes",
    clusters_pb2.CLUSTER_KIND_LSF: "lsf",
}


@dataclass(frozen=True)
class ClusterRecord:
    """A cluster as run-svc keeps it, in what other services need of it: ``kind`` as the CLI names it
    (``slurm``, ``kubernetes``, ``lsf``), ``owner`` the operator who added it (whose credential
    ``kubeconfig_credential`` is), ``service_account`` KServe's model servers' account ("" = the
    namespace's default)."""

    name: str
    kind: str
    owner: str
    namespace: str = ""
    kubeconfig_credential: str = ""
    login_required: bool = False
    service_account: str = ""


class ClusterClient:
    """run-svc's ClusterService, each call made on behalf of a caller."""

    def __init__(self, address: str, assertions: CallerAssertions) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._assertions = assertions
        self._clusters = clusters_pb2_grpc.ClusterServiceStub(self._channel)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def get(self, caller: Caller, name: str) -> ClusterRecord:
        """The cluster ``name``; NotFound naming it when run-svc has none."""
        try:
            found = await self._clusters.GetCluster(clusters_pb2.GetClusterRequest(name=name),
                                                    metadata=self._assertions.metadata(caller, RUN_SVC),
                                                    timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"cluster {name}") from None
        return ClusterRecord(found.name, KINDS.get(found.kind, "unspecified"), found.owner, found.namespace,
                             found.kubeconfig_credential, found.login_required, found.service_account)
