"""Turns batches of events into projections (activity feed and provenance graph), each event once."""

from __future__ import annotations

from dataclasses import dataclass, replace

from shipyard.kit.events import Event
from shipyard.kit.paging import page_limit
from shipyard.kit.telemetry import consuming
from shipyard_lineage.app.event_facts import activity_of, facts_of
from shipyard_lineage.app.ports import ActivityQuery, ProjectionUnitOfWorkFactory, ProvenanceGraph
from shipyard_lineage.domain.activity import Activity
from shipyard_lineage.domain.facts import Facts
from shipyard_lineage.domain.graph import NodeState, RepoState, new_node

CONSUMER = "lineage"


@dataclass
class Projector:
    """Applies events to the projections."""

    uow: ProjectionUnitOfWorkFactory

    async def apply(self, events: list[Event]) -> int:
        """Apply a batch in one transaction; how many events were new.

        An event's activity entry doubles as the record that it was applied, so a redelivered
        event changes nothing (and the graph's merge rules would make it harmless anyway).
        """
        applied = 0
        async with self.uow() as uow:
            batch = GraphBatch(uow.graph)
            for event in events:
                with consuming(event, CONSUMER):
                    if await uow.activity.has(event.id):
                        continue
                    await uow.activity.add(activity_of(event))
                    await batch.apply(facts_of(event))
                    applied += 1
            await batch.save()
            if events:
                await uow.graph.set_cursor(max(e.sequence for e in events))
        return applied


class GraphBatch:
    """One batch's changes to the graph: each node and repo read once and written once, however
    many of the batch's events touch it (a run's submit, start, end and output often share one)."""

    def __init__(self, graph: ProvenanceGraph) -> None:
        self._graph = graph
        self._nodes: dict[str, NodeState] = {}
        self._repos: dict[str, RepoState] = {}
        self._dirty_nodes: set[str] = set()
        self._dirty_repos: set[str] = set()
        self._edges: set[str] = set()

    async def apply(self, facts: Facts) -> None:
        """Merge one event's facts."""
        for fact in facts.nodes:
            node = self._nodes.get(fact.id) or await self._graph.node(fact.id)
            if node is None:
                node = new_node(fact)
                self._dirty_nodes.add(fact.id)
            elif node.merge(fact.seq, fact.time, fact.fields):
                self._dirty_nodes.add(fact.id)
            self._nodes[fact.id] = node
        for edge in facts.edges:
            if edge.id not in self._edges:
                self._edges.add(edge.id)
                await self._graph.add_edge(edge)
        for repo_fact in facts.repos:
            key = repo_fact.repo_id
            repo = self._repos.get(key) or await self._graph.repo(key) or RepoState(id=key)
            if repo.merge(repo_fact.seq, "", repo_fact.fields) or not repo.revision:
                self._dirty_repos.add(key)
            self._repos[key] = repo

    async def save(self) -> None:
        """Write what changed."""
        for node_id in self._dirty_nodes:
            await self._graph.save_node(self._nodes[node_id])
        for repo_id in self._dirty_repos:
            await self._graph.save_repo(self._repos[repo_id])


@dataclass
class ActivityQueries:
    """Reads of the activity feed."""

    uow: ProjectionUnitOfWorkFactory

    async def list(self, query: ActivityQuery) -> list[Activity]:
        """Entries matching ``query``, newest first."""
        async with self.uow() as uow:
            return await uow.activity.list(replace(query, limit=page_limit(query.limit)))
