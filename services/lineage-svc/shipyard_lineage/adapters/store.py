"""The projections (activity feed, provenance graph) in the kit's document store.

Nodes and repos are states merged and saved again as events arrive: they are the kit's document
repositories, revised optimistically. Activities, edges and the cursor are written once (or only
moved forward) and need no more than a few plain reads and writes of their collections.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, TypeVar

from shipyard.kit.store.documents import DocumentRepository
from shipyard.kit.store.port import Collection, Document, Page, Transaction
from shipyard.kit.store.unit_of_work import StoreUnitOfWork
from shipyard_lineage.app.ports import ActivityFeed, ActivityQuery, NodeQuery, ProvenanceGraph
from shipyard_lineage.domain.activity import Activity, about_catalog, in_feed
from shipyard_lineage.domain.graph import Direction, EdgeFact, Merged, NodeState, RepoState
from shipyard_lineage.settings import SERVICE

SOURCE = f"shipyard/{SERVICE}"
ACTIVITY = Collection("activity", indexed=("seq", "project", "area", "subject"))
# tally / ptally ("<kind>/<status>/<deleted 0|1>", with the project in front) let the dashboard
# count nodes with one index lookup each instead of reading every run.
NODES = Collection("nodes", indexed=("kind", "project", "name", "ref", "updated", "first", "tally", "ptally"))
EDGES = Collection("edges", indexed=("source", "target"))
REPOS = Collection("repos", indexed=("name", "tally", "ptally"))
META = Collection("meta")
COLLECTIONS = (ACTIVITY, NODES, EDGES, REPOS, META)
CURSOR = "cursor"

M = TypeVar("M", bound=NodeState | RepoState)


class StoredActivity(ActivityFeed):
    """Activities keyed by event id, ordered by stream sequence."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def has(self, event_id: str) -> bool:
        return await self._txn.get(ACTIVITY.name, event_id) is not None

    async def add(self, activity: Activity) -> None:
        await self._txn.insert(ACTIVITY.name, {
            "_id": activity.event_id, "type": activity.type, "area": activity.area,
            "subject": activity.subject, "project": activity.project, "actor": activity.actor,
            "time": activity.time.isoformat(), "summary": activity.summary, "seq": activity.sequence})

    async def count(self) -> int:
        return await self._txn.count(ACTIVITY.name)

    async def clear(self, limit: int) -> int:
        return await _clear(self._txn, (ACTIVITY,), limit)

    async def list(self, query: ActivityQuery) -> builtins.list[Activity]:
        where: dict[str, Any] = {k: v for k, v in (("project", query.project), ("area", query.area),
                                                   ("type", query.type), ("subject", query.subject)) if v}
        after = (query.before_sequence, "") if query.before_sequence is not None else None
        found: builtins.list[Activity] = []
        # ``since`` is filtered here, page by page, so a short page never hides older matches;
        # a page with nothing recent enough ends the scan (sequence order follows time order,
        # give or take clock skew between services).
        while len(found) < query.limit:
            docs = await self._txn.find(ACTIVITY.name, where,
                                        Page(order_by="seq", descending=True, after=after, limit=query.limit))
            page = [_activity(d) for d in docs]
            found += [a for a in page if (query.since is None or a.time >= query.since)
                      and (query.catalog or not about_catalog(a.type)) and in_feed(a.type, query.type)]
            too_old = query.since is not None and any(a.time < query.since for a in page)
            if len(docs) < query.limit or too_old:
                break
            after = (page[-1].sequence, "")
        return found[:query.limit]


def _activity(doc: Document) -> Activity:
    return Activity(event_id=doc["_id"], type=doc["type"], subject=doc["subject"], project=doc["project"],
                    actor=doc["actor"], time=datetime.fromisoformat(doc["time"]), summary=doc["summary"],
                    sequence=doc["seq"])


def _merged_doc(state: Merged) -> Document:
    return {"fields": state.fields, "seqs": state.seqs, "first": state.first, "updated": state.updated,
            "time": state.time, "created": state.created}


def _merged(doc: Document) -> dict[str, Any]:
    return {"fields": doc["fields"], "seqs": doc["seqs"], "first": doc["first"], "updated": doc["updated"],
            "time": doc["time"], "created": doc["created"], "revision": doc["_rev"]}


def _tally(kind: str, status: str, deleted: bool) -> str:
    return f"{kind}/{status}/{int(deleted)}"


def _live(kind: str, status: str, project: str | None) -> dict[str, Any]:
    """The filter on the tally index: live states of ``kind`` with ``status`` (in ``project``)."""
    tally = _tally(kind, status, False)
    return {"ptally": f"{project}/{tally}"} if project is not None else {"tally": tally}


def _id_page(after: str, limit: int) -> Page:
    return Page(after=(after, after) if after else None, limit=limit)


class _MergedStates(DocumentRepository[M]):
    """States merged fact by fact: inserted when new (revision 0), replaced on their revision after."""

    def label(self, item: M) -> str:
        # By id: names are fields like any other here, and change (a renamed repo).
        return f"{self.noun} {item.id!r}"

    async def put(self, state: M) -> M:
        """Store ``state``, new or changed; the state as stored."""
        return await (self.save(state) if state.revision else self.add(state))


