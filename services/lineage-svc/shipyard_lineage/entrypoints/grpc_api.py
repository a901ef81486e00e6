"""LineageService over gRPC: activity, lineage walks, dashboard, OpenLineage export, rebuild."""

from __future__ import annotations

from datetime import datetime

import grpc

from shipyard.contracts.lineage.v1 import lineage_pb2 as pb
from shipyard.contracts.lineage.v1 import lineage_pb2_grpc
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.grpcio import caller_of
from shipyard.kit.paging import decode_token, encode_token, page_limit
from shipyard.kit.timestamps import datetime_of, timestamp
from shipyard_lineage.app.dashboard import DashboardQueries, DashboardView
from shipyard_lineage.app.lineage import LineageGraph, LineageQueries
from shipyard_lineage.app.openlineage import OpenLineageExport
from shipyard_lineage.app.ports import ActivityQuery
from shipyard_lineage.app.projector import ActivityQueries
from shipyard_lineage.app.rebuild import Projections, ProjectionState
from shipyard_lineage.domain.activity import Activity, area_of
from shipyard_lineage.domain.graph import CATALOG_ROLES, RUN, Direction

_DIRECTIONS = {pb.DIRECTION_UNSPECIFIED: Direction.UPSTREAM, pb.DIRECTION_UPSTREAM: Direction.UPSTREAM,
               pb.DIRECTION_DOWNSTREAM: Direction.DOWNSTREAM, pb.DIRECTION_BOTH: Direction.BOTH}


_NOT_ATTRIBUTES = ("project", "deleted")
_ACTIVITY_TOKEN = "activity"


def _to_proto(activity: Activity) -> pb.Activity:
    return pb.Activity(event_id=activity.event_id, type=activity.type, subject=activity.subject,
                       project=activity.project, actor=activity.actor, time=timestamp(activity.time),
                       summary=activity.summary, sequence=activity.sequence)


def _decode_token(token: str) -> int | None:
    cursor = decode_token(_ACTIVITY_TOKEN, token, 1)
    if cursor is None:
        return None
    if not cursor[0].isdigit():
        raise InvalidArgument("page_token", "is not a token this API returned")
    return int(cursor[0])


def _query(request: pb.ListActivityRequest, roles: frozenset[str]) -> ActivityQuery:
    prefix = request.type_prefix
    full_type = prefix if prefix.endswith(".v1") else ""
    area = area_of(prefix + "x.v1") if prefix and not full_type else ""
    if prefix and not full_type and not prefix.startswith("io.shipyard."):
        raise InvalidArgument("type_prefix", "must look like io.shipyard.<area>. or a full event type")
    since = datetime_of(request.since) if request.HasField("since") else None
    return ActivityQuery(limit=request.page_size, before_sequence=_decode_token(request.page_token),
                         project=request.project, area=area, type=full_type, subject=request.subject,
                         since=since, catalog=bool(roles & CATALOG_ROLES))


def graph_to_proto(graph: LineageGraph) -> pb.Graph:
    """The wire form of a walk's result, nodes and edges in a stable order."""
    nodes = [pb.Node(id=v.node.id, kind=v.node.kind, label=v.label, project=v.node.project,
                     attributes={k: val for k, val in v.node.fields.items() if k not in _NOT_ATTRIBUTES},
                     deleted=v.deleted)
             for v in sorted(graph.nodes.values(), key=lambda v: v.node.id)]
    edges = [pb.Edge(source=e.source, target=e.target, relation=e.relation)
             for e in sorted(graph.edges, key=lambda e: e.id)]
    return pb.Graph(root=graph.root, nodes=nodes, edges=edges, truncated=graph.truncated)


def dashboard_to_proto(view: DashboardView) -> pb.Dashboard:
    """The wire form of the dashboard."""
    jobs = [pb.Job(id=n.id.partition(":")[2], kind=RUN, name=n.name, project=n.project, status=n.status,
                   subtype=n.fields.get("subtype", ""),
                   update_time=timestamp(datetime.fromisoformat(n.time)) if n.time else None,
                   link=f"/runs/{n.name}", gpus=n.gpus)
            for n in view.recent_jobs]
    return pb.Dashboard(recent_jobs=jobs, runs_by_status=view.runs_by_status, gpus_in_use=view.gpus_in_use,
                        gpus_queued=view.gpus_queued, repos_by_kind=view.repos_by_kind,
                        deployments=view.deployments, published_models=view.published_models,
                        project=view.project, run_counts=_counts(view.runs_by_status),
                        repo_counts=_counts(view.repos_by_kind))


def _counts(figures: dict[str, int]) -> list[pb.Count]:
    """The figures in their (the dashboard's) order: a list, where a map has none."""
    return [pb.Count(name=name, count=count) for name, count in figures.items()]


def status_to_proto(state: ProjectionState) -> pb.ProjectionStatus:
    """The wire form of the projections' state."""
    return pb.ProjectionStatus(last_sequence=state.last_sequence, nodes=state.nodes, edges=state.edges,
                               activities=state.activities, digest=state.digest, rebuilding=state.rebuilding,
                               rebuild_started=timestamp(state.rebuild_started))


class LineageServicer(lineage_pb2_grpc.LineageServiceServicer):
    """Projection queries and the rebuild."""

    def __init__(self, activity: ActivityQueries, lineage: LineageQueries, dashboard: DashboardQueries,
                 export: OpenLineageExport, projections: Projections) -> None:
        self._activity = activity
        self._lineage = lineage
        self._dashboard = dashboard
        self._export = export
        self._projections = projections

    async def ListActivity(self, request: pb.ListActivityRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListActivityResponse:
        query = _query(request, caller_of(context).roles)
        found = await self._activity.list(query)
        token = ""
        if found and len(found) == page_limit(query.limit):
            token = encode_token(_ACTIVITY_TOKEN, str(found[-1].sequence))
        return pb.ListActivityResponse(activities=[_to_proto(a) for a in found], next_page_token=token)

    async def GetLineage(self, request: pb.GetLineageRequest, context: grpc.aio.ServicerContext) -> pb.Graph:
        direction = _DIRECTIONS.get(request.direction, Direction.UPSTREAM)
        graph = await self._lineage.lineage(caller_of(context).roles, request.kind, request.name, direction,
                                            request.depth)
        return graph_to_proto(graph)

    async def GetDashboard(self, request: pb.GetDashboardRequest,
                           context: grpc.aio.ServicerContext) -> pb.Dashboard:
        view = await self._dashboard.dashboard(caller_of(context).roles, request.project, request.recent)
        return dashboard_to_proto(view)

    async def ExportOpenLineage(self, request: pb.ExportOpenLineageRequest,
                                context: grpc.aio.ServicerContext) -> pb.ExportOpenLineageResponse:
        caller_of(context)
        events, token = await self._export.page(request.project, request.page_size, request.page_token,
                                                request.namespace)
        return pb.ExportOpenLineageResponse(events=events, next_page_token=token)

    async def GetProjectionStatus(self, request: pb.GetProjectionStatusRequest,
                                  context: grpc.aio.ServicerContext) -> pb.ProjectionStatus:
        caller_of(context)
        return status_to_proto(await self._projections.status(request.digest))

    async def Rebuild(self, request: pb.RebuildRequest,
                      context: grpc.aio.ServicerContext) -> pb.ProjectionStatus:
        caller_of(context)  # operators only: the gateway's policy
        return status_to_proto(await self._projections.rebuild())
