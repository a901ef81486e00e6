"""The web console: server-rendered pages over the public API, served by the gateway's HTTP side."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.bus import EventBus
from shipyard_gateway.entrypoints.api import PublicApi
from shipyard_gateway.entrypoints.console.automation import AutomationPages
from shipyard_gateway.entrypoints.console.catalog import CatalogPages
from shipyard_gateway.entrypoints.console.clusters import ClusterPages
from shipyard_gateway.entrypoints.console.edge import STATIC, Console
from shipyard_gateway.entrypoints.console.home import HomePages
from shipyard_gateway.entrypoints.console.images import ImagePages
from shipyard_gateway.entrypoints.console.lineage import LineagePages
from shipyard_gateway.entrypoints.console.projects import ProjectPages
from shipyard_gateway.entrypoints.console.repo_files import RepoFilePages
from shipyard_gateway.entrypoints.console.repo_forms import RepoFormPages
from shipyard_gateway.entrypoints.console.repos import RepoPages
from shipyard_gateway.entrypoints.console.run_artifacts import RunArtifactPages
from shipyard_gateway.entrypoints.console.run_compare import RunComparePages
from shipyard_gateway.entrypoints.console.run_form import RunFormPages
from shipyard_gateway.entrypoints.console.runs import RunPages
from shipyard_gateway.entrypoints.console.serving import InferencePages
from shipyard_gateway.entrypoints.console.studies import StudyPages
from shipyard_gateway.entrypoints.console.study_limits import StudyLimitPages
from shipyard_gateway.entrypoints.limits import EdgeLimits
from shipyard_gateway.entrypoints.sse import Watches


def add_console(
    app: web.Application,
    api: PublicApi,
    bus: EventBus,
    blobs: BlobStore,
    platform_status: Callable[[], gateway_pb2.GetStatusResponse],
    secure_cookies: bool,
    watches: Watches,
    limits: EdgeLimits,
) -> None:
    """Register the console's pages, its event stream and its static files on ``app``.

    ``platform_status`` is what the sign-in page may show anyone: whether the platform is healthy,
    never where its parts are."""
    console = Console(api, bus, watches)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/console/events", console.events)
    HomePages(console, api.identity, platform_status, secure_cookies).add_routes(app)
    ProjectPages(console).add_routes(app)
    RunFormPages(console).add_routes(app)  # before RunPages: "new" and "compare" are not run names
    RunComparePages(console).add_routes(app)
    RunPages(console).add_routes(app)
    RunArtifactPages(console, blobs).add_routes(app)
    StudyPages(console).add_routes(app)
    StudyLimitPages(console).add_routes(app)
    RepoFormPages(console, blobs, limits).add_routes(app)  # before RepoPages: "new" is not a repo name
    RepoPages(console).add_routes(app)
    RepoFilePages(console, blobs).add_routes(app)
    LineagePages(console).add_routes(app)
    InferencePages(console).add_routes(app)
    CatalogPages(console).add_routes(app)
    AutomationPages(console).add_routes(app)
    ImagePages(console).add_routes(app)
    ClusterPages(console).add_routes(app)