class StoredNodes(_MergedStates[NodeState]):
    """The graph's nodes, with the indexed fields its queries and the dashboard's counts use."""

    collection = NODES
    noun = "node"

    def to_document(self, item: NodeState) -> Document:
        tally = _tally(item.kind, item.status, item.deleted)
        return {"_id": item.id, "kind": item.kind, "project": item.project, "name": item.name,
                "ref": item.ref, "number": item.number, "tally": tally, "ptally": f"{item.project}/{tally}",
                **_merged_doc(item)}

    def from_document(self, doc: Document) -> NodeState:
        return NodeState(id=doc["_id"], kind=doc["kind"], **_merged(doc))

    async def matching(self, query: NodeQuery) -> builtins.list[NodeState]:
        """Nodes matching ``query``, in its order."""
        where: dict[str, Any] = {"kind": query.kind}
        for name in ("project", "name", "ref"):
            if (value := getattr(query, name)) is not None:
                where[name] = value
        if query.status is not None:
            where["tally"] = _tally(query.kind, query.status, False)
        return await self.find(where, Page(order_by=query.order_by, descending=query.descending,
                                           after=query.after, limit=query.limit))


class StoredRepos(_MergedStates[RepoState]):
    """The repos lineage knows of, by id, with their names and tallies."""

    collection = REPOS
    noun = "repo"

    def to_document(self, item: RepoState) -> Document:
        tally = _tally(item.kind, "", item.deleted)
        return {"_id": item.id, "name": item.name, "tally": tally, "ptally": f"{item.project}/{tally}",
                **_merged_doc(item)}

    def from_document(self, doc: Document) -> RepoState:
        return RepoState(id=doc["_id"], **_merged(doc))


def _edge(doc: Document) -> EdgeFact:
    return EdgeFact(doc["source"], doc["target"], doc["relation"])


class StoredGraph(ProvenanceGraph):
    """Nodes, edges and repos as documents; edges indexed both ways."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn
        self.nodes = StoredNodes(txn)
        self.repos = StoredRepos(txn)

    async def node(self, node_id: str) -> NodeState | None:
        return await self.nodes.by_id(node_id)

    async def save_node(self, node: NodeState) -> NodeState:
        return await self.nodes.put(node)

    async def add_edge(self, edge: EdgeFact) -> bool:
        # Read first rather than catch a duplicate key: in a MongoDB transaction a failed write
        # aborts the whole transaction.
        if await self._txn.get(EDGES.name, edge.id) is not None:
            return False
        await self._txn.insert(EDGES.name, {"_id": edge.id, "source": edge.source, "target": edge.target,
                                            "relation": edge.relation})
        return True

    async def edges(self, node_id: str, direction: Direction) -> list[EdgeFact]:
        end = "target" if direction is Direction.UPSTREAM else "source"
        return [_edge(d) for d in await self._txn.find(EDGES.name, {end: node_id})]

    async def repo(self, repo_id: str) -> RepoState | None:
        return await self.repos.by_id(repo_id)

    async def save_repo(self, repo: RepoState) -> RepoState:
        return await self.repos.put(repo)

    async def repos_named(self, kind: str, name: str) -> list[RepoState]:
        repos = await self.repos.find({"name": name})
        return sorted((r for r in repos if r.kind == kind), key=lambda r: r.first, reverse=True)

    async def find_nodes(self, query: NodeQuery) -> list[NodeState]:
        return await self.nodes.matching(query)

    async def count_nodes(self, kind: str, status: str = "", project: str | None = None) -> int:
        return await self.nodes.count(_live(kind, status, project))

    async def count_repos(self, kind: str, project: str | None = None) -> int:
        return await self.repos.count(_live(kind, "", project))

    async def sizes(self) -> tuple[int, int]:
        return await self.nodes.count(), await self._txn.count(EDGES.name)

    async def all_nodes(self, after: str, limit: int) -> list[NodeState]:
        return await self.nodes.find(None, _id_page(after, limit))

    async def all_edges(self, after: str, limit: int) -> list[EdgeFact]:
        return [_edge(d) for d in await self._txn.find(EDGES.name, None, _id_page(after, limit))]

    async def cursor(self) -> int:
        doc = await self._txn.get(META.name, CURSOR)
        return int(doc["seq"]) if doc else 0

    async def set_cursor(self, sequence: int) -> None:
        doc = await self._txn.get(META.name, CURSOR)
        if doc is None:
            await self._txn.insert(META.name, {"_id": CURSOR, "seq": sequence})
        elif sequence > doc["seq"]:
            await self._txn.replace(META.name, {"_id": CURSOR, "seq": sequence}, doc["_rev"])

    async def clear(self, limit: int) -> int:
        return await _clear(self._txn, (NODES, EDGES, REPOS, META), limit)


async def _clear(txn: Transaction, collections: tuple[Collection, ...], limit: int) -> int:
    for collection in collections:
        docs = await txn.find(collection.name, None, Page(limit=limit))
        if docs:
            return await txn.delete_many(collection.name, [d["_id"] for d in docs])
    return 0


class LineageUnitOfWork(StoreUnitOfWork):
    """One transaction over the projections. lineage-svc records no events of its own: it
    projects everyone else's."""

    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn, SOURCE)
        self.activity = StoredActivity(txn)
        self.graph = StoredGraph(txn)
