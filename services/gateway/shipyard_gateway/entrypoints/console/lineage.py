"""Lineage as a graph (Cytoscape.js): what a run, a version, a catalog entry or a deployment came
from and what came of it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shipyard.contracts.lineage.v1 import lineage_pb2 as pb
from shipyard_gateway.entrypoints.console.edge import Console

GET_LINEAGE = "/shipyard.lineage.v1.LineageService/GetLineage"
KINDS = ("run", "dataset", "featureset", "model", "code", "image", "published", "deployment")
DIRECTIONS = {"both": pb.DIRECTION_BOTH, "up": pb.DIRECTION_UPSTREAM, "down": pb.DIRECTION_DOWNSTREAM}
DEPTH = 10


def node_link(node: pb.Node) -> str:
    """The console page of a node, or "" (images have none)."""
    repo, _, number = node.label.partition("@")
    if node.kind == "run":
        return f"/runs/{node.label}"
    if node.kind in ("dataset", "featureset", "model") and number.isdigit():
        return f"/repos/{node.kind}s/{repo}/versions/{number}"
    if node.kind == "code":
        return f"/repos/code/{repo}"
    if node.kind == "published":
        return f"/catalog/{node.label}"
    if node.kind == "deployment":
        return f"/deployments/{node.label}"
    return ""


def graph_elements(graph: pb.Graph) -> list[dict[str, Any]]:
    """Cytoscape.js elements: nodes (id, label, kind, link, root) and edges (relation)."""
    nodes = [
        {
            "data": {
                "id": n.id,
                "label": n.label,
                "kind": n.kind,
                "link": node_link(n),
                "root": n.id == graph.root,
                "deleted": n.deleted,
                "status": n.attributes.get("status", ""),
            }
        }
        for n in graph.nodes
    ]
    edges = [
        {
            "data": {
                "id": f"{e.source}->{e.target}",
                "source": e.source,
                "target": e.target,
                "label": e.relation,
            }
        }
        for e in graph.edges
    ]
    return nodes + edges


class LineagePages:
    """``/lineage/<kind>/<name>``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/lineage/{kind}/{name}", self._console.guarded(self.graph))

    async def graph(self, request: web.Request) -> web.Response:
        kind, name = request.match_info["kind"], request.match_info["name"]
        if kind not in KINDS:
            raise web.HTTPNotFound(text=f"no lineage for {kind!r}: one of {', '.join(KINDS)}")
        direction = request.query.get("direction", "both")
        graph = await self._console.call(
            request,
            GET_LINEAGE,
            pb.GetLineageRequest(
                kind=kind, name=name, direction=DIRECTIONS.get(direction, pb.DIRECTION_BOTH), depth=DEPTH
            ),
            pb.Graph,
        )
        return await self._console.page(
            request,
            "lineage.html.j2",
            "",
            kind=kind,
            name=name,
            direction=direction if direction in DIRECTIONS else "both",
            graph=graph,
            elements=graph_elements(graph),
            kinds_shown=[k for k in KINDS if any(n.kind == k for n in graph.nodes)],
            node_link=node_link,
        )
