"""Wires serving-svc. It owns no collections and serves no API yet: it starts, connects to its
store and the bus, and reports health, so the platform's shape is complete."""

from __future__ import annotations

from shipyard.kit.service import Runtime
from shipyard.kit.store.port import Collection

COLLECTIONS: tuple[Collection, ...] = ()


async def wire(runtime: Runtime) -> None:
    """Nothing to register yet beyond health and reflection (done by the kit)."""
