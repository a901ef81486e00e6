"""The composition root: what production registers on the bus is the projector, with the batch
size and start position the settings ask for."""

from __future__ import annotations

from lineage_events import project_created
from lineage_world import Units, empty_stream, replay_at_once
from shipyard_lineage.app.ports import ActivityQuery
from shipyard_lineage.app.projector import CONSUMER
from shipyard_lineage.bootstrap import BATCH_SIZE, Adapters, Composed, compose
from shipyard_lineage.settings import LineageSettings

from shipyard.kit.testing import FixedClock


def test_the_consumer_is_the_projectors_durable_reading_on_from_where_it_was(world: Composed) -> None:
    assert (world.consumer.name, world.consumer.batch_size, world.consumer.from_start) == (
        CONSUMER, BATCH_SIZE, False)


def test_a_rebuild_at_start_reads_the_stream_from_its_start(units: Units) -> None:
    adapters = Adapters(units, replay_at_once, empty_stream, FixedClock())
    assert compose(adapters, LineageSettings(lineage_rebuild=True)).consumer.from_start


async def test_what_the_bus_delivers_reaches_the_projections(world: Composed) -> None:
    event = project_created("mnist", sequence=3)
    await world.consumer.handle([event])
    assert [a.event_id for a in await world.activity.list(ActivityQuery(limit=10))] == [event.id]
    assert (await world.projections.status()).last_sequence == 3
