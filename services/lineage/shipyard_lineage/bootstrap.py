"""Wires lineage-svc: the projector on the bus, the queries on gRPC."""

from __future__ import annotations

from shipyard.contracts.lineage.v1 import lineage_pb2, lineage_pb2_grpc
from shipyard.kit.events import Event
from shipyard.kit.service import Runtime
from shipyard_lineage.adapters.store import COLLECTIONS, StoreProjectionsFactory
from shipyard_lineage.app.projector import CONSUMER, ActivityQueries, Projector
from shipyard_lineage.entrypoints.grpc_api import LineageServicer

SERVICE_NAMES = [lineage_pb2.DESCRIPTOR.services_by_name["LineageService"].full_name]


async def wire(runtime: Runtime) -> None:
    """Register the consumer of every event and the LineageService servicer."""
    uow = StoreProjectionsFactory(runtime.store)
    projector = Projector(uow)

    async def on_events(events: list[Event]) -> None:
        await projector.apply(events)

    runtime.bus.consume(CONSUMER, on_events, subjects=">", batch_size=256)
    lineage_pb2_grpc.add_LineageServiceServicer_to_server(LineageServicer(ActivityQueries(uow)),
                                                          runtime.server)
    runtime.service_names.extend(SERVICE_NAMES)


__all__ = ["COLLECTIONS", "wire"]
