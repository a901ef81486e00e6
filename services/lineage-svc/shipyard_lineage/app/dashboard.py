"""The dashboard: recent jobs, counts by status, GPUs in use, repos and deployments."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.kit.errors import InvalidArgument
from shipyard_lineage.app.event_facts import DEPLOYMENT_STATUSES
from shipyard_lineage.app.ports import NodeQuery, ProjectionUnitOfWorkFactory, ProvenanceGraph
from shipyard_lineage.domain.graph import DEPLOYMENT, PUBLISHED, RUN, NodeState, visible_to

# The run statuses events tell lineage about (waiting-for-gpus, starting and stopping happen
# inside run-svc without an event), in the order the dashboard lists them: a run's life.
RUN_STATUSES = ("queued", "running", "complete", "failed", "error", "stopped")
REPO_KINDS = ("code", "dataset", "featureset", "model")
RECENT_DEFAULT = 10
RECENT_MAX = 100
GPU_SCAN_MAX = 10_000


@dataclass
class DashboardView:
    """The figures of one project, or of all (""). ``runs_by_status`` and ``repos_by_kind`` hold
    every status and kind in the order of RUN_STATUSES and REPO_KINDS; the catalog's figures are
    None for a caller who may not see the catalog."""

    project: str
    recent_jobs: list[NodeState] = field(default_factory=list)
    runs_by_status: dict[str, int] = field(default_factory=dict)
    gpus_in_use: int = 0
    gpus_queued: int = 0
    repos_by_kind: dict[str, int] = field(default_factory=dict)
    deployments: int | None = None
    published_models: int | None = None


@dataclass
class DashboardQueries:
    """Reads the dashboard's figures from the graph."""

    uow: ProjectionUnitOfWorkFactory

    async def dashboard(self, roles: frozenset[str], project: str, recent: int = 0) -> DashboardView:
        """The dashboard of ``project`` ("" = All Projects)."""
        if recent < 0 or recent > RECENT_MAX:
            raise InvalidArgument("recent", f"must be between 0 and {RECENT_MAX} (got {recent})")
        scope = project or None
        view = DashboardView(project)
        async with self.uow() as uow:
            graph = uow.graph
            view.recent_jobs = await _recent_runs(graph, scope, recent or RECENT_DEFAULT)
            view.runs_by_status = {s: await graph.count_nodes(RUN, s, scope) for s in RUN_STATUSES}
            view.gpus_in_use = await _gpus(graph, "running", scope)
            view.gpus_queued = await _gpus(graph, "queued", scope)
            view.repos_by_kind = {k: await graph.count_repos(k, scope) for k in REPO_KINDS}
            if visible_to(roles, DEPLOYMENT):
                view.deployments = sum([await graph.count_nodes(DEPLOYMENT, status, scope)
                                        for status in DEPLOYMENT_STATUSES])
                view.published_models = await graph.count_nodes(PUBLISHED, "", scope)
        return view


async def _recent_runs(graph: ProvenanceGraph, project: str | None, limit: int) -> list[NodeState]:
    found: list[NodeState] = []
    after: tuple[int, str] | None = None
    while len(found) < limit:
        page = await graph.find_nodes(NodeQuery(RUN, limit, project=project, after=after))
        found += [n for n in page if not n.deleted]
        if len(page) < limit:
            break
        after = (page[-1].updated, page[-1].id)
    return found[:limit]


async def _gpus(graph: ProvenanceGraph, status: str, project: str | None) -> int:
    runs = await graph.find_nodes(NodeQuery(RUN, GPU_SCAN_MAX, project=project, status=status))
    return sum(run.gpus for run in runs)
