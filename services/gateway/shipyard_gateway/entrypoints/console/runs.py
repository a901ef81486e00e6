"""Runs: the list (server-side paging and filters, live status), details with live logs, metric
charts, what the run logged through MLflow (params, tags, artifacts), stop and clone."""

from __future__ import annotations

import math
import secrets
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.kit.units import human_size
from shipyard_gateway.entrypoints.console.calls import ConsoleError, selected_project
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.run_artifacts import LISTED_MOST, artifact_files, logged_models
from shipyard_gateway.entrypoints.console.run_outputs import made_versions

SERVICE = "/shipyard.run.v1.RunService"
PAGE_SIZE = 50
LOG_CHUNK = 256 * 1024
STATUSES = [pb.RunStatus.Name(v).removeprefix("RUN_STATUS_").lower() for v in pb.RunStatus.values() if v]
KINDS = [pb.RunKind.Name(v).removeprefix("RUN_KIND_").lower() for v in pb.RunKind.values() if v]
LIVE = frozenset({"queued", "waiting_for_gpus", "starting", "running", "stopping"})
SYSTEM_TAG = "mlflow."  # MLflow's own tags (source, user, …): its UI does not show them either


def status_name(run: pb.Run) -> str:
    """``running``, ``complete``, …"""
    return pb.RunStatus.Name(run.status).removeprefix("RUN_STATUS_").lower()


def kind_name(run: pb.Run) -> str:
    """``training``, ``preprocessing``, …"""
    return pb.RunKind.Name(run.kind).removeprefix("RUN_KIND_").lower() if run.kind else "—"


def shown_labels(run: pb.Run) -> dict[str, str]:
    """The run's key-value tags the page shows: all but MLflow's own."""
    return {k: v for k, v in run.labels.items() if not k.startswith(SYSTEM_TAG)}


def _filters(request: web.Request) -> dict[str, str]:
    query = request.query
    return {
        "status": query.get("status", "") if query.get("status") in STATUSES else "",
        "kind": query.get("kind", "") if query.get("kind") in KINDS else "",
        "q": query.get("q", "").strip()[:100],
        "tag": query.get("tag", "").strip()[:100],
        "trials": "on" if query.get("trials") == "on" else "",
        "page": query.get("page", ""),
    }


def trials_hidden(filters: dict[str, str]) -> bool:
    """Whether the list leaves trials out: unless "Show trials" is ticked or the kind asked for is trial."""
    return not filters["trials"] and filters["kind"] != "trial"


def _list_request(project: str, filters: dict[str, str]) -> pb.ListRunsRequest:
    return pb.ListRunsRequest(
        project=project,
        page_size=PAGE_SIZE,
        page_token=filters["page"],
        name_prefix=filters["q"],
        tag=filters["tag"],
        status=f"RUN_STATUS_{filters['status'].upper()}" if filters["status"] else None,
        kind=f"RUN_KIND_{filters['kind'].upper()}" if filters["kind"] else None,
        exclude_trials=trials_hidden(filters),
    )


def chart_value(value: float | None) -> float | None:
    """A metric value for a chart's JSON: NaN and infinities (MLflow logs them) are no JSON numbers,
    so they become gaps (None), which uPlot leaves out of the line."""
    return value if value is not None and math.isfinite(value) else None


def chart_series(metrics: pb.GetRunMetricsResponse) -> list[dict[str, Any]]:
    """Each metric as ``{"name", "steps", "values"}``, for the page's charts (uPlot)."""
    return [
        {"name": s.name, "steps": [p.step for p in s.points],
         "values": [chart_value(p.value) for p in s.points]}
        for s in metrics.series
    ]


