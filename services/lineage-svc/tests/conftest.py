"""Fixtures of lineage-svc's unit tests: its real units of work on the kit's in-memory store, and
the service composed on them as production composes it."""

from __future__ import annotations

import pytest
from lineage_world import Units, composed, memory_units
from shipyard_lineage.adapters.store import LineageUnitOfWork
from shipyard_lineage.bootstrap import Composed

from shipyard.kit.testing import RecordingUnitOfWorkFactory


@pytest.fixture
async def units() -> RecordingUnitOfWorkFactory[LineageUnitOfWork]:
    return await memory_units()


@pytest.fixture
def world(units: Units) -> Composed:
    return composed(units)
