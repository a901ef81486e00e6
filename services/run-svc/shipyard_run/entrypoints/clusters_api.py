"""The ClusterService gRPC servicer."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from shipyard.contracts.run.v1 import clusters_pb2 as pb
from shipyard.contracts.run.v1 import clusters_pb2_grpc
from shipyard.kit.grpcio import caller_of
from shipyard_run.app.cluster_messages import changes_from_proto, cluster_from_proto, cluster_to_proto
from shipyard_run.app.clusters import Clusters

Context: TypeAlias = grpc.aio.ServicerContext
__all__ = ["ClusterServicer", "cluster_from_proto", "cluster_to_proto"]


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

    async def UpdateCluster(self, request: pb.UpdateClusterRequest, context: Context) -> pb.Cluster:
        changes = changes_from_proto(request.cluster, list(request.update_mask.paths))
        return cluster_to_proto(await self._clusters.update(caller_of(context), request.name, changes))

    async def DeleteCluster(
        self, request: pb.DeleteClusterRequest, context: Context
    ) -> pb.DeleteClusterResponse:
        await self._clusters.delete(caller_of(context), request.name)
        return pb.DeleteClusterResponse()
