"""Lineage queries: upstream and downstream walks of the provenance graph from one node."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.kit.errors import InvalidArgument, NotFound
from shipyard_lineage.app.ports import NodeQuery, ProjectionUnitOfWorkFactory, ProvenanceGraph
from shipyard_lineage.domain.graph import (
    CODE,
    DEPLOYMENT,
    IMAGE,
    KINDS,
    PUBLISHED,
    RUN,
    VERSION_KINDS,
    Direction,
    EdgeFact,
    NodeState,
    deployment_id,
    image_id,
    label_of,
    published_id,
    run_id,
    version_id,
    visible_to,
)

DEPTH_DEFAULT = 10
DEPTH_MAX = 50
NODES_MAX = 5000
_BY_NAME = {IMAGE: image_id, PUBLISHED: published_id, DEPLOYMENT: deployment_id}
_KIND_OF_PREFIX = {"run": RUN, "code": CODE, "image": IMAGE, "published": PUBLISHED, "deployment": DEPLOYMENT}


@dataclass(frozen=True)
class NodeView:
    """A node as a query shows it: with its label and whether it is gone."""

    node: NodeState
    label: str
    deleted: bool


@dataclass
class LineageGraph:
    """The part of the graph a walk reached."""

    root: str
    nodes: dict[str, NodeView] = field(default_factory=dict)
    edges: set[EdgeFact] = field(default_factory=set)
    truncated: bool = False


@dataclass
class _Walk:
    graph: ProvenanceGraph
    roles: frozenset[str]
    result: LineageGraph
    repo_names: dict[str, tuple[str, bool]] = field(default_factory=dict)

    async def view(self, node: NodeState) -> NodeView:
        if node.kind not in VERSION_KINDS:
            return NodeView(node, label_of(node), node.deleted)
        if node.ref not in self.repo_names:
            repo = await self.graph.repo(node.ref)
            self.repo_names[node.ref] = (repo.name, repo.deleted) if repo else ("", False)
        name, repo_deleted = self.repo_names[node.ref]
        return NodeView(node, label_of(node, name), node.deleted or repo_deleted)

    async def add(self, node: NodeState) -> None:
        self.result.nodes[node.id] = await self.view(node)

    async def reach(self, node_id: str) -> bool:
        """Add the node at the far end of an edge; False when the caller may not see it."""
        if node_id in self.result.nodes:
            return True
        node = await self.graph.node(node_id) or _placeholder(node_id)
        if not visible_to(self.roles, node.kind):
            return False
        await self.add(node)
        return True

    async def walk(self, start: str, direction: Direction, depth: int) -> None:
        frontier = [start]
        for _ in range(depth):
            frontier = await self._step(frontier, direction)
            if not frontier:
                return
        for node_id in frontier:
            if await self.graph.edges(node_id, direction):
                self.result.truncated = True
                return

    async def _step(self, frontier: list[str], direction: Direction) -> list[str]:
        reached: list[str] = []
        for node_id in frontier:
            for edge in await self.graph.edges(node_id, direction):
                far = edge.source if direction is Direction.UPSTREAM else edge.target
                known = far in self.result.nodes
                if len(self.result.nodes) >= NODES_MAX and not known:
                    self.result.truncated = True
                    return []
                if await self.reach(far):
                    self.result.edges.add(edge)
                    if not known:
                        reached.append(far)
        return reached


def _placeholder(node_id: str) -> NodeState:
    """A node named by an edge whose own events are not in (yet)."""
    prefix, _, name = node_id.partition(":")
    return NodeState(id=node_id, kind=_KIND_OF_PREFIX.get(prefix, prefix), fields={"name": name})


@dataclass
class LineageQueries:
    """Walks of the provenance graph."""

    uow: ProjectionUnitOfWorkFactory

    async def lineage(self, roles: frozenset[str], kind: str, name: str, direction: Direction,
                      depth: int = 0) -> LineageGraph:
        """The nodes and edges within ``depth`` edges of the named node, one way or both."""
        if depth < 0 or depth > DEPTH_MAX:
            raise InvalidArgument("depth", f"must be between 0 and {DEPTH_MAX} (got {depth})")
        async with self.uow() as uow:
            root = await find_node(uow.graph, kind, name)
            if not visible_to(roles, root.kind):
                raise NotFound(f"{kind} {name!r} not found")
            walk = _Walk(uow.graph, roles, LineageGraph(root.id))
            await walk.add(root)
            ways = [Direction.UPSTREAM, Direction.DOWNSTREAM] if direction is Direction.BOTH else [direction]
            for way in ways:
                await walk.walk(root.id, way, depth or DEPTH_DEFAULT)
            return walk.result


async def find_node(graph: ProvenanceGraph, kind: str, name: str) -> NodeState:
    """The node a person names: a run by name or id, ``repo@N`` (or the latest), ``repo@commit``…"""
    if kind not in KINDS:
        raise InvalidArgument("kind", f"must be one of {', '.join(KINDS)} (got {kind!r})")
    if not name:
        raise InvalidArgument("name", "is required")
    if kind == RUN:
        found = await graph.node(run_id(name)) or await _newest(graph, NodeQuery(RUN, 1, name=name,
                                                                                order_by="first"))
    elif kind in VERSION_KINDS:
        found = await _version(graph, kind, name)
    elif kind == CODE:
        found = await _code(graph, name)
    else:
        found = await graph.node(_BY_NAME[kind](name))
    if found is None or found.kind != kind:
        raise NotFound(f"{kind} {name!r} not found in the lineage graph")
    return found


async def _newest(graph: ProvenanceGraph, query: NodeQuery) -> NodeState | None:
    found = await graph.find_nodes(query)
    return found[0] if found else None


async def _version(graph: ProvenanceGraph, kind: str, name: str) -> NodeState | None:
    repo_name, at, number = name.partition("@")
    if at and not number.isdigit():
        raise InvalidArgument("name", f"{name!r}: the version after '@' must be a number")
    repos = await graph.repos_named(kind, repo_name)
    live = [r for r in repos if not r.deleted] or repos
    if not live:
        raise NotFound(f"{kind} {repo_name!r} not found in the lineage graph")
    ref = live[0].id
    if at:
        return await graph.node(version_id(ref, int(number)))
    return await _newest(graph, NodeQuery(kind, 1, ref=ref, order_by="number"))


async def _code(graph: ProvenanceGraph, name: str) -> NodeState | None:
    repo, _, commit = name.partition("@")
    for node in await graph.find_nodes(NodeQuery(CODE, 1000, name=repo)):
        if node.fields.get("commit", "").startswith(commit):
            return node
    return None