class RunPages:
    """``/runs…``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/runs", guarded(self.list))
        app.router.add_get("/runs/{name}", guarded(self.detail))
        app.router.add_get("/runs/{name}/logs", guarded(self.logs))
        app.router.add_get("/runs/{name}/metrics", guarded(self.metrics))
        app.router.add_post("/runs/{name}/stop", guarded(self.stop))
        app.router.add_post("/runs/{name}/clone", guarded(self.clone))
        app.router.add_post("/runs/{name}/tensorboard/{action:start|stop}", guarded(self.tensorboard))

    async def list(self, request: web.Request) -> web.Response:
        filters = _filters(request)
        page = await self._page(request, filters)
        shown = {k: v for k, v in filters.items() if v}
        context: dict[str, Any] = {
            "runs": page.runs,
            "next_page": page.next_page_token,
            "filters": filters,
            "statuses": STATUSES,
            "kinds": KINDS,
            "status_name": status_name,
            "kind_name": kind_name,
            "rows_url": "/runs?" + urlencode({**shown, "fragment": "rows"}),
            "next_url": "/runs?" + urlencode({**shown, "page": page.next_page_token}),
        }
        if request.query.get("fragment") == "rows":
            return self._console.fragment("runs/rows.html.j2", **context)
        return await self._console.page(request, "runs/list.html.j2", "runs", **context)

    async def _page(self, request: web.Request, filters: dict[str, str]) -> pb.ListRunsResponse:
        """A page of the list; run-svc leaves trials out unless asked for."""
        asked = _list_request(selected_project(request), filters)
        return await self._console.call(request, f"{SERVICE}/ListRuns", asked, pb.ListRunsResponse)

    async def detail(self, request: web.Request) -> web.Response:
        run = await self._get(request)
        context: dict[str, Any] = {
            "run": run,
            "run_status": status_name(run),
            "kind": kind_name(run),
            "live": status_name(run) in LIVE,
        }
        if request.query.get("fragment") == "summary":
            return self._console.fragment("runs/summary.html.j2", **context)
        metrics = await self._console.call(
            request,
            f"{SERVICE}/GetRunMetrics",
            pb.GetRunMetricsRequest(name=run.name),
            pb.GetRunMetricsResponse,
        )
        board = await self._console.call(
            request, f"{SERVICE}/GetTensorBoard", pb.TensorBoardRequest(name=run.name), pb.TensorBoard
        )
        running = board.state == pb.TENSORBOARD_STATE_RUNNING
        artifacts = await artifact_files(self._console, request, run)
        return await self._console.page(
            request,
            "runs/detail.html.j2",
            "runs",
            series=chart_series(metrics),
            labels=shown_labels(run),
            artifacts=artifacts[:LISTED_MOST],
            more_artifacts=max(0, len(artifacts) - LISTED_MOST),
            models=await logged_models(self._console, request, run),
            size_of=human_size,
            tensorboard=board if running else None,
            made=await made_versions(self._console, request, run) if not context["live"] else {},
            **context,
        )

    async def logs(self, request: web.Request) -> web.Response:
        """The log from ``offset`` on, as JSON: ``{"text", "next_offset", "live"}`` (the page tails it)."""
        name = request.match_info["name"]
        try:
            offset = max(0, int(request.query.get("offset", "0")))
        except ValueError:
            return web.json_response({"error": "offset: must be a whole number"}, status=400)
        chunk = await self._console.call(
            request,
            f"{SERVICE}/ReadRunLogs",
            pb.ReadRunLogsRequest(name=name, offset=offset, max_bytes=LOG_CHUNK),
            pb.ReadRunLogsResponse,
        )
        run = await self._get(request)
        return web.json_response(
            {
                "text": chunk.data.decode(errors="replace"),
                "next_offset": chunk.next_offset,
                "live": status_name(run) in LIVE,
            }
        )

    async def metrics(self, request: web.Request) -> web.Response:
        """The run's metric series as JSON (the page redraws its charts from it)."""
        metrics = await self._console.call(
            request,
            f"{SERVICE}/GetRunMetrics",
            pb.GetRunMetricsRequest(name=request.match_info["name"]),
            pb.GetRunMetricsResponse,
        )
        return web.json_response(chart_series(metrics))

    async def stop(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        await self._console.call(request, f"{SERVICE}/StopRun", pb.StopRunRequest(name=name), pb.Run)
        raise web.HTTPSeeOther(f"/runs/{name}")

    async def clone(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        form = await request.post()
        new_name = str(form.get("new_name", "")).strip() or f"{name}-copy-{secrets.token_hex(2)}"
        try:
            made = await self._console.call(
                request, f"{SERVICE}/CloneRun", pb.CloneRunRequest(name=name, new_name=new_name), pb.Run
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._console.error_page(request, exc)
        raise web.HTTPSeeOther(f"/runs/{made.name}")

    async def tensorboard(self, request: web.Request) -> web.Response:
        """Start or stop the run's TensorBoard (served by the gateway at /tensorboard/<run>/)."""
        name, action = request.match_info["name"], request.match_info["action"]
        method = "StartTensorBoard" if action == "start" else "StopTensorBoard"
        await self._console.call(
            request, f"{SERVICE}/{method}", pb.TensorBoardRequest(name=name), pb.TensorBoard
        )
        raise web.HTTPSeeOther(f"/runs/{name}")

    async def _get(self, request: web.Request) -> pb.Run:
        return await self._console.call(
            request, f"{SERVICE}/GetRun", pb.GetRunRequest(name=request.match_info["name"]), pb.Run
        )
