"""Ports of lineage-svc's use cases."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shipyard.kit.store.unit_of_work import UnitOfWorkFactory
from shipyard_lineage.domain.activity import Activity
from shipyard_lineage.domain.graph import Direction, EdgeFact, NodeState, RepoState


@dataclass(frozen=True)
class ActivityQuery:
    """Which activities to list: newest first, before ``before_sequence`` when given."""

    limit: int
    before_sequence: int | None = None
    project: str = ""
    area: str = ""
    type: str = ""
    subject: str = ""
    since: datetime | None = None
    catalog: bool = True  # include events about the model catalog and deployments


class ActivityFeed(abc.ABC):
    """The activity projection; one entry per event, keyed by the event's id."""

    @abc.abstractmethod
    async def has(self, event_id: str) -> bool:
        """Whether the event was applied already (its entry is there)."""

    @abc.abstractmethod
    async def add(self, activity: Activity) -> None:
        """Append one entry."""

    @abc.abstractmethod
    async def list(self, query: ActivityQuery) -> list[Activity]:
        """Entries matching the query, newest (highest sequence) first."""

    @abc.abstractmethod
    async def count(self) -> int:
        """How many entries there are."""

    @abc.abstractmethod
    async def clear(self, limit: int) -> int:
        """Delete up to ``limit`` entries; how many went (0: all gone)."""


@dataclass(frozen=True)
class NodeQuery:
    """Nodes of one kind, filtered on their indexed fields, in one order."""

    kind: str
    limit: int
    project: str | None = None
    name: str | None = None
    ref: str | None = None
    status: str | None = None
    order_by: str = "updated"  # updated, first or number
    descending: bool = True
    after: tuple[int, str] | None = None  # (order value, node id) of the last node seen


class ProvenanceGraph(abc.ABC):
    """The provenance graph projection: nodes, edges, and the repos that name versions."""

    @abc.abstractmethod
    async def node(self, node_id: str) -> NodeState | None:
        """The node, or None."""

    @abc.abstractmethod
    async def save_node(self, node: NodeState) -> NodeState:
        """Insert (``revision`` 0) or replace the node; the node as stored."""

    @abc.abstractmethod
    async def add_edge(self, edge: EdgeFact) -> bool:
        """Add the edge; False if it was there."""

    @abc.abstractmethod
    async def edges(self, node_id: str, direction: Direction) -> list[EdgeFact]:
        """Edges into the node (upstream) or out of it (downstream)."""

    @abc.abstractmethod
    async def repo(self, repo_id: str) -> RepoState | None:
        """The repo, or None."""

    @abc.abstractmethod
    async def save_repo(self, repo: RepoState) -> RepoState:
        """Insert (``revision`` 0) or replace the repo; the repo as stored."""

    @abc.abstractmethod
    async def repos_named(self, kind: str, name: str) -> list[RepoState]:
        """Repos of that kind that are or were named ``name``, newest first."""

    @abc.abstractmethod
    async def find_nodes(self, query: NodeQuery) -> list[NodeState]:
        """Nodes matching the query, in its order."""

    @abc.abstractmethod
    async def count_nodes(self, kind: str, status: str = "", project: str | None = None) -> int:
        """How many live (not deleted) nodes of ``kind`` (with ``status``; in ``project``) there are."""

    @abc.abstractmethod
    async def count_repos(self, kind: str, project: str | None = None) -> int:
        """How many live repos of ``kind`` (in ``project``) there are."""

    @abc.abstractmethod
    async def sizes(self) -> tuple[int, int]:
        """How many nodes and edges there are."""

    @abc.abstractmethod
    async def all_nodes(self, after: str, limit: int) -> list[NodeState]:
        """Nodes in id order, after the id ``after``."""

    @abc.abstractmethod
    async def all_edges(self, after: str, limit: int) -> list[EdgeFact]:
        """Edges in id order, after the id ``after``."""

    @abc.abstractmethod
    async def cursor(self) -> int:
        """The stream sequence of the last event applied (0: none)."""

    @abc.abstractmethod
    async def set_cursor(self, sequence: int) -> None:
        """Record the last event applied."""

    @abc.abstractmethod
    async def clear(self, limit: int) -> int:
        """Delete up to ``limit`` documents of the graph; how many went (0: all gone)."""


class ProjectionUnitOfWork(Protocol):
    """One transaction over the projections."""

    @property
    def activity(self) -> ActivityFeed:
        """The activity feed in this transaction."""

    @property
    def graph(self) -> ProvenanceGraph:
        """The provenance graph in this transaction."""


ProjectionUnitOfWorkFactory = UnitOfWorkFactory[ProjectionUnitOfWork]
"""Starts units of work over the projections."""
