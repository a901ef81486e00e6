"""lineage-svc's composition root: the projector on the bus, the queries and the rebuild on gRPC.

``build_adapters`` opens what the service runs on; ``compose`` (pure) builds and connects the use
cases, the consumer and the servicer; ``wire`` does both and registers them. The unit tests call
the same ``compose`` with their own adapters, so what they test is how production is wired.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shipyard.contracts.lineage.v1 import lineage_pb2, lineage_pb2_grpc
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.events import Event
from shipyard.kit.service import Runtime
from shipyard.kit.store.unit_of_work import StoreUnitOfWorkFactory
from shipyard_lineage.adapters.openlineage import run_events
from shipyard_lineage.adapters.store import COLLECTIONS, LineageUnitOfWork
from shipyard_lineage.app.dashboard import DashboardQueries
from shipyard_lineage.app.lineage import LineageQueries
from shipyard_lineage.app.openlineage import OpenLineageExport
from shipyard_lineage.app.ports import ProjectionUnitOfWorkFactory
from shipyard_lineage.app.projector import CONSUMER, ActivityQueries, Projector
from shipyard_lineage.app.rebuild import LastSequence, Projections, Replay
from shipyard_lineage.entrypoints.grpc_api import LineageServicer
from shipyard_lineage.settings import LineageSettings

SERVICE_NAMES = [lineage_pb2.DESCRIPTOR.services_by_name["LineageService"].full_name]
BATCH_SIZE = 256
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapters:
    """What lineage-svc's use cases run on."""

    projections: ProjectionUnitOfWorkFactory
    replay: Replay  # the bus's replay of the projector's consumer
    last_sequence: LastSequence  # the stream's newest event
    clock: Clock = utc_now


@dataclass(frozen=True)
class Consumer:
    """A durable consumer of the whole event stream, as the bus registers it."""

    name: str
    handle: Callable[[list[Event]], Awaitable[None]]
    batch_size: int
    from_start: bool  # forget its place and deliver the whole stream again


@dataclass(frozen=True)
class Composed:
    """lineage-svc, built: its use cases, the consumer feeding its projections, its servicer."""

    projector: Projector
    activity: ActivityQueries
    walks: LineageQueries
    dashboard: DashboardQueries
    export: OpenLineageExport
    projections: Projections
    consumer: Consumer
    servicer: LineageServicer


async def build_adapters(runtime: Runtime) -> Adapters:
    """The real adapters: units of work over the runtime's store, the runtime's bus. lineage-svc
    opens nothing of its own (the runtime closes its store and bus)."""
    bus = runtime.bus

    async def replay(reset: Callable[[], Awaitable[None]]) -> None:
        await bus.replay(CONSUMER, reset)

    units = StoreUnitOfWorkFactory(runtime.store, runtime.relay, LineageUnitOfWork)
    return Adapters(units, replay, bus.last_sequence)


def compose(adapters: Adapters, settings: LineageSettings) -> Composed:
    """Build the use cases on ``adapters`` and connect them as lineage-svc runs them."""
    uow = adapters.projections
    projector = Projector(uow)

    async def on_events(events: list[Event]) -> None:
        await projector.apply(events)

    activity, walks, dashboard = ActivityQueries(uow), LineageQueries(uow), DashboardQueries(uow)
    export = OpenLineageExport(uow, run_events)
    projections = Projections(uow, adapters.replay, adapters.last_sequence, adapters.clock)
    consumer = Consumer(CONSUMER, on_events, BATCH_SIZE, from_start=settings.lineage_rebuild)
    servicer = LineageServicer(activity, walks, dashboard, export, projections)
    return Composed(projector, activity, walks, dashboard, export, projections, consumer, servicer)



async def wire(runtime: Runtime) -> None:
    """Build lineage-svc on the runtime; register its consumer of every event and its servicer."""
    lineage = compose(await build_adapters(runtime), runtime.settings_as(LineageSettings))
    consumer = lineage.consumer
    if consumer.from_start:
        log.info("rebuilding the projections from the whole stream (SHIPYARD_LINEAGE_REBUILD)")
        await lineage.projections.clear()
    runtime.bus.consume(consumer.name, consumer.handle, subjects=">", batch_size=consumer.batch_size,
                        from_start=consumer.from_start)
    lineage_pb2_grpc.add_LineageServiceServicer_to_server(lineage.servicer, runtime.server)
    runtime.service_names.extend(SERVICE_NAMES)


__all__ = ["COLLECTIONS", "Adapters", "Composed", "build_adapters", "compose", "wire"]
