"""The client of serving-svc's internal ListClusterEndpoints, for run-svc: what is served on a cluster,
asked before the cluster is deleted."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from shipyard.contracts.serving.v1 import serving_pb2, serving_pb2_grpc
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import error_of

SERVING_SVC = "serving-svc"  # its one name: the audience of the caller assertions this client signs
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ClusterEndpoints:
    """The test inferences and deployments served on a cluster, by name."""

    inferences: list[str]
    deployments: list[str]


class ServingClient:
    """serving-svc's ServingService, each call made on behalf of a caller (signed as this service)."""

    def __init__(self, address: str, assertions: CallerAssertions) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._assertions = assertions
        self._serving = serving_pb2_grpc.ServingServiceStub(self._channel)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def endpoints_on(self, caller: Caller, cluster: str) -> ClusterEndpoints:
        """What is served on ``cluster``; Unavailable when serving-svc cannot be reached."""
        try:
            found = await self._serving.ListClusterEndpoints(
                serving_pb2.ListClusterEndpointsRequest(cluster=cluster),
                metadata=self._assertions.metadata(caller, SERVING_SVC), timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"the endpoints on cluster {cluster}") from None
        return ClusterEndpoints(list(found.inferences), list(found.deployments))
