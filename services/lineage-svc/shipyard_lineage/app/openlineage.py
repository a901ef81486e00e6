"""Export of runs and their inputs and outputs, page by page, for OpenLineage consumers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shipyard.kit.errors import InvalidArgument
from shipyard.kit.paging import PAGE_MAX, decode_token, encode_token
from shipyard_lineage.app.lineage import NodeView
from shipyard_lineage.app.ports import NodeQuery, ProjectionUnitOfWorkFactory, ProvenanceGraph
from shipyard_lineage.domain.graph import CODE, PRODUCED, RUN, USED, Direction, NodeState, label_of

EXPORT_PAGE_DEFAULT = 100  # runs per page; each run makes up to two events
TOKEN_TAG = "openlineage"
NAMESPACE_DEFAULT = "shipyard"


@dataclass(frozen=True)
class CodeLocation:
    """Where a run's code came from: its code repo's git URL, folder in it, and the commit."""

    url: str
    path: str
    commit: str


@dataclass(frozen=True)
class RunRecord:
    """A run with what it used and what it produced; where its code came from, when that was a
    git repository."""

    run: NodeView
    inputs: list[NodeView]
    outputs: list[NodeView]
    code: CodeLocation | None = None


RunEncoder = Callable[[RunRecord, str], list[str]]


@dataclass
class OpenLineageExport:
    """Runs, oldest first, as OpenLineage RunEvents (``encode`` builds them)."""

    uow: ProjectionUnitOfWorkFactory
    encode: RunEncoder

    async def page(self, project: str, page_size: int, token: str, namespace: str) -> tuple[list[str], str]:
        """One page of events and the token of the next ("" at the end)."""
        if page_size < 0 or page_size > PAGE_MAX:
            raise InvalidArgument("page_size", f"must be between 0 and {PAGE_MAX} (got {page_size})")
        limit = page_size or EXPORT_PAGE_DEFAULT
        async with self.uow() as uow:
            runs = await uow.graph.find_nodes(NodeQuery(RUN, limit, project=project or None, order_by="first",
                                                        descending=False, after=_decode(token)))
            records = [await _record(uow.graph, run) for run in runs if not run.deleted]
        events = [e for record in records for e in self.encode(record, namespace or NAMESPACE_DEFAULT)]
        next_token = _encode(runs[-1]) if len(runs) == limit else ""
        return events, next_token


async def _record(graph: ProvenanceGraph, run: NodeState) -> RunRecord:
    inputs = [await _view(graph, e.source) for e in await graph.edges(run.id, Direction.UPSTREAM)
              if e.relation == USED]
    outputs = [await _view(graph, e.target) for e in await graph.edges(run.id, Direction.DOWNSTREAM)
               if e.relation == PRODUCED]
    code = next((v.node for v in inputs if v.node.kind == CODE), None)
    return RunRecord(NodeView(run, label_of(run), run.deleted), inputs, outputs,
                     await _code_location(graph, code) if code else None)


async def _code_location(graph: ProvenanceGraph, code: NodeState) -> CodeLocation | None:
    """The git repository of the code repo a run used (the newest repo of that name), or None."""
    repos = await graph.repos_named(CODE, code.fields.get("repo", ""))
    url = repos[0].fields.get("git_url", "") if repos else ""
    if not url:
        return None
    return CodeLocation(url, repos[0].fields.get("git_path", ""), code.fields.get("commit", ""))


async def _view(graph: ProvenanceGraph, node_id: str) -> NodeView:
    node = await graph.node(node_id) or NodeState(id=node_id, kind="")
    repo = await graph.repo(node.ref) if node.ref else None
    return NodeView(node, label_of(node, repo.name if repo else ""), node.deleted)


def _encode(run: NodeState) -> str:
    return encode_token(TOKEN_TAG, str(run.first), run.id)


def _decode(token: str) -> tuple[int, str] | None:
    cursor = decode_token(TOKEN_TAG, token, 2)
    if cursor is None:
        return None
    first, run = cursor
    if not first.isdigit():
        raise InvalidArgument("page_token", "is not a token this API returned")
    return int(first), run
