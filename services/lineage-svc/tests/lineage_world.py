"""lineage-svc built for a test as production builds it (``bootstrap.compose``), on the kit's
in-memory store or on any other store, with a stream that replays at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias

from shipyard_lineage.adapters.store import COLLECTIONS, LineageUnitOfWork
from shipyard_lineage.app.rebuild import LastSequence, Replay
from shipyard_lineage.bootstrap import Adapters, Composed, compose
from shipyard_lineage.settings import LineageSettings

from shipyard.kit.store.port import Transaction
from shipyard.kit.store.unit_of_work import StoreUnitOfWorkFactory
from shipyard.kit.testing import FixedClock, RecordingUnitOfWorkFactory, memory_store

Units: TypeAlias = StoreUnitOfWorkFactory[LineageUnitOfWork]


async def replay_at_once(reset: Callable[[], Awaitable[None]]) -> None:
    """A bus with nothing to deliver again: the replay only resets."""
    await reset()


async def empty_stream() -> int:
    """The newest event of a stream with none."""
    return 0


def composed(units: Units, replay: Replay = replay_at_once, last_sequence: LastSequence = empty_stream
             ) -> Composed:
    """lineage-svc on ``units``, wired by the production composition root (whatever the
    environment says, no rebuild at start)."""
    settings = LineageSettings(lineage_rebuild=False)
    return compose(Adapters(units, replay, last_sequence, FixedClock()), settings)


async def memory_units(
        build: Callable[[Transaction], LineageUnitOfWork] = LineageUnitOfWork,
) -> RecordingUnitOfWorkFactory[LineageUnitOfWork]:
    """lineage-svc's real units of work on a fresh in-memory store."""
    return RecordingUnitOfWorkFactory(await memory_store(COLLECTIONS), build)
