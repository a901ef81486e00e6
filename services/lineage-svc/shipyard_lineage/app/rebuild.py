"""The projections' state, their digest, and rebuilding them by replaying the stream."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import FailedPrecondition
from shipyard_lineage.app.ports import ProjectionUnitOfWorkFactory

CLEAR_BATCH = 5000
DIGEST_PAGE = 5000

# The bus's replay of one consumer: stop it, run the reset, deliver the stream from its start.
Replay = Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]
LastSequence = Callable[[], Awaitable[int]]


@dataclass
class ProjectionState:
    """What the projections hold, and whether a rebuild is under way."""

    last_sequence: int
    nodes: int
    edges: int
    activities: int
    digest: str = ""
    rebuilding: bool = False
    rebuild_started: datetime | None = None


@dataclass
class Projections:
    """Status and rebuild of lineage-svc's projections."""

    uow: ProjectionUnitOfWorkFactory
    replay: Replay
    last_sequence: LastSequence
    clock: Clock = utc_now
    _rebuild_target: int = 0
    _rebuild_started: datetime | None = None
    _resetting: bool = field(default=False)

    async def status(self, with_digest: bool = False) -> ProjectionState:
        """Counts, the last event applied and (when asked) the digest of the whole graph."""
        async with self.uow() as uow:
            cursor = await uow.graph.cursor()
            nodes, edges = await uow.graph.sizes()
            activities = await uow.activity.count()
        digest = await self.digest() if with_digest else ""
        rebuilding = self._resetting or (self._rebuild_started is not None and cursor < self._rebuild_target)
        return ProjectionState(cursor, nodes, edges, activities, digest, rebuilding,
                               self._rebuild_started if rebuilding else None)

    async def digest(self) -> str:
        """sha256 of every node (its fields and sequences) and edge, in id order."""
        hasher = hashlib.sha256()
        after = ""
        while True:
            async with self.uow() as uow:
                nodes = await uow.graph.all_nodes(after, DIGEST_PAGE)
            for node in nodes:
                line = [node.id, node.kind, node.fields, node.seqs, node.first, node.updated]
                hasher.update(json.dumps(line, sort_keys=True).encode() + b"\n")
            if len(nodes) < DIGEST_PAGE:
                break
            after = nodes[-1].id
        after = ""
        while True:
            async with self.uow() as uow:
                edges = await uow.graph.all_edges(after, DIGEST_PAGE)
            for edge in edges:
                hasher.update(f"{edge.id}\n".encode())
            if len(edges) < DIGEST_PAGE:
                break
            after = edges[-1].id
        return hasher.hexdigest()

    async def rebuild(self) -> ProjectionState:
        """Drop every projection and replay the stream from its first event; returns at once,
        with the state at the start of the replay (``rebuilding`` until it has caught up)."""
        if self._resetting:
            raise FailedPrecondition("a rebuild is already starting")
        self._resetting = True
        try:
            self._rebuild_target = await self.last_sequence()
            self._rebuild_started = self.clock()
            await self.replay(self.clear)
        finally:
            self._resetting = False
        return await self.status()

    async def clear(self) -> None:
        """Empty the projections, a batch per transaction."""
        while True:
            async with self.uow() as uow:
                if not await uow.graph.clear(CLEAR_BATCH) and not await uow.activity.clear(CLEAR_BATCH):
                    return
