"""Wires lineage-svc: the projector on the bus, the queries and the rebuild on gRPC."""

from __future__ import annotations

import logging

from shipyard.contracts.lineage.v1 import lineage_pb2, lineage_pb2_grpc
from shipyard.kit.events import Event
from shipyard.kit.service import Runtime
from shipyard_lineage.adapters.openlineage import run_events
from shipyard_lineage.adapters.store import COLLECTIONS, StoreProjectionsFactory
from shipyard_lineage.app.dashboard import DashboardQueries
from shipyard_lineage.app.lineage import LineageQueries
from shipyard_lineage.app.openlineage import OpenLineageExport
from shipyard_lineage.app.projector import CONSUMER, ActivityQueries, Projector
from shipyard_lineage.app.rebuild import Projections
from shipyard_lineage.entrypoints.grpc_api import LineageServicer

SERVICE_NAMES = [lineage_pb2.DESCRIPTOR.services_by_name["LineageService"].full_name]
log = logging.getLogger(__name__)


async def wire(runtime: Runtime) -> None:
    """Register the consumer of every event and the LineageService servicer."""
    uow = StoreProjectionsFactory(runtime.store)
    projector = Projector(uow)
    bus = runtime.bus

    async def on_events(events: list[Event]) -> None:
        await projector.apply(events)

    async def replay(reset: object) -> None:
        await bus.replay(CONSUMER, reset)  # type: ignore[arg-type]

    projections = Projections(uow, replay, bus.last_sequence)
    if runtime.settings.lineage_rebuild:
        log.info("rebuilding the projections from the whole stream (SHIPYARD_LINEAGE_REBUILD)")
        await projections.clear()
    bus.consume(CONSUMER, on_events, subjects=">", batch_size=256,
                from_start=runtime.settings.lineage_rebuild)
    servicer = LineageServicer(ActivityQueries(uow), LineageQueries(uow), DashboardQueries(uow),
                               OpenLineageExport(uow, run_events), projections)
    lineage_pb2_grpc.add_LineageServiceServicer_to_server(servicer, runtime.server)
    runtime.service_names.extend(SERVICE_NAMES)


__all__ = ["COLLECTIONS", "wire"]
