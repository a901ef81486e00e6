"""The projections (activity feed, provenance graph) in the kit's document store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from shipyard.kit.store.port import Collection, DocumentStore, Page, Transaction
from shipyard_lineage.app.ports import ActivityFeed, ActivityQuery, NodeQuery, ProvenanceGraph
from shipyard_lineage.domain.activity import Activity, about_catalog
from shipyard_lineage.domain.graph import Direction, EdgeFact, Merged, NodeState, RepoState

ACTIVITY = Collection("activity", indexed=("seq", "project", "area", "subject"))
# tally / ptally ("<kind>/<status>/<deleted 0|1>", with the project in front) let the dashboard
# count nodes with one index lookup each instead of reading every run.
NODES = Collection("nodes", indexed=("kind", "project", "name", "ref", "updated", "first", "tally", "ptally"))
EDGES = Collection("edges", indexed=("source", "target"))
REPOS = Collection("repos", indexed=("name", "tally", "ptally"))
META = Collection("meta")
COLLECTIONS = (ACTIVITY, NODES, EDGES, REPOS, META)
CURSOR = "cursor"


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

    async def list(self, query: ActivityQuery) -> list[Activity]:
        where: dict[str, Any] = {k: v for k, v in (("project", query.project), ("area", query.area),
                                                   ("type", query.type), ("subject", query.subject)) if v}
        after = (query.before_sequence, "") if query.before_sequence is not None else None
        found: list[Activity] = []
        # ``since`` is filtered here, page by page, so a short page never hides older matches;
        # a page with nothing recent enough ends the scan (sequence order follows time order,
        # give or take clock skew between services).
        while len(found) < query.limit:
            docs = await self._txn.find(ACTIVITY.name, where,
                                        Page(order_by="seq", descending=True, after=after, limit=query.limit))
            page = [_activity(d) for d in docs]
            found += [a for a in page if (query.since is None or a.time >= query.since)
                      and (query.catalog or not about_catalog(a.type))]
            too_old = query.since is not None and any(a.time < query.since for a in page)
            if len(docs) < query.limit or too_old:
                break
            after = (page[-1].sequence, "")
        return found[:query.limit]


def _activity(doc: dict[str, Any]) -> Activity:
    return Activity(event_id=doc["_id"], type=doc["type"], subject=doc["subject"], project=doc["project"],
                    actor=doc["actor"], time=datetime.fromisoformat(doc["time"]), summary=doc["summary"],
                    sequence=doc["seq"])


def _merged_doc(state: Merged) -> dict[str, Any]:
    return {"fields": state.fields, "seqs": state.seqs, "first": state.first, "updated": state.updated,
            "time": state.time, "created": state.created}


def _merged(doc: dict[str, Any]) -> dict[str, Any]:
    return {"fields": doc["fields"], "seqs": doc["seqs"], "first": doc["first"], "updated": doc["updated"],
            "time": doc["time"], "created": doc["created"], "rev": doc["_rev"]}


def _tally(kind: str, status: str, deleted: bool) -> str:
    return f"{kind}/{status}/{int(deleted)}"


def _node_doc(node: NodeState) -> dict[str, Any]:
    tally = _tally(node.kind, node.status, node.deleted)
    return {"_id": node.id, "kind": node.kind, "project": node.project, "name": node.name, "ref": node.ref,
            "number": node.number,
            "tally": tally, "ptally": f"{node.project}/{tally}", **_merged_doc(node)}


def _node(doc: dict[str, Any]) -> NodeState:
    return NodeState(id=doc["_id"], kind=doc["kind"], **_merged(doc))


def _repo_doc(repo: RepoState) -> dict[str, Any]:
    tally = _tally(repo.kind, "", repo.deleted)
    return {"_id": repo.id, "name": repo.name, "tally": tally, "ptally": f"{repo.project}/{tally}",
            **_merged_doc(repo)}


def _edge(doc: dict[str, Any]) -> EdgeFact:
    return EdgeFact(doc["source"], doc["target"], doc["relation"])


class StoredGraph(ProvenanceGraph):
    """Nodes, edges and repos as documents; edges indexed both ways."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def node(self, node_id: str) -> NodeState | None:
        doc = await self._txn.get(NODES.name, node_id)
        return _node(doc) if doc else None

    async def save_node(self, node: NodeState) -> None:
        await _save(self._txn, NODES.name, _node_doc(node), node)

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
        doc = await self._txn.get(REPOS.name, repo_id)
        return RepoState(id=doc["_id"], **_merged(doc)) if doc else None

    async def save_repo(self, repo: RepoState) -> None:
        await _save(self._txn, REPOS.name, _repo_doc(repo), repo)

    async def repos_named(self, kind: str, name: str) -> list[RepoState]:
        docs = await self._txn.find(REPOS.name, {"name": name})
        repos = [RepoState(id=d["_id"], **_merged(d)) for d in docs]
        return sorted((r for r in repos if r.kind == kind), key=lambda r: r.first, reverse=True)

    async def find_nodes(self, query: NodeQuery) -> list[NodeState]:
        where: dict[str, Any] = {"kind": query.kind}
        for name in ("project", "name", "ref"):
            if (value := getattr(query, name)) is not None:
                where[name] = value
        if query.status is not None:
            where["tally"] = _tally(query.kind, query.status, False)
        page = Page(order_by=query.order_by, descending=query.descending, after=query.after,
                    limit=query.limit)
        return [_node(d) for d in await self._txn.find(NODES.name, where, page)]

    async def count_nodes(self, kind: str, status: str = "", project: str | None = None) -> int:
        tally = _tally(kind, status, False)
        where = {"ptally": f"{project}/{tally}"} if project is not None else {"tally": tally}
        return await self._txn.count(NODES.name, where)

    async def count_repos(self, kind: str, project: str | None = None) -> int:
        tally = _tally(kind, "", False)
        where = {"ptally": f"{project}/{tally}"} if project is not None else {"tally": tally}
        return await self._txn.count(REPOS.name, where)

    async def sizes(self) -> tuple[int, int]:
        return await self._txn.count(NODES.name), await self._txn.count(EDGES.name)

    async def all_nodes(self, after: str, limit: int) -> list[NodeState]:
        page = Page(after=(after, after) if after else None, limit=limit)
        return [_node(d) for d in await self._txn.find(NODES.name, None, page)]

    async def all_edges(self, after: str, limit: int) -> list[EdgeFact]:
        page = Page(after=(after, after) if after else None, limit=limit)
        return [_edge(d) for d in await self._txn.find(EDGES.name, None, page)]

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


async def _save(txn: Transaction, collection: str, doc: dict[str, Any], state: Merged) -> None:
    if state.rev:
        state.rev = (await txn.replace(collection, doc, state.rev))["_rev"]
    else:
        state.rev = (await txn.insert(collection, doc))["_rev"]


class StoreProjections:
    """One projection unit of work per store transaction."""

    def __init__(self, txn: Transaction) -> None:
        self.activity = StoredActivity(txn)
        self.graph = StoredGraph(txn)


class StoreProjectionsFactory:
    """Starts projection units of work on the store."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[StoreProjections]:
        async with self._store.transaction() as txn:
            yield StoreProjections(txn)
