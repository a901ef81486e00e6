"""The ClusterService gRPC servicer."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from shipyard.contracts.run.v1 import clusters_pb2 as pb
from shipyard.contracts.run.v1 import clusters_pb2_grpc
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.grpcio import caller_of
from shipyard.kit.timestamps import timestamp
from shipyard_run.app.clusters import Clusters
from shipyard_run.domain.clusters import Cluster, ClusterKind

Context: TypeAlias = grpc.aio.ServicerContext
KINDS = {
    pb.CLUSTER_KIND_SLURM: ClusterKind.SLURM,
    pb.CLUSTER_KIND_KUBERNETES: ClusterKind.KUBERNETES,
    pb.CLUSTER_KIND_LSF: ClusterKind.LSF,
}
KIND_NUMBERS = {kind: number for number, kind in KINDS.items()}
SHARED = (
    "name",
    "description",
    "host",
    "ssh_user",
    "credential",
    "partition",
    "queue",
    "work_dir",
    "namespace",
    "kubeconfig_credential",
    "login_required",
    "gpus",
    "max_workers",
    "ssh_host_key",
    "container_runtime",
    "on_login_node",
    "service_account",
    "slurmrestd_url",
)


def cluster_from_proto(message: pb.Cluster) -> Cluster:
    """The domain's cluster from the API's (kind required: InvalidArgument naming it)."""
    kind = KINDS.get(message.kind)
    if kind is None:
        raise InvalidArgument("cluster.kind", "must be slurm, kubernetes or lsf")
    fields = {name: getattr(message, name) for name in SHARED}
    return Cluster(kind=kind, ssh_port=message.ssh_port or 22, **fields)


def cluster_to_proto(cluster: Cluster) -> pb.Cluster:
    """The API's view of a cluster."""
    fields = {name: getattr(cluster, name) for name in SHARED}
    ssh_port = cluster.ssh_port if cluster.kind.over_ssh else 0
    return pb.Cluster(
        kind=KIND_NUMBERS[cluster.kind],
        ssh_port=ssh_port,
        owner=cluster.owner,
        create_time=timestamp(cluster.create_time),
        **fields,
    )


class ClusterServicer(clusters_pb2_grpc.ClusterServiceServicer):
    """Clusters over gRPC."""

    def __init__(self, clusters: Clusters) -> None:
        self._clusters = clusters

    async def AddCluster(self, request: pb.AddClusterRequest, context: Context) -> pb.Cluster:
        added = await self._clusters.add(caller_of(context), cluster_from_proto(request.cluster))
        return cluster_to_proto(added)

    async def GetCluster(self, request: pb.GetClusterRequest, context: Context) -> pb.Cluster:
        return cluster_to_proto(await self._clusters.get(request.name))

    async def ListClusters(
        self, request: pb.ListClustersRequest, context: Context
    ) -> pb.ListClustersResponse:
        return pb.ListClustersResponse(clusters=[cluster_to_proto(c) for c in await self._clusters.list()])

    async def DeleteCluster(
        self, request: pb.DeleteClusterRequest, context: Context
    ) -> pb.DeleteClusterResponse:
        await self._clusters.delete(caller_of(context), request.name)
        return pb.DeleteClusterResponse()
